"""``dvc.yaml``'s stages as DVC itself sees them: ``foreach`` groups expanded, ``${...}`` filled in.

The preference rounds are one ``foreach`` group per step over ``rounds.chain`` (``mcts_pairs_round@1``,
``mcts_pairs_round@2`` ...; README "Rounds"), so code that reads stage definitions (the dependency
check, the Prefect flow's metrics tables, the sweep) must not read the raw YAML: a round stage has no
``cmd`` there, only a template. This asks DVC's own resolver, with the repository's ``params.yaml`` as
the template variables, so the names and paths are exactly the ones ``dvc repro`` runs.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def resolved_stages(repo_dir: str | Path = ".", dvc_yaml: str = "dvc.yaml") -> dict[str, dict]:
    """``{stage name: its definition}`` with every template resolved, in ``dvc.yaml``'s order."""
    from dvc.parsing import DataResolver
    from dvc.repo import Repo

    root = Path(repo_dir).resolve()
    raw = yaml.safe_load((root / dvc_yaml).read_text()) or {}
    # uninitialized: the fixture repositories of the tests (and a fresh clone before `dvc init`) have no .dvc
    with Repo(str(root), uninitialized=True) as repo:
        return DataResolver(repo, str(root), raw).resolve().get("stages", {})


def metrics_files(stage: dict) -> list[str]:
    """The metrics paths one (resolved) stage declares."""
    return [m if isinstance(m, str) else next(iter(m)) for m in stage.get("metrics", []) or []]
