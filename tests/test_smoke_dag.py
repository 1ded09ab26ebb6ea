"""The whole DAG, end to end, under the smoke profile: a real `dvc repro` in a copy of the repo.

profiles/smoke.yaml and every profiles/smoke.<area>.yaml are deep-merged over params.yaml
(the same merge users get from `python -m toolkiln.config merge`), then every stage of
dvc.yaml runs for real — synthesis, dialogs, verification, training, evaluation, ADNT —
on miniature sizes. A second `dvc repro` must execute nothing.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from toolkiln.config import deep_merge, load_params, read_yaml_mapping

pytestmark = pytest.mark.slow  # the whole DAG: minutes; `make test` runs it, `make test-fast` does not


def _files(repo: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=repo,
                         capture_output=True, text=True, check=True).stdout.split("\n")
    return [f for f in out if f and (repo / f).is_file()]


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
    (r / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    load_params(r / "params.yaml")  # the merged profile must itself be valid
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "TOOLKILN_PIPELINE_ID": "smoke", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost"}
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q", "-f"], ["git", "add", "-A"], ["git", "commit", "-qm", "smoke"]):
        p = subprocess.run(cmd, cwd=r, env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    first = subprocess.run(["dvc", "repro"], cwd=r, env=env, capture_output=True, text=True, timeout=1500)
    return r, env, first


def test_smoke_dag_runs_every_stage(smoke_repo):
    r, env, first = smoke_repo
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-6000:]
    stages = yaml.safe_load((r / "dvc.yaml").read_text())["stages"]
    for name in stages:
        assert f"Running stage '{name}" in first.stdout, f"stage {name} did not run"
    lock = yaml.safe_load((r / "dvc.lock").read_text())["stages"]
    for name, st in lock.items():
        for out in st.get("outs", []):
            assert (r / out["path"]).exists(), f"{name}: missing output {out['path']}"


def test_smoke_dag_second_repro_is_a_noop(smoke_repo):
    r, env, first = smoke_repo
    assert first.returncode == 0
    again = subprocess.run(["dvc", "repro"], cwd=r, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "Running stage" not in again.stdout, again.stdout[-3000:]


def test_smoke_dag_metrics_readable(smoke_repo):
    r, env, first = smoke_repo
    assert first.returncode == 0
    shown = subprocess.run(["dvc", "metrics", "show", "--json"], cwd=r, env=env, capture_output=True, text=True)
    assert shown.returncode == 0
    data = json.loads(shown.stdout)
    assert data, "no DVC metrics recorded"
    pool = json.loads((r / "reports/synthesize_apis/metrics.json").read_text())
    assert pool["n_apis"] > 0 and pool["gx"]["pool"]
