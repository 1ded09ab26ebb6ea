"""Evaluation generation speed: plain batched ``generate`` vs the harness's generator, same prompts, same run.

Both sides are :class:`toolkiln.evaluate.harness.HFGenerator` on one loaded model and
the same length-sorted batches; greedy decoding, the same ``max_new_tokens``:

* ``plain`` — left-padded batched ``model.generate`` until EOS or ``max_new_tokens``;
* ``fast``  — the shared token prefix of all prompts run once and its KV cache reused by
  every batch (``prefix_cache``), each row stopped at the end of its call list
  (``stop_at_call_end``);
* ``fast bf16`` — ``fast`` with bfloat16 weights (``evaluate.dtype: bfloat16``; AMX matmuls on
  CPUs that have them), its verdicts compared with fp32 ``fast``'s.

Prompts: a seeded sample of the held-out dialogs (``data/test.parquet``, the checkpoint's
rendering) and a seeded sample of BFCL categories (BFCL's prompt: a long shared
instruction prefix). Reported per prompt set: seconds, prompts/s, the speed-up, and how
many outputs are identical and how many *verdicts* agree (a finished call list is all a
parser reads, so outputs after it may differ while verdicts do not).

    python bench/eval_speed.py --checkpoint checkpoints/warmup --n 48
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import record, table  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "warmup"))
    ap.add_argument("--test", default=str(ROOT / "data" / "test.parquet"))
    ap.add_argument("--n", type=int, default=48, help="prompts per set")
    ap.add_argument("--bfcl", default="simple_python,multiple,irrelevance")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import polars as pl
    import torch

    from toolkiln.callparse import parse_calls
    from toolkiln.evaluate import bfcl
    from toolkiln.evaluate.harness import HFGenerator, dialog_prompt
    from toolkiln.policy.render import CallStyle

    if args.threads:
        torch.set_num_threads(args.threads)
    if not Path(args.checkpoint, "config.json").is_file():
        print(f"no checkpoint at {args.checkpoint}; run `dvc repro warmup_sft` (or pass --checkpoint)")
        return {}
    sets: dict[str, list[dict]] = {}
    if Path(args.test).exists():
        df = pl.read_parquet(args.test).sample(n=args.n, seed=args.seed, shuffle=True)
        style = CallStyle.load(args.checkpoint)
        sets["held-out dialogs"] = [dialog_prompt(r, style) for r in df.to_dicts()]
    cats = [c for c in args.bfcl.split(",") if c]
    per = max(1, args.n // max(1, len(cats)))
    sets["BFCL"] = [
        {"messages": bfcl.prompt_messages(e), "tools": None}
        for c in cats
        for e in bfcl.load_category(c, limit=per, seed=args.seed)
    ]

    plain = HFGenerator(
        args.checkpoint,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        prefix_cache=False,
        stop_at_call_end=False,
    )
    fast = HFGenerator(
        args.checkpoint,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        model=plain.model,
        tokenizer=plain.tok,
    )
    fast16 = HFGenerator(
        args.checkpoint, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, dtype="bfloat16"
    )
    rows, results = [], {}
    for name, prompts in sets.items():
        out_plain = plain(prompts)
        s_plain = dict(plain.stats)
        out_fast = fast(prompts)
        s_fast = dict(fast.stats)
        out_16 = fast16(prompts)
        s_16 = dict(fast16.stats)
        same = sum(a == b for a, b in zip(out_plain, out_fast))
        agree = sum(_verdict(a, parse_calls) == _verdict(b, parse_calls) for a, b in zip(out_plain, out_fast))
        agree16 = sum(_verdict(a, parse_calls) == _verdict(b, parse_calls) for a, b in zip(out_fast, out_16))
        res = {
            "bf16_s": s_16["seconds"],
            "bf16_speedup_vs_plain": s_plain["seconds"] / s_16["seconds"],
            "bf16_same_parse_as_fp32": agree16 / len(prompts),
            "prompts": len(prompts),
            "plain_s": s_plain["seconds"],
            "fast_s": s_fast["seconds"],
            "speedup": s_plain["seconds"] / s_fast["seconds"],
            "shared_prefix_tokens": s_fast["shared_prefix_tokens"],
            "mean_prompt_tokens": s_fast["prompt_tokens"] / max(1, len(prompts)),
            "plain_new_tokens": s_plain["new_tokens"],
            "fast_new_tokens": s_fast["new_tokens"],
            "identical_outputs": same / len(prompts),
            "same_parse": agree / len(prompts),
        }
        results[name] = res
        rows.append(
            {
                "prompts": name,
                "n": len(prompts),
                "prefix tok": res["shared_prefix_tokens"],
                "plain s": res["plain_s"],
                "fast s": res["fast_s"],
                "x plain": res["speedup"],
                "new tok plain/fast": f"{res['plain_new_tokens']}/{res['fast_new_tokens']}",
                "same parse": f"{res['same_parse']:.0%}",
                "bf16 s": res["bf16_s"],
                "bf16 x plain": res["bf16_speedup_vs_plain"],
                "bf16 same parse": f"{res['bf16_same_parse_as_fp32']:.0%}",
            }
        )
    print(
        f"checkpoint {args.checkpoint}; batch {args.batch_size}; max_new_tokens {args.max_new_tokens}; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        table(
            rows,
            [
                "prompts",
                "n",
                "prefix tok",
                "plain s",
                "fast s",
                "x plain",
                "new tok plain/fast",
                "same parse",
                "bf16 s",
                "bf16 x plain",
                "bf16 same parse",
            ],
        )
    )
    payload = {
        "checkpoint": args.checkpoint,
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "results": results,
    }
    path = record("eval_speed", payload)
    print(f"wrote {path.relative_to(ROOT)}")
    return payload


def _verdict(text, parse_calls):
    """What a parser reads from an output: the first call list (as JSON) or its absence."""
    if text is None:
        return None
    p = parse_calls(text, strict=False)
    return repr(p.calls)


if __name__ == "__main__":
    main()
