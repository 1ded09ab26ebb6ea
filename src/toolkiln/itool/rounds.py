"""One iTool round as stage functions: deficiencies -> MCTS pairs -> preference update (iTool arXiv 2501.09766 §3.2-3.3; docs/architecture.md#rounds).

Each function takes data and typed configs, loads the round's input checkpoint itself
(:func:`load_checkpoint`) and returns a result with ``metrics``, so the stage scripts stay
thin. Seeds: every round derives its own from the global seed and the round number, so a
second round does not replay the first round's samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from toolkiln.itool.config import IToolConfig
from toolkiln.itool.deficiency import DeficiencyResult, find_deficiencies, render_prompts
from toolkiln.itool.mcts import HFStepPolicy, search
from toolkiln.itool.pairs import pair_stats, pairs_frame, sibling_pairs, with_provenance
from toolkiln.policy.config import PolicyConfig
from toolkiln.policy.model import configure_threads, load_pretrained, resolve_device


def round_seed(seed: int, round_: int) -> int:
    return seed + 1000 * round_


def load_checkpoint(checkpoint: str | Path, policy: PolicyConfig):
    """(model, tokenizer, device) of the round's input checkpoint (a plain HF folder)."""
    configure_threads(policy)
    model, tok = load_pretrained(checkpoint, policy)
    return model, tok, resolve_device(policy.device)


def deficiencies_round(
    train: pl.DataFrame, checkpoint: str | Path, policy: PolicyConfig, cfg: IToolConfig, *, seed: int, round_: int
) -> DeficiencyResult:
    """The ``find_deficiencies`` stage: which training prompts the round's input policy is weak on."""
    model, tok, device = load_checkpoint(checkpoint, policy)
    res = find_deficiencies(
        train, model, tok, policy.render, cfg.deficiency, seed=round_seed(seed, round_), device=device
    )
    res.metrics["round"] = round_
    return res


@dataclass
class PairsResult:
    pairs: pl.DataFrame
    metrics: dict


def mcts_pairs(
    train: pl.DataFrame,
    deficiencies: pl.DataFrame,
    checkpoint: str | Path,
    policy: PolicyConfig,
    cfg: IToolConfig,
    *,
    seed: int,
    round_: int,
) -> PairsResult:
    """The ``mcts_pairs`` stage: search every selected deficient prompt and keep the sibling pairs."""
    import torch

    t0 = time.perf_counter()
    wanted = deficiencies.filter(pl.col("selected"))["id"].to_list()
    rows = {str(r["id"]): r for r in train.filter(pl.col("id").cast(pl.Utf8).is_in(wanted)).to_dicts()}
    missing = [i for i in wanted if i not in rows]
    if missing:
        raise ValueError(
            f"mcts_pairs: {len(missing)} selected dialogs are not in the training table (e.g. "
            f"{missing[:3]}); rerun find_deficiencies on the same data/train.parquet"
        )
    model, tok, device = load_checkpoint(checkpoint, policy)
    prompts, _ = render_prompts([rows[i] for i in wanted], tok, policy.render)
    m = cfg.mcts
    step = HFStepPolicy(
        model, tok, temperature=m.temperature, top_k=m.top_k, max_new_tokens=m.max_new_tokens, device=device
    )
    s = round_seed(seed, round_)
    out: list[dict] = []
    rollouts = 0
    per_prompt = []
    for i, p in enumerate(prompts):
        torch.manual_seed(s + i)  # each prompt's samples depend on its position only, not on earlier prompts
        res = search(step, p.text, p.gold_calls, m)
        found = with_provenance(sibling_pairs(res.root, cfg.pairs), p.row, p.text, round_, s + i)
        out.extend(found)
        rollouts += res.rollouts
        per_prompt.append(
            {
                "best": max((n.best_reward for n in res.root.walk() if n.visits), default=-1.0),
                "root_value": res.root.value,
                "pairs": len(found),
            }
        )
    step.close()
    pairs = pairs_frame(out)
    seconds = time.perf_counter() - t0
    metrics: dict[str, Any] = {
        "round": round_,
        **pair_stats(pairs, len(prompts)),
        "rollouts": rollouts,
        "forward_passes": step.forward_passes,
        "seconds": seconds,
        "seconds_per_pair": seconds / pairs.height if pairs.height else None,
    }
    if per_prompt:
        metrics["root_value_mean"] = sum(x["root_value"] for x in per_prompt) / len(per_prompt)
        metrics["solved_share"] = sum(x["best"] >= 1.0 for x in per_prompt) / len(per_prompt)
    return PairsResult(pairs, metrics)
