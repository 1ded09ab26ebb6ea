"""Easy-to-hard warm-up SFT with TRL's ``SFTTrainer`` (iTool arXiv 2501.09766 §3.1; docs/architecture.md#training).

iTool warms the policy up on its training data ordered by difficulty: the easy bucket
first, then medium, then hard. Here the order is the dataset order — each bucket's
``epochs`` passes (reshuffled per pass, easy -> medium -> hard) concatenated into one
dataset that the trainer reads sequentially under a single LR schedule. The ``random``
ablation trains on exactly the same multiset of examples in a global shuffle per pass,
so the two differ in order only.

TRL is used as is: conversational examples (``messages`` + ``tools``), the chat
template's ``{% generation %}`` spans with ``assistant_only_loss=True``, and the only
hook we change is the sampler (``train_sampling_strategy="sequential"``,
``shuffle_dataset=False``) that keeps our order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from toolkiln.policy.config import SFTConfig
from toolkiln.policy.examples import backbone_and_head

log = logging.getLogger(__name__)

BUCKETS = ("easy", "medium", "hard")


def curriculum(buckets: Sequence[str], order: str, epochs: int, seed: int, *, lengths: Sequence[int] | None = None,
               batch_size: int = 1, window: int = 16) -> list[int]:
    """Example indices in training order: each index ``epochs`` times, reshuffled per pass.

    With ``lengths``, the stream of a bucket (all its passes) is cut into windows of
    ``window`` batches whose members are sorted by length before batching, and the
    window's batches are shuffled: far less padding, and the curriculum (which is per
    bucket) survives. A bucket's last batch is completed with random repeats from the
    same bucket, so no batch ever straddles two buckets (at most ``batch_size - 1``
    extra examples per bucket).
    """
    rng = np.random.default_rng(seed)
    unknown = set(buckets) - set(BUCKETS)
    if unknown:
        raise ValueError(f"curriculum: got bucket labels {sorted(unknown)}; expected only {list(BUCKETS)}")
    if order == "easy_to_hard":
        groups = [np.array([i for i, x in enumerate(buckets) if x == b], dtype=np.int64) for b in BUCKETS]
    elif order == "random":
        groups = [np.arange(len(buckets), dtype=np.int64)]
    else:
        raise ValueError(f"sft.order: got {order!r}; expected 'easy_to_hard' or 'random'")
    out: list[int] = []
    for members in groups:
        if not len(members):
            continue
        stream = np.concatenate([rng.permutation(members) for _ in range(epochs)])
        if lengths is not None and batch_size > 1:
            stream = _length_grouped(stream, members, lengths, batch_size, window, rng)
        out.extend(int(i) for i in stream)
    return out


def _length_grouped(stream: np.ndarray, members: np.ndarray, lengths: Sequence[int], batch_size: int, window: int,
                    rng: np.random.Generator) -> np.ndarray:
    short = -len(stream) % batch_size
    if short:
        stream = np.concatenate([stream, rng.choice(members, size=short)])
    span = batch_size * window
    out: list[int] = []
    for s in range(0, len(stream), span):
        chunk = sorted(stream[s:s + span].tolist(), key=lambda i: lengths[i])
        batches = [chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size)]
        for k in rng.permutation(len(batches)):
            out.extend(batches[k])
    return np.array(out, dtype=np.int64)


@dataclass
class TrainResult:
    log_history: list[dict] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def decoder_layers(model) -> Any:
    """The ``nn.ModuleList`` of decoder blocks of a HF causal LM (Llama, Qwen, Mistral, ... : ``model.model.layers``)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = getattr(getattr(base, "model", None), "layers", None)
    if layers is None:
        raise ValueError(f"{type(base).__name__}: cannot find its decoder layers (expected model.model.layers)")
    return layers


def freeze_below(model, top_layers: int) -> dict:
    """Train only the top ``top_layers`` decoder blocks (and the final norm); freeze the rest, embeddings included.

    No parameter below the lowest trainable block requires a gradient and the inputs
    do not either, so autograd records nothing there: the backward pass stops at that
    block. On a CPU that is the difference between paying backward for 30 layers and
    for a handful (``bench/sft_speed.py``). ``top_layers=0`` leaves the model as it is.
    """
    layers = decoder_layers(model)
    n = len(layers)
    if top_layers <= 0 or top_layers >= n:
        return {"trainable_layers": n, "frozen_layers": 0}
    for p in model.parameters():
        p.requires_grad_(False)
    for block in list(layers)[n - top_layers:]:
        for p in block.parameters():
            p.requires_grad_(True)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    norm = getattr(base.model, "norm", None)
    if norm is not None:
        for p in norm.parameters():
            p.requires_grad_(True)
    return {"trainable_layers": top_layers, "frozen_layers": n - top_layers}


