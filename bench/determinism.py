"""Do difficulty scoring and warm-up SFT of the default base model repeat? Separate processes, same seed.

Each run is a fresh interpreter (its own ``PYTHONHASHSEED``, so set and dict order of strings differ) that scores
``--n`` dialogs under the base model (target NLL, the ``score_difficulty`` path of the default params) and trains
``--steps`` warm-up steps on them (the ``warmup_sft`` path: top-k blocks, compact head), then greedily answers 8 of
them with the evaluator's generator (shared-prefix KV cache, stop at the call list's end), and reports a SHA-256 of
the difficulty table, of the trained weights and of the generations. Runs with the same thread count should agree bit for bit; a
different thread count splits float reductions differently (the table shows by how much).

    python -m bench.determinism [--checkpoint checkpoints/base] [--n 48] [--steps 4]
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

CHILD = r"""
import hashlib, json, sys
import polars as pl
import torch
threads, checkpoint, data, n, steps = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
from toolkiln.config import load_params
from toolkiln.policy.difficulty import score_difficulty
from toolkiln.policy.sft import weights_digest
from toolkiln.policy.warmup import warmup_sft
p = load_params(sys.argv[6])
policy = p.policy.model_copy(update={"base_model": checkpoint, "threads": threads})
rows = pl.read_parquet(data).filter(pl.col("type") != "non_tool").head(n)
res = score_difficulty(rows, policy, p.difficulty.model_copy(update={"max_samples": n}), seed=p.seed)
sft = p.sft.model_copy(update={"max_steps": steps, "eval_samples": 0, "logging_steps": 1})
warm = warmup_sft(rows, res.table, policy, sft, seed=p.seed)
from toolkiln.evaluate.harness import HFGenerator, dialog_prompt
gen = HFGenerator(checkpoint, model=warm.model, tokenizer=warm.tokenizer, max_new_tokens=48, batch_size=4)
outs = gen([dialog_prompt(r) for r in rows.head(8).to_dicts()])
print(json.dumps({"table": hashlib.sha256(res.table.write_csv().encode()).hexdigest(),
                  "nll": res.table["nll"].to_list(), "weights": weights_digest(warm.model),
                  "loss": warm.metrics["train_loss_mean"],
                  "generations": hashlib.sha256(json.dumps(outs).encode()).hexdigest()}))
"""


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default="checkpoints/base")
    ap.add_argument("--data", default="data/verified.parquet", help="dialogs to score and train on")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args(argv)

    runs = [(2, 0), (2, 1), (1, 0)]  # (threads, PYTHONHASHSEED)
    out = []
    for threads, hash_seed in runs:
        env = {**os.environ, "PYTHONHASHSEED": str(hash_seed), "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(threads),
                args.checkpoint,
                args.data,
                str(args.n),
                str(args.steps),
                args.params,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        out.append({"threads": threads, "hash_seed": hash_seed, "seconds": time.perf_counter() - t0, **r})
    ref = out[0]
    rows = []
    for r in out:
        rows.append(
            {
                "threads": r["threads"],
                "hash_seed": r["hash_seed"],
                "seconds": r["seconds"],
                "table_sha": r["table"][:12],
                "weights_sha": r["weights"][:12],
                "same_table": r["table"] == ref["table"],
                "same_weights": r["weights"] == ref["weights"],
                "same_generations": r["generations"] == ref["generations"],
                "max_nll_diff": max(
                    (abs(a - b) for a, b in zip(r["nll"], ref["nll"]) if a is not None and b is not None), default=0.0
                ),
                "scored": sum(v is not None for v in r["nll"]),
                "loss": r["loss"],
            }
        )
    cols = [
        "threads",
        "hash_seed",
        "seconds",
        "table_sha",
        "weights_sha",
        "same_table",
        "same_weights",
        "same_generations",
        "max_nll_diff",
        "scored",
        "loss",
    ]
    print(f"{args.checkpoint}: {args.n} dialogs scored, {args.steps} warm-up steps per run")
    print(table(rows, cols))
    payload = {"checkpoint": args.checkpoint, "n": args.n, "steps": args.steps, "rows": rows}
    path = record("determinism", payload)
    print(f"-> {path}")
    return payload


if __name__ == "__main__":
    main()
