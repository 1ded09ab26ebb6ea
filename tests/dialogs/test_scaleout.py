"""``runtime.executor: dask`` for the data half of the pipeline: API synthesis, dialog generation and the
verification model layer run their shards as Prefect tasks on a local two-process Dask cluster
(prefect-dask's DaskTaskRunner) and give exactly the frames of the in-process loop over the same shards."""

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]

CHAIN = """
import sys
from pathlib import Path
from toolkiln.config import RuntimeConfig
from toolkiln.dialogs.config import DialogsConfig
from toolkiln.dialogs.generate import generate_dialogs
from toolkiln.dialogs.pool import APIPool
from toolkiln.synth.config import SynthConfig
from toolkiln.synth.pool import synthesize_pool
from toolkiln.synth.synthesizer import SimulatorSynthesizer
from toolkiln.synth.tree import load_tree
from toolkiln.verify.config import VerifyConfig
from toolkiln.verify.model import EmbeddedJudge
from toolkiln.verify.pipeline import verify_dialogs

repo, out = Path(sys.argv[1]), Path(sys.argv[2])
tree = load_tree(repo / "data" / "api_context_tree")
synth = SynthConfig(n_apis=300, batch_size=64, shards=4, dedup={"method": "minhash", "embed_sample": 0})
dialogs = DialogsConfig(n_dialogs=120, batch_size=32, shards=4)
for executor in ("local", "dask"):
    rt = RuntimeConfig(executor=executor, workers=2)
    pool = synthesize_pool(tree, synth, SimulatorSynthesizer(), seed=1, progress=False, runtime=rt)
    gen = generate_dialogs(APIPool.from_frame(pool.pool), dialogs, seed=1, progress=False, runtime=rt)
    # bfloat16: the precision whose vectors depend on batch padding; shards of 25 rule survivors
    ver = verify_dialogs(gen.dialogs, VerifyConfig(), EmbeddedJudge(embed_dtype="bfloat16"), runtime=rt,
                         shard_size=25)
    frames = {"pool": pool.pool, "api_rejects": pool.rejects, "dialogs": gen.dialogs, "dialog_rejects": gen.rejects,
              "verified": ver.verified, "verify_checks": ver.checks, "verify_rejects": ver.rejects}
    for name, frame in frames.items():
        frame.write_parquet(out / f"{name}_{executor}.parquet")
"""

FRAMES = ("pool", "api_rejects", "dialogs", "dialog_rejects", "verified", "verify_checks", "verify_rejects")


def prefect_env(tmp_path: Path) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'src'}:{REPO}",
        "OMP_NUM_THREADS": "1",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",
    }


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_dask_shards_give_the_local_frames_for_synthesis_dialogs_and_verification(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", CHAIN, str(REPO), str(tmp_path)],
        cwd=tmp_path,
        env=prefect_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    logs = proc.stdout + proc.stderr
    for task in ("api-shard", "dialog-shard", "verify-shard"):  # each kind ran as Prefect task runs
        assert task in logs, task
    for name in FRAMES:
        local = pl.read_parquet(tmp_path / f"{name}_local.parquet")
        dask = pl.read_parquet(tmp_path / f"{name}_dask.parquet")
        assert dask.equals(local), name
    assert pl.read_parquet(tmp_path / "pool_local.parquet").height >= 300
    assert pl.read_parquet(tmp_path / "dialogs_local.parquet").height == 120
    checks = pl.read_parquet(tmp_path / "verify_checks_local.parquet")
    assert checks["ok_model"].is_not_null().sum() > 25  # more than one model-layer shard was judged
