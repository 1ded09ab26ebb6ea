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


def repro_stage(stage: str, repo_dir: str | Path = ".", force: bool = False) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).parent / "dvc"), "repro", "--single-item", stage]
    if force:
        cmd.append("--force")
    return subprocess.run(cmd, cwd=repo_dir, env=dvc_env(), capture_output=True, text=True)
