"""DVC stage mcts_pairs_round@<k>: step-level MCTS on the deficient prompts -> preference pairs (iTool arXiv 2501.09766 §3.2)."""

from __future__ import annotations

import argparse

import polars as pl

from toolkiln.io import atomic_write_json, atomic_write_parquet
from toolkiln.itool.rounds import mcts_pairs
from toolkiln.stage import stage_context


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--round", type=int, required=True, help="round number k (1, 2, ...)")
    ap.add_argument("--train", required=True, help="training dialogs (data/train.parquet)")
    ap.add_argument(
        "--deficiencies", required=True, help="find_deficiencies output (data/round_<k>/deficiencies.parquet)"
    )
    ap.add_argument("--checkpoint", required=True, help="the round's input policy")
    ap.add_argument("--out", required=True, help="pairs table (data/round_<k>/pairs.parquet)")
    ap.add_argument("--metrics", required=True, help="metrics JSON (DVC metrics: pair statistics, search cost)")
    args = ap.parse_args(argv)
    with stage_context(f"mcts_pairs_round@{args.round}", args.params, sections=("policy", "itool")) as ctx:
        ctx.run.set_tags({"toolkiln.round": args.round, "toolkiln.checkpoint": args.checkpoint})
        res = mcts_pairs(
            pl.read_parquet(args.train),
            pl.read_parquet(args.deficiencies),
            args.checkpoint,
            ctx.params.policy,
            ctx.params.itool,
            seed=ctx.params.seed,
            round_=args.round,
            runtime=ctx.params.runtime,
        )
        atomic_write_parquet(args.out, res.pairs)
        atomic_write_json(args.metrics, res.metrics)
        ctx.run.log_metrics(res.metrics)
        ctx.log.info(
            "round %d: %d pairs from %d prompts (%.1f s, %d forward passes)",
            args.round,
            res.metrics["pairs"],
            res.metrics["prompts_searched"],
            res.metrics["seconds"],
            res.metrics["forward_passes"],
        )
        need = ctx.params.itool.pairs.min_pairs
        ctx.require(
            res.metrics["pairs"] >= need,
            f"the search kept {res.metrics['pairs']} preference pairs, fewer than itool.pairs.min_pairs={need} "
            "(see the metrics: value gaps, filters)",
        )
        if res.metrics["pairs"] == 0:
            ctx.log.warning(
                "round %d: the search kept no preference pair; allowed by itool.pairs.min_pairs: 0", args.round
            )


if __name__ == "__main__":
    main()
