"""MLflow child runs of the ADNT benchmark: one per method under the adnt_train stage run (docs/architecture.md#tracking)."""

from __future__ import annotations

import polars as pl


def log_method_runs(run, summary: pl.DataFrame, results: pl.DataFrame) -> int:
    """Log a nested MLflow run per method (tags: method; metrics: ``acc.<target>.mean/std``, ``acc.avg.*``,
    ``seconds``) under the active stage run; returns how many were logged (0 when tracking is off)."""
    if not getattr(run, "active", False):
        return 0
    import mlflow

    parent = mlflow.active_run()
    if parent is None:
        raise RuntimeError("log_method_runs: no active stage run to nest under")
    exp_id = parent.info.experiment_id  # start_run would otherwise file children under the default experiment
    n = 0
    for method in sorted(set(summary["method"])):
        rows = summary.filter(pl.col("method") == method)
        metrics = {}
        for r in rows.iter_rows(named=True):
            metrics[f"acc.{r['target']}.mean"] = r["mean"]
            metrics[f"acc.{r['target']}.std"] = r["std"] or 0.0
        metrics["seconds_per_run"] = float(results.filter(pl.col("method") == method)["seconds"].mean())
        with mlflow.start_run(experiment_id=exp_id, run_name=f"adnt/{method}", nested=True,
                              parent_run_id=parent.info.run_id,
                              tags={"toolkiln.kind": "method", "toolkiln.method": method, **_pipeline_tag(parent)}):
            mlflow.log_metrics(metrics)
        n += 1
    return n


def _pipeline_tag(parent) -> dict:
    from toolkiln.tracking import PIPELINE_TAG

    pid = parent.data.tags.get(PIPELINE_TAG)
    return {PIPELINE_TAG: pid} if pid else {}
