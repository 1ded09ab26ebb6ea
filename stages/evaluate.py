"""DVC stage ``evaluate``: one checkpoint on the synthetic test split and BFCL (README "Evaluation"; docs/architecture.md#evaluation).

Thin wrapper: paths from argv, params from ``params.yaml`` (section ``evaluate``),
one call to :func:`toolkiln.evaluate.harness.run_evaluation`, atomic writes.
The same script serves every checkpoint (warm-up, each preference round):
``--tag`` names the evaluation; ``--stage`` (default ``eval_<tag>``; a round's is ``eval_round@<k>``), the DVC stage name, is its MLflow run's stage tag.

Writes into ``--out-dir``: ``dialogs.parquet`` / ``bfcl.parquet`` (one row per
sample: output, parsed calls, verdict, error type, partial credit),
``errors.csv`` (error-type counts per dialog type / BFCL category, for ``dvc plots``)
and ``accuracy.png``; the metrics JSON goes to ``--metrics``.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--checkpoint", required=True, help="HF model folder (config.json, weights, tokenizer + chat template)")
    ap.add_argument("--dialogs", default=None, help="test dialogs parquet (schema.DIALOG_SCHEMA); omit for BFCL only")
    ap.add_argument("--out-dir", required=True, help="folder for per-sample tables, errors.csv and the plot")
    ap.add_argument("--metrics", required=True, help="metrics JSON (a DVC metrics file)")
    ap.add_argument("--tag", required=True, help="name of this evaluation, e.g. warmup or round_1")
    ap.add_argument(
        "--stage", default=None, help="the DVC stage's name (default eval_<tag>; a round's is eval_round@<k>)"
    )
    args = ap.parse_args(argv)

    from pathlib import Path

    import polars as pl

    from toolkiln.evaluate.harness import run_evaluation
    from toolkiln.evaluate.report import error_table, plot_accuracy
    from toolkiln.io import atomic_write_json, atomic_write_parquet, atomic_write_text
    from toolkiln.stage import stage_context

    with stage_context(args.stage or f"eval_{args.tag}", args.params, sections=("evaluate",)) as ctx:
        ctx.run.set_tags({"toolkiln.eval_tag": args.tag, "toolkiln.checkpoint": args.checkpoint})
        dialogs = pl.read_parquet(args.dialogs) if args.dialogs else None
        report = run_evaluation(args.checkpoint, dialogs, ctx.params.evaluate, seed=ctx.params.seed)
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, df in (("dialogs", report.dialogs), ("bfcl", report.bfcl)):
            if df is not None:
                atomic_write_parquet(out / f"{name}.parquet", df)
        atomic_write_text(out / "errors.csv", error_table(report.metrics))
        plot_accuracy(report.metrics, out / "accuracy.png", title=f"eval_{args.tag}")
        metrics = {"tag": args.tag, **report.metrics}
        atomic_write_json(args.metrics, metrics)
        ctx.run.log_metrics(report.metrics)
        for path in (out / "errors.csv", out / "accuracy.png", Path(args.metrics)):
            ctx.run.log_artifact(path)
        for part, m in report.metrics.items():
            ctx.log.info("%s: accuracy %.3f over %d samples (%s)", part, m["accuracy"], m["n"],
                         ", ".join(f"{g} {v['accuracy']:.2f}" for g, v in m["by_group"].items()))


if __name__ == "__main__":
    main()
