"""Which training prompts the current policy is deficient on (iTool arXiv 2501.09766 §3.2; docs/architecture.md#rounds).

Two rules, selected or combined by ``itool.deficiency.mode``:

* **perplexity** (iTool's): the target turn's perplexity under the current policy
  (:func:`toolkiln.policy.examples.target_nll`, the same score the difficulty stage uses),
  ranked within each group — tool-call targets and text targets, whose perplexities are
  not comparable — and the top ``ratio`` of each group is deficient;
* **verifiable**: ``n_samples`` outputs sampled per prompt; a prompt is deficient when an
  output fails the AST check (:func:`toolkiln.itool.mcts.call_reward` below 1: a call,
  argument name or value not reproduced, or a call where text was due).
* **both**: the union, each row with every reason that applies.

Then the budget: at most ``max_prompts`` deficient prompts are *selected* for the search,
the most deficient first (failure rate, then perplexity rank), each group keeping its
share. Every scored row stays in the output with its numbers and reason.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from toolkiln.callparse import parse_calls
from toolkiln.itool.config import DeficiencyConfig
from toolkiln.itool.mcts import HFStepPolicy, call_reward
from toolkiln.policy.config import RenderConfig
from toolkiln.policy.difficulty import pct_rank, stratified_subset
from toolkiln.policy.examples import build_examples, target_nll

DEFICIENCY_SCHEMA = {
    "id": pl.Utf8,
    "type": pl.Utf8,
    "group": pl.Utf8,
    "nll": pl.Float64,
    "nll_rank": pl.Float64,
    "fail_rate": pl.Float64,
    "deficient": pl.Boolean,
    "selected": pl.Boolean,
    "reason": pl.Utf8,
}


@dataclass
class Prompt:
    """A training dialog as the search sees it: the rendered prompt text and the gold calls."""

    row: dict
    example: dict
    text: str
    gold_calls: list[dict]

    @property
    def group(self) -> str:
        return "tool" if self.gold_calls else "text"


def render_prompts(rows: Sequence[Mapping], tokenizer, render: RenderConfig) -> tuple[list[Prompt], dict]:
    """Rows -> prompts (within the render budget, distractors dropped as in training) + render counts.

    A row whose target is not a call list is left out (counted): there is nothing to grade.
    """
    examples, stats = build_examples(list(rows), tokenizer, render, "target")
    by_id = {str(r.get("id")): dict(r) for r in rows}
    out, bad = [], 0
    for ex in examples:
        row = by_id[ex["id"]]
        gold = parse_calls(row.get("target") or "", strict=True)
        if gold.calls is None:
            bad += 1
            continue
        text = tokenizer.apply_chat_template(
            list(ex["messages"][:-1]), tools=json.loads(ex["tools"]) or None, add_generation_prompt=True, tokenize=False
        )
        out.append(Prompt(row, ex, text, gold.calls))
    return out, {**stats, "bad_target": bad}


@dataclass
class DeficiencyResult:
    table: pl.DataFrame
    metrics: dict


def _top_share(values: np.ndarray, ratio: float) -> np.ndarray:
    """Mask of the ``ceil(ratio * n)`` largest values (ties broken by position, so the count is exact)."""
    k = math.ceil(ratio * len(values))
    mask = np.zeros(len(values), dtype=bool)
    mask[np.argsort(-values, kind="stable")[:k]] = True
    return mask


def budget(groups: Sequence[str], priority: np.ndarray, candidates: np.ndarray, cap: int) -> np.ndarray:
    """Of the ``candidates`` mask, at most ``cap`` by descending ``priority``, each group at its share (at least 1)."""
    idx = np.flatnonzero(candidates)
    if len(idx) <= cap:
        return candidates.copy()
    keep = np.zeros(len(candidates), dtype=bool)
    g = np.asarray(groups)
    for name in sorted(set(g[idx])):
        members = idx[g[idx] == name]
        take = max(1, round(cap * len(members) / len(idx)))
        keep[members[np.argsort(-priority[members], kind="stable")[:take]]] = True
    chosen = np.flatnonzero(keep)
    if len(chosen) > cap:  # rounding: drop the lowest-priority extras
        keep[chosen[np.argsort(priority[chosen], kind="stable")[: len(chosen) - cap]]] = False
    return keep


def find_deficiencies(
    train: pl.DataFrame,
    model,
    tokenizer,
    render: RenderConfig,
    cfg: DeficiencyConfig,
    *,
    seed: int,
    device: str = "cpu",
    precision: str = "float32",
) -> DeficiencyResult:
    """Score a seeded subset of the training dialogs under the policy and mark the deficient ones (module docstring)."""
    import torch

    t0 = time.perf_counter()
    rows = train.to_dicts()
    if not rows:
        raise ValueError("find_deficiencies: the training table has 0 rows")
    chosen = stratified_subset([str(r.get("type") or "") for r in rows], cfg.max_scored, seed)
    prompts, render_stats = render_prompts([rows[i] for i in chosen], tokenizer, render)
    if not prompts:
        raise ValueError("find_deficiencies: no training dialog fits the render budget with a readable target")
    n = len(prompts)
    groups = np.array([p.group for p in prompts])
    nll = np.full(n, np.nan)
    rank = np.zeros(n)
    fail = np.full(n, np.nan)
    by_ppl = np.zeros(n, dtype=bool)
    by_fail = np.zeros(n, dtype=bool)
    if cfg.mode in ("perplexity", "both"):
        nll = np.asarray(
            target_nll(
                model,
                tokenizer,
                [p.example for p in prompts],
                batch_size=cfg.batch_size,
                device=device,
                desc="perplexity",
                precision=precision,
            )
        )
        for g in set(groups):
            members = np.flatnonzero(groups == g)
            rank[members] = pct_rank(nll[members])
            by_ppl[members] = _top_share(np.nan_to_num(nll[members], nan=np.inf), cfg.ratio)
    if cfg.mode in ("verifiable", "both"):
        torch.manual_seed(seed)
        policy = HFStepPolicy(
            model, tokenizer, temperature=cfg.temperature, top_k=0, max_new_tokens=cfg.max_new_tokens, device=device
        )
        for i, p in enumerate(prompts):
            outs = policy.sample(p.text, [], cfg.n_samples)
            fails = sum(call_reward("".join(x.text for x in o), p.gold_calls) < 1.0 for o in outs)
            fail[i] = fails / cfg.n_samples
        policy.close()
        by_fail = fail > 0
    deficient = by_ppl | by_fail
    priority = np.nan_to_num(fail, nan=0.0) + rank  # fail rate first (in steps of 1/n), perplexity rank within
    selected = budget(groups, priority, deficient, cfg.max_prompts)
    reasons = []
    for i in range(n):
        why = []
        if by_ppl[i]:
            why.append(
                f"perplexity: top {cfg.ratio:.0%} of the {groups[i]} group (nll {nll[i]:.3f}, rank {rank[i]:.2f})"
            )
        if by_fail[i]:
            why.append(f"verifiable: {fail[i]:.0%} of {cfg.n_samples} sampled outputs fail the AST check")
        if not why:
            why.append("not deficient")
        elif not selected[i]:
            why.append(f"over the budget of {cfg.max_prompts} prompts")
        reasons.append("; ".join(why))
    table = pl.DataFrame(
        {
            "id": [str(p.row.get("id")) for p in prompts],
            "type": [str(p.row.get("type") or "") for p in prompts],
            "group": groups.tolist(),
            "nll": nll,
            "nll_rank": rank,
            "fail_rate": fail,
            "deficient": deficient,
            "selected": selected,
            "reason": reasons,
        },
        schema=DEFICIENCY_SCHEMA,
    )
    table = table.with_columns(pl.col("nll").fill_nan(None), pl.col("fail_rate").fill_nan(None))
    metrics: dict[str, Any] = {
        "mode": cfg.mode,
        "scored": n,
        "deficient": int(deficient.sum()),
        "selected": int(selected.sum()),
        "render": render_stats,
        "seconds": time.perf_counter() - t0,
        "by_group": {
            g: {
                "scored": int((groups == g).sum()),
                "deficient": int(deficient[groups == g].sum()),
                "selected": int(selected[groups == g].sum()),
            }
            for g in sorted(set(groups))
        },
    }
    if cfg.mode != "verifiable":
        metrics["mean_nll_selected"] = float(np.nanmean(nll[selected])) if selected.any() else None
        metrics["mean_nll_all"] = float(np.nanmean(nll))
    if cfg.mode != "perplexity":
        metrics["fail_rate_mean"] = float(np.nanmean(fail))
    return DeficiencyResult(table, metrics)
