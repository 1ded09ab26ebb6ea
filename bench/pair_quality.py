"""Quality of the MCTS step-level pairs against the sampling temperature (iTool §3.2).

The preference claims showed rounds that teach "answer in text" instead of calls. This bench looks at
what the pairs themselves hold, for the same deficient prompts searched at several temperatures
(iTool's 1.5 and lower ones), with the current reward:

* ``chosen_ok``: the share of pairs whose chosen side is what its target asks for — a call list with
  a call in it when the gold answer calls, a text reply (``toolkiln.callparse.is_text_reply``) when it
  does not;
* ``chosen_nll`` / ``rejected_nll``: the mean token NLL of each side's completion (after the prompt and
  the shared prefix) under the searched policy — fluent nonsense sampled at a high temperature shows up
  as a high NLL, and that is what an SFT term on the chosen side would teach;
* pairs, prompts with pairs, pairs per target type, mean value gap, search seconds.

    python bench/pair_quality.py --checkpoint checkpoints/claims/reference_seed0 \\
        --deficiencies checkpoints/claims/round1_seed0/deficiencies.parquet --temperatures 1.5 0.7
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import record, table  # noqa: E402


def side_nll(model, tok, pairs, side: str, device: str = "cpu") -> list[float]:
    """Mean token NLL of each pair's ``side`` completion (its rollout after the shared prefix)."""
    from toolkiln.evaluate.harness import score_continuations

    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    out = []
    for r in pairs.iter_rows(named=True):
        head = tok(r["prompt"] + (r["prefix"] or ""), add_special_tokens=False)["input_ids"]
        cont = tok(r[f"{side}_rollout"][len(r["prefix"] or "") :], add_special_tokens=False)["input_ids"]
        if not cont:
            continue
        (lps,) = score_continuations(model, head, [cont], pad, device)
        out.append(-sum(lps) / len(lps))
    return out


def chosen_ok(row: dict) -> bool:
    from toolkiln.callparse import is_text_reply, parse_calls

    text = row["chosen_rollout"] or ""
    if (row["gold"] or "").strip():
        return bool(parse_calls(text).calls)
    return is_text_reply(text) or parse_calls(text).calls == []


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "claims" / "reference_seed0"))
    ap.add_argument(
        "--deficiencies", default=str(ROOT / "checkpoints" / "claims" / "round1_seed0" / "deficiencies.parquet")
    )
    ap.add_argument("--train", default=str(ROOT / "data" / "train.parquet"))
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--temperatures", type=float, nargs="+", default=[1.5, 0.7])
    ap.add_argument("--openings", type=int, default=3, help="itool.mcts.root_openings of every search")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import polars as pl
    import torch

    from toolkiln.config import load_params
    from toolkiln.itool.rounds import load_checkpoint, mcts_pairs

    torch.set_num_threads(args.threads)
    p = load_params(args.params)
    train = pl.read_parquet(args.train)
    defic = pl.read_parquet(args.deficiencies)
    model, tok, device = load_checkpoint(args.checkpoint, p.policy)
    rows, results, payload = [], {}, {}
    for temp in args.temperatures:
        mcts = p.itool.mcts.model_copy(update={"temperature": temp, "root_openings": args.openings})
        itool = p.itool.model_copy(update={"mcts": mcts})
        t0 = time.perf_counter()
        res = mcts_pairs(train, defic, args.checkpoint, p.policy, itool, seed=args.seed, round_=1)
        seconds = time.perf_counter() - t0
        pairs = res.pairs
        ok = [chosen_ok(r) for r in pairs.iter_rows(named=True)]
        c_nll, r_nll = side_nll(model, tok, pairs, "chosen", device), side_nll(model, tok, pairs, "rejected", device)
        res_row = {
            "temperature": temp,
            "prompts": int(defic["selected"].sum()),
            "prompts_with_pairs": res.metrics.get("prompts_with_pairs"),
            "pairs": pairs.height,
            "pairs_by_type": dict(sorted(Counter(pairs["type"].to_list()).items())),
            "chosen_ok": sum(ok) / len(ok) if ok else None,
            "mean_gap": float(pairs["gap"].mean()) if pairs.height else None,
            "chosen_nll": sum(c_nll) / len(c_nll) if c_nll else None,
            "rejected_nll": sum(r_nll) / len(r_nll) if r_nll else None,
            "seconds": seconds,
        }
        results[str(temp)] = res_row
        rows.append({**res_row, "pairs_by_type": ", ".join(f"{k} {v}" for k, v in res_row["pairs_by_type"].items())})
        print(table(rows, list(rows[0])), flush=True)
        # written after every temperature: a search takes minutes, and an interrupted run keeps what it finished
        payload = {"checkpoint": args.checkpoint, "openings": args.openings, "seed": args.seed, "results": results}
        path = record("pair_quality", payload)
        print(f"wrote {path.relative_to(ROOT)}", flush=True)
    return payload


if __name__ == "__main__":
    main()
