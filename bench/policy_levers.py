"""Warm-up levers compared on a validation sample carved from the training split (iTool §3.1; ToolACE §4).

The default's evaluation reads the held-out test split, so choosing between training variants there
would tune on the test split. This bench keeps the test split out: the warm-up pool is the
``score_difficulty`` sample (``data/difficulty.parquet``, rows with a bucket), and the validation
sample is drawn from the *other* training dialogs whose target turn calls no API that any pool
dialog calls (or calls nothing) — unseen APIs for the policy, like the test split promises —
``--per-type`` per dialog type, seeded.

Every variant trains on the same pool in the same easy -> medium -> hard order (the committed
difficulty table; a variant that changes the rendering therefore keeps the default's buckets) with
the library function of the ``warmup_sft`` stage, then is scored with ``run_evaluation`` on the
validation sample. Each variant is an override deep-merged into params.yaml (``params``: none);
``--reuse-params`` scores the committed ``checkpoints/warmup`` as the ``params`` variant instead of
training it again. A variant that overrides only ``evaluate`` (``rank_tools``, ``call_bias_*``) is a decoding choice: it
scores the ``params`` variant's checkpoint (``checkpoints/levers/params``) without training.
Results are written after every variant (``--resume`` skips finished ones), so the bench can run for
hours in the background and be continued.

    python bench/policy_levers.py --variants signature_lines call_comments [--per-type 30] [--resume]
    python bench/policy_levers.py --analyse-only   # recompute the name / distractor statistics
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, record, table  # noqa: E402

TYPES = ("single", "parallel", "dependent", "non_tool", "clarification")

# name -> params override (deep-merged into params.yaml)
SIGNATURE_LINES = {"tool_line": "signature_first", "arg_order": "as_given", "call_comments": False}
COMMENTS = {"tool_line": "description_first", "arg_order": "signature", "call_comments": True}
VARIANTS: dict[str, dict] = {
    "params": {},
    # "name(args) - what it does" tool lines, calls as a bare list (the default before call comments)
    "signature_lines": {"policy": {"render": SIGNATURE_LINES}},
    # the description line above each signature, and each call preceded by its tool's description line:
    # after "# <what the user asked for>" the name is an exact repeat of what follows that line in the list
    "call_comments": {"policy": {"render": COMMENTS}},
    "context_full": {"sft": {"context": "full"}},
    "call_comments_full": {"policy": {"render": COMMENTS}, "sft": {"context": "full"}},
    "system_dialog": {"policy": {"render": {"system_prompt": "dialog"}}},
    "lr_6e-4": {"sft": {"learning_rate": 0.0006}},
    # a warm-up pool drawn with dependent dialogs three times as often as the data holds them (its own pool,
    # scored again): the default writes a tool-result summary where the dependent call is due
    "dependent_x3": {"difficulty": {"type_weights": {"dependent": 3.0}}},
    "all_layers": {"policy": {"train_layers": 0}},
    # a data-scaling curve: a quarter and a half of the default's pool (nested: ``sft.max_samples`` keeps each
    # bucket's share and draws prefixes of one seeded permutation), and a pool twice the default's (its own pool,
    # scored again)
    "sft_340": {"sft": {"max_samples": 340}},
    "sft_680": {"sft": {"max_samples": 680}},
    "pool_3000": {"difficulty": {"max_samples": 3000}},
    "two_epochs": {"sft": {"epochs": 2}},
    # decoding-only variants: the params variant's checkpoint, evaluated another way
    "rank_tools": {"evaluate": {"rank_tools": True}},
    "call_bias_1": {"evaluate": {"call_bias": 1.0}},
    "call_bias_2": {"evaluate": {"call_bias": 2.0}},
    "call_bias_2_rank": {"evaluate": {"call_bias": 2.0, "rank_tools": True}},
}


def target_apis(row: dict) -> set[str]:
    calls = json.loads(row["calls"]) if row["calls"] else []
    return {c["name"] for c in calls if c.get("turn") == row["target_turn"]}


def validation_sample(train, difficulty, per_type: int, seed: int):
    """Training dialogs outside the warm-up pool whose target turn calls only APIs the pool never calls."""
    import polars as pl

    pool_ids = set(difficulty.filter(pl.col("bucket").is_not_null())["id"].to_list())
    pool = train.filter(pl.col("id").is_in(pool_ids))
    seen = {a for apis in pool["apis"].to_list() for a in (apis or [])}
    rest = train.filter(~pl.col("id").is_in(pool_ids))
    keep = [not (target_apis(r) & seen) for r in rest.select("calls", "target_turn").to_dicts()]
    rest = rest.filter(pl.Series(keep))
    parts = [
        rest.filter(pl.col("type") == t).sample(
            n=min(per_type, rest.filter(pl.col("type") == t).height), seed=seed, shuffle=True
        )
        for t in TYPES
    ]
    return pl.concat(parts), {"pool": pool.height, "pool_apis": len(seen), "eligible": rest.height}


def pool_source(train, val):
    """The training dialogs a variant with its own pool may draw from: none of the validation dialogs, and none
    that calls an API a validation target calls (the validation targets stay unseen, as with the default pool)."""
    import polars as pl

    held = {a for r in val.select("calls", "target_turn").to_dicts() for a in target_apis(r)}
    keep = [not (set(apis or []) & held) for apis in train["apis"].to_list()]
    return train.filter(pl.Series(keep) & ~pl.col("id").is_in(val["id"].to_list()))


def name_stats(scored, val) -> dict:
    """Of the predictions on call targets that write calls: how many name only tools offered in the prompt,
    and how many name only the gold call's tools (picking the right tool vs merely copying one)."""
    import polars as pl

    from toolkiln.callparse import parse_calls

    tools = {r["id"]: {t["name"] for t in json.loads(r["tools"])} for r in val.select("id", "tools").to_dicts()}
    calling = scored.filter(pl.col("group").is_in(["single", "parallel", "dependent"]))
    n = in_tools = gold = 0
    for r in calling.select("id", "calls", "gold").to_dicts():
        pred = {c["name"] for c in json.loads(r["calls"] or "[]")}
        if not pred:
            continue
        want = {c["name"] for c in parse_calls(r["gold"]).calls or []}
        n += 1
        in_tools += pred <= tools.get(r["id"], set())
        gold += pred <= want
    return {
        "calling_predictions": n,
        "names_in_tools": in_tools / n if n else None,
        "names_gold": gold / n if n else None,
    }


