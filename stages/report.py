"""Stage report: one self-contained HTML page with every plot and table of the run (docs/architecture.md#tracking)."""

from __future__ import annotations

import argparse

from toolkiln.io import atomic_write_json, atomic_write_text
from toolkiln.report import build_report
from toolkiln.stage import stage_context


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--reports", required=True, help="the folder holding one sub-folder per stage")
    ap.add_argument("--out", required=True, help="HTML page out")
    ap.add_argument("--metrics", required=True, help="metrics JSON out")
    args = ap.parse_args(argv)

    with stage_context("report", args.params) as ctx:
        page = build_report(args.reports)
        atomic_write_text(args.out, page.html)
        metrics = {
            "sections": len(page.sections),
            "figures": page.figures,
            "tables": page.tables,
            "not_run": len(page.missing),
        }
        atomic_write_json(args.metrics, {**metrics, "missing": page.missing})
        ctx.run.log_metrics(metrics)
        ctx.run.log_artifact(args.out)
        ctx.log.info(
            "report: %d sections, %d figures, %d tables, %d inputs not run %s",
            len(page.sections),
            page.figures,
            page.tables,
            len(page.missing),
            page.missing,
        )


if __name__ == "__main__":
    main()
