"""MLflow tracking: one parent run per pipeline run, one child run per stage (docs/architecture.md#tracking).

Stages run as separate processes under ``dvc repro``; they find their parent by
the tag ``toolkiln.pipeline_id``, taken from ``$TOOLKILN_PIPELINE_ID`` (set by
``make run`` and the Prefect flows) or, when unset, one id per calendar day so
ad-hoc ``dvc repro`` runs still group sensibly. The default store is a local
SQLite file and artifacts go to an ignored folder in the repo.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

PIPELINE_TAG = "toolkiln.pipeline_id"
# Set by flows/sweep.py for experiments that run in DVC's temporary workspaces: there a relative store
# (``sqlite:///mlflow.db``) would be the throw-away copy's, so the sweep passes the main store's absolute URI
# and its own experiment. Environment, not params: where runs are logged never changes an output.
TRACKING_URI_ENV = "TOOLKILN_TRACKING_URI"
EXPERIMENT_ENV = "TOOLKILN_MLFLOW_EXPERIMENT"


def pipeline_id() -> str:
    return os.environ.get("TOOLKILN_PIPELINE_ID") or f"adhoc-{_dt.date.today().isoformat()}"


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


class StageRun:
    """Handle given to a stage: log params/metrics/artifacts (no-ops when tracking is off)."""

    def __init__(self, mlflow_mod: Any | None, run_id: str | None):
        self._mlflow = mlflow_mod
        self.run_id = run_id

    @property
    def active(self) -> bool:
        return self._mlflow is not None

    def log_params(self, params: dict) -> None:
        if not self.active:
            return
        flat = {k: str(v)[:500] for k, v in _flatten(params).items()}
        items = list(flat.items())
        for i in range(0, len(items), 100):  # MLflow caps a batch at 100 params
            self._mlflow.log_params(dict(items[i:i + 100]))

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        if not self.active:
            return
        flat = {k: float(v) for k, v in _flatten(metrics).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if flat:
            self._mlflow.log_metrics(flat, step=step)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.active and Path(path).exists():
            self._mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_artifacts(self, directory: str | Path, artifact_path: str | None = None) -> None:
        """A whole folder (e.g. a GX data-docs site, whose pages link to each other) as artifacts."""
        if self.active and Path(directory).is_dir():
            self._mlflow.log_artifacts(str(directory), artifact_path=artifact_path)

    def set_tags(self, tags: dict) -> None:
        if self.active:
            self._mlflow.set_tags({k: str(v) for k, v in tags.items()})


@contextlib.contextmanager
def stage_run(stage: str, cfg: Any, params: dict | None = None) -> Iterator[StageRun]:
    """Open ``pipeline parent -> stage child`` runs. ``cfg`` is a TrackingConfig."""
    if not cfg.enabled:
        yield StageRun(None, None)
        return
    import mlflow
    from mlflow.tracking import MlflowClient

    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(os.environ.get(TRACKING_URI_ENV) or cfg.tracking_uri)
    experiment = os.environ.get(EXPERIMENT_ENV) or cfg.experiment
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        art = Path(cfg.artifact_dir).resolve()
        art.mkdir(parents=True, exist_ok=True)
        exp_id = client.create_experiment(experiment, artifact_location=art.as_uri())
    else:
        exp_id = exp.experiment_id
    pid = pipeline_id()
    found = client.search_runs([exp_id], filter_string=f"tags.`{PIPELINE_TAG}` = '{pid}' and tags.`toolkiln.kind` = 'pipeline'",
                               max_results=1)
    if found:
        parent_id = found[0].info.run_id
    else:
        parent = client.create_run(exp_id, run_name=f"pipeline {pid}",
                                   tags={PIPELINE_TAG: pid, "toolkiln.kind": "pipeline"})
        parent_id = parent.info.run_id
        client.set_terminated(parent_id)  # the parent is a grouping node; children carry the work
    # MLflow's own parent link (it refuses a deleted parent; the parent may be terminated: it only groups)
    with mlflow.start_run(experiment_id=exp_id, run_name=stage, parent_run_id=parent_id,
                          tags={PIPELINE_TAG: pid, "toolkiln.kind": "stage", "toolkiln.stage": stage}) as run:
        handle = StageRun(mlflow, run.info.run_id)
        if params:
            handle.log_params(params)
        yield handle
