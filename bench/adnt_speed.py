"""ADNT benchmark cost: CPU time per run of every method relative to source-only (ADNT arXiv 2208.02947).

Measured in one run on one leave-one-domain-out task with the default backbone and
batch composition (params.yaml ``adnt``), each method for ``--steps`` steps
(skada methods: one epoch, scaled to the same number of source images):

* ``cpu_s``  — process CPU seconds (one torch thread), independent of other load on the machine;
* ``ratio``  — ``cpu_s`` / source-only's ``cpu_s``: what the adaptation objective costs;
* the projected wall time of the default protocol on 2 idle cores, from those per-step costs.

Data: ``data/adnt/domains`` when present, else small domains built on the spot.

    python -m bench adnt_speed            # or: python bench/adnt_speed.py --steps 60
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import record, table  # noqa: E402


def _domains(cfg):
    from toolkiln.adapt.digits import build_domain
    from toolkiln.adapt.experiment import load_domains

    folder = ROOT / "data" / "adnt" / "domains"
    if (folder / "manifest.json").is_file():
        return load_domains(folder, cfg.data.domains), str(folder.relative_to(ROOT))
    small = cfg.data.model_copy(update={"n_train": 300, "n_test": 100})
    return {n: build_domain(n, small, 0) for n in cfg.data.domains}, "built (300 train / domain)"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--target", default="mnistm")
    args = ap.parse_args(argv)

    import torch

    from toolkiln.adapt.config import METHODS
    from toolkiln.adapt.train import make_task, run_method
    from toolkiln.config import load_params

    torch.set_num_threads(1)
    all_params = load_params(ROOT / "params.yaml")
    full, workers = all_params.adnt, all_params.runtime.workers
    domains, source = _domains(full)
    task = make_task(domains, args.target)
    # skada: one epoch = max(#source, #target) source images; scale epochs to our steps' source images
    src_images = args.steps * full.train.batch_size * len(task.Xs)
    n_src = sum(len(y) for y in task.ys)
    cfg = full.model_copy(update={"train": full.train.model_copy(update={"steps": args.steps}),
                                  "skada": full.skada.model_copy(update={"max_epochs": max(1, round(src_images / n_src))})})
    run_method("source_only", task, cfg.model_copy(update={"train": cfg.train.model_copy(update={"steps": 5})}), seed=0)
    rows = []  # ^ warm-up: the first run in a process pays one-off allocator and kernel-selection costs
    for m in METHODS:
        t0, c0 = time.perf_counter(), time.process_time()
        r = run_method(m, task, cfg, seed=0)
        cpu = time.process_time() - c0
        # per-run cost at the default size: own methods scale with steps, skada with epochs
        scale = (full.train.steps / args.steps) if not m.startswith("skada_") else (
            full.skada.max_epochs / cfg.skada.max_epochs)
        rows.append({"method": m, "wall_s": time.perf_counter() - t0, "cpu_s": cpu, "acc": r.acc,
                     "cpu_per_default_run_s": cpu * scale})
    base = next(r["cpu_s"] for r in rows if r["method"] == "source_only")
    base_run = next(r["cpu_per_default_run_s"] for r in rows if r["method"] == "source_only")
    for r in rows:
        r["ratio"] = r["cpu_s"] / base
        r["run_ratio"] = r["cpu_per_default_run_s"] / base_run
    per_task_seed = sum(r["cpu_per_default_run_s"] for r in rows if r["method"] in full.protocol.methods)
    n_cells = len(full.data.domains) * len(full.protocol.seeds)
    projected = per_task_seed * n_cells / workers
    print(f"task: -> {args.target}, {args.steps} steps; data: {source}")
    print(table(rows, ["method", "cpu_s", "ratio", "cpu_per_default_run_s", "run_ratio", "wall_s", "acc"]))
    print(f"projected default protocol ({n_cells} task-seeds x {len(full.protocol.methods)} methods, "
          f"{workers} workers, idle cores): {projected:.0f} s = {projected / 60:.1f} min")
    path = record("adnt_speed", {"steps": args.steps, "target": args.target, "data": source, "rows": rows,
                                 "baseline": "source_only", "projected_protocol_seconds": projected})
    print(f"-> {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
