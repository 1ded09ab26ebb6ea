"""The ADNT benchmark protocol (ADNT arXiv 2208.02947 §4).

Leave-one-domain-out: each domain in turn is the unlabelled target, the others
the labelled sources. Every (method, target, seed) is one run; the runs are
spread over ``workers`` processes with one torch thread each (small CNNs scale
better across processes than across intra-op threads). A run's seed depends on
(seed, target) only, so all methods of a (target, seed) start from the same
backbone initialisation and draw the same source batches where their loops agree.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from toolkiln.adapt.config import ADNTConfig
from toolkiln.adapt.digits import Domain

RESULT_SCHEMA = {"method": pl.Utf8, "target": pl.Utf8, "seed": pl.Int64, "acc": pl.Float64, "seconds": pl.Float64,
                 "cpu_seconds": pl.Float64, "history": pl.Utf8}

_W: dict = {}


def run_seed(seed: int, target_index: int) -> int:
    return 1000 * seed + target_index


def _init_worker(domains: dict, cfg_json: str) -> None:
    import torch

    torch.set_num_threads(1)
    _W.update(domains=domains, cfg=ADNTConfig.model_validate_json(cfg_json), tasks={})


def _run_job(job: tuple[str, str, int]) -> dict:
    from toolkiln.adapt.train import make_task, run_method

    method, target, seed = job
    tasks = _W["tasks"]
    if target not in tasks:
        tasks.clear()  # jobs are grouped by target: keep one task's tensors alive at a time
        tasks[target] = make_task(_W["domains"], target)
    ti = list(_W["domains"]).index(target)
    r = run_method(method, tasks[target], _W["cfg"], run_seed(seed, ti))
    row = asdict(r)
    row["seed"] = seed
    row["history"] = json.dumps(r.history)
    return row


def jobs_for(domains: dict, cfg: ADNTConfig, targets: list[str] | None = None) -> list[tuple[str, str, int]]:
    """(method, target, seed) for every target domain (or just ``targets``), seed and method, grouped by target."""
    unknown = sorted(set(targets or ()) - set(domains))
    if unknown:
        raise ValueError(f"targets {unknown} are not among the domains {list(domains)}")
    return [(m, t, s) for t in domains if targets is None or t in targets
            for s in cfg.protocol.seeds for m in cfg.protocol.methods]


def _dask_job(args: tuple[tuple[str, str, int], str, list[str], str]) -> dict:
    """One run on a Dask worker: the worker loads the domains from disk once (not pickled per task)."""
    job, domains_dir, names, cfg_json = args
    key = (domains_dir, tuple(names), cfg_json)
    if _W.get("key") != key:
        _init_worker(load_domains(domains_dir, names), cfg_json)
        _W["key"] = key
    return _run_job(job)


def run_protocol(domains: dict[str, Domain], cfg: ADNTConfig, *, workers: int = 1,
                 progress: bool = True, executor: str = "local", domains_dir: str | None = None,
                 dask_address: str = "", targets: list[str] | None = None) -> pl.DataFrame:
    """Run every (method, target, seed) of ``cfg.protocol`` and return one row per run.

    ``workers`` (``params.runtime.workers``) processes share the runs; each run seeds itself from
    (seed, target) and uses one torch thread, so the rows do not depend on it (only their timings do).
    ``executor="dask"`` (``runtime.executor``) makes each run a Prefect task on a Dask cluster
    (:func:`toolkiln.scaleout.dask_map`; workers read the domains from ``domains_dir``); rows come back
    in job order either way. ``targets`` restricts the leave-one-domain-out tasks (benchmarks); every domain
    not held out is still a source.
    """
    from tqdm import tqdm

    jobs = jobs_for(domains, cfg, targets)
    # the workers get every section the digit runs read; ``dialogs`` is adnt_dialogs' alone
    cfg_json = cfg.model_dump_json(exclude={"dialogs"})
    rows = []
    bar = tqdm(total=len(jobs), desc="adnt runs", disable=not progress)
    if executor == "dask":
        from toolkiln.scaleout import dask_map

        if domains_dir is None:
            raise ValueError("run_protocol: executor 'dask' needs domains_dir (the workers load the domains from it)")
        names = list(domains)
        rows = dask_map(_dask_job, [(job, str(domains_dir), names, cfg_json) for job in jobs], n_workers=workers,
                        address=dask_address, name="adnt-protocol", task_name="adnt-run")
        bar.update(len(rows))
    elif executor != "local":
        raise ValueError(f"runtime.executor: got {executor!r}; expected 'local' or 'dask'")
    elif workers == 1:
        _init_worker(domains, cfg_json)
        for job in jobs:
            rows.append(_run_job(job))
            bar.update()
    else:
        # spawn, not fork: forking after torch has started its thread pools can deadlock
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                 initializer=_init_worker, initargs=(domains, cfg_json)) as ex:
            for row in ex.map(_run_job, jobs, chunksize=1):
                rows.append(row)
                bar.update()
    bar.close()
    return pl.DataFrame(rows, schema=RESULT_SCHEMA)


def summarise(results: pl.DataFrame) -> pl.DataFrame:
    """Per method and target: mean and std (over seeds) of target accuracy, plus the target-average
    (mean over targets within a seed, then mean and std over seeds). Columns: method, target, mean, std, n."""
    per = results.group_by("method", "target").agg(
        pl.col("acc").mean().alias("mean"), pl.col("acc").std(ddof=0).alias("std"), pl.len().alias("n"))
    avg_seed = results.group_by("method", "seed").agg(pl.col("acc").mean().alias("acc"))
    avg = avg_seed.group_by("method").agg(
        pl.col("acc").mean().alias("mean"), pl.col("acc").std(ddof=0).alias("std"), pl.len().alias("n")
    ).with_columns(pl.lit("avg").alias("target")).select(per.columns)
    return pl.concat([per, avg]).with_columns(pl.col("n").cast(pl.Int64)).sort("method", "target")


def gap_table(names: list[str], G: np.ndarray) -> dict:
    """The domain-gap matrix as ``{source: {target: acc}}`` plus each source's mean out-of-domain accuracy."""
    out = {s: {t: float(G[i, j]) for j, t in enumerate(names)} for i, s in enumerate(names)}
    for i, s in enumerate(names):
        others = [G[i, j] for j in range(len(names)) if j != i]
        out[s]["out_of_domain_mean"] = float(np.mean(others))
        out[s]["gap"] = float(G[i, i] - np.mean(others))
    return out


