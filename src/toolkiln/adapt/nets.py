"""The shared backbone of every method (ADNT arXiv 2208.02947 §3; a LeNet-like CNN as in Digits-Five work).

``FeatureExtractor`` F maps an RGB image to a feature ``h``; ``Classifier`` C maps
``h`` to logits. There is deliberately no BatchNorm: source-only training never
forwards target images, so BatchNorm's running statistics would give the
adaptation methods a free AdaBN-style advantage and blur what each method adds.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as Fn

N_CLASSES = 10


class FeatureExtractor(nn.Module):
    def __init__(self, image_size: int = 28, channels: tuple[int, int] = (16, 32), feature_dim: int = 128):
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(3, c1, 5)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        side = ((image_size - 4) // 2 - 4) // 2
        self.fc = nn.Linear(c2 * side * side, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, S, S) -> (B, d)
        x = Fn.max_pool2d(Fn.relu(self.conv1(x)), 2)
        x = Fn.max_pool2d(Fn.relu(self.conv2(x)), 2)
        return Fn.relu(self.fc(x.flatten(1)))


class Classifier(nn.Module):
    def __init__(self, feature_dim: int = 128, n_classes: int = N_CLASSES, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(feature_dim, n_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, d) -> (B, K)
        return self.fc(self.drop(h))


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.lam * g, None


def grad_reverse(x: torch.Tensor, lam: float) -> torch.Tensor:
    """Identity forward, gradient times ``-lam`` backward (DANN's GRL)."""
    return _GradReverse.apply(x, lam)


class DomainDiscriminator(nn.Module):
    def __init__(self, feature_dim: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, d) -> (B,) logit of "source"
        return self.net(h).squeeze(-1)


def to_tensor(X: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float in [-1, 1]."""
    return torch.from_numpy(X).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0).contiguous()


def make_backbone(cfg, image_size: int) -> tuple[FeatureExtractor, Classifier]:
    """F and C from a ModelConfig."""
    F = FeatureExtractor(image_size, tuple(cfg.conv_channels), cfg.feature_dim)
    return F, Classifier(cfg.feature_dim, N_CLASSES, cfg.dropout)
