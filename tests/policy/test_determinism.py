"""Training and scoring repeat for a given seed: two processes with different hash seeds (set and dict order of
strings) and thread counts give the same difficulty table and the same warm-up weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import hashlib, json, sys
import torch
torch.set_num_threads(int(sys.argv[1]))
sys.path.insert(0, sys.argv[2])
from fixtures import make_dialogs
from toolkiln.policy import difficulty as D
from toolkiln.policy.config import (DifficultyConfig, PolicyConfig, ProbeConfig, ScratchModelConfig, SFTConfig,
                                    TokenizerConfig)
from toolkiln.policy.sft import weights_digest
from toolkiln.policy.warmup import warmup_sft

policy = PolicyConfig(scratch=ScratchModelConfig(hidden_size=32, n_layers=1, n_heads=2, n_kv_heads=2,
                                                 intermediate_size=64),
                      tokenizer=TokenizerConfig(vocab_size=600, min_frequency=1))
dialogs = make_dialogs(60, seed=1)
probe = ProbeConfig(hidden_size=16, n_layers=1, n_heads=2, intermediate_size=32, max_steps=3, batch_size=4,
                    max_train_samples=12)
res = D.score_difficulty(dialogs, policy, DifficultyConfig(folds=2, probe=probe), seed=int(sys.argv[3]))
warm = warmup_sft(dialogs, res.table, policy, SFTConfig(max_steps=6, batch_size=4, eval_samples=4, logging_steps=1),
                  seed=int(sys.argv[3]))
print(json.dumps({"difficulty": hashlib.sha256(res.table.write_csv().encode()).hexdigest(),
                  "nll": res.table["nll"].to_list(), "bucket": res.table["bucket"].to_list(),
                  "weights": weights_digest(warm.model), "loss": warm.metrics["train_loss_mean"]}))
"""


def run(threads: int, hash_seed: int, seed: int = 0) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(threads), str(Path(__file__).parent), str(seed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_scoring_and_warmup_repeat_across_processes_hash_seeds_and_threads():
    first = run(threads=1, hash_seed=0)
    assert run(threads=1, hash_seed=7) == first  # same thread count: byte-identical table, bit-identical weights
    # another thread count splits float reductions differently: NLLs move in the last bits, buckets stay
    two = run(threads=2, hash_seed=3)
    assert two["bucket"] == first["bucket"]
    assert max(abs(a - b) for a, b in zip(two["nll"], first["nll"])) < 1e-4
    # the comparison can fail: another seed trains other weights
    assert run(threads=1, hash_seed=0, seed=1)["weights"] != first["weights"]
