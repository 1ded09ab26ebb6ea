"""DVC stage ``synthesize_apis``: API context tree -> API pool (ToolACE §3.1).

Thin wrapper: paths from argv, params from ``params.yaml`` (sections ``synth``, ``llm``),
one call to :func:`toolkiln.synth.pool.run_synthesis`, atomic writes.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--tree", required=True, help="folder of per-domain YAML files")
    ap.add_argument("--suite", required=True, help="GX suite JSON (definition clarity)")
    ap.add_argument("--pool", required=True)
    ap.add_argument("--rejects", required=True)
    ap.add_argument(
        "--embeddings",
        required=True,
        help="the pool's MiniLM embeddings (name, text, embedding); empty when synth.dedup.method embeds nothing",
    )
    ap.add_argument("--trace", required=True, help="raw LLM traffic (JSONL; empty for the simulator)")
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--plot", required=True)
    ap.add_argument("--data-docs", required=True)
    args = ap.parse_args(argv)

    from toolkiln.io import atomic_write_json, atomic_write_parquet, atomic_write_text
    from toolkiln.stage import stage_context
    from toolkiln.synth.pool import PoolSuiteError, run_synthesis
    from toolkiln.synth.report import plot_diversity

    with stage_context("synthesize_apis", args.params, sections=("synth", "llm")) as ctx:
        p = ctx.params
        atomic_write_text(args.trace, "")  # the backend appends to it; the simulator leaves it empty
        try:
            result = run_synthesis(
                args.tree,
                p.synth,
                p.llm,
                seed=p.seed,
                suite=args.suite,
                data_docs_dir=args.data_docs,
                trace_path=args.trace,
                runtime=p.runtime.llm,
                max_failure_rate=p.runtime.llm.max_failure_rate,
                shards_runtime=p.runtime,
            )
        except PoolSuiteError as exc:
            raise SystemExit(str(exc)) from None
        metrics = result.metrics
        atomic_write_parquet(args.pool, result.pool)
        atomic_write_parquet(args.rejects, result.rejects)
        atomic_write_parquet(args.embeddings, result.embeddings)
        atomic_write_json(args.metrics, metrics)
        plot_diversity(metrics, args.plot)
        ctx.run.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        ctx.run.log_metrics(
            {k: metrics[k] for k in ("apis_per_s", "timings", "tree", "embedding_spread") if k in metrics}
        )
        for path in (args.plot, args.metrics):
            ctx.run.log_artifact(path)
        ctx.run.log_artifacts(args.data_docs, "data_docs")
        ctx.log.info("pool: %d APIs (%d rejected) -> %s", result.pool.height, result.rejects.height, args.pool)
        ctx.require(
            result.pool.height >= p.synth.n_apis,
            f"the pool has {result.pool.height} unique valid APIs, below synth.n_apis = {p.synth.n_apis} "
            f"({metrics['candidates']} candidates, {metrics['rejected']} rejected: "
            f"{dict(list(metrics['reject_reasons'].items())[:3])}); raise synth.oversample",
        )


if __name__ == "__main__":
    main()
