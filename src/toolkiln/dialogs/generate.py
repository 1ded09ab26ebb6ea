"""The ``generate_dialogs`` stage as a pure function (ToolACE arXiv 2409.00920 §3.2).

pool -> per-type quotas (``type_mix``) -> one plan per slot (seeded) -> the agents
act each plan out (:mod:`toolkiln.dialogs.engine`) -> rows. A rejected attempt
(a plan the pool cannot supply, an unparsable agent reply, a failed vote) is
recorded with its reason and its slot is retried with a fresh seed and the same
type, within ``max_attempts_factor`` attempts per slot of its shard, so the type mix holds.
The slots are cut into ``shards`` fixed ranges, each with its own attempt budget, run
in this process or on a Dask cluster with the same output (docs/architecture.md#reliability).
With complexity guidance, finished dialogs are scored, the band is calibrated on
the first ``prior_size`` of them, and out-of-band dialogs are regenerated one
level harder or easier for up to ``max_rounds`` rounds; every score and level
is kept in the row's provenance.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
import polars as pl
from tqdm import tqdm

from toolkiln.dialogs.agents import SimulatorAssistant, SimulatorTool, SimulatorUser
from toolkiln.dialogs.complexity import ComplexityGuide, Scorer
from toolkiln.dialogs.config import DialogsConfig
from toolkiln.dialogs.engine import dialog_row, reject_row, run_states
from toolkiln.dialogs.protocol import Agent, DialogState, phases_for
from toolkiln.dialogs.plan import PlanError, plan_dialog
from toolkiln.dialogs.pool import APIPool
from toolkiln.schema import DIALOG_SCHEMA, DIALOG_TYPES

log = logging.getLogger(__name__)

REJECT_SCHEMA = {"slot": pl.Int64, "attempt": pl.Int64, "seed": pl.Int64, "type": pl.Utf8, "domain": pl.Utf8,
                 "phase": pl.Utf8, "agent": pl.Utf8, "reason": pl.Utf8, "apis": pl.List(pl.Utf8), "messages": pl.Utf8}


@dataclass
class DialogResult:
    dialogs: pl.DataFrame
    rejects: pl.DataFrame
    metrics: dict = field(default_factory=dict)


def simulator_agents(cfg: DialogsConfig) -> dict[str, Agent]:
    return {"user": SimulatorUser(), "assistant": SimulatorAssistant(cfg.voting), "tool": SimulatorTool()}


def type_quotas(cfg: DialogsConfig, n: int) -> list[str]:
    """Exactly ``n`` slot types in proportion to ``type_mix`` (largest remainder), interleaved."""
    mix = {t: w for t, w in cfg.type_mix.items() if w > 0}
    total = sum(mix.values())
    raw = {t: n * w / total for t, w in mix.items()}
    counts = {t: int(v) for t, v in raw.items()}
    for t in sorted(raw, key=lambda t: raw[t] - counts[t], reverse=True)[: n - sum(counts.values())]:
        counts[t] += 1
    # Interleave so any prefix (the prior set, a partial run) has the mix too.
    out, acc = [], {t: 0.0 for t in counts}
    for _ in range(n):
        t = max(counts, key=lambda t: (counts[t] - acc[t]) / max(counts[t], 1) if counts[t] > acc[t] else -1)
        acc[t] += 1
        out.append(t)
    return out


def slot_seed(seed: int, slot: int, attempt: int) -> int:
    return (seed * 1_000_003 + slot) * 9_973 + attempt * 7_919 + 17


class _Slots:
    """Attempts for a set of slots within one attempt budget: plans, the agents' runs, retries with fresh seeds.

    A shard owns one (its slots, its budget); complexity guidance owns another over the merged rows.
    """

    def __init__(self, pool: APIPool, cfg: DialogsConfig, seed: int, types: list[str], agents: dict[str, Agent],
                 backend, budget: int, bar=None):
        self.pool, self.cfg, self.seed, self.types, self.agents, self.backend = pool, cfg, seed, types, agents, backend
        self.budget = budget
        self.attempts: Counter = Counter()
        self.rejects: list[dict] = []
        self.bar = bar

    def states_for(self, slots: list[tuple[int, int | None]]) -> list[DialogState]:
        out = []
        for slot, level in slots:
            while self.attempts.total() < self.budget:
                a = self.attempts[slot]
                self.attempts[slot] += 1
                s = slot_seed(self.seed, slot, a)
                try:
                    plan = plan_dialog(self.pool, self.cfg, self.types[slot], s, level=level, attempt=a)
                except PlanError as exc:
                    self.rejects.append(reject_row(None, {"slot": slot, "attempt": a, "seed": s,
                                                          "type": self.types[slot]}, "plan", "planner", str(exc)))
                    continue
                out.append(DialogState(slot, plan, self.pool, phases_for(plan), random.Random(s ^ 0x5DEECE66D)))
                break
        return out

    def run(self, slots: list[tuple[int, int | None]], sink: dict[int, dict], extra: dict[int, dict] | None = None) -> None:
        rejects, agents = self.rejects, self.agents
        todo = slots
        while todo:
            retry: list[tuple[int, int | None]] = []
            level_of = dict(todo)

            # run_states calls done() before this iteration ends, so the closure's retry/level_of are this round's
            def done(st: DialogState) -> None:
                if st.reject is not None:
                    phase, agent, reason = st.reject
                    rejects.append(reject_row(st, {"slot": st.slot, "attempt": st.plan.attempt, "seed": st.plan.seed,
                                                   "type": st.plan.type, "domain": st.plan.domain}, phase, agent, reason))
                    retry.append((st.slot, level_of.get(st.slot)))  # noqa: B023
                    return
                try:
                    sink[st.slot] = dialog_row(st, agents, (extra or {}).get(st.slot))
                except (TypeError, ValueError, KeyError) as exc:  # an agent's output with no JSON/literal form
                    rejects.append(reject_row(st, {"slot": st.slot, "attempt": st.plan.attempt, "seed": st.plan.seed,
                                                   "type": st.plan.type, "domain": st.plan.domain}, "assemble", "engine",
                                              f"dialog cannot be serialised: {type(exc).__name__}: {exc}"))
                    retry.append((st.slot, level_of.get(st.slot)))  # noqa: B023
                    return
                if self.bar is not None:
                    self.bar.update(1)

            run_states(self.states_for(todo), agents, self.backend, self.cfg.batch_size, done)
            todo = [s for s in retry if self.attempts.total() < self.budget]
            if retry and not todo:
                break


def shard_ranges(n: int, shards: int) -> list[range]:
    """``shards`` contiguous slot ranges covering ``0..n-1``, sizes differing by at most one (none empty)."""
    k = max(1, min(shards, n))
    bounds = [n * i // k for i in range(k + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(k)]


def shard_budget(cfg: DialogsConfig, slots: range) -> int:
    """A shard's attempts: its part of ``int(max_attempts_factor * n_dialogs)``; the parts add up to exactly that."""
    f = cfg.max_attempts_factor
    return int(f * slots.stop) - int(f * slots.start)


