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
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (reference records nobody here wrote)."""
    p = REPO.parent / "shared" / "data"
    if not p.exists():
        pytest.skip(f"{p} not present in this checkout's parent")
    return p
