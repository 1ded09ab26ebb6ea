"""Contrary-attention domain fusion, ADNT's CADM module (ADNT arXiv 2208.02947 §3.2, reconstructed).

Each feature ``h_i`` attends over the features of the *other* domains in the
batch (or in a memory of them) and adds the message back with a residual::

    S_ij = cos(W_q h_i, W_k h_j) / tau          (B, M), j from another domain
    A    = softmax(-S)   contrary  |  softmax(S)   ordinary
    h~_i = h_i + gamma * sum_j A_ij W_v h_j

Ordinary attention attends to similar items — mostly the same class — and so
reinforces category information. The contrary variant attends to *dissimilar*
items of other domains, so the message carries those domains' style rather than
this item's class, and the fused feature is moved towards the other domains
("domain movement"); the classifier, trained on fused features, must stay
discriminative in spite of the mixed-in style.

Choices the abstract leaves open, made here:
- contrary weights are ``softmax(-S)`` (not a renormalised ``1 - A``): it keeps the
  temperature meaningful and the weights a proper distribution;
- similarity is cosine over learned projections, so the temperature alone sets
  the sharpness;
- same-domain items are masked, so fusion only ever moves a feature towards
  *other* domains; a row without any other-domain item is left unchanged;
- ``gamma`` is a fixed hyper-parameter, not learned, so the network cannot
  switch the fusion off.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as Fn


def attention_weights(q: torch.Tensor, k: torch.Tensor, same_domain: torch.Tensor, *, contrary: bool,
                      temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention of queries ``q`` (B, a) over keys ``k`` (M, a), masking ``same_domain`` (B, M).

    Returns ``A`` (B, M) whose rows sum to 1 (or 0 where no key is allowed) and
    ``has_key`` (B,), which rows had at least one allowed key.
    """
    S = Fn.normalize(q, dim=-1) @ Fn.normalize(k, dim=-1).T / temperature  # (B, M)
    if contrary:
        S = -S
    S = S.masked_fill(same_domain, float("-inf"))
    has_key = (~same_domain).any(dim=1)  # (B,)
    # rows that are fully masked would be NaN after softmax; give them a dummy score then zero them
    S = torch.where(has_key[:, None], S, torch.zeros_like(S))
    A = torch.softmax(S, dim=1) * has_key[:, None]
    return A, has_key


class DomainFusion(nn.Module):
    """CADM: ``h~ = h + gamma * A V`` with contrary (or ordinary) cross-domain attention."""

    def __init__(self, feature_dim: int, attn_dim: int = 64, mode: str = "contrary", temperature: float = 0.1,
                 gamma: float = 0.5):
        super().__init__()
        if mode not in ("contrary", "ordinary"):
            raise ValueError(f"DomainFusion mode: got {mode!r}; expected 'contrary' or 'ordinary'")
        self.mode, self.temperature, self.gamma = mode, temperature, gamma
        self.W_q = nn.Linear(feature_dim, attn_dim, bias=False)
        self.W_k = nn.Linear(feature_dim, attn_dim, bias=False)
        self.W_v = nn.Linear(feature_dim, feature_dim, bias=False)

    def forward(self, h: torch.Tensor, domain: torch.Tensor, memory: torch.Tensor | None = None,
                memory_domain: torch.Tensor | None = None) -> torch.Tensor:
        """Fuse ``h`` (B, d) with domain ids ``domain`` (B,).

        Keys/values are the batch itself, or ``memory`` (M, d) with ``memory_domain``
        (M,) — e.g. stored source features when only target items are at hand.
        """
        if memory is None:
            memory, memory_domain = h, domain
        A, _ = attention_weights(self.W_q(h), self.W_k(memory), domain[:, None] == memory_domain[None, :],
                                 contrary=self.mode == "contrary", temperature=self.temperature)
        return h + self.gamma * A @ self.W_v(memory)  # (B, d)
