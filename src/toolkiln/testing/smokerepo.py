"""A throw-away copy of the repository under the smoke profile, for end-to-end runs (tests, UI screenshots).

The tracked and untracked-but-not-ignored files are copied (generated data, reports and
checkpoints are left out: the run rebuilds them), ``profiles/smoke*.yaml`` are deep-merged over
``params.yaml`` (the merge ``python -m toolkiln.config merge`` does), and the copy becomes its own
git + DVC repository so ``dvc repro`` and the Prefect flow run there exactly as in a checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from toolkiln.config import deep_merge, load_params, read_yaml_mapping

GENERATED = ("data/", "reports/", "checkpoints/")
KEPT_DATA = ("data/api_context_tree/",)


def repo_files(repo: Path) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return [f for f in out if f and (repo / f).is_file()]


def make_smoke_repo(src: Path, dest: Path, tracking_uri: str | None = None, pipeline_id: str = "smoke") -> dict:
    """Copy ``src`` to ``dest`` under the smoke profile; return the environment to run it with.

    ``tracking_uri`` (e.g. an MLflow server's URL) replaces the store the stages log to; by
    default it is a SQLite file inside the copy.
    """
    for f in repo_files(src):
        if f.startswith(GENERATED) and not f.startswith(KEPT_DATA):
            continue
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / f, dest / f)
    params = read_yaml_mapping(src / "params.yaml")
    for prof in sorted((src / "profiles").glob("smoke*.yaml")):
        params = deep_merge(params, read_yaml_mapping(prof))
    params["tracking"]["tracking_uri"] = tracking_uri or f"sqlite:///{dest / 'mlflow.db'}"
    params["tracking"]["artifact_dir"] = str(dest / "mlartifacts")
    from toolkiln.policy.base import packaged_gguf

    params["policy"]["base_gguf"] = str(packaged_gguf())  # the copy has no .venv; DVC takes an absolute dependency
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    load_params(dest / "params.yaml")  # the merged profile must itself be valid
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": f"{src / 'src'}:{src}",
        "TOOLKILN_PIPELINE_ID": pipeline_id,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
    }
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q", "-f"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "smoke"],
    ):
        p = subprocess.run(cmd, cwd=dest, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed in {dest}: {p.stderr}")
    return env
