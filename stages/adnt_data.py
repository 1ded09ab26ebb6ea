"""Stage adnt_data: build the offline multi-domain digits benchmark (docs/architecture.md#domain-adaptation)."""

from __future__ import annotations

import argparse

from toolkiln.adapt.digits import contact_sheet
from toolkiln.adapt.experiment import gap_table, prepare_benchmark, save_domains
from toolkiln.adapt.report import gap_plot
from toolkiln.io import atomic_dir, atomic_write, atomic_write_json
from toolkiln.stage import stage_context


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", required=True, help="folder for <domain>.npz + manifest.json")
    ap.add_argument("--sheets", required=True, help="folder for one contact-sheet PNG per domain")
    ap.add_argument("--gap-plot", required=True, help="PNG of the single-source domain-gap matrix")
    ap.add_argument("--metrics", required=True, help="metrics JSON (gap matrix, sizes)")
    args = ap.parse_args(argv)

    with stage_context("adnt_data", args.params, sections=("adnt",)) as ctx:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        cfg = ctx.params.adnt
        domains, G = prepare_benchmark(cfg)
        names = list(domains)
        with atomic_dir(args.out) as tmp:
            save_domains(domains, tmp)
        with atomic_dir(args.sheets) as tmp:
            for n, d in domains.items():
                plt.imsave(tmp / f"{n}.png", contact_sheet(d))
        atomic_write(args.gap_plot, lambda p: gap_plot(names, G, p))
        gap = gap_table(names, G)
        metrics = {"n_domains": len(names), "n_train": cfg.data.n_train, "n_test": cfg.data.n_test,
                   "gap": gap, "mean_in_domain": float(G.diagonal().mean()),
                   "mean_out_of_domain": float(sum(gap[n]["out_of_domain_mean"] for n in names) / len(names))}
        atomic_write_json(args.metrics, metrics)
        ctx.run.log_metrics({k: v for k, v in metrics.items() if k != "gap"})
        ctx.run.log_metrics({f"gap.{s}.{t}": v for s, row in gap.items() for t, v in row.items()})
        ctx.run.log_artifact(args.gap_plot)
        for n in names:
            ctx.run.log_artifact(f"{args.sheets}/{n}.png", "contact_sheets")
        ctx.log.info("domains %s; in-domain %.3f, out-of-domain %.3f", names, metrics["mean_in_domain"],
                     metrics["mean_out_of_domain"])


if __name__ == "__main__":
    main()
