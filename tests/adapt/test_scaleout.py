"""``runtime.executor: dask``: the ADNT protocol's runs as Prefect tasks on a local Dask cluster (prefect-dask's
DaskTaskRunner, two single-threaded worker processes) give exactly the rows of the single-process run, in the
same order (timings aside)."""

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from toolkiln.adapt.experiment import run_protocol, save_domains

REPO = Path(__file__).resolve().parents[2]

DASK_RUN = """
import sys
from toolkiln.adapt.config import ADNTConfig
from toolkiln.adapt.experiment import load_domains, run_protocol
cfg = ADNTConfig.model_validate_json(open(sys.argv[2]).read())
domains = load_domains(sys.argv[1])
rows = run_protocol(domains, cfg, workers=2, executor="dask", domains_dir=sys.argv[1], progress=False)
rows.write_parquet(sys.argv[3])
"""


def test_unknown_executor_is_refused(tiny_domains, tiny_cfg):
    with pytest.raises(ValueError, match="runtime.executor"):
        run_protocol(tiny_domains, tiny_cfg, executor="spark", progress=False)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_dask_executor_output_identical_to_single_process(tmp_path, tiny_domains, tiny_cfg):
    cfg = tiny_cfg.model_copy(
        update={
            "protocol": tiny_cfg.protocol.model_copy(update={"methods": ["adnt", "source_only", "dann"], "seeds": [0]})
        }
    )
    (tmp_path / "domains").mkdir()
    save_domains(tiny_domains, tmp_path / "domains")
    (tmp_path / "cfg.json").write_text(cfg.model_dump_json())
    local = run_protocol(tiny_domains, cfg, workers=1, progress=False)

    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'src'}:{REPO}",
        "OMP_NUM_THREADS": "1",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            DASK_RUN,
            str(tmp_path / "domains"),
            str(tmp_path / "cfg.json"),
            str(tmp_path / "dask.parquet"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    dask = pl.read_parquet(tmp_path / "dask.parquet")
    assert "adnt-run" in proc.stdout + proc.stderr  # the runs were Prefect task runs

    same = ["method", "target", "seed", "acc", "history"]  # seconds / cpu_seconds are timings
    assert local.height == 9
    assert dask.select(same).equals(local.select(same))
