"""MLflow tracking: one parent run per pipeline run, one child run per stage (docs/architecture.md#tracking).

Stages run as separate processes under ``dvc repro``; they find their parent by
the tag ``toolkiln.pipeline_id``, taken from ``$TOOLKILN_PIPELINE_ID`` (set by
``make run`` and the Prefect flows) or, when unset, one id per calendar day so
ad-hoc ``dvc repro`` runs still group sensibly. The default store is a local
SQLite file and artifacts go to an ignored folder in the repo.

What a user sees in the MLflow UI is set here too: the experiment is tagged as model
development (not a GenAI app), so it opens on its runs table; the parent run spans the
pipeline (it starts with the first stage and ends with the last) and carries the headline
metrics of its stages (accuracy per dialog type and BFCL category per checkpoint,
verification pass rates, pool size), which a shared view of the experiment
(:data:`VIEW_KEY`, opened by :func:`ui_url`) shows as the runs table's columns.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

log = logging.getLogger(__name__)

PIPELINE_TAG = "toolkiln.pipeline_id"
# Set by flows/sweep.py for experiments that run in DVC's temporary workspaces: there a relative store
# (``sqlite:///mlflow.db``) would be the throw-away copy's, so the sweep passes the main store's absolute URI
# and its own experiment. Environment, not params: where runs are logged never changes an output.
TRACKING_URI_ENV = "TOOLKILN_TRACKING_URI"
EXPERIMENT_ENV = "TOOLKILN_MLFLOW_EXPERIMENT"

# MLflow 3's UI opens an experiment on its GenAI "Overview" page unless the experiment is a
# model-development one. The UI reads this tag, and the ``workflowType`` query parameter
# (which 3.17 gives precedence over the tag), so :func:`ui_url` sets both.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# A saved view of the runs table (MLflow's "share view": an experiment tag holding the UI
# state, opened with ``?viewStateShareKey=``): the headline metric columns instead of
# MLflow's default source/model/dataset columns.
VIEW_KEY = "toolkiln-headline"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"

# Headline metrics copied from a stage run up to its pipeline's parent run:
# (stage pattern, metric-key pattern, name on the parent). ``\g<...>`` fills in groups. The order
# is the order of the runs table's columns: what a user compares first comes first.
HEADLINE: list[tuple[str, str, str]] = [
    (r"synthesize_apis", r"n_apis", r"pool.n_apis"),
    (r"verify", r"pass_rate\.(?P<layer>rules|model|final)", r"verify.pass_rate.\g<layer>"),
    (r"eval_(?P<tag>.+)", r"synthetic\.accuracy", r"\g<tag>.acc"),
    (r"eval_(?P<tag>.+)", r"bfcl\.accuracy", r"\g<tag>.bfcl"),
    (r"eval_(?P<tag>.+)", r"synthetic\.by_group\.(?P<g>[^.]+)\.accuracy", r"\g<tag>.acc.\g<g>"),
    (r"eval_(?P<tag>.+)", r"bfcl\.by_group\.(?P<g>[^.]+)\.accuracy", r"\g<tag>.bfcl.\g<g>"),
    (r"warmup_sft", r"(?P<k>train_loss_mean|final_eval_loss)", r"warmup.\g<k>"),
    (r"split", r"n_(?P<side>train|test)", r"split.n_\g<side>"),
    (r"generate_dialogs", r"n_dialogs", r"dialogs.n"),
    (r"adnt_report", r"verdicts\.adnt_avg", r"adnt.avg_acc"),
]
_HEADLINE_NAMES = [
    re.compile(".+".join(re.escape(part) for part in re.split(r"\\g<\w+>", name))) for *_, name in HEADLINE
]


def _rank(column: str) -> tuple[int, str]:
    """Where a headline column goes: the position of the rule that names it, then its name after the first dot,
    so each checkpoint's accuracy on one dialog type sits beside the others'."""
    rule = next((i for i, pat in enumerate(_HEADLINE_NAMES) if pat.fullmatch(column)), len(HEADLINE))
    return rule, column.partition(".")[2]


def headline(stage: str, metrics: dict[str, float]) -> dict[str, float]:
    """The subset of a stage's (flattened) metrics its pipeline's parent run carries, renamed."""
    out: dict[str, float] = {}
    for stage_pat, key_pat, name in HEADLINE:
        sm = re.fullmatch(stage_pat, stage)
        if sm is None:
            continue
        for key, value in metrics.items():
            km = re.fullmatch(key_pat, key)
            if km is not None:
                # a round's stage is DVC's foreach name (eval_round@2); MLflow names allow no '@': round_2.acc
                groups = {k: (v or "").replace("@", "_") for k, v in {**sm.groupdict(), **km.groupdict()}.items()}
                out[re.sub(r"\\g<(\w+)>", lambda m, g=groups: g[m.group(1)], name)] = value
    return out


def view_state(columns: list[str]) -> str:
    """The runs-table view the experiment's shared view holds: these metrics as columns in :data:`HEADLINE`'s order
    (one checkpoint's column beside the others'), then the duration."""
    selected = [f"metrics.`{c}`" for c in sorted(columns, key=_rank)] + ["attributes.`Duration`"]
    return json.dumps({"selectedColumns": selected, "columnOrder": selected, "runsExpanded": {}}, separators=(",", ":"))


def view_columns(state: str | None) -> list[str]:
    """The metric columns of a view written by :func:`view_state`."""
    if not state:
        return []
    return [c[len("metrics.`") : -1] for c in json.loads(state)["selectedColumns"] if c.startswith("metrics.`")]


def ui_url(base: str, experiment_id: str) -> str:
    """Where to open the experiment: its runs table, model-development mode, the headline columns."""
    return (
        f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs"
        f"?viewStateShareKey={VIEW_KEY}&workflowType=machine_learning"
    )


def pipeline_id() -> str:
    return os.environ.get("TOOLKILN_PIPELINE_ID") or f"adhoc-{_dt.date.today().isoformat()}"


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> one level with dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def numeric_metrics(d: dict, *, bools: bool = False) -> dict[str, float]:
    """The numbers of a nested metrics dict, flattened; booleans as 0/1 only when ``bools``."""
    out: dict[str, float] = {}
    for k, v in flatten(d).items():
        if isinstance(v, bool):
            if bools:
                out[k] = float(v)
        elif isinstance(v, (int, float)):
            out[k] = float(v)
    return out


def metric_key(name: str) -> str:
    """An MLflow metric name: metrics files key some values by free text (reject reasons), which MLflow refuses."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", name.replace(" ", "_"))[:250]


