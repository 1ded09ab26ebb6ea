"""Stage adnt_data: build the offline multi-domain digits benchmark (docs/architecture.md#domain-adaptation).

Thin wrapper: one call to :func:`toolkiln.adapt.experiment.build_benchmark`, then atomic writes of the domains,
their contact sheets, the gap plot and the metrics.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", required=True, help="folder for <domain>.npz + manifest.json")
    ap.add_argument("--sheets", required=True, help="folder for one contact-sheet PNG per domain")
    ap.add_argument("--gap-plot", required=True, help="PNG of the single-source domain-gap matrix")
    ap.add_argument("--metrics", required=True, help="metrics JSON (gap matrix, sizes)")
    args = ap.parse_args(argv)

    from toolkiln.adapt.experiment import build_benchmark, save_domains, write_contact_sheets
    from toolkiln.adapt.report import gap_plot
    from toolkiln.io import atomic_dir, atomic_write_json
    from toolkiln.stage import stage_context

    with stage_context("adnt_data", args.params, sections=("adnt",)) as ctx:
        bench = build_benchmark(ctx.params.adnt)
        with atomic_dir(args.out) as tmp:
            save_domains(bench.domains, tmp)
        with atomic_dir(args.sheets) as tmp:
            sheets = write_contact_sheets(bench.domains, tmp)
        gap_plot(list(bench.domains), bench.gap_matrix, args.gap_plot)
        atomic_write_json(args.metrics, bench.metrics)
        ctx.run.log_metrics({k: v for k, v in bench.metrics.items() if k != "gap"})
        ctx.run.log_metrics({f"gap.{s}.{t}": v for s, row in bench.metrics["gap"].items() for t, v in row.items()})
        ctx.run.log_artifact(args.gap_plot)
        for name in sheets:
            ctx.run.log_artifact(f"{args.sheets}/{name}", "contact_sheets")
        ctx.log.info(
            "domains %s; in-domain %.3f, out-of-domain %.3f",
            list(bench.domains),
            bench.metrics["mean_in_domain"],
            bench.metrics["mean_out_of_domain"],
        )


if __name__ == "__main__":
    main()
