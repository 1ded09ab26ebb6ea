"""The UIs, tested for real: a Prefect server and an MLflow server on 127.0.0.1, the pipeline flow run against
them on the smoke profile (the data stages), and what a user would see checked through their HTTP APIs: the flow
run and one task run per stage in Prefect; in MLflow the experiment opening on its runs, one run per stage with its
metrics under one parent that spans them and carries the headline metrics."""

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from flows.ui import free_port, start_mlflow, start_prefect
from toolkiln.testing.smokerepo import make_smoke_repo
from toolkiln.tracking import EXPERIMENT_KIND, VIEW_TAG

pytestmark = pytest.mark.slow  # two servers and five real stages: minutes

# what `split` needs: the data stages and the verifier's distilled encoder
STAGES = ["synthesize_apis", "generate_dialogs", "distill_encoder", "verify", "split"]
FLOW = "import sys; from flows.run import pipeline; pipeline(sys.argv[1], ['split'])"


@pytest.fixture(scope="module")
def servers(tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp("ui")
    mlflow = start_mlflow(free_port(), f"sqlite:///{tmp / 'mlflow.db'}", tmp / "mlartifacts", tmp / "mlflow.log")
    request.addfinalizer(mlflow.stop)
    prefect = start_prefect(free_port(), tmp / "prefect", tmp / "prefect.log", ui=False)
    request.addfinalizer(prefect.stop)
    mlflow.wait_ready()
    prefect.wait_ready()
    return tmp, mlflow, prefect


@pytest.fixture(scope="module")
def flow_run(servers, tmp_path_factory):
    tmp, mlflow, prefect = servers
    repo = Path(__file__).resolve().parents[2]
    r = tmp / "repo"
    env = make_smoke_repo(repo, r, tracking_uri=mlflow.url, pipeline_id="ui-test")
    env.update(
        PREFECT_API_URL=f"{prefect.url}/api",
        PREFECT_HOME=str(tmp / "prefect-client"),
        MLFLOW_TRACKING_URI=mlflow.url,
        TOOLKILN_MLFLOW_UI=mlflow.url,
        PREFECT_LOGGING_LEVEL="INFO",
    )
    proc = subprocess.run(
        [sys.executable, "-c", FLOW, str(r)], cwd=r, env=env, capture_output=True, text=True, timeout=2400
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return mlflow, prefect


def _post(url: str, body: dict) -> list | dict:
    r = httpx.post(url, json=body, timeout=30)
    r.raise_for_status()
    return r.json()


@pytest.mark.timeout(3000)
def test_prefect_server_holds_the_flow_run_and_a_task_run_per_stage(flow_run):
    _, prefect = flow_run
    api = f"{prefect.url}/api"
    runs = _post(f"{api}/flow_runs/filter", {"flows": {"name": {"any_": ["toolkiln-pipeline"]}}})
    assert len(runs) == 1 and runs[0]["state_type"] == "COMPLETED", [(r["name"], r["state_type"]) for r in runs]
    tasks = _post(f"{api}/task_runs/filter", {"flow_runs": {"id": {"any_": [runs[0]["id"]]}}})
    assert sorted(t["name"] for t in tasks) == sorted(STAGES)
    assert {t["state_type"] for t in tasks} == {"COMPLETED"}
    keys = {a["key"] for a in _post(f"{api}/artifacts/filter", {"limit": 200}) if a.get("key")}
    assert {f"{s.replace('_', '-')}-mlflow" for s in STAGES} <= keys, keys  # each stage links its MLflow run


@pytest.mark.timeout(3000)
def test_mlflow_server_holds_a_parent_spanning_the_stage_runs_with_metrics(flow_run):
    mlflow, _ = flow_run
    api = f"{mlflow.url}/api/2.0/mlflow"
    exp = httpx.get(f"{api}/experiments/get-by-name", params={"experiment_name": "toolkiln"}, timeout=30).json()
    exp = exp["experiment"]
    tags = {t["key"]: t["value"] for t in exp.get("tags", [])}
    for k, v in EXPERIMENT_KIND.items():
        assert tags[k] == v
    runs = _post(
        f"{api}/runs/search",
        {
            "experiment_ids": [exp["experiment_id"]],
            "max_results": 100,
            "filter": "tags.`toolkiln.pipeline_id` = 'ui-test'",
        },
    )["runs"]

    def info(run):
        return run["info"]["run_name"], {m["key"]: m["value"] for m in run["data"].get("metrics", [])}

    by_name = {info(r)[0]: r for r in runs}
    assert set(by_name) == {*STAGES, "pipeline ui-test"}, sorted(by_name)
    parent = by_name["pipeline ui-test"]
    for stage in STAGES:
        run = by_name[stage]
        assert {t["key"]: t["value"] for t in run["data"]["tags"]}["mlflow.parentRunId"] == parent["info"]["run_id"]
        assert run["info"]["status"] == "FINISHED" and info(run)[1], stage  # each stage logged metrics
    assert info(by_name["synthesize_apis"])[1]["n_apis"] > 0
    assert parent["info"]["status"] == "FINISHED"
    assert int(parent["info"]["start_time"]) <= min(int(by_name[s]["info"]["start_time"]) for s in STAGES)
    assert int(parent["info"]["end_time"]) >= max(int(by_name[s]["info"]["end_time"]) for s in STAGES)
    headline = info(parent)[1]
    assert headline["pool.n_apis"] == info(by_name["synthesize_apis"])[1]["n_apis"]
    for key in ("verify.pass_rate.rules", "verify.pass_rate.final", "split.n_train", "split.n_test"):
        assert key in headline, sorted(headline)
    columns = json.loads(tags[VIEW_TAG])["selectedColumns"]
    assert "metrics.`pool.n_apis`" in columns and "metrics.`verify.pass_rate.final`" in columns
