"""The round's preference update: SimPO or DPO with TRL, through LoRA merged into a plain checkpoint (iTool arXiv 2501.09766 §3.3; docs/architecture.md#rounds).

* ``simpo`` — TRL's ``CPOTrainer`` (``trl.experimental.cpo``) with ``loss_type="simpo"`` and
  ``cpo_alpha=0`` (no NLL term): SimPO's length-normalised, reference-free margin loss,
  ``beta`` 2.5 and ``simpo_gamma`` 0.5 as iTool uses them;
* ``dpo`` — TRL's ``DPOTrainer``; with a LoRA adapter and no reference model, TRL scores the
  reference with the adapter switched off, i.e. the round's input policy.

A pair's prompt is the rendered prompt plus the shared prefix of the two siblings; its
completions are the fragments, or the fragments continued by their best rollouts
(``preference.completion``). After training the adapter is merged and the round's
checkpoint is a plain HF folder, like the warm-up's, so evaluation and the next round
load it the same way.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from toolkiln.itool.config import PreferenceConfig

log = logging.getLogger(__name__)


def preference_rows(pairs: pl.DataFrame, completion: str) -> list[dict[str, str]]:
    """Pair rows -> ``{"prompt", "chosen", "rejected"}`` text examples (TRL's standard preference format)."""
    out = []
    for r in pairs.iter_rows(named=True):
        prefix = r["prefix"] or ""
        chosen, rejected = r["chosen"], r["rejected"]
        if completion == "rollout":
            for side in ("chosen", "rejected"):
                roll = r[f"{side}_rollout"] or ""
                if not roll.startswith(prefix + r[side]):
                    raise ValueError(
                        f"pair of dialog {r['dialog_id']}: the {side} rollout does not continue the "
                        "shared prefix and its fragment"
                    )
            chosen, rejected = r["chosen_rollout"][len(prefix) :], r["rejected_rollout"][len(prefix) :]
        out.append({"prompt": r["prompt"] + prefix, "chosen": chosen, "rejected": rejected})
    return out


@dataclass
class PreferenceResult:
    model: Any
    curves: list[dict]
    metrics: dict


def _lora(cfg: PreferenceConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules),
        task_type="CAUSAL_LM",
    )


def _curves(history: list[dict]) -> list[dict]:
    keys = {
        "loss": "loss",
        "rewards/margins": "reward_margin",
        "rewards/accuracies": "reward_accuracy",
        "learning_rate": "learning_rate",
    }
    rows = []
    for h in history:
        row = {dst: float(h[src]) for src, dst in keys.items() if src in h}
        if row and "step" in h:
            rows.append({"step": int(h["step"]), **row})
    return rows


CURVE_COLUMNS = ("step", "loss", "reward_margin", "reward_accuracy", "learning_rate")


def curves_csv(rows: list[dict]) -> str:
    """The training curves as CSV for DVC's plots (one row per logged step)."""
    lines = [",".join(CURVE_COLUMNS)]
    lines += [",".join("" if r.get(c) is None else str(r[c]) for c in CURVE_COLUMNS) for r in rows]
    return "\n".join(lines) + "\n"


def train_preference(
    model,
    tokenizer,
    pairs: pl.DataFrame,
    cfg: PreferenceConfig,
    *,
    seed: int,
    device: str = "cpu",
    precision: str = "float32",
) -> PreferenceResult:
    """One preference update of ``model`` on the round's pairs; returns the merged model, curves and metrics.
    ``precision="bfloat16"``: mixed precision (TRL's forward under bf16 autocast, fp32 weights)."""
    import torch
    from datasets import Dataset

    if pairs.height == 0:
        raise ValueError(
            "preference_opt: the round has 0 preference pairs; expected at least one (see the "
            "mcts_pairs metrics: pair filters, value gaps)"
        )
    rows = preference_rows(pairs, cfg.completion)
    data = Dataset.from_list(rows)
    cpu = device == "cpu"
    tmp = tempfile.TemporaryDirectory(prefix="toolkiln-pref-")
    common = dict(
        output_dir=tmp.name,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.1,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps > 0 else -1,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="no",
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=cpu,
        bf16=precision == "bfloat16",
        fp16=False,
        max_length=cfg.max_length,
        beta=cfg.beta,
        dataloader_num_workers=0,
        disable_tqdm=True,
        activation_checkpointing=False,
        remove_unused_columns=False,
    )
    torch.manual_seed(seed)
    if cfg.algorithm == "simpo":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TRL flags the experimental namespace on import
            from trl.experimental.cpo import CPOConfig, CPOTrainer
        args = CPOConfig(**common, loss_type="simpo", cpo_alpha=0.0, simpo_gamma=cfg.gamma)
        trainer = CPOTrainer(
            model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=_lora(cfg)
        )
    else:
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(**common)
        trainer = DPOTrainer(
            model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=_lora(cfg)
        )
    t0 = time.perf_counter()
    out = trainer.train()
    seconds = time.perf_counter() - t0
    history = list(trainer.state.log_history)
    steps = int(trainer.state.global_step)
    curves = _curves(history)
    trained = trainer.model
    if hasattr(trained, "merge_and_unload"):
        trained = trained.merge_and_unload()
    trained = trained.to("cpu")
    del trainer
    tmp.cleanup()
    margins = [c["reward_margin"] for c in curves if "reward_margin" in c]
    accs = [c["reward_accuracy"] for c in curves if "reward_accuracy" in c]
    metrics = {
        "algorithm": cfg.algorithm,
        "completion": cfg.completion,
        "pairs": pairs.height,
        "train_loss_mean": float(out.training_loss),
        "train_steps": steps,
        "train_seconds": seconds,
        "final_reward_margin": margins[-1] if margins else math.nan,
        "final_reward_accuracy": accs[-1] if accs else math.nan,
    }
    return PreferenceResult(trained, curves, metrics)


def preference_round(
    pairs: pl.DataFrame,
    checkpoint: str | Path,
    policy,
    cfg: PreferenceConfig,
    *,
    seed: int,
    round_: int,
    allow_empty: bool = False,
) -> tuple[PreferenceResult, Any]:
    """The ``preference_opt`` stage: (result, tokenizer) of the round's update of ``checkpoint``. With no pairs
    and ``allow_empty`` the input policy is carried over unchanged (``metrics["updated"]`` is False)."""
    from toolkiln.itool.rounds import load_checkpoint, round_seed

    model, tok, device = load_checkpoint(checkpoint, policy)
    if pairs.height == 0 and allow_empty:
        # An empty round is allowed only when itool.pairs.min_pairs is 0; it is recorded, never silent.
        res = PreferenceResult(
            model,
            [],
            {"algorithm": cfg.algorithm, "completion": cfg.completion, "pairs": 0, "train_steps": 0, "updated": False},
        )
    else:
        res = train_preference(
            model, tok, pairs, cfg, seed=round_seed(seed, round_), device=device, precision=policy.precision
        )
        res.metrics["updated"] = True
    res.metrics["round"] = round_
    return res, tok


def save_round(model, tokenizer, folder: str | Path, input_checkpoint: str | Path) -> None:
    """The merged model as a plain HF folder, with the call style of the checkpoint it was trained from."""
    from toolkiln.policy.model import save_policy
    from toolkiln.policy.render import CallStyle

    save_policy(model, tokenizer, folder)
    CallStyle.load(input_checkpoint).save(folder)
