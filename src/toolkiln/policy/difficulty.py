"""Per-sample difficulty: target perplexity + structural complexity, bucketed (iTool arXiv 2501.09766 §3.1; docs/architecture.md#training).

iTool ranks training samples by the perplexity of the ground-truth response under a
reference model. A from-scratch policy has no reference model yet, so by default the
perplexity comes from *cross-fitted probes*: the samples are split into k folds, a small
probe (the policy's own model code at a smaller size, trained by the same TRL path)
is trained on k-1 folds and scores the held-out fold — no sample is scored by a model
that saw it. With ``perplexity: base_model`` a given pretrained policy scores every
sample directly, as in iTool.

Structural complexity counts what makes a tool call hard to get right: candidate APIs
(distractors to rule out), calls in the target turn, dialog turns, the nesting depth of
argument values and the number of arguments. Each signal is turned into a percentile
rank, so they combine on one scale regardless of units:
``combined = w * rank(nll) + (1 - w) * mean(rank(structural features))``, and the
combined score's quantiles cut easy / medium / hard.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from toolkiln.policy.config import DifficultyConfig, PolicyConfig, ScratchModelConfig, SFTConfig
from toolkiln.policy.examples import build_examples, target_nll
from toolkiln.policy.model import build_tokenizer, configure_threads, load_pretrained, resolve_device, scratch_model
from toolkiln.policy.sft import BUCKETS, train_sft

log = logging.getLogger(__name__)

STRUCTURAL = ("n_candidates", "n_target_calls", "n_turns", "nesting", "n_args")


# -- structure ---------------------------------------------------------------------------------------------------------


def value_depth(v: Any) -> int:
    """0 for a scalar, 1 + the deepest element for a list/dict."""
    if isinstance(v, Mapping):
        return 1 + max((value_depth(x) for x in v.values()), default=0)
    if isinstance(v, (list, tuple)):
        return 1 + max((value_depth(x) for x in v), default=0)
    return 0


def structural_features(row: Mapping) -> dict[str, int]:
    """The structural complexity signals of one dialog row (schema.py columns)."""
    calls = row.get("calls") or "[]"
    calls = json.loads(calls) if isinstance(calls, str) else calls
    t = int(row.get("target_turn", -1))
    target = [c for c in calls if int(c.get("turn", -2)) == t]
    tools = row.get("tools")
    n_cand = row.get("n_candidates")
    if n_cand is None:
        n_cand = len(json.loads(tools) if isinstance(tools, str) else (tools or []))
    n_turns = row.get("n_turns")
    if n_turns is None:
        msgs = row.get("messages") or "[]"
        n_turns = len(json.loads(msgs) if isinstance(msgs, str) else msgs)
    args = [c.get("arguments") or {} for c in target]
    return {
        "n_candidates": int(n_cand),
        "n_target_calls": len(target),
        "n_turns": int(n_turns),
        "nesting": max((value_depth(v) for a in args for v in a.values()), default=0),
        "n_args": sum(len(a) for a in args),
    }


def pct_rank(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Percentile rank in (0, 1] with ties averaged (NaN ranks as the hardest)."""
    s = pl.Series(np.asarray(values, dtype=np.float64)).fill_nan(None)
    n = len(s)
    if n == 0:
        return np.zeros(0)
    r = s.rank("average").fill_null(float(n))
    return (r.to_numpy() / n).astype(np.float64)


def assign_buckets(score: np.ndarray, quantiles: Sequence[float]) -> list[str]:
    """Cut by the rank of ``score`` so the bucket sizes follow the quantiles even with ties in the score."""
    if len(score) == 0:
        return []
    order = np.argsort(score, kind="stable")
    pos = np.empty(len(score), dtype=np.float64)
    pos[order] = (np.arange(len(score)) + 0.5) / len(score)
    return [BUCKETS[0] if p < quantiles[0] else BUCKETS[1] if p < quantiles[1] else BUCKETS[2] for p in pos]


