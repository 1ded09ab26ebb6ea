"""DVC stage ``generate_dialogs``: API pool -> dialogs + rejects (ToolACE arXiv 2409.00920 §3.2).

Thin wrapper: paths from argv, params from ``params.yaml`` (sections ``dialogs``, ``llm``),
one call to :func:`toolkiln.dialogs.generate.generate_dialogs`, atomic writes, metrics to
DVC and MLflow. ``llm.backend: simulator`` uses the programmatic agents; any other backend
plays all three agents with the LLM (raw traffic in ``--trace``).
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--pool", required=True, help="input API pool (data/api_pool.parquet)")
    ap.add_argument("--dialogs", required=True, help="output dialogs (toolkiln.schema.DIALOG_SCHEMA)")
    ap.add_argument("--rejects", required=True, help="output: rejected attempts with phase, agent and reason")
    ap.add_argument("--trace", required=True, help="raw LLM traffic (JSONL; empty for the simulator)")
    ap.add_argument("--metrics", required=True, help="DVC metrics JSON")
    ap.add_argument("--types-plot", required=True, help="dialogs per type (CSV for DVC plots)")
    ap.add_argument("--plot", required=True, help="type mix, rejections and levels (PNG)")
    args = ap.parse_args(argv)

    import polars as pl

    from toolkiln.dialogs.complexity import make_scorer
    from toolkiln.dialogs.generate import generate_dialogs, simulator_agents
    from toolkiln.dialogs.llm_agents import llm_agents
    from toolkiln.dialogs.pool import APIPool
    from toolkiln.dialogs.report import mlflow_metrics, plot_dialogs, type_table
    from toolkiln.io import atomic_write, atomic_write_json, atomic_write_parquet, atomic_write_text
    from toolkiln.llm import check_outage, make_backend
    from toolkiln.stage import stage_context

    with stage_context("generate_dialogs", args.params, sections=("dialogs", "llm")) as ctx:
        p = ctx.params
        try:
            pool = APIPool.from_frame(pl.read_parquet(args.pool))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"generate_dialogs: cannot use the API pool {args.pool}: {exc}") from None
        ctx.log.info("pool: %d APIs, %d domains, %d dependency slots", len(pool), len(pool.domains), len(pool.link_slots))
        atomic_write_text(args.trace, "")
        backend = make_backend(p.llm, p.runtime.llm, trace_path=args.trace)
        agents = simulator_agents(p.dialogs) if backend is None else llm_agents(p.dialogs.voting, p.llm)
        result = generate_dialogs(pool, p.dialogs, seed=p.seed, agents=agents, backend=backend,
                                  scorer=make_scorer(p.dialogs.complexity), runtime=p.runtime)
        metrics = {"pool_apis": len(pool), **result.metrics}
        atomic_write_parquet(args.dialogs, result.dialogs)
        atomic_write_parquet(args.rejects, result.rejects)
        atomic_write_json(args.metrics, metrics)
        atomic_write(args.types_plot, lambda f: type_table(metrics).write_csv(f))
        plot_dialogs(metrics, args.plot)
        ctx.run.log_metrics(mlflow_metrics(metrics))
        ctx.run.log_artifact(args.plot)
        ctx.run.log_artifact(args.metrics)
        ctx.log.info("dialogs: %d (%d rejected attempts, %.0f dialogs/s) -> %s", result.dialogs.height,
                     result.rejects.height, metrics["dialogs_per_s"] or 0, args.dialogs)
        check_outage(backend, p.runtime.llm.max_failure_rate, "generate_dialogs")
        ctx.require(result.dialogs.height >= p.dialogs.n_dialogs,
                    f"{result.dialogs.height} dialogs kept, below dialogs.n_dialogs = {p.dialogs.n_dialogs} after "
                    f"{metrics['n_attempts']} attempts (top rejection reasons: "
                    f"{dict(list(metrics['reject_reasons'].items())[:3])}); see {args.rejects}, or raise "
                    "dialogs.max_attempts_factor")


if __name__ == "__main__":
    main()
