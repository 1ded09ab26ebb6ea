"""Read the DAG of record (``dvc.yaml``) so Prefect runs exactly DVC's stages, in DVC's order.

Prefect never decides what is stale: each task runs ``dvc repro --single-item <stage>``,
and DVC skips a stage whose deps, params and outs are unchanged. The flow only adds
scheduling, retries, logs and a UI on top (docs/architecture.md#tracking).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import networkx as nx


def stage_graph(repo_dir: str | Path = ".") -> nx.DiGraph:
    """Stage-name DAG with edges ``upstream -> downstream``."""
    from dvc.repo import Repo

    with Repo(str(repo_dir)) as repo:
        g = repo.index.graph  # edges point from a stage to the stages it depends on
        out = nx.DiGraph()
        for st in g.nodes:
            if getattr(st, "is_data_source", False) or not getattr(st, "cmd", None):
                continue  # .dvc-tracked data files are not stages to run
            out.add_node(st.name)
        for a, b in g.edges:
            if a.name in out and b.name in out:
                out.add_edge(b.name, a.name)
    return out


def stage_order(repo_dir: str | Path = ".", targets: list[str] | None = None) -> list[list[str]]:
    """Topological generations: stages in one generation are independent of each other."""
    g = stage_graph(repo_dir)
    if targets:
        keep = set()
        for t in targets:
            if t not in g:
                raise KeyError(f"no stage {t!r} in dvc.yaml (have {sorted(g)})")
            keep |= nx.ancestors(g, t) | {t}
        g = g.subgraph(keep)
    return [sorted(gen) for gen in nx.topological_generations(g)]


def dvc_env() -> dict:
    """The venv's executables first on PATH, so ``python stages/...`` is the project's interpreter."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _repro_cmd(stage: str, force: bool) -> list[str]:
    cmd = [str(Path(sys.executable).parent / "dvc"), "repro", "--single-item", stage]
    if force:
        cmd.append("--force")
    return cmd


def repro_stage(stage: str, repo_dir: str | Path = ".", force: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(_repro_cmd(stage, force), cwd=repo_dir, env=dvc_env(), capture_output=True, text=True)


def repro_stage_streaming(
    stage: str, repo_dir: str | Path, on_line: Callable[[str], None], force: bool = False
) -> tuple[int, bool]:
    """``dvc repro --single-item <stage>``, handing each line of its output (the stage's log
    included) to ``on_line`` as it is written. Returns (exit status, whether the stage ran)."""
    env = {**dvc_env(), "PYTHONUNBUFFERED": "1"}  # the stage's log lines as they happen, not at exit
    ran = False
    with subprocess.Popen(
        _repro_cmd(stage, force),
        cwd=repo_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            ran = ran or line.startswith(f"Running stage '{stage}'")
            on_line(line)
    return proc.returncode, ran


def stage_metrics_files(stage: str, repo_dir: str | Path = ".") -> list[Path]:
    """The metrics files ``dvc.yaml`` declares for ``stage`` (a round's too: ``eval_round@2``)."""
    from toolkiln.dvcfile import metrics_files, resolved_stages

    return [Path(repo_dir) / f for f in metrics_files(resolved_stages(repo_dir).get(stage, {}))]
