"""The warm-up stage as one function: build the policy, order the data by difficulty, fine-tune (iTool arXiv 2501.09766 §3.1).

``warmup_sft(train, difficulty, policy_cfg, sft_cfg, seed)`` returns the trained model and
its tokenizer (the stage saves them as ``checkpoints/warmup/``), the loss curves and
the metrics. The from-scratch tokenizer is rebuilt from the same rows and params as in
``score_difficulty`` (the BPE trainer is deterministic), so the token budget — and hence
which rows are skipped as too long — agrees between the two stages.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from toolkiln.policy.config import PolicyConfig, SFTConfig
from toolkiln.policy.examples import build_examples
from toolkiln.policy.model import build_policy, lora_config, resolve_device
from toolkiln.policy.sft import BUCKETS, curriculum, loss_curves, resume_fingerprint, train_sft, weights_digest

log = logging.getLogger(__name__)


@dataclass
class WarmupResult:
    model: Any
    tokenizer: Any
    curves: list[dict]
    metrics: dict
    pretrain_curves: list[dict] = field(default_factory=list)


def bucket_lookup(difficulty: pl.DataFrame, ids: list[str]) -> dict[str, str | None]:
    """id -> bucket (None: left out of the scored subset); every id must be in the difficulty table."""
    if "id" not in difficulty.columns or "bucket" not in difficulty.columns:
        raise ValueError(f"difficulty table: got columns {difficulty.columns}; expected at least 'id' and 'bucket'")
    lookup = dict(zip(difficulty["id"].cast(pl.Utf8).to_list(), difficulty["bucket"].to_list()))
    missing = [i for i in ids if i not in lookup]
    if missing:
        raise ValueError(f"difficulty table: {len(missing)} training dialogs are missing from it (e.g. {missing[:3]}); "
                         "rerun score_difficulty on the same data/train.parquet")
    return lookup


def stratified_cap(buckets: list[str], cap: int, seed: int) -> list[int]:
    """At most ``cap`` indices, bucket shares preserved; all indices when cap is 0 or not binding."""
    n = len(buckets)
    if cap <= 0 or cap >= n:
        return list(range(n))
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for b in BUCKETS:
        members = [i for i, x in enumerate(buckets) if x == b]
        take = round(cap * len(members) / n)
        keep.extend(int(i) for i in rng.permutation(members)[:take])
    return sorted(keep)


def pretrain(model, tok, rows: list[dict], policy: PolicyConfig, *, seed: int) -> tuple[Any, dict, list[dict]]:
    """Next-token pre-training on whole rendered training dialogs, in a seeded random order (see PretrainConfig)."""
    p = policy.pretrain
    rng = np.random.default_rng(seed + 11)
    need = p.steps * p.batch_size
    pick = np.concatenate([rng.permutation(len(rows)) for _ in range(-(-need // len(rows)))])[:need]
    examples, stats = build_examples([rows[i] for i in pick], tok, policy.render, "full", desc="render pre-training")
    cfg = SFTConfig(order="random", batch_size=p.batch_size, learning_rate=p.learning_rate, warmup_ratio=0.05,
                    logging_steps=max(1, p.steps // 20), eval_samples=0)
    order = curriculum(["easy"] * len(examples), "random", 1, seed, lengths=[e["n_tokens"] for e in examples],
                       batch_size=p.batch_size)
    model, res = train_sft(model, tok, [examples[i] for i in order], cfg, seed=seed, device=resolve_device(policy.device),
                           max_steps=p.steps, max_length=policy.render.max_length, assistant_only=False)
    return model, {**res.metrics, "render": stats}, loss_curves(res.log_history)


def warmup_sft(train: pl.DataFrame, difficulty: pl.DataFrame, policy: PolicyConfig, cfg: SFTConfig, *, seed: int,
               order: str | None = None, resume_dir: str | Path | None = None,
               checkpoint_steps: int = 0) -> WarmupResult:
    """Build the policy and fine-tune it on ``train`` in ``cfg.order`` (or ``order``) of the difficulty buckets.

    ``resume_dir`` + ``checkpoint_steps``: resumable checkpoints in a subfolder named by a fingerprint of the
    initial weights, the configs, the seed and the ordered examples (:func:`toolkiln.policy.sft.train_sft`): a
    crashed run started again with the same inputs resumes; anything else starts afresh."""
    t0 = time.perf_counter()
    order = order or cfg.order
    all_rows = train.to_dicts()
    # the tokenizer sees the same rows as score_difficulty's, so both stages agree on token budgets
    model, tok, info = build_policy(policy, all_rows, seed)
    lookup = bucket_lookup(difficulty, [str(r["id"]) for r in all_rows])
    rows = [r for r in all_rows if lookup[str(r["id"])] is not None]
    if not rows:
        raise ValueError("warmup_sft: no training dialog has a difficulty bucket; expected score_difficulty output "
                         "for this data/train.parquet")
    unscored = len(all_rows) - len(rows)
    pretrain_metrics: dict = {}
    pretrain_curves: list[dict] = []
    if info["kind"] == "scratch" and policy.pretrain.steps:
        model, pretrain_metrics, pretrain_curves = pretrain(model, tok, all_rows, policy, seed=seed)
    examples, stats = build_examples(rows, tok, policy.render, cfg.context, desc="render")
    buckets = [lookup[ex["id"]] for ex in examples]
    rng = np.random.default_rng(seed + 7)
    held = set(int(i) for i in rng.permutation(len(examples))[:min(cfg.eval_samples, max(0, len(examples) - 1))])
    pool = [i for i in range(len(examples)) if i not in held]
    pool = [pool[i] for i in stratified_cap([buckets[i] for i in pool], cfg.max_samples, seed)]
    idx = curriculum([buckets[i] for i in pool], order, cfg.epochs, seed,
                     lengths=[examples[i]["n_tokens"] for i in pool], batch_size=cfg.batch_size * cfg.grad_accum)
    ordered = [examples[pool[i]] for i in idx]
    device = resolve_device(policy.device)
    run_dir = None
    if resume_dir is not None and checkpoint_steps > 0:
        fp = resume_fingerprint(weights_digest(model), policy.model_dump(), cfg.model_dump(), seed, order,
                                [(e["id"], e["n_tokens"]) for e in ordered], sorted(held))
        run_dir = Path(resume_dir) / f"warmup_sft-{fp}"
    model, res = train_sft(model, tok, ordered, cfg, seed=seed, device=device,
                           eval_examples=[examples[i] for i in sorted(held)], peft_config=lora_config(policy),
                           max_length=policy.render.max_length, top_layers=policy.train_layers,
                           resume_dir=run_dir, save_steps=checkpoint_steps, precision=policy.precision)
    counts = {b: sum(1 for i in pool if buckets[i] == b) for b in BUCKETS}
    metrics = {"policy": info, "render": stats, "order": order, "dialogs": len(pool), "eval_dialogs": len(held),
               "unscored_dialogs": unscored, "pretrain": pretrain_metrics,
               "bucket_dialogs": counts, **res.metrics, "seconds": time.perf_counter() - t0}
    return WarmupResult(model, tok, loss_curves(res.log_history), metrics, pretrain_curves)
