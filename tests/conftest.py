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


@pytest.fixture(scope="session")
def static_encoder(tmp_path_factory) -> Path:
    """The verifier's static encoder, distilled from the packaged MiniLM as the distill_encoder stage does
    (the whole vocabulary: tens of seconds, once per test session)."""
    from toolkiln.embed import distill_static, save_static

    folder = tmp_path_factory.mktemp("static_encoder")
    save_static(folder, *distill_static())
    return folder
