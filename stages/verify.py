"""DVC stage ``verify``: dialogs -> verified dialogs + rejects (ToolACE §3.3 dual-layer verification).

Thin wrapper: paths from argv, params from ``params.yaml`` (sections ``verify``, ``llm``),
one call to :func:`toolkiln.verify.pipeline.run_verification` (both layers, the
error-injection study, the GX suites, seconds per phase), atomic writes, metrics
to DVC and MLflow.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--dialogs", required=True, help="input dialogs (data/dialogs.parquet)")
    ap.add_argument("--apis", help="the API pool (data/api_pool.parquet): its APIs passed definition clarity in "
                    "synthesize_apis, so offered tools equal to their pool entry are not re-validated")
    ap.add_argument("--api-embeddings", help="the pool's MiniLM embeddings (data/api_embeddings.parquet): an "
                    "embedding judge reuses them instead of embedding every offered API again")
    ap.add_argument("--static-encoder", help="the distilled static encoder (checkpoints/static_encoder, made by "
                    "distill_encoder): the embedded judge's encoder when verify.model.encoder is static")
    ap.add_argument("--expectations", required=True, help="folder of the suites: dialogs_rules.json, dialog_turns.json, dialog_calls.json, "
                    "dialog_arg_formats.json (the rule layer), dialogs_model.json, verified_dialogs.json")
    ap.add_argument("--verified", required=True, help="output: dialogs that pass (data/verified.parquet)")
    ap.add_argument("--rejects", required=True, help="output: rejected dialogs with failing checks and reasons")
    ap.add_argument("--trace", required=True, help="raw LLM-judge traffic (JSONL; empty for the embedded judge)")
    ap.add_argument("--metrics", required=True, help="DVC metrics JSON")
    ap.add_argument("--injection", required=True, help="error-injection evaluation, full detail (JSON)")
    ap.add_argument("--gx-results", required=True, help="GX validation results (JSON)")
    ap.add_argument("--checks-plot", required=True, help="pass rate per check (CSV for DVC plots)")
    ap.add_argument("--plot", required=True, help="pass rates per layer and check beside ToolACE's (PNG)")
    ap.add_argument("--recall-plot", required=True, help="recall per injected error kind (PNG)")
    ap.add_argument("--data-docs", required=True, help="GX data docs folder (HTML)")
    args = ap.parse_args(argv)

    import polars as pl

    from toolkiln.io import atomic_write, atomic_write_json, atomic_write_parquet, atomic_write_text
    from toolkiln.llm import check_outage
    from toolkiln.stage import stage_context
    from toolkiln.verify.model import make_judge
    from toolkiln.verify.pipeline import run_verification
    from toolkiln.verify.report import check_table, mlflow_metrics, plot_pass_rates, plot_recall

    with stage_context("verify", args.params, sections=("verify", "llm")) as ctx:
        cfg = ctx.params.verify
        atomic_write_text(args.trace, "")
        judge = make_judge(cfg.model, ctx.params.llm, ctx.params.runtime.llm, trace_path=args.trace,
                           static_encoder=args.static_encoder) if cfg.model.enabled else None
        v = run_verification(pl.read_parquet(args.dialogs), cfg, judge, seed=ctx.params.seed,
                             expectations_dir=args.expectations, data_docs_dir=args.data_docs,
                             pool=pl.read_parquet(args.apis) if args.apis else None,
                             api_embeddings=pl.read_parquet(args.api_embeddings) if args.api_embeddings else None,
                             log=ctx.log, runtime=ctx.params.runtime)

        atomic_write_parquet(args.verified, v.result.verified)
        atomic_write_parquet(args.rejects, v.result.rejects)
        atomic_write_json(args.injection, v.injection if v.injection is not None else {"enabled": False})
        atomic_write_json(args.gx_results, v.gx)
        atomic_write_json(args.metrics, v.metrics)
        atomic_write(args.checks_plot, lambda p: check_table(v.metrics).write_csv(p))
        atomic_write(args.plot, lambda p: plot_pass_rates(v.metrics, p))
        atomic_write(args.recall_plot, lambda p: plot_recall(v.injection, p))
        ctx.run.log_metrics(mlflow_metrics(v.metrics))
        for path in (args.metrics, args.plot, args.recall_plot, args.gx_results, args.injection):
            ctx.run.log_artifact(path)
        ctx.run.log_artifacts(args.data_docs, "data_docs")
        check_outage(getattr(judge, "backend", None), ctx.params.runtime.llm.max_failure_rate, "verify")
        ctx.require(v.result.verified.height > 0 or v.metrics['n_dialogs'] == 0,
                    f"no dialog of {v.metrics['n_dialogs']} passed verification (pass rates {v.metrics['pass_rate']}); "
                    f"see {args.rejects}")
        failed = [name for name, r in v.gx.items() if not r["success"]]
        if failed:
            ctx.log.warning("GX suites failed: %s (see %s)", failed, args.data_docs)
            if cfg.gx.fail_on_suite_failure:
                raise SystemExit(f"verify: GX suites {failed} failed and verify.gx.fail_on_suite_failure is true")


if __name__ == "__main__":
    main()
