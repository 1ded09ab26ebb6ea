"""Model selection without the target's labels: leave-one-source-out validation (docs/architecture.md#domain-adaptation).

Unsupervised domain adaptation has no labelled target data, so a hyper-parameter chosen by target accuracy is a
leak, and one chosen on single-seed runs of the same benchmark is a weaker one. Here every method gets the same
protocol. For a task with target ``T`` and sources ``S_1..S_k``:

1. for each candidate setting of the method and each source ``V``, train on the other sources with ``V``'s
   training images as the unlabelled "target", and score on ``V``'s test split (``V`` is a source, so its labels
   may be used); ``T``'s data is never read;
2. the setting with the best mean over ``V`` (ties: the earlier candidate, i.e. the default) is the method's
   choice for ``T``;
3. the chosen setting is trained on the real task (all sources, ``T`` unlabelled) for every seed and scored on
   ``T``'s test split, as in ``adnt_train``.

Candidates are override mappings of the typed ADNT config (``{"method": {"pseudo_threshold": 0.9}}``); the first
candidate of each method is its default. ``run_selection`` returns the validation scores, the choices and the
final runs; ``bench/adnt_selection.py`` prints the table.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import polars as pl

from toolkiln.adapt.config import ADNTConfig

# One knob per method that its paper or ours tunes, the default first. Source-only has nothing to select.
DEFAULT_GRID: dict[str, list[dict]] = {
    "source_only": [{}],
    "adnt": [
        {},
        {"method": {"pseudo_threshold": 0.9}},
        {"method": {"weight_max": 0.3}},
        {"method": {"pseudo_threshold": 0.9, "weight_max": 0.3}},
    ],
    "dann": [{}, {"dann": {"weight": 0.1}}, {"dann": {"weight": 0.3}}],
    "m3sda": [{}, {"m3sda": {"weight": 0.01}}, {"m3sda": {"weight": 1.0}}],
}

_W: dict = {}


def with_overrides(cfg: ADNTConfig, overrides: dict) -> ADNTConfig:
    """``cfg`` with section-level overrides applied (validated: an unknown key or bad value raises)."""
    data = cfg.model_dump()
    for section, values in overrides.items():
        if section not in data or not isinstance(data[section], dict):
            raise ValueError(f"selection override: unknown adnt section {section!r}")
        data[section] = {**data[section], **values}
    return ADNTConfig.model_validate(data)


def _init(domains_dir: str, names: list[str], cfg_json: str) -> None:
    import torch

    from toolkiln.adapt.experiment import load_domains

    torch.set_num_threads(1)  # one thread per run, as in adnt_train: results do not depend on the worker count
    _W.update(domains=load_domains(domains_dir, names), cfg=ADNTConfig.model_validate_json(cfg_json))


def _job(job: tuple[str, str, list[str], str, int]) -> float:
    """(method, overrides JSON, the domains the task sees, its target, run seed) -> target test accuracy."""
    from toolkiln.adapt.train import make_task, run_method

    method, overrides, names, target, seed = job
    task = make_task({n: _W["domains"][n] for n in names}, target)
    return run_method(method, task, with_overrides(_W["cfg"], json.loads(overrides)), seed).acc


@dataclass
class Selection:
    validation: pl.DataFrame  # method, target, candidate, overrides, held_out, acc
    choices: pl.DataFrame  # method, target, candidate, overrides, val_acc, default_val_acc
    runs: pl.DataFrame  # method, target, seed, acc (the chosen setting on the real task)


def _map(jobs: list, domains_dir: str, names: list[str], cfg: ADNTConfig, workers: int, progress: bool) -> list:
    from tqdm import tqdm

    args = (domains_dir, names, cfg.model_dump_json(exclude={"dialogs"}))
    with tqdm(total=len(jobs), desc="adnt selection", disable=not progress) as bar:
        if workers == 1:
            _init(*args)
            out = []
            for j in jobs:
                out.append(_job(j))
                bar.update()
            return out
        # spawn, not fork: forking after torch has started its thread pools can deadlock
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init, initargs=args) as ex:
            out = []
            for acc in ex.map(_job, jobs, chunksize=1):
                out.append(acc)
                bar.update()
            return out


def run_selection(
    domains_dir: str,
    names: list[str],
    cfg: ADNTConfig,
    *,
    grid: dict[str, list[dict]] | None = None,
    targets: list[str] | None = None,
    selection_seed: int = 0,
    workers: int = 1,
    progress: bool = True,
) -> Selection:
    """Leave-one-source-out selection for every method of ``grid`` and target, then the chosen settings on the
    real tasks for every ``cfg.protocol.seeds``. ``names``: the benchmark's domains, in order."""
    grid = grid or DEFAULT_GRID
    for method, cands in grid.items():
        if not cands:
            raise ValueError(f"selection grid: method {method!r} has no candidate")
        for c in cands:
            with_overrides(cfg, c)  # fail before any training
    targets = targets or list(names)
    val_jobs, val_keys = [], []
    for ti, t in enumerate(names):
        if t not in targets:
            continue
        sources = [n for n in names if n != t]
        for vi, v in enumerate(sources):
            for method, cands in grid.items():
                for ci, c in enumerate(cands):
                    seed = 1000 * selection_seed + 100 + 10 * ti + vi  # never a final run's seed
                    val_jobs.append((method, json.dumps(c, sort_keys=True), sources, v, seed))
                    val_keys.append(
                        {
                            "method": method,
                            "target": t,
                            "candidate": ci,
                            "overrides": json.dumps(c, sort_keys=True),
                            "held_out": v,
                        }
                    )
    accs = _map(val_jobs, domains_dir, names, cfg, workers, progress)
    validation = pl.DataFrame([{**k, "acc": a} for k, a in zip(val_keys, accs)])
    mean = validation.group_by("method", "target", "candidate", "overrides").agg(pl.col("acc").mean().alias("val_acc"))
    choices = []
    for _, g in mean.group_by("method", "target", maintain_order=True):
        g = g.sort("candidate")
        best = g.row(int(g["val_acc"].arg_max()), named=True)  # first maximum: ties keep the default
        choices.append({**best, "default_val_acc": float(g["val_acc"][0])})
    choices = pl.DataFrame(choices).sort("method", "target")
    final_jobs, final_keys = [], []
    for r in choices.iter_rows(named=True):
        ti = names.index(r["target"])
        for s in cfg.protocol.seeds:
            final_jobs.append((r["method"], r["overrides"], list(names), r["target"], 1000 * s + ti))
            final_keys.append({"method": r["method"], "target": r["target"], "seed": s})
    accs = _map(final_jobs, domains_dir, names, cfg, workers, progress)
    runs = pl.DataFrame([{**k, "acc": a} for k, a in zip(final_keys, accs)])
    return Selection(validation, choices, runs)