def reply_kinds(scored) -> dict[str, dict[str, int]]:
    """Per dialog type, what the model wrote: a call list (parsed, non-empty), a text reply that asks something
    (a clarifying question), another text reply (e.g. a summary of the last tool result), or neither (broken)."""
    from toolkiln.callparse import is_text_reply

    out: dict[str, dict[str, int]] = {}
    for r in scored.select("group", "output", "calls").to_dicts():
        text = r["output"] or ""
        kind = (
            "calls"
            if json.loads(r["calls"] or "[]")
            else ("question" if "?" in text else "text")
            if is_text_reply(text)
            else "other"
        )
        counts = out.setdefault(r["group"], {"calls": 0, "question": 0, "text": 0, "other": 0})
        counts[kind] += 1
    return {g: out[g] for g in TYPES if g in out}


def pool_types(difficulty) -> dict[str, int]:
    """Dialogs per type in a warm-up pool (the rows of a difficulty table with a bucket)."""
    import polars as pl

    return dict(difficulty.filter(pl.col("bucket").is_not_null())["type"].value_counts().iter_rows())


def tool_turn_stats(train, difficulty) -> dict:
    """Where the training data puts a text reply after a tool result: as a target (per type: how many targets follow
    a tool message, and how many of those are calls) or only in the context before the target; and the type mix of
    the warm-up pool (the scored dialogs)."""

    targets: dict[str, dict[str, int]] = {}
    context_summaries = 0
    for r in train.select("type", "messages", "target_turn").to_dicts():
        msgs = json.loads(r["messages"]) if isinstance(r["messages"], str) else r["messages"]
        turn = r["target_turn"]
        t = targets.setdefault(r["type"], {"targets": 0, "after_tool": 0, "after_tool_calls": 0})
        t["targets"] += 1
        if turn > 0 and msgs[turn - 1]["role"] == "tool":
            t["after_tool"] += 1
            t["after_tool_calls"] += bool(msgs[turn].get("tool_calls"))
        context_summaries += any(
            a["role"] == "tool" and b["role"] == "assistant" and not b.get("tool_calls") and (b.get("content") or "")
            for a, b in zip(msgs[: turn - 1], msgs[1:turn])
        )
    return {
        "targets": {g: targets[g] for g in TYPES if g in targets},
        "dialogs_with_a_text_reply_after_a_tool_result_in_context": context_summaries,
        "pool_types": pool_types(difficulty),
    }


