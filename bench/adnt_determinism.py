"""Do ADNT runs repeat? The same (method, target, seed) trained in separate processes, at 1 and 2 threads.

Each run is a fresh interpreter (its own ``PYTHONHASHSEED``) that loads the ``adnt_data`` domains, builds one
leave-one-domain-out task and trains every ``--methods`` entry on it with the ``adnt_train`` code path
(``run_method`` with the protocol's per-(seed, target) seed). It reports each method's target accuracy and a
SHA-256 of its training history (losses, pseudo-label counts per refresh). Runs at one thread count should agree
bit for bit whatever the hash seed; the 2-thread run shows what a different intra-op split moves (float
reductions in conv / matmul backward are summed in another order).

    python -m bench.adnt_determinism [--domains data/adnt/domains] [--target mnistm] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import record, table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_METHODS = "adnt,source_only,adnt_ordinary_attention,adnt_ce,skada_dann"

CHILD = r"""
import hashlib, json, sys
import torch
threads = int(sys.argv[1])
torch.set_num_threads(threads)
from toolkiln.config import load_params
from toolkiln.adapt.experiment import load_domains, run_seed
from toolkiln.adapt.train import make_task, run_method
cfg = load_params(sys.argv[2]).adnt
domains = load_domains(sys.argv[3], cfg.data.domains)
target, seed = sys.argv[4], int(sys.argv[5])
task = make_task(domains, target)
ti = list(domains).index(target)
out = []
for m in sys.argv[6].split(","):
    r = run_method(m, task, cfg, run_seed(seed, ti))
    out.append({"method": m, "acc": r.acc, "seconds": r.seconds,
                "history": hashlib.sha256(json.dumps(r.history).encode()).hexdigest()})
print(json.dumps(out))
"""


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", default="data/adnt/domains", help="the adnt_data stage's folder")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--target", default="mnistm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default=DEFAULT_METHODS)
    args = ap.parse_args(argv)

    runs = [(1, 0), (1, 1), (2, 0)]  # (threads, PYTHONHASHSEED); the first is the reference
    out = []
    for threads, hash_seed in runs:
        env = {
            **os.environ,
            "PYTHONHASHSEED": str(hash_seed),
            "OMP_NUM_THREADS": str(threads),
            "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        }
        t0 = time.perf_counter()
        cmd = [
            sys.executable,
            "-c",
            CHILD,
            str(threads),
            args.params,
            args.domains,
            args.target,
            str(args.seed),
            args.methods,
        ]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        out.append({"threads": threads, "hash_seed": hash_seed, "seconds": time.perf_counter() - t0, "runs": res})
        print(f"threads={threads} hash_seed={hash_seed}: {time.perf_counter() - t0:.0f}s", file=sys.stderr)

    ref = {r["method"]: r for r in out[0]["runs"]}
    rows = []
    for o in out:
        for r in o["runs"]:
            rows.append(
                {
                    "threads": o["threads"],
                    "hash_seed": o["hash_seed"],
                    "method": r["method"],
                    "acc": r["acc"],
                    "acc_diff": r["acc"] - ref[r["method"]]["acc"],
                    "same_history": r["history"] == ref[r["method"]]["history"],
                    "seconds": r["seconds"],
                }
            )
    cols = ["threads", "hash_seed", "method", "acc", "acc_diff", "same_history", "seconds"]
    print(f"target {args.target}, seed {args.seed}: one process per row group, reference = 1 thread, hash seed 0")
    print(table(rows, cols))
    payload = {"target": args.target, "seed": args.seed, "methods": args.methods.split(","), "rows": rows}
    print(f"-> {record('adnt_determinism', payload)}")
    return payload


if __name__ == "__main__":
    main()
