"""``runtime.executor: dask`` for the MCTS stage: each deficient prompt's search is a Prefect task on a local
two-process Dask cluster whose workers load the checkpoint themselves; the pairs and the search counts equal
the in-process run's (each search is seeded by its prompt's index alone)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from toolkiln.itool.config import IToolConfig, MCTSConfig, PairsConfig
from toolkiln.itool.rounds import mcts_pairs

REPO = Path(__file__).resolve().parents[2]

DASK_RUN = """
import json, sys
import polars as pl
from toolkiln.config import RuntimeConfig
from toolkiln.itool.config import IToolConfig
from toolkiln.itool.rounds import mcts_pairs
from toolkiln.policy.config import PolicyConfig
train, defs, folder, policy, itool, out = sys.argv[1:7]
res = mcts_pairs(pl.read_parquet(train), pl.read_parquet(defs), folder,
                 PolicyConfig.model_validate_json(open(policy).read()),
                 IToolConfig.model_validate_json(open(itool).read()), seed=0, round_=1,
                 runtime=RuntimeConfig(executor="dask", workers=2))
res.pairs.write_parquet(out + ".parquet")
json.dump(res.metrics, open(out + ".json", "w"))
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_dask_prompts_give_the_local_pairs(tmp_path, tiny_policy, train_dialogs):
    folder, cfg = tiny_policy
    ids = train_dialogs["id"].head(4).to_list()
    defs = pl.DataFrame({"id": ids, "selected": [True] * 4})
    itool = IToolConfig(
        # two lockstep groups of two prompts: one per Dask worker
        mcts=MCTSConfig(iterations=3, width=3, depth=2, max_new_tokens=12, lockstep=2),
        pairs=PairsConfig(min_chosen=-1.0, min_gap=0.0),
    )
    local = mcts_pairs(train_dialogs, defs, folder, cfg, itool, seed=0, round_=1)

    train_dialogs.write_parquet(tmp_path / "train.parquet")
    defs.write_parquet(tmp_path / "defs.parquet")
    (tmp_path / "policy.json").write_text(cfg.model_dump_json())
    (tmp_path / "itool.json").write_text(itool.model_dump_json())
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'src'}:{REPO}",
        "OMP_NUM_THREADS": "1",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",
    }
    args = [str(tmp_path / n) for n in ("train.parquet", "defs.parquet")]
    args += [str(folder), str(tmp_path / "policy.json"), str(tmp_path / "itool.json"), str(tmp_path / "dask")]
    proc = subprocess.run(
        [sys.executable, "-c", DASK_RUN, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=850
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "mcts-prompt" in proc.stdout + proc.stderr  # the searches were Prefect task runs
    dask = pl.read_parquet(tmp_path / "dask.parquet")
    metrics = json.loads((tmp_path / "dask.json").read_text())
    assert local.metrics["prompts_searched"] == 4 and local.pairs.height > 0
    assert dask.equals(local.pairs)
    for key in ("pairs", "rollouts", "forward_passes", "root_value_mean", "solved_share"):
        assert metrics[key] == local.metrics[key], key