def nearest_distractor(val) -> dict[str, float]:
    """Per call-target dialog: the highest cosine (MiniLM API vectors of ``data/api_embeddings.parquet``)
    between a gold API and any distractor offered beside it. High values would mean the request cannot
    tell the tools apart; low values mean a wrong pick is the policy's fault."""
    import numpy as np
    import polars as pl

    emb = pl.read_parquet(ROOT / "data" / "api_embeddings.parquet")
    mat = np.asarray(emb["embedding"].to_list(), dtype=np.float32)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    index = {n: i for i, n in enumerate(emb["name"].to_list())}
    out: dict[str, float] = {}
    for r in val.filter(pl.col("type").is_in(["single", "parallel", "dependent"])).to_dicts():
        gold = target_apis(r)
        offered = [t["name"] for t in json.loads(r["tools"]) if t["name"] not in gold and t["name"] in index]
        gold_i = [index[g] for g in gold if g in index]
        if gold_i and offered:
            out[r["id"]] = float((mat[gold_i] @ mat[[index[o] for o in offered]].T).max())
    return out


def similarity_stats(scored, sims: dict[str, float]) -> dict:
    """Mean nearest-distractor cosine of the call targets the policy got right vs named the wrong tool for."""
    import numpy as np

    def mean(rows):
        vals = [sims[r["id"]] for r in rows if r["id"] in sims]
        return round(float(np.mean(vals)), 3) if vals else None

    rows = scored.select("id", "correct", "error_type").to_dicts()
    return {
        "distractor_cos_correct": mean([r for r in rows if r["correct"]]),
        "distractor_cos_wrong_function": mean([r for r in rows if r["error_type"] == "wrong_function"]),
    }


def run_variant(name: str, override: dict, train, difficulty, val, args) -> dict:
    import torch

    from toolkiln.config import Params, deep_merge, read_yaml_mapping
    from toolkiln.evaluate.harness import run_evaluation
    from toolkiln.io import atomic_dir
    from toolkiln.policy.model import save_policy
    from toolkiln.policy.warmup import warmup_sft

    torch.set_num_threads(args.threads)
    params = Params.model_validate(deep_merge(read_yaml_mapping(ROOT / "params.yaml"), override))
    out = ROOT / "checkpoints" / "levers" / name
    t0 = time.perf_counter()
    decoding_only = set(override) == {"evaluate"}
    if decoding_only and not (ROOT / "checkpoints" / "levers" / "params" / "config.json").is_file():
        raise SystemExit(f"variant {name} evaluates the params variant's checkpoint: run --variants params first")
    if decoding_only:
        out = ROOT / "checkpoints" / "levers" / "params"
        warm = {"note": "the params variant's checkpoint, not trained again"}
    elif name == "params" and args.reuse_params and (ROOT / "checkpoints" / "warmup").is_dir():
        out, warm = ROOT / "checkpoints" / "warmup", json.loads((ROOT / "reports/warmup_sft/metrics.json").read_text())
    else:
        pool_info = {}
        if "difficulty" in override:  # its own pool: scored again, drawn away from the validation sample
            from toolkiln.policy.difficulty import score_difficulty

            train = pool_source(train, val)
            scored = score_difficulty(train, params.policy, params.difficulty, seed=params.seed)
            difficulty = scored.table
            pool_info = {"pool_types": pool_types(difficulty)}
        res = warmup_sft(train, difficulty, params.policy, params.sft, seed=args.seed)
        with atomic_dir(out) as tmp:
            save_policy(res.model, res.tokenizer, tmp, params.policy)
        warm = {**res.metrics, **pool_info}
    # a reused checkpoint reports the training time its stage measured
    train_s = warm.get("seconds", 0.0) if out.name == "warmup" else 0.0 if decoding_only else time.perf_counter() - t0
    ev = params.evaluate.model_copy(
        update={"samples_per_type": 0, "targets": "all", "bfcl_categories": [], "max_samples": 0}
    )
    t1 = time.perf_counter()
    rep = run_evaluation(out, val, ev, seed=args.seed)
    syn = rep.metrics["synthetic"]
    (ROOT / "checkpoints" / "levers").mkdir(parents=True, exist_ok=True)
    rep.dialogs.write_parquet(ROOT / "checkpoints" / "levers" / f"{name}_validation.parquet")
    errors = rep.dialogs["error_type"].drop_nulls().value_counts().sort("count", descending=True)
    return {
        "variant": name,
        "override": override,
        "overall": syn["accuracy"],
        **{t: syn["by_group"].get(t, {}).get("accuracy") for t in TYPES},
        "pool_types": warm.get("pool_types"),
        "train_steps": warm.get("train_steps"),
        "train_tokens": warm.get("train_tokens"),
        "val_loss": warm.get("final_eval_loss"),
        "train_s": round(train_s, 1),
        "eval_s": round(time.perf_counter() - t1, 1),
        **name_stats(rep.dialogs, val),
        **similarity_stats(rep.dialogs, args.sims),
        "replies": reply_kinds(rep.dialogs),
        "errors": dict(zip(errors["error_type"].to_list(), errors["count"].to_list())),
    }


