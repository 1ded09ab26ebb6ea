"""Stage adnt_report: results table (markdown), bar plot, pseudo-label plot and verdict metrics (docs/architecture.md#domain-adaptation)."""

from __future__ import annotations

import argparse

import polars as pl

from toolkiln.adapt.experiment import summarise
from toolkiln.adapt.report import bar_plot, markdown_table, pseudo_label_plot, summary_dict, verdicts
from toolkiln.io import atomic_write, atomic_write_json, atomic_write_text
from toolkiln.stage import stage_context


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--results", required=True, help="parquet written by adnt_train")
    ap.add_argument("--table", required=True, help="markdown table out")
    ap.add_argument("--bars", required=True, help="bar plot PNG out")
    ap.add_argument("--pseudo-plot", required=True, help="pseudo-label coverage/precision PNG out")
    ap.add_argument("--avg-plot", required=True, help="CSV: method, avg_acc_pct (a DVC bar plot)")
    ap.add_argument("--metrics", required=True, help="metrics JSON out")
    args = ap.parse_args(argv)

    with stage_context("adnt_report", args.params, sections=("adnt",)) as ctx:
        results = pl.read_parquet(args.results)
        targets = [t for t in ctx.params.adnt.data.domains if t in set(results["target"])]
        summary = summarise(results)
        v = verdicts(summary)
        atomic_write_text(args.table, markdown_table(summary, targets))
        bar_plot(summary, targets, args.bars)
        pseudo_label_plot(results, args.pseudo_plot)
        avg = summary.filter(pl.col("target") == "avg").select(
            "method", (pl.col("mean") * 100).round(2).alias("avg_acc_pct"), (pl.col("std") * 100).round(2).alias("std_pct"))
        atomic_write(args.avg_plot, lambda p: avg.write_csv(p))
        atomic_write_json(args.metrics, {"summary": summary_dict(summary), "verdicts": v})
        ctx.run.log_metrics({"verdicts": v})
        for path in (args.table, args.bars, args.pseudo_plot):
            ctx.run.log_artifact(path)
        ctx.log.info("ADNT avg %.3f; beats every baseline: %s (beyond seed noise: %s); every ablation costs: %s "
                     "(beyond noise: %s)", v.get("adnt_avg", float("nan")), v.get("beats_every_baseline"),
                     v.get("beats_every_baseline_beyond_noise"), v.get("every_ablation_costs"),
                     v.get("every_ablation_costs_beyond_noise"))


if __name__ == "__main__":
    main()