def bucket_within_groups(score: np.ndarray, groups: np.ndarray | None, quantiles: Sequence[float]) -> list[str]:
    """:func:`assign_buckets` over all samples (``groups`` None) or separately within each group (dialog type).

    Per type, every bucket keeps the type mix of the data, so easy -> hard orders samples
    by difficulty *within* each kind of turn. Globally, weak probes make whole types
    "hard" (refusal prose has a higher NLL than a call) and the curriculum degenerates
    into a type order whose last bucket biases the final model.
    """
    if groups is None:
        return assign_buckets(score, quantiles)
    out: list[str] = [""] * len(score)
    for g in dict.fromkeys(groups.tolist()):
        idx = np.flatnonzero(groups == g)
        for i, b in zip(idx, assign_buckets(score[idx], quantiles)):
            out[int(i)] = b
    return out


# -- perplexity ----------------------------------------------------------------------------------------------------------


def probe_size(policy: PolicyConfig, cfg: DifficultyConfig) -> ScratchModelConfig:
    p = cfg.probe
    return policy.scratch.model_copy(
        update={
            "hidden_size": p.hidden_size,
            "n_layers": p.n_layers,
            "n_heads": p.n_heads,
            "n_kv_heads": p.n_heads,
            "intermediate_size": p.intermediate_size,
        }
    )


