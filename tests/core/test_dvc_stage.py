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
    for rel in ("stages/synthesize_apis.py", "expectations/api_pool.json", "src/toolkiln/gxsuite.py"):
        (r / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(repo_root / rel, r / rel)
    shutil.copytree(repo_root / "src/toolkiln/synth", r / "src/toolkiln/synth", ignore=shutil.ignore_patterns("__pycache__"))
    tree = r / "data" / "api_context_tree"
    tree.mkdir(parents=True)
    for slug, dom in TINY.items():
        (tree / f"{slug}.yaml").write_text(yaml.safe_dump(dom, sort_keys=False))
    stage = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]["synthesize_apis"]
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
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
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
    params["synth"]["evolution"]["max_steps"] = 2
    (r / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = sh(["dvc", "status"], r, env)
    assert "synth.evolution.max_steps" in status.stdout or "modified" in status.stdout
    third = sh(["dvc", "repro"], r, env)
    assert third.returncode == 0 and "Running stage 'synthesize_apis'" in third.stdout

    # a param outside the stage's declared params does not rerun it
    params["evaluate"] = params.get("evaluate", {})
    params["llm"]["max_retries"] = 7
    (r / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    fourth = sh(["dvc", "repro"], r, env)
    assert fourth.returncode == 0 and "Running stage" not in fourth.stdout

    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{r / 'mlflow.db'}")
    client = MlflowClient()
    exp = client.get_experiment_by_name("toolkiln")
    runs = client.search_runs([exp.experiment_id])
    parents = [x for x in runs if x.data.tags.get("toolkiln.kind") == "pipeline"]
    stages = [x for x in runs if x.data.tags.get("toolkiln.stage") == "synthesize_apis"]
    assert len(parents) == 1 and parents[0].data.tags["toolkiln.pipeline_id"] == "test-pipeline"
    assert len(stages) == 2 and all(s.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for s in stages)
    assert stages[0].data.metrics["n_apis"] > 50 and "apis_per_s.generate" in stages[0].data.metrics
    assert stages[0].data.params["synth.n_apis"] == "120"
    arts = {a.path for a in client.list_artifacts(stages[0].info.run_id)}
    assert {"diversity.png", "metrics.json", "data_docs"} <= arts
    docs = {a.path for a in client.list_artifacts(stages[0].info.run_id, "data_docs")}
    assert "data_docs/index.html" in docs and any(not a.endswith(".html") for a in docs)  # the linked pages too


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
    env = {**env, "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(repo_root),
           "PREFECT_LOGGING_LEVEL": "INFO", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    code = ("import json; from flows.run import pipeline; "
            f"print('RESULT', json.dumps(pipeline({str(r)!r})))")
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert 'RESULT [{"stage": "synthesize_apis", "ran": true}]' in first.stdout
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert 'RESULT [{"stage": "synthesize_apis", "ran": false}]' in second.stdout, second.stderr[-3000:]


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
