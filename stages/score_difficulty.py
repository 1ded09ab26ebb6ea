"""DVC stage score_difficulty: per-sample difficulty and easy/medium/hard buckets (iTool arXiv 2501.09766 §3.1)."""

from __future__ import annotations

import argparse
import polars as pl

from toolkiln.io import atomic_write, atomic_write_json, atomic_write_parquet
from toolkiln.policy.difficulty import plot_difficulty, score_difficulty
from toolkiln.stage import stage_context


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--train", required=True, help="training dialogs (data/train.parquet)")
    ap.add_argument("--out", required=True, help="difficulty table (data/difficulty.parquet)")
    ap.add_argument("--metrics", required=True, help="metrics JSON (DVC metrics)")
    ap.add_argument("--plot", required=True, help="histogram PNG")
    args = ap.parse_args(argv)
    with stage_context("score_difficulty", args.params, sections=("policy", "difficulty")) as ctx:
        train = pl.read_parquet(args.train)
        res = score_difficulty(train, ctx.params.policy, ctx.params.difficulty, seed=ctx.params.seed)
        atomic_write_parquet(args.out, res.table)
        atomic_write_json(args.metrics, res.metrics)
        atomic_write(args.plot, lambda p: plot_difficulty(res.table, p))
        ctx.run.log_metrics(res.metrics)
        ctx.run.log_artifact(args.plot)
        ctx.log.info("buckets: %s", {b: v["n"] for b, v in res.metrics["buckets"].items()})


if __name__ == "__main__":
    main()
