"""DVC stage preference_opt_round@<k>: SimPO/DPO on the round's pairs, LoRA merged into checkpoints/round_<k> (iTool arXiv 2501.09766 §3.3)."""

from __future__ import annotations

import argparse

import polars as pl

from toolkiln.io import atomic_dir, atomic_write_json, atomic_write_text
from toolkiln.itool.preference import curves_csv, preference_round, save_round
from toolkiln.stage import stage_context


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--round", type=int, required=True, help="round number k (1, 2, ...)")
    ap.add_argument("--pairs", required=True, help="mcts_pairs output (data/round_<k>/pairs.parquet)")
    ap.add_argument("--checkpoint", required=True, help="the round's input policy")
    ap.add_argument("--out", required=True, help="the round's checkpoint folder (checkpoints/round_<k>)")
    ap.add_argument("--metrics", required=True, help="metrics JSON (DVC metrics)")
    ap.add_argument("--curves", required=True, help="loss / reward-margin curves CSV (DVC plots)")
    args = ap.parse_args(argv)
    with stage_context(f"preference_opt_round@{args.round}", args.params, sections=("policy", "itool")) as ctx:
        ctx.run.set_tags({"toolkiln.round": args.round, "toolkiln.checkpoint": args.checkpoint})
        res, tok = preference_round(
            pl.read_parquet(args.pairs),
            args.checkpoint,
            ctx.params.policy,
            ctx.params.itool.preference,
            seed=ctx.params.seed,
            round_=args.round,
            allow_empty=ctx.params.itool.pairs.min_pairs == 0,
        )
        with atomic_dir(args.out) as tmp:
            save_round(res.model, tok, tmp, args.checkpoint)
        atomic_write_json(args.metrics, res.metrics)
        atomic_write_text(args.curves, curves_csv(res.curves))
        for row in res.curves:
            ctx.run.log_metrics({k: v for k, v in row.items() if k != "step"}, step=row["step"])
        ctx.run.log_metrics(res.metrics)
        if not res.metrics["updated"]:
            ctx.log.warning(
                "round %d: no preference pairs; the input policy is carried over unchanged (itool.pairs.min_pairs: 0)",
                args.round,
            )
        else:
            ctx.log.info(
                "round %d: %s on %d pairs, %d steps, loss %.3f",
                args.round,
                res.metrics["algorithm"],
                res.metrics["pairs"],
                res.metrics["train_steps"],
                res.metrics["train_loss_mean"],
            )


if __name__ == "__main__":
    main()
