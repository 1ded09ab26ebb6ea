"""Fixtures for the verification tests: a few hand-written valid dialogs of every type."""

from __future__ import annotations

import json

import polars as pl
import pytest

from toolkiln.verify.config import VerifyConfig
from toolkiln.testing.examples import example_dialogs


@pytest.fixture(scope="session")
def clean() -> pl.DataFrame:
    return example_dialogs(40, seed=0)


@pytest.fixture
def cfg() -> VerifyConfig:
    return VerifyConfig()


def row_of(df: pl.DataFrame, type_: str) -> dict:
    return df.filter(pl.col("type") == type_).row(0, named=True)


def edit(row: dict, **changes) -> dict:
    """A copy of a dialog row with JSON columns edited through callables (``messages=lambda m: ...``)."""
    out = dict(row)
    for col, fn in changes.items():
        if callable(fn):
            value = json.loads(row[col]) if col in ("messages", "tools", "calls") else row[col]
            value = fn(value)
            out[col] = json.dumps(value) if col in ("messages", "tools", "calls") else value
        else:
            out[col] = fn
    return out
