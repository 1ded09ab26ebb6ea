"""Complexity guidance (ToolACE arXiv 2409.00920 §3.2, eq. 1).

ToolACE scores each sample by the policy model's mean token NLL on the target
response, ``H(y|x) = -1/|y| sum log p(y_i | x, y_<i)``: too low means the model
already knows it (too easy), too high means it cannot learn from it yet (too
hard). The band is calibrated on a small prior set, and out-of-band samples are
regenerated — a query needing more APIs or worded further from the API
description when too easy, a simpler one when too hard.

Here a *scorer* is any ``rows -> scores`` callable over dialog rows
(``toolkiln.schema`` format), higher = harder; the policy's target NLL is plugged
in through it. :func:`structural_score` is a cheap built-in stand-in (usable
before a policy exists). :class:`ComplexityGuide` turns scores into the direction
a dialog's complexity level should move.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from toolkiln.dialogs.config import ComplexityConfig

Scorer = Callable[[Sequence[dict]], Sequence[float]]


def structural_score(rows: Sequence[dict]) -> list[float]:
    """A proxy for the target NLL: candidates to rule out, calls and arguments in the target turn, dialog length."""
    out = []
    for r in rows:
        calls = json.loads(r["calls"]) if isinstance(r["calls"], str) else r["calls"]
        target = [c for c in calls if c.get("turn") == r["target_turn"]]
        n_args = sum(len(c.get("arguments") or {}) for c in target)
        out.append(0.25 * r["n_candidates"] + 0.8 * len(target) + 0.15 * r["n_turns"] + 0.2 * n_args)
    return out


def make_scorer(cfg: ComplexityConfig) -> Scorer | None:
    if not cfg.enabled or cfg.scorer == "none":
        return None
    if cfg.scorer == "structural":
        return structural_score
    raise ValueError(f"complexity.scorer: got {cfg.scorer!r}; expected 'none' or 'structural'")


@dataclass
class ComplexityGuide:
    """Band + direction: +1 (too easy: raise the level), -1 (too hard: lower it), 0 (in band)."""

    scorer: Scorer
    cfg: ComplexityConfig
    band: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.cfg.band:
            self.band = (float(self.cfg.band[0]), float(self.cfg.band[1]))

    def score(self, rows: Sequence[dict]) -> list[float]:
        scores = [float(s) for s in self.scorer(rows)]
        if len(scores) != len(rows):
            raise ValueError(f"complexity scorer returned {len(scores)} scores for {len(rows)} dialogs")
        return scores

    def calibrate(self, prior_scores: Sequence[float]) -> tuple[float, float]:
        """The band from the prior set's score quantiles (unless params fixed it)."""
        if self.band is None:
            lo, hi = np.quantile(np.asarray(prior_scores, dtype=float), self.cfg.calibrate_quantiles)
            self.band = (float(lo), float(hi))
        return self.band

    def direction(self, score: float) -> int:
        assert self.band is not None, "calibrate() first"
        if score < self.band[0]:
            return 1
        if score > self.band[1]:
            return -1
        return 0
