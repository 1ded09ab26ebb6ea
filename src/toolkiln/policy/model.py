"""The iTool policy model (arXiv 2501.09766 §3; docs/architecture.md#training): one code path for both kinds of policy.

* from scratch (default): a small ``LlamaForCausalLM`` sized by ``policy.scratch`` and a
  byte-level BPE tokenizer trained on the rendered training corpus;
* a local Hugging Face causal-LM folder (``policy.base_model``), loaded with
  ``local_files_only`` (nothing is downloaded), optionally trained through a LoRA
  adapter (``peft``) that is merged before saving.

Either way the result is a (model, tokenizer) pair whose tokenizer carries the chat
template, saved as a plain HF folder that ``AutoModelForCausalLM`` /
``AutoTokenizer.from_pretrained`` reload — which is how every later stage sees it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from toolkiln.policy.config import PolicyConfig, ScratchModelConfig
from toolkiln.policy.render import (CallStyle, Markers, build_chat_template, dialog_messages, markers_for, render_text,
                                    row_tools)
from toolkiln.policy.tokenizer import train_bpe_tokenizer

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def autocast(device: str, precision: str):
    """The autocast context of a policy precision: bfloat16 autocast on ``device``'s type, or nothing for float32."""
    import contextlib

    import torch

    if precision == "float32":
        return contextlib.nullcontext()
    if precision != "bfloat16":
        raise ValueError(f"precision: got {precision!r}; expected 'float32' or 'bfloat16'")
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def configure_threads(cfg: PolicyConfig) -> None:
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)


def policy_chat_template(cfg: PolicyConfig, markers: Markers = Markers()) -> str:
    r = cfg.render
    return build_chat_template(markers, render_system=r.system_prompt == "dialog",
                               tool_description_chars=r.tool_description_chars,
                               first_sentence=r.tool_description == "first_sentence",
                               param_descriptions=r.param_descriptions,
                               description_first=r.tool_line == "description_first")


def base_chat_template(cfg: PolicyConfig, tokenizer) -> str:
    """This project's tool rendering (``policy.render``) in ``tokenizer``'s own turn markers (ChatML for SmolLM2)."""
    return policy_chat_template(cfg, markers_for(tokenizer))


def corpus_texts(rows: Sequence[Mapping], chat_template: str, limit: int) -> list[str]:
    """Whole rendered dialogs (every turn) of the first ``limit`` rows: what the BPE learns its merges from."""
    texts = []
    for row in rows[:limit]:
        texts.append(render_text(chat_template, dialog_messages(row, "full"), row_tools(row)))
    return texts


def build_tokenizer(cfg: PolicyConfig, rows: Sequence[Mapping]):
    """The tokenizer of a from-scratch policy, trained on the training rows' rendered text."""
    template = policy_chat_template(cfg)
    return train_bpe_tokenizer(corpus_texts(rows, template, cfg.tokenizer.max_corpus_samples), cfg.tokenizer, template)


def scratch_model(size: ScratchModelConfig, tokenizer, seed: int):
    """A randomly initialised Llama sized by ``size`` for ``tokenizer``'s vocabulary."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=size.hidden_size, intermediate_size=size.intermediate_size,
        num_hidden_layers=size.n_layers, num_attention_heads=size.n_heads, num_key_value_heads=size.n_kv_heads,
        max_position_embeddings=size.max_position_embeddings, rope_theta=size.rope_theta,
        tie_word_embeddings=size.tie_embeddings, attention_dropout=size.dropout,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                               bos_token_id=None, do_sample=False)
    return model


def load_pretrained(path: str | Path, cfg: PolicyConfig):
    """A local HF causal-LM folder -> (model, tokenizer) with this project's chat template where needed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.chat_template_utils import has_generation_markers

    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise ValueError(f"policy.base_model: {str(path)!r} is not a local Hugging Face model folder (no config.json); "
                         "models are never downloaded")
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    template = getattr(tok, "chat_template", None)
    if cfg.chat_template == "toolkiln" or not template or not has_generation_markers(template):
        # this project's rendering (tool signatures, {% generation %} spans) in the model's own turn markers
        tok.chat_template = base_chat_template(cfg, tok)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def build_policy(cfg: PolicyConfig, rows: Sequence[Mapping], seed: int) -> tuple[Any, Any, dict]:
    """The policy before training: (model, tokenizer, facts about it for the stage metrics)."""
    configure_threads(cfg)
    if cfg.base_model:
        model, tok = load_pretrained(cfg.base_model, cfg)
        kind = "pretrained"
    else:
        tok = build_tokenizer(cfg, rows)
        model = scratch_model(cfg.scratch, tok, seed)
        kind = "scratch"
    info = {"kind": kind, "n_params": sum(p.numel() for p in model.parameters()), "vocab_size": len(tok)}
    log.info("policy: %s, %.2fM parameters, vocabulary %d", kind, info["n_params"] / 1e6, info["vocab_size"])
    return model, tok, info


def lora_config(cfg: PolicyConfig):
    """The peft LoRA config when ``policy.lora.enabled``, else None."""
    if not cfg.lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM")


def save_policy(model, tokenizer, folder: str | Path, cfg: PolicyConfig | None = None) -> None:
    """Write a plain HF folder (LoRA adapters merged) that ``from_pretrained`` reloads.

    With ``cfg``, also the call style it was trained with (``toolkiln_call_style.json``),
    which evaluation reads to render earlier call turns the way training did.
    """
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    if cfg is not None:
        CallStyle.from_render(cfg.render).save(folder)
