"""The round's preference update: SimPO or DPO with TRL, through LoRA merged into a plain checkpoint (iTool arXiv 2501.09766 §3.3; docs/architecture.md#rounds).

* ``simpo`` — TRL's ``CPOTrainer`` (``trl.experimental.cpo``) with ``loss_type="simpo"`` and
  ``cpo_alpha=0`` (no NLL term): SimPO's length-normalised, reference-free margin loss,
  ``beta`` 2.5 and ``simpo_gamma`` 0.5 as iTool uses them;
* ``dpo`` — TRL's ``DPOTrainer``; with a LoRA adapter and no reference model, TRL scores the
  reference with the adapter switched off, i.e. the round's input policy.

Two levers beyond iTool's recipe, both off by default: ``sft_weight`` adds an NLL term on the
chosen completion (CPO's ``cpo_alpha``; DPO's ``sft`` loss), and ``max_text_share`` caps the
share of pairs whose chosen answer is a text reply (:func:`balance_pairs`).

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


def balance_pairs(pairs: pl.DataFrame, max_text_share: float) -> tuple[pl.DataFrame, dict[str, int]]:
    """Cap the pairs whose chosen rollout is a text reply at ``max_text_share`` of the pairs kept.

    Text-preferring pairs beyond the cap are dropped, the smallest value gap first (ties: dialog id, then
    the rejected fragment, so the choice is deterministic); call-preferring pairs are all kept. Returns the
    kept pairs in their original order and the counts (``pairs_text``, ``pairs_call``, ``pairs_dropped``).
    """
    from toolkiln.callparse import is_text_reply

    text = [is_text_reply(r) for r in pairs["chosen_rollout"].fill_null("").to_list()]
    n_text = sum(text)
    n_call = pairs.height - n_text
    if max_text_share >= 1 or n_text == 0:
        keep_text = n_text
    elif max_text_share <= 0:
        keep_text = 0
    else:  # keep k text pairs with k / (k + n_call) <= share
        keep_text = min(n_text, math.floor(max_text_share * n_call / (1 - max_text_share) + 1e-9))
    counts = {"pairs_text": keep_text, "pairs_call": n_call, "pairs_dropped": n_text - keep_text}
    if keep_text == n_text:
        return pairs, counts
    ranked = (
        pairs.with_row_index("_row")
        .with_columns(_text=pl.Series(text), _gap=pl.col("chosen_value") - pl.col("rejected_value"))
        .filter(pl.col("_text"))
        .sort(["_gap", "dialog_id", "rejected"], descending=[True, False, False])
    )
    kept_rows = set(ranked["_row"].head(keep_text).to_list())
    mask = [not t or i in kept_rows for i, t in enumerate(text)]
    return pairs.filter(pl.Series(mask)), counts


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
    balance: dict[str, int] | None = None,
) -> PreferenceResult:
    """One preference update of ``model`` on the round's pairs; returns the merged model, curves and metrics.
    ``precision="bfloat16"``: mixed precision (TRL's forward under bf16 autocast, fp32 weights). ``balance``:
    the counts of the :func:`balance_pairs` call that already made ``pairs`` (it is then not repeated here)."""
    import torch
    from datasets import Dataset

    if balance is None:
        pairs, balance = balance_pairs(pairs, cfg.max_text_share)
    if pairs.height == 0 and balance["pairs_dropped"] == 0:
        raise ValueError(
            "preference_opt: the round has 0 preference pairs; expected at least one (see the "
            "mcts_pairs metrics: pair filters, value gaps)"
        )
    if pairs.height == 0:
        raise ValueError(
            f"preference_opt: preference.max_text_share {cfg.max_text_share} left 0 of "
            f"{balance['pairs_dropped']} pairs (every chosen rollout is a text reply); expected at least one"
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
        args = CPOConfig(**common, loss_type="simpo", cpo_alpha=cfg.sft_weight, simpo_gamma=cfg.gamma)
        trainer = CPOTrainer(
            model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=_lora(cfg)
        )
    else:
        from trl import DPOConfig, DPOTrainer

        extra = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, cfg.sft_weight]} if cfg.sft_weight else {}
        args = DPOConfig(**common, **extra)
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
        **balance,
        "sft_weight": cfg.sft_weight,
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
    (none left after :func:`balance_pairs` included) and ``allow_empty`` the input policy is carried over
    unchanged (``metrics["updated"]`` is False)."""
    from toolkiln.itool.rounds import load_checkpoint, round_seed

    model, tok, device = load_checkpoint(checkpoint, policy)
    kept, balance = balance_pairs(pairs, cfg.max_text_share)
    if kept.height == 0 and allow_empty:
        # An empty round is allowed only when itool.pairs.min_pairs is 0; it is recorded, never silent.
        res = PreferenceResult(
            model,
            [],
            {
                "algorithm": cfg.algorithm,
                "completion": cfg.completion,
                "pairs": 0,
                **balance,
                "train_steps": 0,
                "updated": False,
            },
        )
    else:
        res = train_preference(
            model,
            tok,
            kept,
            cfg,
            seed=round_seed(seed, round_),
            device=device,
            precision=policy.precision,
            balance=balance,
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
