"""DVC stage find_deficiencies_round@<k>: the training prompts the round's input policy is deficient on (iTool arXiv 2501.09766 §3.2)."""

from __future__ import annotations

import argparse

import polars as pl

from toolkiln.io import atomic_write_json, atomic_write_parquet
from toolkiln.itool.rounds import deficiencies_round
from toolkiln.stage import stage_context


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--round", type=int, required=True, help="round number k (1, 2, ...)")
    ap.add_argument("--train", required=True, help="training dialogs (data/train.parquet)")
    ap.add_argument("--checkpoint", required=True, help="the round's input policy (checkpoints/warmup for round 1)")
    ap.add_argument("--out", required=True, help="per-sample table (data/round_<k>/deficiencies.parquet)")
    ap.add_argument("--metrics", required=True, help="metrics JSON (DVC metrics)")
    args = ap.parse_args(argv)
    with stage_context(f"find_deficiencies_round@{args.round}", args.params, sections=("policy", "itool")) as ctx:
        ctx.run.set_tags({"toolkiln.round": args.round, "toolkiln.checkpoint": args.checkpoint})
        res = deficiencies_round(
            pl.read_parquet(args.train),
            args.checkpoint,
            ctx.params.policy,
            ctx.params.itool,
            seed=ctx.params.seed,
            round_=args.round,
        )
        atomic_write_parquet(args.out, res.table)
        atomic_write_json(args.metrics, res.metrics)
        ctx.run.log_metrics(res.metrics)
        ctx.log.info(
            "round %d: %d of %d scored prompts deficient, %d selected",
            args.round,
            res.metrics["deficient"],
            res.metrics["scored"],
            res.metrics["selected"],
        )
        ctx.require(res.metrics["selected"] > 0, "no deficient prompt selected")


if __name__ == "__main__":
    main()
