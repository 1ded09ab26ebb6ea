"""Losses and schedules of ADNT and the baselines (ADNT arXiv 2208.02947 §3.3).

Reverse cross entropy (Wang et al., "Symmetric Cross Entropy for Robust Learning
with Noisy Labels", ICCV 2019) swaps the roles of prediction ``p`` and label
``q``: ``RCE = -sum_k p_k log q_k``. With a one-hot ``q`` the ``log 0`` terms are
clamped to ``A`` (< 0), so ``RCE = -A (1 - p_y) = (-A / 2) * ||p - q||_1`` — a scaled
MAE, bounded and therefore tolerant to wrong (pseudo-)labels.

ADNT's *adaptive* reverse cross entropy (ARCE), as reconstructed here::

    L_ARCE = w(t) * mean_i mask_i * [alpha * CE(p_i, y^_i) + beta * RCE(p_i, y^_i)]
    w(t)   = w_max * (2 / (1 + exp(-gamma * q)) - 1),  q = (t - t0) / (1 - t0)

``mask_i`` keeps pseudo-labels whose confidence passed the threshold; the mean
runs over the whole target batch (FixMatch-style), so the loss also grows with
the share of confident targets. ``w`` starts at 0 when pseudo-labels are first
used (``t0``) and saturates at ``w_max``: early pseudo-labels are the noisiest.
``alpha = beta = 1`` by default (symmetric cross entropy's plain form): CE fits
fast, the bounded RCE term limits what a wrong label can cost.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as Fn


def rce(logits: torch.Tensor, target: torch.Tensor, A: float = -4.0) -> torch.Tensor:
    """Per-sample reverse cross entropy ``-sum_k p_k log q_k`` with ``log 0 := A``. (B, K), (B,) -> (B,)."""
    p = torch.softmax(logits, dim=1)
    log_q = torch.full_like(p, A).scatter(1, target[:, None], 0.0)  # log 1 = 0 at the label
    return -(p * log_q).sum(dim=1)


def mae(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample ``||p - onehot(y)||_1``; ``rce == (-A / 2) * mae``."""
    p = torch.softmax(logits, dim=1)
    return (p - Fn.one_hot(target, p.shape[1]).to(p.dtype)).abs().sum(dim=1)


def sigmoid_ramp(progress: float, gamma: float = 10.0) -> float:
    """``2 / (1 + exp(-gamma p)) - 1`` for ``p`` in [0, 1] (0 -> 0, rises to ~1); clamps ``p``."""
    p = min(max(progress, 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


def pseudo_weight(step: int, total: int, start: float, w_max: float, schedule: str = "adaptive",
                  gamma: float = 10.0) -> float:
    """Weight of the pseudo-label loss at ``step`` of ``total``: 0 before ``start`` (a fraction of training),
    then ``w_max`` times a sigmoid ramp (adaptive) or ``w_max`` at once (fixed)."""
    t = step / max(total, 1)
    if t < start:
        return 0.0
    if schedule == "fixed":
        return w_max
    if schedule != "adaptive":
        raise ValueError(f"weight_schedule: got {schedule!r}; expected 'adaptive' or 'fixed'")
    return w_max * sigmoid_ramp((t - start) / max(1.0 - start, 1e-9), gamma)


def pseudo_label_loss(logits: torch.Tensor, pseudo: torch.Tensor, mask: torch.Tensor, *, kind: str = "arce",
                      alpha: float = 1.0, beta: float = 1.0, A: float = -4.0) -> torch.Tensor:
    """Masked pseudo-label loss averaged over the batch: ARCE's ``alpha*CE + beta*RCE`` or plain CE (ablation)."""
    per = Fn.cross_entropy(logits, pseudo, reduction="none")
    if kind == "arce":
        per = alpha * per + beta * rce(logits, pseudo, A)
    elif kind != "ce":
        raise ValueError(f"loss: got {kind!r}; expected 'arce' or 'ce'")
    return (per * mask.to(per.dtype)).sum() / max(len(per), 1)


def _norm(v: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    # ||v|| has a NaN gradient at v = 0 (e.g. two domains' dead ReLU units); eps keeps it finite
    return (v.pow(2).sum() + eps).sqrt()


def moment_distance(features: list[torch.Tensor]) -> torch.Tensor:
    """M3SDA's moment distance (Peng et al. 2019, k=2): mean over domain pairs of
    ``||E[h_i] - E[h_j]||_2 + ||E[h_i^2] - E[h_j^2]||_2``."""
    m1 = [f.mean(0) for f in features]
    m2 = [(f * f).mean(0) for f in features]
    terms = [_norm(m1[i] - m1[j]) + _norm(m2[i] - m2[j])
             for i in range(len(features)) for j in range(i + 1, len(features))]
    if not terms:
        raise ValueError("moment_distance needs at least two domains")
    return torch.stack(terms).mean()
