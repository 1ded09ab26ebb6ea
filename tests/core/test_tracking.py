"""MLflow runs as the pipeline files them, against a real local store: one parent per pipeline run, a child
per stage, and the ADNT benchmark's per-method runs nested under their stage run."""

import polars as pl
import pytest

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


def test_parent_spans_the_pipeline_and_carries_headline_metrics(tmp_path, monkeypatch):
    import json

    from mlflow.tracking import MlflowClient

    from toolkiln.tracking import EXPERIMENT_KIND, VIEW_KEY, VIEW_TAG, ui_url

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOOLKILN_PIPELINE_ID", "run-span")
    cfg = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_dir=str(tmp_path / "art"))
    with stage_run("synthesize_apis", cfg) as a:
        a.log_metrics({"n_apis": 120, "n_domains": 4})
    with stage_run("verify", cfg) as b:
        b.log_metrics({"pass_rate": {"rules": 0.9, "model": 0.95, "final": 0.85}, "checks": {"ok_x": 1.0}})
    with stage_run("eval_warmup", cfg) as c:
        c.log_metrics({"loss": 0.5}, step=3)  # curves stay on the stage run
        c.log_metrics(
            {
                "synthetic": {"accuracy": 0.4, "by_group": {"single": {"accuracy": 0.5, "n": 4}}},
                "bfcl": {"accuracy": 0.3, "by_group": {"simple_python": {"accuracy": 0.25}}},
            }
        )

    client = MlflowClient(tracking_uri=cfg.tracking_uri)
    exp = client.get_experiment_by_name(cfg.experiment)
    for k, v in EXPERIMENT_KIND.items():
        assert exp.tags[k] == v  # the UI opens it on its runs, not the GenAI overview
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    parent = runs["pipeline run-span"]
    stages = [runs[s] for s in ("synthesize_apis", "verify", "eval_warmup")]
    assert parent.info.status == "FINISHED"
    assert parent.info.start_time <= stages[0].info.start_time
    assert parent.info.end_time >= stages[-1].info.end_time
    assert parent.data.metrics == {
        "pool.n_apis": 120.0,
        "verify.pass_rate.rules": 0.9,
        "verify.pass_rate.model": 0.95,
        "verify.pass_rate.final": 0.85,
        "warmup.acc": 0.4,
        "warmup.acc.single": 0.5,
        "warmup.bfcl": 0.3,
        "warmup.bfcl.simple_python": 0.25,
    }
    view = json.loads(exp.tags[VIEW_TAG])
    in_column_order = [
        "pool.n_apis",
        "verify.pass_rate.final",
        "verify.pass_rate.model",
        "verify.pass_rate.rules",
        "warmup.acc",
        "warmup.bfcl",
        "warmup.acc.single",
        "warmup.bfcl.simple_python",
    ]
    assert view["selectedColumns"] == [f"metrics.`{k}`" for k in in_column_order] + ["attributes.`Duration`"]
    url = ui_url("http://127.0.0.1:5000/", exp.experiment_id)
    assert url == (
        f"http://127.0.0.1:5000/#/experiments/{exp.experiment_id}/runs"
        f"?viewStateShareKey={VIEW_KEY}&workflowType=machine_learning"
    )


def test_a_failing_stage_marks_the_parent_failed(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOOLKILN_PIPELINE_ID", "run-fail")
    cfg = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_dir=str(tmp_path / "art"))
    with pytest.raises(SystemExit), stage_run("split", cfg):
        raise SystemExit("split: target missed")
    client = MlflowClient(tracking_uri=cfg.tracking_uri)
    exp = client.get_experiment_by_name(cfg.experiment)
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert runs["pipeline run-fail"].info.status == "FAILED" and runs["split"].info.status == "FAILED"


