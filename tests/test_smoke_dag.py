"""The whole DAG, end to end, under the smoke profile, through the Prefect flow: a real run in a copy of the repo.

profiles/smoke.yaml and every profiles/smoke.<area>.yaml are deep-merged over params.yaml
(the same merge users get from `python -m toolkiln.config merge`), then `flows.run.pipeline`
(ephemeral Prefect) runs every stage of dvc.yaml for real, each as `dvc repro --single-item`
— synthesis, dialogs, verification, training, evaluation, ADNT — on miniature sizes. Then:
`dvc.lock` is complete and `dvc status` clean, every stage published its Prefect artifacts and
streamed its log into Prefect, a second flow run runs nothing, and forcing the data stages to
run again reproduces every data artifact byte for byte.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.run import artifact_key
from toolkiln.config import deep_merge, load_params, read_yaml_mapping
from toolkiln.dvcfile import resolved_stages

pytestmark = pytest.mark.slow  # the whole DAG: minutes; `make test` runs it, `make test-fast` does not

DATA_STAGES = ["synthesize_apis", "generate_dialogs", "verify", "split"]

FLOW = """
import json, sys
from flows.run import pipeline
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.runtime import flow_run
state = pipeline(sys.argv[1], return_state=True)
results = state.result()
with get_client(sync_client=True) as c:
    keys = sorted({a.key for a in c.read_artifacts() if a.key})
    flt, logs = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])), []
    while True:
        page = c.read_logs(log_filter=flt, limit=200, offset=len(logs))
        logs += [l.message for l in page]
        if len(page) < 200:
            break