def fold_of(n: int, k: int, seed: int) -> np.ndarray:
    """A seeded, balanced fold id per sample."""
    fold = np.empty(n, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
    return fold


def crossfit_nll(
    examples: Sequence[Mapping], tokenizer, policy: PolicyConfig, cfg: DifficultyConfig, *, seed: int, device: str
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Target NLL of every example from the probe that did not train on its fold: (nll, fold, metrics)."""
    k = cfg.folds
    n = len(examples)
    if n < k:
        raise ValueError(
            f"difficulty.folds: got {k} folds for {n} scorable samples; expected at least one sample per fold"
        )
    fold = fold_of(n, k, seed)
    nll = np.full(n, np.nan)
    p = cfg.probe
    probe_sft = SFTConfig(
        order="random",
        epochs=1,
        batch_size=p.batch_size,
        learning_rate=p.learning_rate,
        warmup_ratio=0.1,
        logging_steps=max(1, p.max_steps // 5),
        eval_samples=0,
    )
    size = probe_size(policy, cfg)
    rng = np.random.default_rng(seed + 1)
    per_fold = []
    for j in range(k):
        t0 = time.perf_counter()
        train_idx = np.flatnonzero(fold != j)
        train_idx = rng.permutation(train_idx)[: p.max_train_samples]
        # Repeat the sample so max_steps full batches exist; fresh order each pass.
        need = p.max_steps * p.batch_size
        reps = [rng.permutation(train_idx) for _ in range(max(1, math.ceil(need / len(train_idx))))]
        order = np.concatenate(reps)[:need]
        probe = scratch_model(size, tokenizer, seed + 100 + j)
        probe, res = train_sft(
            probe,
            tokenizer,
            [examples[i] for i in order],
            probe_sft,
            seed=seed + j,
            device=device,
            max_steps=p.max_steps,
        )
        held = np.flatnonzero(fold == j)
        nll[held] = target_nll(
            probe,
            tokenizer,
            [examples[i] for i in held],
            batch_size=cfg.batch_size,
            device=device,
            desc=f"score fold {j + 1}/{k}",
        )
        per_fold.append(
            {
                "fold": j,
                "train_loss": res.metrics["train_loss_mean"],
                "heldout_nll": float(np.nanmean(nll[held])),
                "seconds": time.perf_counter() - t0,
                "tokens_per_s": res.metrics["train_tokens_per_s"],
            }
        )
        log.info(
            "probe %d/%d: train loss %.3f, held-out target NLL %.3f (%.0fs)",
            j + 1,
            k,
            per_fold[-1]["train_loss"],
            per_fold[-1]["heldout_nll"],
            per_fold[-1]["seconds"],
        )
    n_params = sum(q.numel() for q in probe.parameters())
    return nll, fold, {"probe_params": n_params, "folds": per_fold}


# -- the stage function ---------------------------------------------------------------------------------------------------


@dataclass
class DifficultyResult:
    table: pl.DataFrame
    metrics: dict


def stratified_subset(
    types: Sequence[str], n: int, seed: int, weights: Mapping[str, float] | None = None
) -> np.ndarray:
    """Sorted indices of ``n`` rows (all when ``n`` is 0 or not binding), each dialog type kept at its share.

    ``weights`` (type -> factor, 1 when not named) scale a type's share before the quotas are cut: 2.0 draws a type
    twice as often as the data holds it, as far as it has rows. Without weights the draw is the unweighted one."""
    total = len(types)
    if n <= 0 or n >= total:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    by_type: dict[str, list[int]] = {}
    for i, t in enumerate(types):
        by_type.setdefault(t, []).append(i)
    w = {t: (weights or {}).get(t, 1.0) for t in by_type}
    mass = sum(len(m) * w[t] for t, m in by_type.items())
    keep: list[int] = []
    for t in sorted(by_type):
        members = by_type[t]
        share = len(members) * w[t] / mass if weights else len(members) / total
        keep.extend(int(i) for i in rng.permutation(members)[: max(1, round(n * share))])
    return np.array(sorted(keep[:n] if len(keep) > n else keep), dtype=np.int64)


def score_difficulty(
    train: pl.DataFrame, policy: PolicyConfig, cfg: DifficultyConfig, *, seed: int
) -> DifficultyResult:
    """``data/train.parquet`` -> one row per dialog: structural features, target NLL/perplexity, score, bucket.

    Only a seeded, type-stratified subset of ``cfg.max_samples`` dialogs is scored and
    bucketed (the warm-up trains on exactly these); the others keep their structural
    features and a null bucket.
    """
    t0 = time.perf_counter()
    configure_threads(policy)
    all_rows = train.to_dicts()
    if not all_rows:
        raise ValueError("score_difficulty: the training table has 0 rows; expected dialogs to score")
    ids = [str(r["id"]) for r in all_rows]
    if len(set(ids)) != len(ids):
        raise ValueError(
            f"score_difficulty: {len(ids) - len(set(ids))} duplicate dialog ids in the training table; "
            "expected unique ids (the difficulty table is joined on them)"
        )
    feats = [structural_features(r) for r in all_rows]
    full = pl.DataFrame(
        {"id": ids, "type": [r.get("type", "") for r in all_rows], **{f: [x[f] for x in feats] for f in STRUCTURAL}}
    )
    chosen = stratified_subset(full["type"].to_list(), cfg.max_samples, seed, cfg.type_weights or None)
    rows = [all_rows[i] for i in chosen]
    table = full[chosen.tolist()].select("id")
    structural = np.mean([pct_rank(full[f].to_numpy()[chosen]) for f in STRUCTURAL], axis=0)
    nll = np.full(len(rows), np.nan)
    fold = np.full(len(rows), -1)
    metrics: dict[str, Any] = {"n_dialogs": len(all_rows), "n_scored": len(rows), "perplexity": cfg.perplexity}
    if cfg.perplexity != "none":
        device = resolve_device(policy.device)
        if cfg.perplexity == "base_model":
            if not policy.base_model:
                raise ValueError(
                    "difficulty.perplexity: got 'base_model' with policy.base_model ''; expected a model "
                    "folder, or perplexity 'crossfit'"
                )
            model, tok = load_pretrained(policy.base_model, policy)
        else:
            tok = build_tokenizer(policy, all_rows)
        examples, stats = build_examples(rows, tok, policy.render, "target", desc="render")
        metrics["render"] = stats
        pos = {rid: i for i, rid in enumerate(table["id"].to_list())}
        where = np.array([pos[ex["id"]] for ex in examples], dtype=np.int64)
        if cfg.perplexity == "base_model":
            scored = np.asarray(
                target_nll(
                    model,
                    tok,
                    examples,
                    batch_size=cfg.batch_size,
                    device=device,
                    desc="score",
                    precision=policy.precision,
                )
            )
        else:
            scored, folds, probe_metrics = crossfit_nll(examples, tok, policy, cfg, seed=seed, device=device)
            fold[where] = folds
            metrics["probes"] = probe_metrics
        nll[where] = scored
    ppl = np.exp(nll)
    # Rows left unscored (too long for the render budget) rank as the hardest on perplexity.
    ppl_rank = pct_rank(nll) if cfg.perplexity != "none" else np.zeros(len(rows))
    w = cfg.ppl_weight if cfg.perplexity != "none" else 0.0
    combined = w * ppl_rank + (1 - w) * structural
    types = full["type"].to_numpy()[chosen]
    buckets = bucket_within_groups(combined, types if cfg.bucket_within == "type" else None, cfg.bucket_quantiles)
    table = table.with_columns(
        pl.Series("structural", structural),
        pl.Series("nll", nll).fill_nan(None),
        pl.Series("ppl", ppl).fill_nan(None),
        pl.Series("ppl_rank", ppl_rank),
        pl.Series("combined", combined),
        pl.Series("bucket", buckets, dtype=pl.Utf8),
        pl.Series("fold", fold),
    )
    table = full.join(table, on="id", how="left", maintain_order="left")
    metrics.update(summarise(table))
    metrics["seconds"] = time.perf_counter() - t0
    return DifficultyResult(table, metrics)


def summarise(table: pl.DataFrame) -> dict:
    """Bucket sizes, per-bucket means and the bucket x dialog-type table."""
    out: dict[str, Any] = {"buckets": {}}
    for b in BUCKETS:
        part = table.filter(pl.col("bucket") == b)
        entry: dict[str, Any] = {"n": part.height}
        if part.height:
            entry["mean_structural"] = float(part["structural"].mean())
            if part["nll"].null_count() < part.height:
                entry["mean_nll"] = float(part["nll"].mean())
            entry["types"] = {t: int(c) for t, c in part.group_by("type").len().sort("type").iter_rows()}
        out["buckets"][b] = entry
    scored = table.filter(pl.col("nll").is_not_null())
    if scored.height > 2:
        out["spearman_nll_structural"] = float(
            np.corrcoef(pct_rank(scored["nll"].to_numpy()), pct_rank(scored["structural"].to_numpy()))[0, 1]
        )
        out["mean_nll"] = float(scored["nll"].mean())
        out["scored"] = scored.height
    return out


def plot_difficulty(table: pl.DataFrame, path) -> None:
    """Histograms: combined score by bucket, and target perplexity by dialog type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    bins = np.linspace(0, 1, 31)
    for b in BUCKETS:
        axes[0].hist(table.filter(pl.col("bucket") == b)["combined"].to_numpy(), bins=bins, alpha=0.7, label=b)
    axes[0].set_xlabel("combined difficulty score")
    axes[0].set_ylabel("dialogs")
    axes[0].legend(title="bucket")
    scored = table.filter(pl.col("ppl").is_not_null())
    if scored.height:
        hi = float(np.quantile(scored["ppl"].to_numpy(), 0.99))
        lo = max(1.0, float(scored["ppl"].min()))
        pbins = np.geomspace(lo, max(hi, lo * 1.01), 31)
        for t in sorted(scored["type"].unique().to_list()):
            axes[1].hist(
                np.clip(scored.filter(pl.col("type") == t)["ppl"].to_numpy(), lo, hi), bins=pbins, alpha=0.6, label=t
            )
        axes[1].set_xscale("log")
        axes[1].legend(title="type", fontsize=8)
    axes[1].set_xlabel("target perplexity (held-out probe)")
    fig.suptitle("iTool difficulty scores")
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")  # explicit: atomic writers hand us a .tmp name
    plt.close(fig)