def _generate_shard(job: tuple) -> tuple[dict[int, dict], list[dict], dict[int, int]]:
    """One shard (module level: a Dask worker unpickles it by name): its slots, with its own attempt budget."""
    pool, cfg, seed, types, slots, agents, backend, progress = job
    bar = tqdm(total=len(slots), desc="generate_dialogs", unit="dlg", disable=not progress, mininterval=2)
    gen = _Slots(pool, cfg, seed, types, agents or simulator_agents(cfg), backend, shard_budget(cfg, slots), bar)
    rows: dict[int, dict] = {}
    gen.run([(i, None) for i in slots], rows)
    bar.close()
    return rows, gen.rejects, dict(gen.attempts)


def generate_dialogs(pool: APIPool, cfg: DialogsConfig, *, seed: int, agents: dict[str, Agent] | None = None,
                     backend=None, scorer: Scorer | None = None, progress: bool = True,
                     runtime=None) -> DialogResult:
    """Generate ``cfg.n_dialogs`` dialogs (see module doc); deterministic given ``seed`` and simulator agents.

    The slots are cut into ``cfg.shards`` contiguous ranges; each shard spends its own attempt budget
    (its part of ``max_attempts_factor * n_dialogs``, :func:`shard_budget`) and the shards' rows and rejects are merged in shard order, so
    the output depends on ``seed`` and ``cfg.shards``, not on where the shards run: ``runtime`` (the
    ``runtime:`` section) runs them in this process or as Prefect tasks on Dask
    (:func:`toolkiln.scaleout.map_shards`). With an LLM backend they run here, one after another (the
    backend holds open connections and already sends a batch's requests concurrently).
    """
    from toolkiln.scaleout import map_shards

    t0 = time.perf_counter()
    n = cfg.n_dialogs
    types = type_quotas(cfg, n)
    ranges = shard_ranges(n, cfg.shards)
    jobs = [(pool, cfg, seed, types, r, agents, backend, progress and len(ranges) == 1) for r in ranges]
    where = runtime if backend is None else None
    rows: dict[int, dict] = {}
    rejects: list[dict] = []
    attempts: Counter = Counter()
    bar = tqdm(total=len(ranges), desc="generate_dialogs shards", disable=not progress or len(ranges) == 1)
    for shard_rows, shard_rejects, shard_attempts in map_shards(_generate_shard, jobs, where,
                                                                name="generate-dialogs", task_name="dialog-shard"):
        rows.update(shard_rows)
        rejects += shard_rejects
        attempts.update(shard_attempts)
        bar.update(1)
    bar.close()
    agents = agents or simulator_agents(cfg)
    complexity_meta = {}
    if scorer is not None and cfg.complexity.enabled:
        # guidance compares every dialog with one calibrated band, so it runs on the merged rows, here
        gen = _Slots(pool, cfg, seed, types, agents, backend, int(cfg.max_attempts_factor * n))
        gen.attempts, gen.rejects = attempts, rejects
        budget = [gen.budget]

        def run(slots, sink, extra=None):
            gen.budget = budget[0]
            gen.run(slots, sink, extra)

        complexity_meta = _guide(pool, cfg, rows, scorer, run, budget)
    seconds = time.perf_counter() - t0
    ordered = [rows[i] for i in sorted(rows)]
    dialogs = pl.DataFrame(ordered, schema=DIALOG_SCHEMA) if ordered else pl.DataFrame(schema=DIALOG_SCHEMA)
    rej = pl.DataFrame(rejects, schema=REJECT_SCHEMA) if rejects else pl.DataFrame(schema=REJECT_SCHEMA)
    metrics = summarise(dialogs, rej, n_target=n, attempts=attempts.total(), seconds=seconds, agents=agents)
    metrics["shards"] = len(ranges)
    metrics.update(complexity_meta)
    if dialogs.height < n:
        log.warning("generate_dialogs: %d of %d dialogs after %d attempts (budgets of %d shards); see the rejects",
                    dialogs.height, n, attempts.total(), len(ranges))
    return DialogResult(dialogs, rej, metrics)