@pytest.mark.slow
def test_stages_starting_together_on_a_fresh_store_share_one_parent(tmp_path):
    """Stages of one DAG generation start at once: the store is created and migrated once, one parent run."""
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = (
        "import sys\n"
        "from toolkiln.config import TrackingConfig\n"
        "from toolkiln.tracking import stage_run\n"
        f"cfg = TrackingConfig(tracking_uri={uri!r}, artifact_dir={str(tmp_path / 'art')!r})\n"
        "with stage_run(sys.argv[1], cfg) as run:\n"
        "    run.log_metrics({'x': 1.0})\n"
    )
    env = {**__import__("os").environ, "TOOLKILN_PIPELINE_ID": "together"}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, f"stage{i}"], env=env, stderr=subprocess.PIPE, text=True)
        for i in range(3)
    ]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(e[-2000:] for e in errs)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(TrackingConfig().experiment)
    parents = client.search_runs([exp.experiment_id], filter_string="tags.`toolkiln.kind` = 'pipeline'")
    stages = client.search_runs([exp.experiment_id], filter_string="tags.`toolkiln.kind` = 'stage'")
    assert len(parents) == 1 and len(stages) == 3
    assert {r.data.tags["mlflow.parentRunId"] for r in stages} == {parents[0].info.run_id}


def test_log_client_run_files_a_finished_run_with_flattened_metrics_and_batched_params(tmp_path):
    """The after-the-fact writer the claims harness and the sweep share: free-text metric names are sanitised,
    booleans only count when asked for, more params than one MLflow batch holds all arrive."""
    from mlflow.tracking import MlflowClient

    from toolkiln.tracking import log_client_run, numeric_metrics

    metrics = {"acc": 0.5, "by_type": {"single": 0.25, "ok": True}, "errors": {"wrong value (x)": 3}, "name": "a"}
    assert numeric_metrics(metrics) == {"acc": 0.5, "by_type.single": 0.25, "errors.wrong value (x)": 3.0}
    assert numeric_metrics(metrics, bools=True)["by_type.ok"] == 1.0

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("e", artifact_location=(tmp_path / "art").as_uri())
    note = tmp_path / "note.txt"
    note.write_text("hi")
    rid = log_client_run(
        client,
        exp,
        "arm seed 0",
        tags={"toolkiln.arm": "arm"},
        params={f"p{i}": i for i in range(150)},
        metrics=numeric_metrics(metrics),
        artifacts=[note],
        status="FAILED",
    )
    run = client.get_run(rid)
    assert run.info.run_name == "arm seed 0" and run.info.status == "FAILED"
    assert run.data.tags["toolkiln.arm"] == "arm"
    assert len(run.data.params) == 150 and run.data.params["p149"] == "149"
    assert run.data.metrics == {"acc": 0.5, "by_type.single": 0.25, "errors.wrong_value__x_": 3.0}
    assert [a.path for a in client.list_artifacts(rid)] == ["note.txt"]


def test_store_lock_serialises_a_tracking_server_too():
    """Two stages starting at once against one tracking server must not both create the pipeline's parent run."""
    import threading
    import time

    from toolkiln.tracking import store_lock

    events: list[str] = []

    def stage(name: str) -> None:
        with store_lock("http://127.0.0.1:5000"):
            events.append(f"{name} in")
            time.sleep(0.2)
            events.append(f"{name} out")

    threads = [threading.Thread(target=stage, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert events[0][0] == events[1][0] and events[2][0] == events[3][0], events  # never both inside


def test_a_rounds_headline_metrics_get_mlflow_safe_names():
    from toolkiln.tracking import headline

    # DVC names a round's evaluation eval_round@2 (foreach over rounds.chain); MLflow refuses '@' in metric names
    got = headline("eval_round@2", {"synthetic.accuracy": 0.3, "synthetic.by_group.parallel.accuracy": 0.1})
    assert got == {"round_2.acc": 0.3, "round_2.acc.parallel": 0.1}
    assert headline("eval_warmup", {"synthetic.accuracy": 0.2}) == {"warmup.acc": 0.2}
