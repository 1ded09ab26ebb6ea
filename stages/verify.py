"""DVC stage ``verify``: dialogs -> verified dialogs + rejects (ToolACE §3.3 dual-layer verification).

Thin wrapper: paths from argv, params from ``params.yaml`` (sections ``verify``, ``llm``),
one call to :func:`toolkiln.verify.pipeline.verify_dialogs`, the error-injection
evaluation, the GX suites, atomic writes, metrics to DVC and MLflow.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--dialogs", required=True, help="input dialogs (data/dialogs.parquet)")
    ap.add_argument("--apis", help="the API pool (data/api_pool.parquet): its APIs passed definition clarity in "
                    "synthesize_apis, so offered tools equal to their pool entry are not re-validated")
    ap.add_argument("--expectations", required=True, help="folder with dialogs_rules.json, dialogs_model.json, verified_dialogs.json")
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
    from toolkiln.verify.evaluate import evaluate_injection
    from toolkiln.verify.model import make_judge
    from toolkiln.verify.pipeline import run_suites, verify_dialogs
    from toolkiln.verify.report import check_table, plot_pass_rates, plot_recall, summary_metrics
    from toolkiln.verify.rules import RuleCaches

    with stage_context("verify", args.params, sections=("verify", "llm")) as ctx:
        cfg = ctx.params.verify
        dialogs = pl.read_parquet(args.dialogs)
        atomic_write_text(args.trace, "")
        judge = make_judge(cfg.model, ctx.params.llm, ctx.params.runtime.llm, trace_path=args.trace) if cfg.model.enabled else None
        caches = RuleCaches()
        if args.apis:
            ctx.log.info("trusting definition clarity of %d pool APIs from %s", caches.trust_pool(pl.read_parquet(args.apis)),
                         args.apis)
        result = verify_dialogs(dialogs, cfg, judge, caches=caches)
        ctx.log.info("verified %d of %d dialogs (rule pass %.3f, final %.3f)%s", result.verified.height,
                     dialogs.height, result.metrics["pass_rate"]["rules"] or 0, result.metrics["pass_rate"]["final"] or 0,
                     "" if cfg.enabled else " [verify.enabled=false: every row kept]")
        injection = None
        if cfg.injection.enabled and dialogs.height:
            injection = evaluate_injection(dialogs, cfg, judge, seed=ctx.params.seed, caches=caches)
            atomic_write_json(args.injection, injection)
            atomic_write(args.recall_plot, lambda p: plot_recall(injection, p))
            ctx.run.log_artifact(args.recall_plot)
        else:
            atomic_write_json(args.injection, {"enabled": False})
            atomic_write(args.recall_plot, lambda p: plot_recall(None, p))
        gx = run_suites(result, cfg, args.expectations, args.data_docs)
        metrics = summary_metrics(result.metrics, injection, gx)

        atomic_write_parquet(args.verified, result.verified)
        atomic_write_parquet(args.rejects, result.rejects)
        atomic_write_json(args.gx_results, gx)
        atomic_write_json(args.metrics, metrics)
        atomic_write(args.checks_plot, lambda p: check_table(metrics).write_csv(p))
        atomic_write(args.plot, lambda p: plot_pass_rates(metrics, p))
        ctx.run.log_metrics({k: metrics[k] for k in ("n_dialogs", "n_verified", "n_rejected", "pass_rate", "checks",
                                                     "families")})
        if injection is not None:
            ctx.run.log_metrics({"injection": {"false_reject": injection["false_reject"],
                                               "recall_rules": {k: v.get("recall_rules") for k, v in injection["kinds"].items()},
                                               "recall_model": {k: v.get("recall_model") for k, v in injection["kinds"].items()}}})
        for path in (args.metrics, args.plot, args.gx_results, args.injection):
            ctx.run.log_artifact(path)
        ctx.run.log_artifacts(args.data_docs, "data_docs")
        check_outage(getattr(judge, "backend", None), ctx.params.runtime.llm.max_failure_rate, "verify")
        ctx.require(result.verified.height > 0 or dialogs.height == 0,
                    f"no dialog of {dialogs.height} passed verification (pass rates {result.metrics['pass_rate']}); "
                    f"see {args.rejects}")
        failed = [name for name, r in gx.items() if not r["success"]]
        if failed:
            ctx.log.warning("GX suites failed: %s (see %s)", failed, args.data_docs)
            if cfg.gx.fail_on_suite_failure:
                raise SystemExit(f"verify: GX suites {failed} failed and verify.gx.fail_on_suite_failure is true")


if __name__ == "__main__":
    main()