def _guide(pool: APIPool, cfg: DialogsConfig, rows: dict[int, dict], scorer: Scorer, run, budget: list[int]) -> dict:
    """Complexity guidance rounds (module doc). Mutates ``rows`` in place."""
    guide = ComplexityGuide(scorer, cfg.complexity)
    slots = sorted(rows)
    history: dict[int, list[dict]] = {}
    scores = dict(zip(slots, guide.score([rows[s] for s in slots])))
    guide.calibrate([scores[s] for s in slots[: cfg.complexity.prior_size]])
    for s in slots:
        history[s] = [{"level": json.loads(rows[s]["provenance"])["level"], "score": round(scores[s], 6)}]
    regenerated = 0
    for _round in range(cfg.complexity.max_rounds):
        moves = []
        for s in slots:
            d = guide.direction(scores[s])
            lvl = history[s][-1]["level"]
            new = max(0, min(4, lvl + d * cfg.complexity.step))
            if d != 0 and new != lvl:
                moves.append((s, new))
        if not moves:
            break
        fresh: dict[int, dict] = {}
        budget[0] += int(cfg.max_attempts_factor * len(moves))
        run(moves, fresh, {s: {"complexity_round": _round + 1} for s, _ in moves})
        got = sorted(fresh)
        if not got:
            break
        new_scores = dict(zip(got, guide.score([fresh[s] for s in got])))
        for s in got:
            rows[s] = fresh[s]
            scores[s] = new_scores[s]
            history[s].append({"level": json.loads(fresh[s]["provenance"])["level"], "score": round(new_scores[s], 6)})
            regenerated += 1
    lo, hi = guide.band
    status = Counter()
    for s in slots:
        d = guide.direction(scores[s])
        final = "in_band" if d == 0 else ("too_easy" if d > 0 else "too_hard")
        status[final] += 1
        prov = json.loads(rows[s]["provenance"])
        prov["complexity"] = {"band": [round(lo, 6), round(hi, 6)], "history": history[s], "final": final}
        rows[s]["provenance"] = json.dumps(prov, ensure_ascii=False, default=str)
    return {"complexity": {"band": [lo, hi], "regenerated": regenerated, "final": dict(status),
                           "in_band_share": round(status["in_band"] / max(len(slots), 1), 4)}}


