"""An ADNT run repeats bit for bit in a fresh process (another PYTHONHASHSEED) at one torch thread, the setting
``adnt_train`` runs every job with; ``bench/adnt_determinism.py`` measures the same on the default benchmark and
what 2 threads move."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolkiln.adapt.experiment import save_domains

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys
import torch
torch.set_num_threads(1)
from toolkiln.adapt.config import ADNTConfig
from toolkiln.adapt.experiment import load_domains, run_protocol
cfg = ADNTConfig.model_validate_json(open(sys.argv[2]).read())
rows = run_protocol(load_domains(sys.argv[1]), cfg, progress=False)
print(json.dumps(rows.select("method", "target", "seed", "acc", "history").to_dicts()))
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_protocol_rows_repeat_across_processes_at_one_thread(tmp_path, tiny_domains, tiny_cfg):
    methods = ["adnt", "source_only", "dann", "m3sda", "skada_dann"]
    cfg = tiny_cfg.model_copy(update={"protocol": tiny_cfg.protocol.model_copy(update={"methods": methods})})
    (tmp_path / "domains").mkdir()
    save_domains(tiny_domains, tmp_path / "domains")
    (tmp_path / "cfg.json").write_text(cfg.model_dump_json())
    outs = []
    for hash_seed in ("0", "1"):
        env = {
            **os.environ,
            "PYTHONHASHSEED": hash_seed,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}",
        }
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(tmp_path / "domains"), str(tmp_path / "cfg.json")],
            env=env,
            capture_output=True,
            text=True,
            timeout=500,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert len(outs[0]) == 3 * len(methods)
    assert outs[0] == outs[1]  # accuracies and training histories (pseudo-label coverage, precision) alike
    assert len({r["acc"] for r in outs[0]}) > 1  # not a degenerate run that always gives the same number
