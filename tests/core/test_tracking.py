"""MLflow runs as the pipeline files them, against a real local store: one parent per pipeline run, a child
per stage, and the ADNT benchmark's per-method runs nested under their stage run."""

import polars as pl

from toolkiln.adapt.tracking import log_method_runs
from toolkiln.config import TrackingConfig
from toolkiln.tracking import PIPELINE_TAG, stage_run


def test_stage_runs_share_one_parent_and_methods_nest_under_their_stage(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOOLKILN_PIPELINE_ID", "run-test")
    cfg = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_dir=str(tmp_path / "art"))
    with stage_run("first", cfg, {"seed": 1}) as a:
        a.log_metrics({"m": 1.0})
    summary = pl.DataFrame(
        {
            "method": ["adnt", "adnt", "dann"],
            "target": ["x", "avg", "avg"],
            "mean": [0.5, 0.6, 0.4],
            "std": [0.1, None, 0.0],
        }
    )
    results = pl.DataFrame({"method": ["adnt", "dann"], "seconds": [1.0, 2.0]})
    with stage_run("second", cfg) as b:
        assert log_method_runs(b, summary, results) == 2

    client = MlflowClient(tracking_uri=cfg.tracking_uri)
    exp = client.get_experiment_by_name(cfg.experiment)
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    parent = runs["pipeline run-test"]
    assert parent.data.tags[PIPELINE_TAG] == "run-test"
    for stage in ("first", "second"):
        assert runs[stage].data.tags["mlflow.parentRunId"] == parent.info.run_id
    for m in ("adnt/adnt", "adnt/dann"):
        assert runs[m].data.tags["mlflow.parentRunId"] == runs["second"].info.run_id
        assert runs[m].data.tags[PIPELINE_TAG] == "run-test"
    assert runs["adnt/adnt"].data.metrics["acc.avg.mean"] == 0.6
