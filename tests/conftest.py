"""Shared test settings: offline, quiet, deterministic thread counts."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def toolace_sample() -> Path:
    """A JSON file of real ToolACE records (reference data nobody here wrote, not shipped with the repo), named
    by ``$TOOLKILN_TOOLACE_SAMPLE``; tests that need it are skipped without it."""
    import os

    p = Path(os.environ.get("TOOLKILN_TOOLACE_SAMPLE", ""))
    if not p.is_file():
        pytest.skip("no ToolACE sample: set TOOLKILN_TOOLACE_SAMPLE to a JSON file of ToolACE records")
    return p