print("RESULT " + json.dumps({"results": results, "artifacts": keys, "logs": logs}))
"""


def _files(repo: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=repo,
                         capture_output=True, text=True, check=True).stdout.split("\n")
    return [f for f in out if f and (repo / f).is_file()]


def _flow(r: Path, env: dict) -> tuple[subprocess.CompletedProcess, dict | None]:
    proc = subprocess.run([sys.executable, "-c", FLOW, str(r)], cwd=r, env=env, capture_output=True, text=True,
                          timeout=3000)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    return proc, (json.loads(line[len("RESULT "):]) if line else None)


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory, request):
    repo = Path(__file__).resolve().parents[1]
    r = tmp_path_factory.mktemp("smoke") / "repo"
    for f in _files(repo):
        if f.startswith(("data/", "reports/", "checkpoints/")) and not f.startswith("data/api_context_tree/"):
            continue  # generated artifacts are rebuilt by the run
        (r / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / f, r / f)
    params = read_yaml_mapping(repo / "params.yaml")
    for prof in sorted((repo / "profiles").glob("smoke*.yaml")):
        params = deep_merge(params, read_yaml_mapping(prof))
    params["tracking"]["tracking_uri"] = f"sqlite:///{r / 'mlflow.db'}"
    from toolkiln.policy.base import packaged_gguf

    params["policy"]["base_gguf"] = str(packaged_gguf())  # the copy has no .venv; DVC takes an absolute dependency
    (r / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    load_params(r / "params.yaml")  # the merged profile must itself be valid
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": f"{repo / 'src'}:{repo}", "PREFECT_HOME": str(r.parent / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "INFO",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",  # a loaded machine starts it slowly
           "TOOLKILN_PIPELINE_ID": "smoke", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost"}
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q", "-f"], ["git", "add", "-A"], ["git", "commit", "-qm", "smoke"]):
        p = subprocess.run(cmd, cwd=r, env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    proc, first = _flow(r, env)
    return r, env, proc, first


@pytest.mark.timeout(3600)
def test_smoke_dag_runs_every_stage(smoke_repo):
    r, env, proc, first = smoke_repo
    assert proc.returncode == 0 and first, proc.stdout[-6000:] + proc.stderr[-6000:]
    stages = resolved_stages(r)  # the round stages by DVC's names (mcts_pairs_round@1)
    ran = {x["stage"]: x["ran"] for x in first["results"]}
    assert ran == {name: True for name in stages}, ran
    lock = yaml.safe_load((r / "dvc.lock").read_text())["stages"]
    assert set(lock) == set(stages)
    for name, st in lock.items():
        for out in st.get("outs", []):
            assert (r / out["path"]).exists(), f"{name}: missing output {out['path']}"
    status = subprocess.run(["dvc", "status"], cwd=r, env=env, capture_output=True, text=True)
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout


def test_smoke_dag_publishes_prefect_artifacts_and_streams_logs(smoke_repo):
    r, env, proc, first = smoke_repo
    assert first
    stages = resolved_stages(r)
    for name, st in stages.items():
        assert artifact_key(name, "mlflow") in first["artifacts"], f"{name}: no MLflow link artifact"
        if st.get("metrics"):
            assert artifact_key(name, "metrics") in first["artifacts"], f"{name}: no metrics table artifact"
    logs = "\n".join(first["logs"])
    for name in stages:  # DVC's line and the stage's own log lines, not only an excerpt
        assert f"Running stage '{name}'" in logs
    assert "pool:" in logs and "split:" in logs and "done in" in logs


def test_smoke_dag_second_run_is_a_noop(smoke_repo):
    r, env, proc, first = smoke_repo
    assert first
    proc2, again = _flow(r, env)
    assert proc2.returncode == 0 and again, proc2.stdout[-3000:] + proc2.stderr[-3000:]
    assert [x for x in again["results"] if x["ran"]] == []
    plain = subprocess.run(["dvc", "repro"], cwd=r, env=env, capture_output=True, text=True, timeout=600)
    assert plain.returncode == 0 and "Running stage" not in plain.stdout, plain.stdout[-3000:]


def test_smoke_dag_metrics_readable(smoke_repo):
    r, env, proc, first = smoke_repo
    assert first
    shown = subprocess.run(["dvc", "metrics", "show", "--json"], cwd=r, env=env, capture_output=True, text=True)
    assert shown.returncode == 0
    data = json.loads(shown.stdout)
    assert data, "no DVC metrics recorded"
    pool = json.loads((r / "reports/synthesize_apis/metrics.json").read_text())
    assert pool["n_apis"] > 0 and pool["gx"]["pool"]
    # round 1 ran through all its stages; an update happened exactly when the search kept pairs
    pairs = json.loads((r / "reports/round_1/pairs.json").read_text())
    pref = json.loads((r / "reports/round_1/preference.json").read_text())
    assert pairs["prompts_searched"] > 0 and pref["updated"] == (pairs["pairs"] > 0)
    assert (r / "checkpoints/round_1/config.json").exists() and (r / "reports/eval_round_1/metrics.json").exists()


@pytest.mark.timeout(1800)
def test_smoke_data_artifacts_are_byte_identical_when_rerun(smoke_repo):
    """Same params and seed: forcing the data stages to run again rewrites every data artifact byte for byte."""
    r, env, proc, first = smoke_repo
    assert first
    before = yaml.safe_load((r / "dvc.lock").read_text())["stages"]
    for stage in DATA_STAGES:
        p = subprocess.run(["dvc", "repro", "--force", "--single-item", stage], cwd=r, env=env, capture_output=True,
                           text=True, timeout=1200)
        assert p.returncode == 0 and f"Running stage '{stage}'" in p.stdout, p.stdout[-3000:] + p.stderr[-3000:]
    after = yaml.safe_load((r / "dvc.lock").read_text())["stages"]
    for stage in DATA_STAGES:
        outs0 = {o["path"]: o.get("md5") for o in before[stage]["outs"]}
        outs1 = {o["path"]: o.get("md5") for o in after[stage]["outs"]}
        data = {p for p in outs0 if p.startswith("data/")}
        assert data and {p: outs1[p] for p in data} == {p: outs0[p] for p in data}, stage
