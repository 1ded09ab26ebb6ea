"""DVC stage warmup_sft: easy-to-hard warm-up SFT of the policy with TRL (iTool arXiv 2501.09766 §3.1).

Launch-safe: under ``accelerate launch`` every process trains its shard of each batch, and only the
main process logs to MLflow and writes the checkpoint, metrics and plots.
"""

from __future__ import annotations

import argparse

import polars as pl

from toolkiln.io import atomic_dir, atomic_write, atomic_write_json, atomic_write_text
from toolkiln.policy.model import save_policy
from toolkiln.policy.plots import curves_csv, plot_loss
from toolkiln.policy.warmup import warmup_sft
from toolkiln.stage import stage_context, world_size


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--train", required=True, help="training dialogs (data/train.parquet)")
    ap.add_argument("--difficulty", required=True, help="difficulty buckets (data/difficulty.parquet)")
    ap.add_argument("--out", required=True, help="checkpoint folder (checkpoints/warmup)")
    ap.add_argument("--metrics", required=True, help="metrics JSON (DVC metrics)")
    ap.add_argument("--curves", required=True, help="loss curves CSV (DVC plots)")
    ap.add_argument("--plot", required=True, help="loss curves PNG")
    args = ap.parse_args(argv)
    with stage_context("warmup_sft", args.params, sections=("policy", "sft")) as ctx:
        res = warmup_sft(pl.read_parquet(args.train), pl.read_parquet(args.difficulty), ctx.params.policy,
                         ctx.params.sft, seed=ctx.params.seed, resume_dir=ctx.params.runtime.resume_dir,
                         checkpoint_steps=ctx.params.runtime.checkpoint_steps)
        if not ctx.is_main:
            return  # the main process holds the same trained weights and writes them once
        res.metrics["world_size"] = world_size()
        with atomic_dir(args.out) as tmp:
            save_policy(res.model, res.tokenizer, tmp, ctx.params.policy)
        atomic_write_json(args.metrics, res.metrics)
        atomic_write_text(args.curves, curves_csv(res.curves))
        atomic_write(args.plot, lambda p: plot_loss(res.curves, p, title=f"warm-up SFT ({res.metrics['order']})"))
        for row in res.curves:
            ctx.run.log_metrics({k: v for k, v in row.items() if k != "step"}, step=row["step"])
        for row in res.pretrain_curves:
            ctx.run.log_metrics({f"pretrain_{k}": v for k, v in row.items() if k != "step"}, step=row["step"])
        ctx.run.log_metrics(res.metrics)
        ctx.run.log_artifact(args.plot)
        ctx.log.info("train loss %.3f over %d steps (%.0f tokens/s)", res.metrics["train_loss_mean"],
                     res.metrics["train_steps"], res.metrics["train_tokens_per_s"])


if __name__ == "__main__":
    main()
