"""warmup_sft under ``accelerate launch`` with two CPU processes: both train, one checkpoint, one MLflow run.

accelerate 1.15's ``--cpu`` takes its single-process launcher (several CPU processes need mpirun), so the
test launches through torchrun with ``--multi_gpu --num_processes 2`` on a machine whose policy runs on the
CPU (``policy.device: cpu``): accelerate then sets up a gloo process group (``MULTI_CPU``), and TRL's trainer
shards every batch over the two processes.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from toolkiln.config import deep_merge, load_params, read_yaml_mapping
from toolkiln.stage import is_main_process, process_rank, world_size

REPO = Path(__file__).resolve().parents[2]


def test_rank_from_the_launchers_environment(monkeypatch):
    for var in ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert (process_rank(), world_size(), is_main_process()) == (0, 1, True)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert (process_rank(), world_size(), is_main_process()) == (1, 2, False)
    monkeypatch.delenv("RANK")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "0")
    assert is_main_process()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_warmup_sft_under_accelerate_launch_two_cpu_processes(tmp_path, dialogs):
    accelerate = Path(sys.executable).parent / "accelerate"
    if not accelerate.exists():
        pytest.skip("accelerate's launcher is not installed beside this interpreter")
    d = tmp_path
    params = deep_merge(read_yaml_mapping(REPO / "params.yaml"), read_yaml_mapping(REPO / "profiles/smoke.policy.yaml"))
    # a tiny from-scratch policy: the point is the launch, not the model
    params = deep_merge(
        params,
        {
            "policy": {
                "base_model": "",
                "chat_template": "auto",
                "train_layers": 0,
                "device": "cpu",
                "scratch": {"hidden_size": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 2, "intermediate_size": 64},
                "tokenizer": {"vocab_size": 600, "min_frequency": 1},
                "render": {"max_length": 768},
                "pretrain": {"steps": 0},
            },
            "sft": {"batch_size": 4, "max_steps": 4, "logging_steps": 1, "eval_samples": 4, "eval_steps": 2},
        },
    )
    params["tracking"].update(tracking_uri=f"sqlite:///{d / 'mlflow.db'}", artifact_dir=str(d / "mlartifacts"))
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    load_params(d / "params.yaml")
    dialogs.write_parquet(d / "train.parquet")
    buckets = ["easy", "medium", "hard"]
    pl.DataFrame({"id": dialogs["id"], "bucket": [buckets[i % 3] for i in range(dialogs.height)]}).write_parquet(
        d / "difficulty.parquet"
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'src'}:{REPO}",
        "OMP_NUM_THREADS": "1",
        "TOOLKILN_PIPELINE_ID": "accelerate-test",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "ACCELERATE_USE_CPU"):
        env.pop(var, None)
    cmd = [
        str(accelerate),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "0",
        str(REPO / "stages/warmup_sft.py"),
        "--params",
        str(d / "params.yaml"),
        "--train",
        str(d / "train.parquet"),
        "--difficulty",
        str(d / "difficulty.parquet"),
        "--out",
        str(d / "ckpt/warmup"),
        "--metrics",
        str(d / "ws/metrics.json"),
        "--curves",
        str(d / "ws/loss.csv"),
        "--plot",
        str(d / "ws/loss.png"),
    ]
    proc = subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True, timeout=1100)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]

    metrics = json.loads((d / "ws/metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["train_steps"] == 4
    # one checkpoint folder, written once: no leftovers of a second writer
    assert [p.name for p in (d / "ckpt").iterdir()] == ["warmup"]
    assert (d / "ckpt/warmup/model.safetensors").exists()
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(d / "ckpt/warmup", local_files_only=True)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{d / 'mlflow.db'}")
    exp = client.get_experiment_by_name(params["tracking"]["experiment"])
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`toolkiln.stage` = 'warmup_sft'")
    assert len(runs) == 1, [r.info.run_id for r in runs]
    assert runs[0].data.metrics["train_steps"] == 4 and runs[0].data.metrics["world_size"] == 2
    shutil.rmtree(d / "ckpt")