def _trainer_class():
    from trl import SFTTrainer

    class CompactHeadSFTTrainer(SFTTrainer):
        """``SFTTrainer`` whose loss projects only the supervised positions through the LM head.

        TRL's fused head scores every position on devices without Triton (CPU among
        them), i.e. a (tokens x vocabulary) matmul — for SmolLM2 a third of the forward
        FLOPs — although assistant-only loss needs the ~10% of positions that are
        supervised. The loss (sum of target-token NLL over the number of supervised
        tokens), the token accuracy and the token count it logs are TRL's; only which
        rows reach the head changes. This is the one method we override. A model wrapped
        for multi-process training takes TRL's path unchanged (see the comment inside).
        """

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            import torch

            from toolkiln.policy.model import autocast

            # Under `accelerate launch` the model arrives wrapped (DistributedDataParallel): its gradient sync needs the
            # wrapper's own forward, which the backbone/head split would bypass, so TRL's loss (the same value) runs.
            wrapped = model is not self.accelerator.unwrap_model(model)
            if wrapped or return_outputs or "labels" not in inputs or "attention_mask" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            mode = "train" if self.model.training else "eval"
            body, head = backbone_and_head(model)
            kwargs = {k: v for k, v in inputs.items() if k not in ("labels",)}
            kwargs["use_cache"] = False
            # Accelerate autocasts model.forward under bf16; the backbone and head are called directly here.
            with autocast(str(inputs["input_ids"].device), "bfloat16" if self.args.bf16 else "float32"):
                hidden = body(**kwargs).last_hidden_state[:, :-1]  # position t predicts token t+1
                labels = inputs["labels"][:, 1:]
                mask = labels != -100
                logits = head(hidden[mask]).float()  # (n_supervised, V)
            target = labels[mask]
            nll = torch.nn.functional.cross_entropy(logits, target, reduction="sum")
            n = mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = nll / torch.as_tensor(n).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            with torch.no_grad():
                n_valid = int(mask.sum())
                correct = int((logits.argmax(-1) == target).sum())
            self._metrics[mode]["mean_token_accuracy"].append(correct / n_valid if n_valid else 0.0)
            if mode == "train":
                self._total_train_tokens += int(inputs["attention_mask"].sum())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            return loss

    return CompactHeadSFTTrainer


def _dataset(examples: Sequence[Mapping]):
    from datasets import Dataset

    return Dataset.from_list([{"messages": list(ex["messages"]), "tools": ex["tools"]} for ex in examples])


