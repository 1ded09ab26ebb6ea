"""A real `dvc repro` of the synthesize_apis stage in a temporary git repo, with real MLflow tracking.

Shows: the stage runs, a second repro executes nothing, a change to one of the stage's
params reruns it, and the stage's metrics land in MLflow as a child of the pipeline run.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.synth.conftest import TINY


def sh(cmd, cwd, env):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def dvc_repo(tmp_path, repo_root):
    r = tmp_path / "repo"
    r.mkdir()
    stage = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]["synthesize_apis"]
    for rel in stage["deps"]:  # the code deps the stage lists (the data dep is a tiny tree below)
        if rel.startswith("data/"):
            continue
        (r / rel).parent.mkdir(parents=True, exist_ok=True)
        if (repo_root / rel).is_dir():
            shutil.copytree(repo_root / rel, r / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(repo_root / rel, r / rel)
    shutil.copy(repo_root / ".dvcignore", r / ".dvcignore")
    tree = r / "data" / "api_context_tree"
    tree.mkdir(parents=True)
    for slug, dom in TINY.items():
        (tree / f"{slug}.yaml").write_text(yaml.safe_dump(dom, sort_keys=False))
    (r / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"synthesize_apis": stage}}, sort_keys=False))
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["synth"].update(n_apis=120, batch_size=40, seed_examples=1)
    params["synth"]["dedup"]["embed_sample"] = 0
    params["synth"]["dedup"]["method"] = "minhash"  # DVC caching is under test, not the detector (no MiniLM load)
    params["tracking"]["tracking_uri"] = f"sqlite:///{r / 'mlflow.db'}"
    (r / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "TOOLKILN_PIPELINE_ID": "test-pipeline", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost"}
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q", "-f"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        out = sh(cmd, r, env)
        assert out.returncode == 0, out.stderr
    return r, env


@pytest.mark.slow
def test_repro_caches_and_reruns_on_param_change(dvc_repo):
    r, env = dvc_repo
    first = sh(["dvc", "repro"], r, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Running stage 'synthesize_apis'" in first.stdout
    assert (r / "data/api_pool.parquet").exists() and (r / "reports/synthesize_apis/data_docs/index.html").exists()

    second = sh(["dvc", "repro"], r, env)
    assert second.returncode == 0
    assert "Running stage" not in second.stdout and "didn't change" in second.stdout

    params = yaml.safe_load((r / "params.yaml").read_text())
    params["synth"]["oversample"] = 1.5  # still meets synth.n_apis (a miss would fail the stage)
    (r / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = sh(["dvc", "status"], r, env)
    assert "synth.oversample" in status.stdout or "modified" in status.stdout
    third = sh(["dvc", "repro"], r, env)
    assert third.returncode == 0 and "Running stage 'synthesize_apis'" in third.stdout, third.stdout + third.stderr

    # runtime settings (no stage lists them) and byte-code caches in a listed code folder rerun nothing
    params["runtime"]["llm"].update(max_retries=7, concurrency=3, timeout_s=5.0, cache_dir="elsewhere")
    params["runtime"]["workers"] = 1
    (r / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (r / "src/toolkiln/synth/__pycache__").mkdir(exist_ok=True)
    (r / "src/toolkiln/synth/__pycache__/pool.cpython-312.pyc").write_bytes(b"\0" * 16)
    status = sh(["dvc", "status"], r, env)
    assert status.returncode == 0 and "changed" not in status.stdout, status.stdout
    fourth = sh(["dvc", "repro"], r, env)
    assert fourth.returncode == 0 and "Running stage" not in fourth.stdout, fourth.stdout

    # ... while an edit to a module the stage imports (not in a listed folder before this change) reruns it
    io_py = r / "src/toolkiln/io.py"
    io_py.write_text(io_py.read_text() + "\n# an edit\n")
    fifth = sh(["dvc", "repro"], r, env)
    assert fifth.returncode == 0 and "Running stage 'synthesize_apis'" in fifth.stdout, fifth.stdout

    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{r / 'mlflow.db'}")
    client = MlflowClient()
    exp = client.get_experiment_by_name("toolkiln")
    runs = client.search_runs([exp.experiment_id])
    parents = [x for x in runs if x.data.tags.get("toolkiln.kind") == "pipeline"]
    stages = [x for x in runs if x.data.tags.get("toolkiln.stage") == "synthesize_apis"]
    assert len(parents) == 1 and parents[0].data.tags["toolkiln.pipeline_id"] == "test-pipeline"
    assert len(stages) == 3 and all(s.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for s in stages)
    assert stages[0].data.metrics["n_apis"] > 50 and "apis_per_s.generate" in stages[0].data.metrics
    assert stages[0].data.params["synth.n_apis"] == "120"
    arts = {a.path for a in client.list_artifacts(stages[0].info.run_id)}
    assert {"diversity.png", "metrics.json", "data_docs"} <= arts
    docs = {a.path for a in client.list_artifacts(stages[0].info.run_id, "data_docs")}
    assert "data_docs/index.html" in docs and any(not a.endswith(".html") for a in docs)  # the linked pages too


@pytest.mark.slow
def test_bad_params_fail_before_work(dvc_repo):
    r, env = dvc_repo
    params = yaml.safe_load((r / "params.yaml").read_text())
    params["synth"]["n_apis"] = "lots"
    (r / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh(["dvc", "repro"], r, env)
    assert out.returncode != 0
    assert "synth.n_apis: got 'lots' (str)" in out.stderr + out.stdout
    assert not (r / "data/api_pool.parquet").exists()


@pytest.mark.slow
def test_prefect_flow_runs_the_dvc_dag(dvc_repo, tmp_path, repo_root):
    """The Prefect flow reads dvc.yaml and runs its stages; a second flow run leaves DVC's cache in charge."""
    r, env = dvc_repo
    env = {**env, "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": f"{repo_root / 'src'}:{repo_root}",
           "PREFECT_LOGGING_LEVEL": "INFO", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600"}  # a loaded machine starts it slowly
    code = ("import json; from flows.run import pipeline; "
            f"print('RESULT', json.dumps(pipeline({str(r)!r})))")
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert 'RESULT [{"stage": "synthesize_apis", "ran": true, "artifacts": ["synthesize-apis-metrics", ' \
           '"synthesize-apis-mlflow"]}]' in first.stdout, first.stdout[-3000:]
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert 'RESULT [{"stage": "synthesize_apis", "ran": false, "artifacts": []}]' in second.stdout, second.stderr[-3000:]


def test_stage_order_follows_dvc_dependencies(repo_root):
    from flows.dag import stage_order

    gens = stage_order(repo_root)
    assert "synthesize_apis" in gens[0]
    order = [s for gen in gens for s in gen]
    pos = {s: i for i, s in enumerate(order)}
    for up, down in [("synthesize_apis", "generate_dialogs"), ("generate_dialogs", "verify"), ("verify", "split"),
                     ("split", "warmup_sft")]:
        if up in pos and down in pos:
            assert pos[up] < pos[down]


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_sigkill_mid_stage_registers_nothing_and_the_rerun_completes(dvc_repo):
    """A stage killed with SIGKILL halfway (after it started working, before its outputs) leaves no entry in
    dvc.lock and nothing in the DVC cache; the next `dvc repro` runs it to completion."""
    import signal
    import time

    r, env = dvc_repo
    trace = r / "data/api_llm_trace.jsonl"  # written by the stage right after it validated params and opened MLflow
    proc = subprocess.Popen(["dvc", "repro"], cwd=r, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    while not trace.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None and trace.exists(), "the stage did not start"
    os.killpg(proc.pid, signal.SIGKILL)  # dvc and the stage process with it
    proc.wait(60)
    assert proc.returncode == -signal.SIGKILL
    import psutil

    time.sleep(1)
    alive = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if p.info["cwd"] == str(r):
                alive.append(" ".join(p.info["cmdline"] or []))
        except psutil.Error:
            continue
    assert not alive, f"left running after the kill: {alive}"
    assert not (r / "data/api_pool.parquet").exists(), "the stage finished before the kill: nothing was tested"
    assert not (r / "dvc.lock").exists() or "synthesize_apis" not in (r / "dvc.lock").read_text()
    cache = r / ".dvc/cache"
    assert not cache.exists() or not [p for p in cache.rglob("*") if p.is_file()]
    status = sh(["dvc", "status"], r, env)
    assert "synthesize_apis" in status.stdout  # stale, so the next repro runs it
    again = sh(["dvc", "repro"], r, env)
    assert again.returncode == 0 and "Running stage 'synthesize_apis'" in again.stdout, again.stdout + again.stderr
    assert "synthesize_apis" in (r / "dvc.lock").read_text() and (r / "data/api_pool.parquet").exists()
    assert not list(r.rglob("*.tmp")) and [p.name for p in (r / "data").glob(".*")] in ([], [".gitignore"])  # no temporaries left registered or not
