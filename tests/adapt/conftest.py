"""Tiny fixtures for the ADNT tests: synthetic digit-like domains that a CNN learns in a few steps."""

import numpy as np
import pytest
import torch

from toolkiln.adapt.config import ADNTConfig
from toolkiln.adapt.digits import Domain


def synthetic_domain(name: str, n_train: int, n_test: int, seed: int, tint: tuple[float, float, float]) -> Domain:
    """Class c = a bright 4x4 block at one of 10 positions, on a domain-specific tinted noise background."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = np.arange(n) % 10
        X = rng.uniform(0, 0.3, (n, 28, 28, 3)) + np.asarray(tint)
        for i, c in enumerate(y):
            r, q = divmod(int(c), 5)
            X[i, 4 + 12 * r:8 + 12 * r, 2 + 5 * q:6 + 5 * q] += 0.6
        return (np.clip(X, 0, 1) * 255).astype(np.uint8), y.astype(np.int64)

    Xtr, ytr = make(n_train)
    Xte, yte = make(n_test)
    return Domain(name, Xtr, ytr, Xte, yte)


@pytest.fixture
def tiny_domains():
    tints = {"a": (0.0, 0.0, 0.0), "b": (0.3, 0.0, 0.1), "c": (0.0, 0.2, 0.3)}
    return {n: synthetic_domain(n, 60, 30, i, t) for i, (n, t) in enumerate(tints.items())}


@pytest.fixture
def tiny_cfg():
    torch.set_num_threads(1)
    return ADNTConfig.model_validate({
        "model": {"conv_channels": [4, 8], "feature_dim": 16},
        "train": {"steps": 12, "batch_size": 8, "eval_batch": 64},
        "method": {"refresh_every": 3, "pseudo_start": 0.25, "pseudo_threshold": 0.2},
        "skada": {"max_epochs": 1, "batch_size": 16},
        "protocol": {"seeds": [0]},
        "data": {"gap_steps": 5},
    })
