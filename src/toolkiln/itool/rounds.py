"""One iTool round as stage functions: deficiencies -> MCTS pairs -> preference update (iTool arXiv 2501.09766 §3.2-3.3; docs/architecture.md#rounds).

Each function takes data and typed configs, loads the round's input checkpoint itself
(:func:`load_checkpoint`) and returns a result with ``metrics``, so the stage scripts stay
thin. Seeds: every round derives its own from the global seed and the round number, so a
second round does not replay the first round's samples.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from toolkiln.itool.config import IToolConfig
from toolkiln.itool.deficiency import DeficiencyResult, find_deficiencies, render_prompts
from toolkiln.itool.mcts import HFStepPolicy, SearchJob, search_many
from toolkiln.itool.pairs import pair_stats, pairs_frame, sibling_pairs, with_provenance
from toolkiln.policy.config import PolicyConfig
from toolkiln.policy.model import configure_threads, load_pretrained, resolve_device
from toolkiln.policy.render import CallStyle, call_openings


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
        train,
        model,
        tok,
        policy.render,
        cfg.deficiency,
        seed=round_seed(seed, round_),
        device=device,
        precision=policy.precision,
    )
    res.metrics["round"] = round_
    return res


@dataclass
class PairsResult:
    pairs: pl.DataFrame
    metrics: dict


_W: dict = {}  # per process: the loaded checkpoint and its step policy, reused by every prompt it searches


def _loaded(checkpoint: str | Path, policy: PolicyConfig, m) -> tuple[HFStepPolicy, Any]:
    """(step policy, tokenizer) of ``checkpoint`` in this process, loaded once per (checkpoint, params)."""
    key = (str(checkpoint), policy.model_dump_json(), m.model_dump_json())
    if _W.get("key") != key:
        if "step" in _W:
            _W["step"].close()
        model, tok, device = load_checkpoint(checkpoint, policy)
        step = HFStepPolicy(
            model, tok, temperature=m.temperature, top_k=m.top_k, max_new_tokens=m.max_new_tokens, device=device
        )
        _W.clear()
        _W.update(key=key, step=step, tok=tok)
    return _W["step"], _W["tok"]


def _search_prompts(job: tuple) -> dict:
    """One lockstep group of prompts (module level: a Dask worker unpickles it by name), seeded by the group's
    first prompt index alone: a prompt's draws depend on its group, never on the groups searched before."""
    import torch

    checkpoint, policy, cfg, group, group_seed, round_ = job
    step, _ = _loaded(checkpoint, policy, cfg.mcts)
    before = step.forward_passes
    torch.manual_seed(group_seed)
    found = search_many(step, [SearchJob(text, gold, tuple(op)) for _, text, gold, _, op in group], cfg.mcts)
    prompts = [
        {
            "pairs": with_provenance(sibling_pairs(res.root, cfg.pairs), row, text, round_, prompt_seed),
            "rollouts": res.rollouts,
            "best": max((n.best_reward for n in res.root.walk() if n.visits), default=-1.0),
            "root_value": res.root.value,
        }
        for res, (row, text, _, prompt_seed, _) in zip(found, group)
    ]
    return {"prompts": prompts, "forward_passes": step.forward_passes - before}


def mcts_pairs(
    train: pl.DataFrame,
    deficiencies: pl.DataFrame,
    checkpoint: str | Path,
    policy: PolicyConfig,
    cfg: IToolConfig,
    *,
    seed: int,
    round_: int,
    runtime: Any = None,
) -> PairsResult:
    """The ``mcts_pairs`` stage: search every selected deficient prompt and keep the sibling pairs.

    Prompts are searched in lockstep groups of ``mcts.lockstep`` (:func:`toolkiln.itool.mcts.search_many`);
    each group is one job seeded by (round seed, index of its first prompt), run where ``runtime`` (the
    ``runtime:`` section) says: in this process, or as a Prefect task on Dask whose worker loads the checkpoint once
    (:func:`toolkiln.scaleout.map_shards`); pairs are merged in prompt order, the same either way.
    """
    from toolkiln.scaleout import map_shards

    t0 = time.perf_counter()
    wanted = deficiencies.filter(pl.col("selected"))["id"].to_list()
    rows = {str(r["id"]): r for r in train.filter(pl.col("id").cast(pl.Utf8).is_in(wanted)).to_dicts()}
    missing = [i for i in wanted if i not in rows]
    if missing:
        raise ValueError(
            f"mcts_pairs: {len(missing)} selected dialogs are not in the training table (e.g. "
            f"{missing[:3]}); rerun find_deficiencies on the same data/train.parquet"
        )
    local = getattr(runtime, "executor", "local") == "local"
    if local:
        _, tok = _loaded(checkpoint, policy, cfg.mcts)  # the jobs below reuse this process's model
    else:
        _, tok, _ = load_checkpoint(checkpoint, policy)  # the tokenizer renders; the workers load their own
    prompts, _ = render_prompts([rows[i] for i in wanted], tok, policy.render)
    s = round_seed(seed, round_)
    style = CallStyle.from_render(policy.render)

    def openings(p) -> list[str]:
        # the tools the rendered prompt really offers (distractors beyond the token budget are dropped)
        return [t for _, t in call_openings(json.loads(p.example["tools"]), style)] if cfg.mcts.root_openings else []

    items = [(p.row, p.text, p.gold_calls, s + i, openings(p)) for i, p in enumerate(prompts)]
    k = cfg.mcts.lockstep
    jobs = [(str(checkpoint), policy, cfg, items[i : i + k], s + i, round_) for i in range(0, len(items), k)]
    groups = map_shards(_search_prompts, jobs, runtime, name="mcts-pairs", task_name="mcts-prompts")
    if local and "step" in _W:
        _W["step"].close()  # the model outlives the stage only in this process's cache
        _W.clear()
    done = [d for g in groups for d in g["prompts"]]
    pairs = pairs_frame([pair for d in done for pair in d["pairs"]])
    seconds = time.perf_counter() - t0
    metrics: dict[str, Any] = {
        "round": round_,
        **pair_stats(pairs, len(prompts)),
        "rollouts": sum(d["rollouts"] for d in done),
        "forward_passes": sum(g["forward_passes"] for g in groups),
        "lockstep": k,
        "seconds": seconds,
        "seconds_per_pair": seconds / pairs.height if pairs.height else None,
    }
    if done:
        metrics["root_value_mean"] = sum(d["root_value"] for d in done) / len(done)
        metrics["solved_share"] = sum(d["best"] >= 1.0 for d in done) / len(done)
    return PairsResult(pairs, metrics)
