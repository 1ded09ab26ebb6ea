"""A DVC remote shares artifacts and checkpoints between machines: ``dvc push`` from one clone, ``dvc pull``
into a fresh one, and the second clone has every output and nothing to rerun.

The remote is a local directory standing in for the team's shared one (S3, SSH, a NAS mount: the same
commands with another URL, see the README). The tiny repository has a data file and a checkpoint-like
folder, both DVC-cached outputs of one stage.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

STAGE = """
import json, pathlib, sys
n = int(sys.argv[1])
pathlib.Path("data").mkdir(exist_ok=True)
pathlib.Path("data/table.json").write_text(json.dumps([i * i for i in range(n)]))
ck = pathlib.Path("checkpoints/model"); ck.mkdir(parents=True, exist_ok=True)
(ck / "weights.bin").write_bytes(bytes(range(256)) * n)
(ck / "config.json").write_text(json.dumps({"n": n}))
"""


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{cmd}: {p.stdout[-2000:]}{p.stderr[-2000:]}"
    return p.stdout


@pytest.mark.slow
def test_push_from_one_clone_pull_into_another(tmp_path):
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
        "DVC_NO_ANALYTICS": "1",
    }
    origin, a, b, remote = tmp_path / "origin.git", tmp_path / "laptop", tmp_path / "gpu-box", tmp_path / "remote"
    _run(["git", "init", "-q", "--bare", str(origin)], tmp_path, env)
    _run(["git", "clone", "-q", str(origin), str(a)], tmp_path, env)
    (a / "make.py").write_text(STAGE)
    (a / "params.yaml").write_text("n: 40\n")
    (a / "dvc.yaml").write_text(
        "stages:\n  make:\n    cmd: python make.py 40\n    deps: [make.py]\n    params: [n]\n"
        "    outs: [data/table.json, checkpoints/model]\n"
    )
    _run(["dvc", "init", "-q"], a, env)
    # the team's shared remote, recorded in .dvc/config (committed); credentials would go in `--local` config
    _run(["dvc", "remote", "add", "-d", "shared", str(remote)], a, env)
    _run(["dvc", "repro"], a, env)
    _run(["git", "add", "-A"], a, env)
    _run(["git", "commit", "-qm", "pipeline + lock"], a, env)
    _run(["git", "push", "-q", "origin", "HEAD"], a, env)
    pushed = _run(["dvc", "push"], a, env)
    assert "pushed" in pushed.lower() and any(remote.rglob("*"))

    _run(["git", "clone", "-q", str(origin), str(b)], tmp_path, env)
    assert not (b / "data/table.json").exists() and not (b / "checkpoints/model").exists()
    _run(["dvc", "pull"], b, env)
    assert (b / "data/table.json").read_bytes() == (a / "data/table.json").read_bytes()
    assert (b / "checkpoints/model/weights.bin").read_bytes() == (a / "checkpoints/model/weights.bin").read_bytes()
    assert "up to date" in _run(["dvc", "status"], b, env)
    # the second machine runs nothing: the pulled outputs match dvc.lock
    assert "Running stage" not in _run(["dvc", "repro"], b, env)
