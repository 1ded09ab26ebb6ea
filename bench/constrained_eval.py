"""Grammar-constrained tool names at evaluation: the same checkpoint and prompts, with and without.

:class:`toolkiln.evaluate.harness.ToolNameConstraint` masks, while a function name is being written inside a
call list, every token that would not keep it a prefix of one of the prompt's tools; whether to call, and
the arguments, stay the model's. This runs :func:`toolkiln.evaluate.harness.run_evaluation` twice on one
seeded sample (held-out unseen-API test dialogs, ``--per-type`` per dialog type, and ``--bfcl-limit`` items
of each BFCL category) and prints accuracy per dialog type and BFCL category side by side, with the error
types that moved and the seconds each run took.

    python -m bench.constrained_eval [--checkpoint checkpoints/warmup] [--per-type 20] [--bfcl-limit 10]

Writes ``bench/results/constrained_eval_<checkpoint name>.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.common import record, table


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="checkpoints/warmup")
    ap.add_argument("--test", default="data/test.parquet")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--per-type", type=int, default=20)
    ap.add_argument("--bfcl-limit", type=int, default=10)
    ap.add_argument("--bfcl", nargs="*", default=["simple_python", "multiple", "parallel", "irrelevance"])
    args = ap.parse_args(argv)
    if not (Path(args.checkpoint) / "config.json").exists():
        print(f"skipped: {args.checkpoint} is not a checkpoint folder (run `dvc repro warmup_sft` first)")
        return {}

    import polars as pl

    from toolkiln.config import load_params
    from toolkiln.evaluate.harness import run_evaluation

    params = load_params(args.params)
    base = params.evaluate.model_copy(
        update={"samples_per_type": args.per_type, "bfcl_limit": args.bfcl_limit, "bfcl_categories": args.bfcl}
    )
    test = pl.read_parquet(args.test)
    runs = {}
    for constrained in (False, True):
        cfg = base.model_copy(update={"constrain_names": constrained})
        t0 = time.perf_counter()
        rep = run_evaluation(args.checkpoint, test, cfg, seed=params.seed)
        runs[constrained] = {"metrics": rep.metrics, "seconds": round(time.perf_counter() - t0, 1)}
    rows = []
    for block in ("synthetic", "bfcl"):
        groups = sorted(runs[False]["metrics"][block]["by_group"])
        for g in ["overall"] + groups:
            a, b = (
                r["metrics"][block] if g == "overall" else r["metrics"][block]["by_group"][g]
                for r in (runs[False], runs[True])
            )
            rows.append(
                {
                    "set": block,
                    "group": g,
                    "n": a["n"],
                    "plain": round(a["accuracy"], 3),
                    "constrained": round(b["accuracy"], 3),
                    "delta": round(b["accuracy"] - a["accuracy"], 3),
                }
            )
    print(table(rows, ["set", "group", "n", "plain", "constrained", "delta"]))
    errs = {
        k: {
            "plain": runs[False]["metrics"]["synthetic"]["error_types"],
            "constrained": runs[True]["metrics"]["synthetic"]["error_types"],
        }
        for k in ["synthetic"]
    }
    print("synthetic error types:", errs["synthetic"])
    print(f"seconds: plain {runs[False]['seconds']}, constrained {runs[True]['seconds']}")
    payload = {
        "checkpoint": args.checkpoint,
        "per_type": args.per_type,
        "bfcl_limit": args.bfcl_limit,
        "seed": params.seed,
        "table": rows,
        "error_types": errs,
        "seconds": {"plain": runs[False]["seconds"], "constrained": runs[True]["seconds"]},
    }
    record(f"constrained_eval_{Path(args.checkpoint).name}", payload)
    return payload


if __name__ == "__main__":
    main()
