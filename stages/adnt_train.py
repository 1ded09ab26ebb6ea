"""Stage adnt_train: ADNT, ablations and baselines on every leave-one-domain-out task and seed (docs/architecture.md#domain-adaptation)."""

from __future__ import annotations

import argparse
import time

from toolkiln.adapt.experiment import load_domains, run_protocol, summarise
from toolkiln.adapt.report import summary_dict
from toolkiln.adapt.tracking import log_method_runs
from toolkiln.io import atomic_write_json, atomic_write_parquet
from toolkiln.stage import stage_context


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--domains", required=True, help="folder written by adnt_data")
    ap.add_argument("--out", required=True, help="results parquet: one row per (method, target, seed)")
    ap.add_argument("--metrics", required=True, help="metrics JSON")
    args = ap.parse_args(argv)

    with stage_context("adnt_train", args.params, sections=("adnt",)) as ctx:
        cfg = ctx.params.adnt
        domains = load_domains(args.domains, cfg.data.domains)
        t0 = time.perf_counter()
        workers = ctx.params.runtime.workers
        rt = ctx.params.runtime
        results = run_protocol(domains, cfg, workers=workers, executor=rt.executor, domains_dir=args.domains,
                               dask_address=rt.dask.address)
        wall = time.perf_counter() - t0
        atomic_write_parquet(args.out, results)
        summary = summarise(results)
        s = summary_dict(summary)
        metrics = {"n_runs": results.height, "wall_seconds": wall, "run_seconds_total": float(results["seconds"].sum()),
                   # one torch thread per worker: CPU seconds / workers = the wall time on idle cores
                   "cpu_seconds_total": float(results["cpu_seconds"].sum()),
                   "projected_idle_wall_seconds": float(results["cpu_seconds"].sum()) / workers,
                   "workers": workers,
                   "avg_acc": {m: v["avg"]["mean"] for m, v in s.items()}}
        atomic_write_json(args.metrics, metrics)
        ctx.run.log_metrics(metrics)
        n = log_method_runs(ctx.run, summary, results)
        ctx.log.info("%d runs in %.0fs (%d workers); %d MLflow method runs", results.height, wall,
                     workers, n)


if __name__ == "__main__":
    main()
