"""Confidence-thresholded pseudo-labels for the unlabelled target (ADNT arXiv 2208.02947 §3.3).

Pseudo-labels are the argmax of the current model's prediction on every target
training image, kept where the max softmax reaches the threshold; they are
recomputed every ``refresh_every`` steps, so labels that become confident later
join and labels the model changes its mind about are corrected or dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PseudoLabels:
    label: torch.Tensor  # (N,) argmax class
    confidence: torch.Tensor  # (N,) max softmax
    mask: torch.Tensor  # (N,) bool: confidence >= threshold

    @property
    def coverage(self) -> float:
        return float(self.mask.float().mean()) if len(self.mask) else 0.0

    def precision(self, y_true: torch.Tensor) -> float:
        """Share of kept pseudo-labels that are right (diagnostics only; never used for training)."""
        kept = self.mask.sum()
        return float((self.label[self.mask] == y_true[self.mask]).sum() / kept) if kept else float("nan")


def pseudo_labels_from_logits(logits: torch.Tensor, threshold: float) -> PseudoLabels:
    prob = torch.softmax(logits, dim=1)
    conf, label = prob.max(dim=1)
    return PseudoLabels(label, conf, conf >= threshold)


@torch.no_grad()
def predict_logits(model, X: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """Logits of ``model`` (a callable image -> logits) over ``X`` in eval mode, batched."""
    was = [m.training for m in model.modules()] if isinstance(model, torch.nn.Module) else None
    if isinstance(model, torch.nn.Module):
        model.eval()
    out = torch.cat([model(X[i:i + batch]) for i in range(0, len(X), batch)])
    if was is not None:
        for m, w in zip(model.modules(), was):
            m.train(w)
    return out


def refresh(model, X_target: torch.Tensor, threshold: float, batch: int = 500) -> PseudoLabels:
    return pseudo_labels_from_logits(predict_logits(model, X_target, batch), threshold)


def with_symmetric_noise(pl: PseudoLabels, rate: float, n_classes: int, gen: torch.Generator) -> PseudoLabels:
    """A copy of ``pl`` in which each kept label is, with probability ``rate``, replaced by one of the other
    ``n_classes - 1`` classes drawn uniformly (symmetric label noise, the setting robust losses such as RCE are
    for). Draws come from ``gen`` only, so a run stays reproducible."""
    if rate <= 0:
        return pl
    flip = (torch.rand(len(pl.label), generator=gen) < rate) & pl.mask
    shift = torch.randint(1, n_classes, (len(pl.label),), generator=gen)  # never the same class
    label = torch.where(flip, (pl.label + shift) % n_classes, pl.label)
    return PseudoLabels(label, pl.confidence, pl.mask)