def train_sft(model, tokenizer, examples: Sequence[Mapping], cfg: SFTConfig, *, seed: int, device: str = "cpu",
              eval_examples: Sequence[Mapping] = (), peft_config: Any = None, max_steps: int = 0,
              max_length: int | None = None, work_dir: str | Path | None = None,
              callbacks: Sequence[Any] = (), assistant_only: bool = True, top_layers: int = 0,
              compact_head: bool = True, resume_dir: str | Path | None = None,
              save_steps: int = 0, precision: str = "float32") -> tuple[Any, TrainResult]:
    """Train on ``examples`` in the given order (one pass) and return (trained model, logs).

    ``resume_dir`` + ``save_steps``: a checkpoint (weights, optimizer, scheduler, RNG states, data position) every
    ``save_steps`` optimizer steps under ``resume_dir``, the last one kept; a run that finds one there resumes
    from it (``metrics["resumed_from_step"]``) and ends where an uninterrupted run would, and a finished run
    deletes the folder. The caller makes ``resume_dir`` specific to the run's inputs and settings
    (:func:`resume_fingerprint`): a checkpoint of another run must never be resumed.

    ``examples`` are already in curriculum order; the trainer must not reshuffle them.
    ``assistant_only=False`` trains on every token (the from-scratch policy's language-model pre-training).
    ``top_layers``: train only the top k decoder blocks (:func:`freeze_below`; with LoRA, adapters go on those
    blocks only); 0 = all. ``compact_head``: the LM head sees only supervised positions (same loss, less compute).
    ``precision="bfloat16"``: mixed precision (bf16 autocast, fp32 weights and optimizer state).
    """
    import torch
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    if not examples:
        raise ValueError("train_sft: got 0 training examples; expected at least one")
    from transformers.trainer_utils import get_last_checkpoint

    steps = max_steps or cfg.max_steps
    resuming = resume_dir is not None and save_steps > 0
    tmp = tempfile.TemporaryDirectory(prefix="toolkiln-sft-") if work_dir is None and not resuming else None
    out_dir = str(resume_dir) if resuming else str(work_dir) if work_dir is not None else tmp.name
    last = get_last_checkpoint(out_dir) if resuming and Path(out_dir).is_dir() else None
    cpu = device == "cpu"
    has_eval = len(eval_examples) > 0
    args = TRLSFTConfig(
        output_dir=out_dir, per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        per_device_eval_batch_size=cfg.batch_size, learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio, weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm,
        num_train_epochs=1, max_steps=steps if steps > 0 else -1, logging_steps=cfg.logging_steps,
        logging_first_step=True, eval_strategy="steps" if has_eval else "no", eval_steps=cfg.eval_steps,
        save_strategy="steps" if resuming else "no", save_steps=save_steps or 500, save_total_limit=1,
        report_to="none", seed=seed, data_seed=seed, use_cpu=cpu,
        # bf16 only when asked: ~2x fp32 on CPUs with AMX / AVX512-BF16, many times slower on CPUs without them.
        bf16=precision == "bfloat16", fp16=False, assistant_only_loss=assistant_only,
        # TRL turns activation checkpointing on by default; a small policy has no memory to save and pays ~1/3 more compute.
        activation_checkpointing=False, max_length=max_length, shuffle_dataset=False,
        train_sampling_strategy="sequential", dataloader_num_workers=0, include_num_input_tokens_seen="non_padding",
        disable_tqdm=False,
    )
    n_layers = len(decoder_layers(model))
    frozen = {"trainable_layers": n_layers, "frozen_layers": 0}
    if peft_config is not None and 0 < top_layers < n_layers:
        peft_config.layers_to_transform = list(range(n_layers - top_layers, n_layers))
        frozen = {"trainable_layers": top_layers, "frozen_layers": n_layers - top_layers}
    elif peft_config is None:
        frozen = freeze_below(model, top_layers)
    trainer_cls = _trainer_class() if compact_head and assistant_only else SFTTrainer
    trainer = trainer_cls(model=model, args=args, train_dataset=_dataset(examples),
                          eval_dataset=_dataset(eval_examples) if has_eval else None, processing_class=tokenizer,
                          peft_config=peft_config, callbacks=list(callbacks) or None)
    n_trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    if last:
        log.info("resuming from %s", last)
    t0 = time.perf_counter()
    out = trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - t0
    history = list(trainer.state.log_history)
    tokens = float(trainer.state.num_input_tokens_seen or 0)
    metrics = {"train_loss_mean": float(out.training_loss), "train_seconds": seconds, "train_steps": int(trainer.state.global_step),
               "train_examples": len(examples), "train_tokens": tokens,
               "train_tokens_per_s": tokens / seconds if seconds > 0 else math.nan,
               "trainable_params": int(n_trainable), **frozen,
               "resumed_from_step": int(last.rsplit("-", 1)[1]) if last else 0}
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    if evals:
        metrics["final_eval_loss"] = float(evals[-1])
    trained = trainer.model
    if cpu:
        trained = trained.to("cpu")
    del trainer
    if tmp is not None:
        tmp.cleanup()
    if resuming:
        shutil.rmtree(out_dir, ignore_errors=True)  # finished: nothing left to resume
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return trained, TrainResult(history, metrics)


def weights_digest(model) -> str:
    """SHA-256 of a model's parameters and buffers in name order (which weights a run starts from)."""
    import torch

    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def resume_fingerprint(*parts: Any) -> str:
    """A short hash of everything that decides a training run (configs, seed, the ordered examples), naming its
    resume folder: a changed input or setting starts afresh instead of resuming someone else's checkpoint."""
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]


def loss_curves(history: Sequence[Mapping]) -> list[dict]:
    """One row per logged step: step, train loss / token accuracy / lr, and validation loss where measured."""
    rows: dict[int, dict] = {}
    for h in history:
        step = int(h.get("step", 0))
        row = rows.setdefault(step, {"step": step})
        for src, dst in (("loss", "train_loss"), ("mean_token_accuracy", "train_token_accuracy"),
                         ("learning_rate", "learning_rate"), ("eval_loss", "eval_loss"),
                         ("eval_mean_token_accuracy", "eval_token_accuracy"), ("epoch", "progress")):
            if src in h:
                row[dst] = float(h[src])
    return [rows[s] for s in sorted(rows) if len(rows[s]) > 1]
