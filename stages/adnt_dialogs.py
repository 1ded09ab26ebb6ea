"""Stage adnt_dialogs: ADNT vs source-only for a dialog-verification classifier moved to a new API domain
(ADNT arXiv 2208.02947 on the error-injection labels of verification; docs/architecture.md#domain-adaptation).

Thin wrapper: one call to :func:`toolkiln.adapt.dialogs.dialog_adaptation_report`, atomic writes.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--dialogs", required=True, help="clean dialogs parquet (toolkiln.schema DIALOG_SCHEMA)")
    ap.add_argument("--out", required=True, help="results parquet: one row per (method, target domain, seed)")
    ap.add_argument("--table", required=True, help="markdown table out")
    ap.add_argument("--metrics", required=True, help="metrics JSON out")
    args = ap.parse_args(argv)

    import polars as pl

    from toolkiln.adapt.dialogs import dialog_adaptation_report
    from toolkiln.io import atomic_write_json, atomic_write_parquet, atomic_write_text
    from toolkiln.stage import stage_context

    with stage_context("adnt_dialogs", args.params, sections=("adnt",)) as ctx:
        report = dialog_adaptation_report(pl.read_parquet(args.dialogs), ctx.params.adnt)
        atomic_write_parquet(args.out, report.results)
        atomic_write_text(args.table, report.table)
        atomic_write_json(args.metrics, report.metrics)
        if "skipped" in report.metrics:
            return
        s = report.metrics["summary"]
        ctx.run.log_metrics(
            {
                "avg_acc": {m: v["avg"]["mean"] for m, v in s.items()},
                "adnt_minus_source_only": report.metrics["adnt_minus_source_only"] or 0.0,
            }
        )
        ctx.run.log_artifact(args.table)
        ctx.log.info("dialog adaptation: %s", {m: round(v["avg"]["mean"], 3) for m, v in s.items()})


if __name__ == "__main__":
    main()