def summarise(dialogs: pl.DataFrame, rejects: pl.DataFrame, *, n_target: int, attempts: int, seconds: float,
              agents: dict[str, Agent]) -> dict:
    """Stage metrics: counts, type mix, structure, voting, rejections, throughput."""
    n = dialogs.height
    prov = [json.loads(p) for p in dialogs["provenance"].to_list()] if n else []
    votes = [v for p in prov for v in p.get("votes", [])]
    reasons = Counter(r.split(":")[0] for r in rejects["reason"].to_list()) if rejects.height else Counter()
    mix = {t: int(dialogs.filter(pl.col("type") == t).height) for t in DIALOG_TYPES}
    users = dialogs.select(pl.col("messages")).to_series().to_list() if n else []
    firsts = [json.loads(m)[0]["content"] for m in users]
    return {
        "n_dialogs": n, "n_target": n_target, "n_attempts": attempts, "n_rejected": rejects.height,
        "reject_reasons": dict(reasons.most_common()),
        "reject_by_phase": dict(Counter(rejects["phase"].to_list()).most_common()) if rejects.height else {},
        "type_counts": mix, "type_mix": {t: round(c / n, 4) if n else 0.0 for t, c in mix.items()},
        "domains": int(dialogs["domain"].n_unique()) if n else 0,
        "apis_used": int(dialogs.select(pl.col("apis").explode().drop_nulls().n_unique()).item()) if n else 0,
        "mean_candidates": round(float(dialogs["n_candidates"].mean()), 3) if n else 0.0,
        "mean_calls": round(float(dialogs["n_calls"].mean()), 3) if n else 0.0,
        "mean_turns": round(float(dialogs["n_turns"].mean()), 3) if n else 0.0,
        "multi_turn_share": round(sum(p["exchanges"] > 1 for p in prov) / n, 4) if n else 0.0,
        "follow_up_share": round(sum(bool(p.get("follow_up")) for p in prov) / n, 4) if n else 0.0,
        "profile_share": round(sum(bool(p.get("profile")) for p in prov) / n, 4) if n else 0.0,
        "styles": dict(Counter(p.get("style") for p in prov).most_common()),
        "levels": dict(sorted(Counter(p.get("level") for p in prov).items())),
        "distinct_first_turn_share": round(len(set(firsts)) / n, 4) if n else 0.0,
        "votes": {"decisions": len(votes), "unanimous_share": round(sum(v["top"] == v["n"] for v in votes) / len(votes), 4)
                  if votes else None, "mean_agreement": round(sum(v["top"] / v["n"] for v in votes) / len(votes), 4)
                  if votes else None},
        "agents": {k: a.kind for k, a in agents.items()},
        "seconds": round(seconds, 3), "dialogs_per_s": round(n / seconds, 1) if seconds > 0 else None,
    }