# ---------------------------------------------------------------------------- stage entry points

def prepare_benchmark(cfg: ADNTConfig, *, progress: bool = True) -> tuple[dict[str, Domain], np.ndarray]:
    """``adnt_data``: build every domain of ``cfg.data`` and measure the single-source gap matrix."""
    import torch
    from tqdm import tqdm

    from toolkiln.adapt.digits import build_domain
    from toolkiln.adapt.train import single_source_gap

    torch.set_num_threads(1)
    domains = {n: build_domain(n, cfg.data, cfg.data.seed) for n in tqdm(cfg.data.domains, desc="domains",
                                                                        disable=not progress)}
    return domains, single_source_gap(domains, cfg, cfg.data.seed)


@dataclass
class Benchmark:
    """What ``adnt_data`` produces: the domains, their single-source gap matrix and the stage's metrics."""

    domains: dict[str, Domain]
    gap_matrix: np.ndarray
    metrics: dict


def build_benchmark(cfg: ADNTConfig, *, progress: bool = True) -> Benchmark:
    """The ``adnt_data`` stage as one call: every domain, the gap matrix (``G[i, j]``: trained on i, tested on j)
    and metrics (sizes, the gap table, mean in-domain and out-of-domain accuracy)."""
    domains, G = prepare_benchmark(cfg, progress=progress)
    names = list(domains)
    gap = gap_table(names, G)
    metrics = {"n_domains": len(names), "n_train": cfg.data.n_train, "n_test": cfg.data.n_test,
               "gap": gap, "mean_in_domain": float(G.diagonal().mean()),
               "mean_out_of_domain": float(sum(gap[n]["out_of_domain_mean"] for n in names) / len(names))}
    return Benchmark(domains, G, metrics)


def write_contact_sheets(domains: dict[str, Domain], folder) -> list[str]:
    """One contact-sheet PNG per domain in ``folder``; returns the file names."""
    from pathlib import Path

    from toolkiln import plots
    from toolkiln.adapt.digits import contact_sheet

    names = []
    for n, d in domains.items():
        plots.save_image(contact_sheet(d), Path(folder) / f"{n}.png")
        names.append(f"{n}.png")
    return names


def save_domains(domains: dict[str, Domain], folder) -> None:
    """One ``<name>.npz`` per domain plus ``manifest.json`` (domain order and sizes) in ``folder``."""
    from pathlib import Path

    folder = Path(folder)
    for name, d in domains.items():
        d.save(folder / f"{name}.npz")
    manifest = {"domains": list(domains), "sizes": {n: {"train": len(d.y_train), "test": len(d.y_test)}
                                                    for n, d in domains.items()},
                "image_shape": list(next(iter(domains.values())).X_train.shape[1:])}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def load_domains(folder, names: list[str] | None = None) -> dict[str, Domain]:
    """Domains saved by :func:`save_domains`, in manifest order (or ``names``' order)."""
    from pathlib import Path

    folder = Path(folder)
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{folder}: no manifest.json; run the adnt_data stage first")
    listed = json.loads(manifest.read_text())["domains"]
    names = names or listed
    missing = [n for n in names if n not in listed]
    if missing:
        raise ValueError(f"{folder}: domains {missing} requested by params but not built (have {listed})")
    return {n: Domain.load(folder / f"{n}.npz", n) for n in names}
