"""skada's deep DA methods as an external reference (docs/architecture.md#domain-adaptation; skada BSD-3, skorch-based).

The same backbone (``nets``), splits and seeds as our methods; skada pools the
sources into one labelled set (``sample_domain`` > 0 per source) against the
target (``sample_domain`` < 0, labels hidden as -1) and trains with its
``DomainBalancedDataLoader`` (each batch: ``batch_size`` source + ``batch_size``
target images). An epoch walks ``max(#source, #target)`` pairs, so
``max_epochs`` sets the compute; the default gives about as many source images per
run as our methods' ``steps * batch_size * n_sources``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from toolkiln.adapt.nets import make_backbone

SKADA_NAMES = {"skada_source_only": "SourceOnly", "skada_dann": "DANN", "skada_mdd": "MDD",
               "skada_deepcoral": "DeepCoral"}


class SkadaBackbone(nn.Module):
    """F then C, with the ``sample_weight`` keyword skada passes to the base module."""

    def __init__(self, F: nn.Module, C: nn.Module):
        super().__init__()
        self.feature, self.head = F, C

    def forward(self, X, sample_weight=None):
        return self.head(self.feature(X))


def build_skada(method: str, cfg, image_size: int, n_sources: int):
    """A configured (unfitted) skada net for ``method`` (one of SKADA_NAMES)."""
    try:
        import skada.deep as sd
    except ImportError as exc:  # skada.deep needs skorch
        raise ImportError(f"{method}: skada.deep is not importable ({exc}); install skorch") from None
    if method not in SKADA_NAMES:
        raise ValueError(f"unknown skada method {method!r}; expected one of {sorted(SKADA_NAMES)}")
    F, C = make_backbone(cfg.model, image_size)
    common = dict(max_epochs=cfg.skada.max_epochs, batch_size=cfg.skada.batch_size, lr=cfg.train.lr,
                  optimizer=torch.optim.Adam, optimizer__weight_decay=cfg.train.weight_decay,
                  train_split=None, verbose=0, device="cpu")
    module, name = SkadaBackbone(F, C), SKADA_NAMES[method]
    if name == "SourceOnly":
        return sd.SourceOnly(module, layer_name="feature", **common)
    if name == "DANN":
        return sd.DANN(module, layer_name="feature", reg=cfg.skada.reg, num_features=cfg.model.feature_dim, **common)
    if name == "MDD":
        return sd.MDD(module, layer_name="feature", reg=cfg.skada.reg, num_features=cfg.model.feature_dim,
                      n_classes=10, **common)
    return sd.DeepCoral(module, layer_name="feature", reg=cfg.skada.reg, **common)


def skada_inputs(task) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled X, y (-1 on the target) and sample_domain (sources 1..S, target -(S+1))."""
    S = len(task.Xs)
    X = torch.cat(list(task.Xs) + [task.Xt]).numpy()
    y = np.concatenate([t.numpy() for t in task.ys] + [np.full(len(task.Xt), -1)])
    dom = np.concatenate([np.full(len(x), i + 1) for i, x in enumerate(task.Xs)] + [np.full(len(task.Xt), -(S + 1))])
    return X.astype(np.float32), y.astype(np.int64), dom.astype(np.int64)


def run_skada(method: str, task, cfg, seed: int) -> float:
    """Fit skada's ``method`` on ``task`` and return its target test accuracy."""
    torch.manual_seed(seed)
    np.random.seed(seed)  # skorch/skada draw from numpy's global RNG in places
    net = build_skada(method, cfg, task.Xt.shape[-1], len(task.Xs))
    X, y, dom = skada_inputs(task)
    net.fit(X, y, sample_domain=dom)
    X_test = task.Xt_test.numpy().astype(np.float32)
    pred = net.predict(X_test, sample_domain=np.full(len(X_test), -(len(task.Xs) + 1)), allow_source=False)
    return float((np.asarray(pred) == task.yt_test.numpy()).mean())
