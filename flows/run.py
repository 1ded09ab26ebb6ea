"""Prefect flow ``toolkiln-pipeline``: the dvc.yaml DAG as Prefect tasks (docs/architecture.md#tracking).

    python -m flows.run                      # whole DAG (DVC skips fresh stages)
    python -m flows.run --target warmup_sft  # a stage and everything upstream of it

Each task shells out to ``dvc repro --single-item <stage>`` with retries, streaming its
output into the Prefect log line by line while it runs; independent stages of one
topological generation are submitted together. A stage that ran publishes two Prefect
artifacts: its metrics table and a link to its MLflow run. All stages of one flow run
share ``TOOLKILN_PIPELINE_ID`` (the flow run id), so MLflow groups them under one parent
run. A flow run with nothing changed runs no stage (DVC decides).
"""

from __future__ import annotations

import argparse
import json
import re
import os
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from flows.dag import repro_stage_streaming, stage_metrics_files, stage_order

REPO = Path(__file__).resolve().parents[1]
MLFLOW_UI = "http://127.0.0.1:5000"  # `make ui-mlflow`; override with $TOOLKILN_MLFLOW_UI
MAX_METRIC_ROWS = 300


class StageFailed(RuntimeError):
    pass


def artifact_key(stage: str, what: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only (``eval_round@2`` -> ``eval-round-2``)."""
    return re.sub(r"[^a-z0-9-]", "-", f"{stage}-{what}".lower())


def metric_rows(stage: str, repo_dir: str | Path) -> list[dict]:
    """The stage's DVC metrics files flattened to ``{"metric", "value"}`` rows (numbers and booleans)."""
    rows: list[dict] = []

    def walk(prefix: str, v) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x)
        elif isinstance(v, (int, float, bool)) and not (isinstance(v, float) and v != v):
            rows.append({"metric": prefix, "value": v})

    for f in stage_metrics_files(stage, repo_dir):
        if f.exists():
            try:
                walk("", json.loads(f.read_text()))
            except ValueError:
                continue
    return rows[:MAX_METRIC_ROWS]


def mlflow_run_url(stage: str, repo_dir: str | Path, pipeline: str) -> str | None:
    """The UI address of the stage's MLflow run in this pipeline run, or None (tracking off, no run)."""
    from toolkiln.config import ParamsError, load_params

    try:
        cfg = load_params(Path(repo_dir) / "params.yaml").tracking
    except ParamsError:
        return None
    if not cfg.enabled:
        return None
    uri = cfg.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{(Path(repo_dir) / uri.removeprefix('sqlite:///')).resolve()}"  # relative to the repo
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(cfg.experiment)
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id], max_results=1, order_by=["attributes.start_time DESC"],
                              filter_string=f"tags.`toolkiln.stage` = '{stage}' and tags.`toolkiln.pipeline_id` = '{pipeline}'")
    if not runs:
        return None
    ui = os.environ.get("TOOLKILN_MLFLOW_UI", MLFLOW_UI).rstrip("/")
    return f"{ui}/#/experiments/{exp.experiment_id}/runs/{runs[0].info.run_id}"


def publish_artifacts(stage: str, repo_dir: str | Path) -> list[str]:
    """Per stage, in the Prefect UI: its metrics table and a link to its MLflow run."""
    from prefect.artifacts import create_link_artifact, create_table_artifact

    keys = []
    rows = metric_rows(stage, repo_dir)
    if rows:
        create_table_artifact(key=artifact_key(stage, "metrics"), table=rows,
                              description=f"`{stage}`: the DVC metrics it wrote ({len(rows)} values)")
        keys.append(artifact_key(stage, "metrics"))
    url = mlflow_run_url(stage, repo_dir, os.environ.get("TOOLKILN_PIPELINE_ID", ""))
    if url:
        create_link_artifact(key=artifact_key(stage, "mlflow"), link=url, link_text=f"{stage} in MLflow",
                             description=f"`{stage}`: its MLflow run (params, metrics, plots, artifacts)")
        keys.append(artifact_key(stage, "mlflow"))
    return keys


@task(retries=1, retry_delay_seconds=10, task_run_name="{stage}")
def run_stage(stage: str, repo_dir: str, force: bool = False) -> dict:
    log = get_run_logger()
    # every line of DVC's and the stage's output reaches Prefect while the stage runs
    code, ran = repro_stage_streaming(stage, repo_dir, log.info, force=force)
    if code != 0:
        raise StageFailed(f"stage {stage} failed (exit {code}); see the log above")
    artifacts = publish_artifacts(stage, repo_dir) if ran else []
    return {"stage": stage, "ran": ran, "artifacts": artifacts}


@flow(name="toolkiln-pipeline", log_prints=True)
def pipeline(repo_dir: str = str(REPO), targets: list[str] | None = None, force: bool = False) -> list[dict]:
    os.environ.setdefault("TOOLKILN_PIPELINE_ID", f"prefect-{flow_run.get_id() or 'local'}")
    results = []
    for generation in stage_order(repo_dir, targets):
        futures = [run_stage.submit(s, repo_dir, force) for s in generation]
        results += [f.result() for f in futures]
    get_run_logger().info("stages run: %s; fresh (skipped by DVC): %s",
                          [r["stage"] for r in results if r["ran"]], [r["stage"] for r in results if not r["ran"]])
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=str(REPO))
    ap.add_argument("--target", action="append")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    pipeline(args.repo, args.target, args.force)


if __name__ == "__main__":
    main()
