"""DVC stage ``synthesize_apis``: API context tree -> API pool (ToolACE §3.1).

Thin wrapper: paths from argv, params from ``params.yaml`` (sections ``synth``, ``llm``),
one call to :func:`toolkiln.synth.pool.synthesize_pool`, atomic writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--tree", required=True, help="folder of per-domain YAML files")
    ap.add_argument("--suite", required=True, help="GX suite JSON (definition clarity)")
    ap.add_argument("--pool", required=True)
    ap.add_argument("--rejects", required=True)
    ap.add_argument("--trace", required=True, help="raw LLM traffic (JSONL; empty for the simulator)")
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--plot", required=True)
    ap.add_argument("--data-docs", required=True)
    args = ap.parse_args(argv)

    from toolkiln.io import atomic_write_json, atomic_write_parquet, atomic_write_text
    from toolkiln.llm import make_backend
    from toolkiln.stage import stage_context
    from toolkiln.synth.pool import synthesize_pool
    from toolkiln.synth.report import plot_diversity
    from toolkiln.synth.synthesizer import LLMSynthesizer, SimulatorSynthesizer
    from toolkiln.synth.tree import load_tree
    from toolkiln.synth.validate import validate_pool_frames

    with stage_context("synthesize_apis", args.params, sections=("synth", "llm")) as ctx:
        p = ctx.params
        tree = load_tree(args.tree)
        ctx.log.info("context tree: %s", tree.stats())
        Path(args.trace).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.trace, "")
        backend = make_backend(p.llm, trace_path=args.trace)
        synth = SimulatorSynthesizer() if backend is None else LLMSynthesizer(
            backend, model=p.llm.model, temperature=p.llm.temperature, max_tokens=p.llm.max_tokens)
        result = synthesize_pool(tree, p.synth, synth, seed=p.seed)
        gx = validate_pool_frames({"candidates": result.checks, "pool": result.checks.filter("ok")}, args.suite,
                                  data_docs_dir=args.data_docs)
        if not gx["pool"]["success"]:
            raise SystemExit(f"GX suite {args.suite} fails on the filtered pool: {gx['pool']}")
        metrics = {"tree": tree.stats(), **result.metrics, "gx": {k: v["unexpected"] for k, v in gx.items()}}
        atomic_write_parquet(args.pool, result.pool)
        atomic_write_parquet(args.rejects, result.rejects)
        atomic_write_json(args.metrics, metrics)
        plot_diversity(metrics, args.plot)
        ctx.run.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        ctx.run.log_metrics({"apis_per_s": metrics["apis_per_s"], "timings": metrics["timings"], "tree": metrics["tree"]})
        if "embedding_spread" in metrics:
            ctx.run.log_metrics({"embedding_spread": metrics["embedding_spread"]})
        ctx.run.log_artifact(args.plot)
        ctx.run.log_artifact(args.metrics)
        ctx.run.log_artifacts(args.data_docs, "data_docs")
        ctx.log.info("pool: %d APIs (%d rejected) -> %s", result.pool.height, result.rejects.height, args.pool)


if __name__ == "__main__":
    main()