def log_client_run(
    client: Any,
    experiment_id: str,
    name: str,
    *,
    tags: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    artifacts: Sequence[str | Path] = (),
    status: str = "FINISHED",
) -> str:
    """One finished run written through an ``MlflowClient`` (for drivers that log results after the fact,
    outside any active run): tags, stringified params, metrics under sanitised names in batches MLflow
    accepts, artifacts. Returns the run id."""
    from mlflow.entities import Metric, Param

    run = client.create_run(experiment_id, run_name=name, tags={k: str(v) for k, v in (tags or {}).items()})
    rid = run.info.run_id
    ps = [Param(k, str(v)[:500]) for k, v in (params or {}).items()]
    for i in range(0, len(ps), 100):  # MLflow caps a batch at 100 params
        client.log_batch(rid, params=ps[i : i + 100])
    now = int(time.time() * 1000)
    ms = [Metric(metric_key(k), float(v), now, 0) for k, v in (metrics or {}).items()]
    for i in range(0, len(ms), 900):  # ... and at 1000 metrics
        client.log_batch(rid, metrics=ms[i : i + 900])
    for f in artifacts:
        client.log_artifact(rid, str(f))
    client.set_terminated(rid, status)
    return rid


class StageRun:
    """Handle given to a stage: log params/metrics/artifacts (no-ops when tracking is off)."""

    def __init__(self, mlflow_mod: Any | None, run_id: str | None, stage: str = "", parent: "_Parent | None" = None):
        self._mlflow = mlflow_mod
        self.run_id = run_id
        self.stage = stage
        self._parent = parent

    @property
    def active(self) -> bool:
        return self._mlflow is not None

    def log_params(self, params: dict) -> None:
        if not self.active:
            return
        flat = {k: str(v)[:500] for k, v in flatten(params).items()}
        items = list(flat.items())
        for i in range(0, len(items), 100):  # MLflow caps a batch at 100 params
            self._mlflow.log_params(dict(items[i : i + 100]))

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        if not self.active:
            return
        flat = numeric_metrics(metrics)
        if flat:
            self._mlflow.log_metrics(flat, step=step)
        if flat and step is None and self._parent is not None:
            self._parent.log_headline(headline(self.stage, flat))

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