def main(argv: list[str] | None = None) -> None:
    import numpy as np
    import polars as pl

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--variants", nargs="+", default=["signature_lines", "call_comments"], choices=sorted(VARIANTS))
    ap.add_argument("--per-type", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="policy_levers")
    ap.add_argument("--resume", action="store_true", help="keep rows already in the results file")
    ap.add_argument(
        "--reuse-params",
        action="store_true",
        help="score the committed checkpoints/warmup as the 'params' variant (no training)",
    )
    ap.add_argument(
        "--analyse-only",
        action="store_true",
        help="recompute the statistics of finished variants from their saved validation outputs",
    )
    args = ap.parse_args(argv)
    train = pl.read_parquet(ROOT / "data" / "train.parquet")
    difficulty = pl.read_parquet(ROOT / "data" / "difficulty.parquet")
    val, info = validation_sample(train, difficulty, args.per_type, args.seed)
    args.sims = nearest_distractor(val)
    sims = np.asarray(list(args.sims.values()))
    info["nearest_distractor_cos"] = {
        "n": len(sims),
        "mean": round(float(sims.mean()), 3),
        "p90": round(float(np.quantile(sims, 0.9)), 3),
        "max": round(float(sims.max()), 3),
    }
    print(
        f"pool {info['pool']} dialogs ({info['pool_apis']} APIs); validation {val.height} of {info['eligible']} "
        f"eligible training dialogs",
        flush=True,
    )
    path = RESULTS / f"{args.out}.json"
    rows = json.loads(path.read_text())["table"] if (args.resume or args.analyse_only) and path.exists() else []
    if args.analyse_only and not rows:
        raise SystemExit(f"--analyse-only: no finished variants in {path}; run some variants first")
    done = {r["variant"] for r in rows}
    if args.analyse_only:
        for r in rows:
            scored = pl.read_parquet(ROOT / "checkpoints" / "levers" / f"{r['variant']}_validation.parquet")
            r.update(name_stats(scored, val), **similarity_stats(scored, args.sims), replies=reply_kinds(scored))
        info["tool_turns"] = tool_turn_stats(train, difficulty)
        record(args.out, {"per_type": args.per_type, "seed": args.seed, "validation": info, "table": rows})
        print(json.dumps(info, indent=1))
        print(
            table(
                rows,
                [
                    "variant",
                    "overall",
                    "names_in_tools",
                    "names_gold",
                    "distractor_cos_correct",
                    "distractor_cos_wrong_function",
                ],
            )
        )
        kinds = [{"variant": r["variant"], "type": g, **c} for r in rows for g, c in r.get("replies", {}).items()]
        print(table(kinds, ["variant", "type", "calls", "question", "text", "other"]))
        return
    for name in args.variants:
        if name in done:
            continue
        print(f"== {name}: {VARIANTS[name]}", flush=True)
        rows.append(run_variant(name, VARIANTS[name], train, difficulty, val, args))
        record(args.out, {"per_type": args.per_type, "seed": args.seed, "validation": info, "table": rows})
        print(
            table(rows, ["variant", "overall", *TYPES, "names_gold", "train_steps", "val_loss", "train_s", "eval_s"]),
            flush=True,
        )


if __name__ == "__main__":
    main()
