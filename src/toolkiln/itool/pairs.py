"""Step-level preference pairs from a search tree (iTool arXiv 2501.09766 §3.2; docs/architecture.md#rounds).

At every expanded node the visited children are siblings: alternative next fragments
after the same prefix. The best-valued child is *chosen*; every other sibling is a
*rejected* candidate, and a pair is kept when

* ``value(chosen) - value(rejected) >= pairs.min_gap`` (a real difference, not noise),
* the two fragments' text similarity (``difflib`` ratio) ``<= pairs.max_overlap``,
* ``value(chosen) >= pairs.min_chosen`` (the chosen step is itself not a failure),
* both were visited at least ``pairs.min_visits`` times.

Each pair row carries the shared prefix, both fragments, their best rollouts (the whole
answer text), values, visits, depth and provenance (dialog id, round, seed), so the
preference update can train on fragments or on whole rollouts, and statistics (pairs
per prompt, value gaps, depth) come from the table.
"""

from __future__ import annotations

import difflib
from typing import Any, Mapping

import polars as pl

from toolkiln.itool.config import PairsConfig
from toolkiln.itool.mcts import Node

PAIR_SCHEMA = {
    "dialog_id": pl.Utf8,
    "type": pl.Utf8,
    "round": pl.Int64,
    "seed": pl.Int64,
    "prompt": pl.Utf8,
    "prefix": pl.Utf8,
    "chosen": pl.Utf8,
    "rejected": pl.Utf8,
    "chosen_rollout": pl.Utf8,
    "rejected_rollout": pl.Utf8,
    "chosen_value": pl.Float64,
    "rejected_value": pl.Float64,
    "gap": pl.Float64,
    "chosen_visits": pl.Int64,
    "rejected_visits": pl.Int64,
    "depth": pl.Int64,
    "overlap": pl.Float64,
    "gold": pl.Utf8,
}


def overlap(a: str, b: str) -> float:
    """Text similarity of two fragments in [0, 1] (1 = identical)."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def sibling_pairs(root: Node, cfg: PairsConfig) -> list[dict[str, Any]]:
    """Pairs (chosen, rejected) among the children of every expanded node, after the filters."""
    out = []
    for node in root.walk():
        kids = [c for c in node.children if c.visits >= cfg.min_visits]
        if len(kids) < 2:
            continue
        best = max(kids, key=lambda c: (c.value, c.visits))
        if best.value < cfg.min_chosen:
            continue
        for other in kids:
            if other is best:
                continue
            gap = best.value - other.value
            sim = overlap(best.text, other.text)
            if gap < cfg.min_gap or sim > cfg.max_overlap:
                continue
            out.append(
                {
                    "prefix": node.prefix_text(),
                    "chosen": best.text,
                    "rejected": other.text,
                    "chosen_rollout": best.best_rollout,
                    "rejected_rollout": other.best_rollout,
                    "chosen_value": best.value,
                    "rejected_value": other.value,
                    "gap": gap,
                    "chosen_visits": best.visits,
                    "rejected_visits": other.visits,
                    "depth": node.depth + 1,
                    "overlap": sim,
                }
            )
    return out


def pairs_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=PAIR_SCHEMA) if rows else pl.DataFrame(schema=PAIR_SCHEMA)


def pair_stats(pairs: pl.DataFrame, n_prompts: int) -> dict[str, Any]:
    """Pairs per prompt, value gaps and depths: the table the README reports per round."""
    stats: dict[str, Any] = {
        "pairs": pairs.height,
        "prompts_searched": n_prompts,
        "prompts_with_pairs": pairs["dialog_id"].n_unique() if pairs.height else 0,
        "pairs_per_prompt": pairs.height / n_prompts if n_prompts else 0.0,
    }
    if pairs.height:
        stats.update(
            gap_mean=float(pairs["gap"].mean()),
            gap_median=float(pairs["gap"].median()),
            chosen_value_mean=float(pairs["chosen_value"].mean()),
            rejected_value_mean=float(pairs["rejected_value"].mean()),
            overlap_mean=float(pairs["overlap"].mean()),
            by_depth={str(d): int(c) for d, c in pairs.group_by("depth").len().sort("depth").iter_rows()},
            by_type={str(t): int(c) for t, c in pairs.group_by("type").len().sort("type").iter_rows()},
        )
    return stats


def with_provenance(rows: list[dict], row: Mapping, prompt: str, round_: int, seed: int) -> list[dict]:
    return [
        {
            **r,
            "dialog_id": str(row.get("id")),
            "type": str(row.get("type") or ""),
            "round": round_,
            "seed": seed,
            "prompt": prompt,
            "gold": str(row.get("target") or ""),
        }
        for r in rows
    ]