class _Parent:
    """The pipeline's parent run: spans its stages and carries their headline metrics."""

    def __init__(self, client: Any, exp_id: str, run_id: str):
        self.client, self.exp_id, self.run_id = client, exp_id, run_id

    def log_headline(self, metrics: dict[str, float]) -> None:
        if not metrics:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
        # the shared view's columns: every headline metric a pipeline run of this experiment carries
        known = view_columns(self.client.get_experiment(self.exp_id).tags.get(VIEW_TAG))
        new = [k for k in metrics if k not in known]
        if new:
            self.client.set_experiment_tag(self.exp_id, VIEW_TAG, view_state(known + new))

    def start(self) -> None:
        self.client.update_run(self.run_id, status="RUNNING")

    def finish(self, failed: bool) -> None:
        # the parent ends when its last stage does: a later stage extends it, never shortens it
        end = self.client.get_run(self.run_id).info.end_time or 0
        self.client.set_terminated(
            self.run_id, "FAILED" if failed else "FINISHED", end_time=max(end, int(time.time() * 1000))
        )


def ensure_experiment(client: Any, cfg: Any, name: str | None = None) -> str:
    """The experiment's id (``name``, default ``cfg.experiment``), created on first use, tagged so the UI opens
    it on its runs."""
    name = name or cfg.experiment
    exp = client.get_experiment_by_name(name)
    if exp is None:
        art = Path(cfg.artifact_dir).resolve()
        art.mkdir(parents=True, exist_ok=True)
        exp_id = client.create_experiment(name, artifact_location=art.as_uri(), tags=EXPERIMENT_KIND)
    else:
        exp_id = exp.experiment_id
        if any(exp.tags.get(k) != v for k, v in EXPERIMENT_KIND.items()):
            for k, v in EXPERIMENT_KIND.items():
                client.set_experiment_tag(exp_id, k, v)
    return exp_id


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """An exclusive file lock per tracking store: beside a local SQLite file, or (a tracking server) in the
    temp folder, keyed by the URI.

    Stages with no upstream in common start at once under Prefect (``synthesize_apis`` and ``distill_encoder``):
    without the lock both find no parent run for their pipeline and both create one. The temp-folder lock covers
    stages on one machine, which is how the flows run them; stages spread over machines would need the store
    itself to serialise parent creation.
    """
    import fcntl

    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        db.parent.mkdir(parents=True, exist_ok=True)
        lock = db.with_name(db.name + ".lock")
    else:
        import hashlib
        import tempfile

        lock = Path(tempfile.gettempdir()) / f"toolkiln-mlflow-{hashlib.sha256(uri.encode()).hexdigest()[:16]}.lock"
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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
    pid = pipeline_id()
    with store_lock(mlflow.get_tracking_uri()):
        # Stages of one DAG generation start together: the first to touch a new SQLite store creates and migrates
        # it (two at once race in alembic: "table _alembic_tmp_tags already exists"), and only one may create the
        # pipeline's parent run.
        client = MlflowClient()
        exp_id = ensure_experiment(client, cfg, experiment)
        found = client.search_runs(
            [exp_id],
            filter_string=f"tags.`{PIPELINE_TAG}` = '{pid}' and tags.`toolkiln.kind` = 'pipeline'",
            max_results=1,
        )
        if found:
            parent_id = found[0].info.run_id
        else:
            # created when the pipeline's first stage starts, so its start time is that stage's
            parent = client.create_run(
                exp_id, run_name=f"pipeline {pid}", tags={PIPELINE_TAG: pid, "toolkiln.kind": "pipeline"}
            )
            parent_id = parent.info.run_id
    parent_run = _Parent(client, exp_id, parent_id)
    parent_run.start()
    failed = True
    try:
        # MLflow's own parent link (it refuses a deleted parent)
        with mlflow.start_run(
            experiment_id=exp_id,
            run_name=stage,
            parent_run_id=parent_id,
            tags={PIPELINE_TAG: pid, "toolkiln.kind": "stage", "toolkiln.stage": stage},
        ) as run:
            handle = StageRun(mlflow, run.info.run_id, stage, parent_run)
            if params:
                handle.log_params(params)
            yield handle
        failed = False
    finally:
        parent_run.finish(failed)
