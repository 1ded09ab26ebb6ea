"""score_difficulty and warmup_sft as the DAG runs them: real scripts, smoke profile, real MLflow, atomic outputs."""

import csv
import importlib.util
import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from toolkiln.config import deep_merge, load_params, read_yaml_mapping


@pytest.fixture(scope="module")
def stage_run(tmp_path_factory, dialogs):
    repo = Path(__file__).resolve().parents[2]
    d = tmp_path_factory.mktemp("policy_stages")
    params = deep_merge(read_yaml_mapping(repo / "params.yaml"), read_yaml_mapping(repo / "profiles/smoke.policy.yaml"))
    # the from-scratch path (the base-model path runs in the smoke DAG): tiny probes, 12 steps
    params = deep_merge(params, {
        "policy": {"base_model": "", "chat_template": "auto", "train_layers": 0, "render": {"max_length": 768}},
        "difficulty": {"perplexity": "crossfit", "max_samples": 160, "folds": 2, "batch_size": 32,
                       "probe": {"hidden_size": 32, "n_layers": 1, "n_heads": 2, "intermediate_size": 64,
                                 "max_steps": 5, "batch_size": 8, "max_train_samples": 64}},
        "sft": {"batch_size": 8, "max_steps": 12, "logging_steps": 2, "eval_samples": 8, "eval_steps": 6,
                "learning_rate": 0.001}})
    params["tracking"].update(tracking_uri=f"sqlite:///{d / 'mlflow.db'}", artifact_dir=str(d / "mlartifacts"))
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    load_params(d / "params.yaml")
    dialogs.write_parquet(d / "train.parquet")
    mp = pytest.MonkeyPatch()
    mp.setenv("TOOLKILN_PIPELINE_ID", "policy-test")

    def run(script: str, *args: str) -> int:
        # in-process (the scripts' main(argv)): the same code path as `dvc repro`, without paying torch imports twice
        spec = importlib.util.spec_from_file_location(script[:-3], repo / "stages" / script)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        try:
            mod.main(["--params", str(d / "params.yaml"), *args])
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    first = run("score_difficulty.py", "--train", str(d / "train.parquet"), "--out", str(d / "difficulty.parquet"),
                "--metrics", str(d / "sd/metrics.json"), "--plot", str(d / "sd/hist.png"))
    second = run("warmup_sft.py", "--train", str(d / "train.parquet"), "--difficulty", str(d / "difficulty.parquet"),
                 "--out", str(d / "ckpt/warmup"), "--metrics", str(d / "ws/metrics.json"),
                 "--curves", str(d / "ws/loss.csv"), "--plot", str(d / "ws/loss.png"))
    mp.undo()
    return d, first, second


@pytest.mark.slow
def test_score_difficulty_stage_outputs(stage_run, dialogs):
    d, first, _ = stage_run
    assert first == 0
    table = pl.read_parquet(d / "difficulty.parquet")
    assert table.height == dialogs.height and set(table["bucket"].unique()) == {"easy", "medium", "hard"}
    assert table["nll"].null_count() == 0
    metrics = json.loads((d / "sd/metrics.json").read_text())
    assert sum(b["n"] for b in metrics["buckets"].values()) == dialogs.height
    assert len(metrics["probes"]["folds"]) == 2
    assert (d / "sd/hist.png").read_bytes()[:4] == b"\x89PNG"
    assert not list((d / "sd").glob("*.tmp")) and not list(d.glob(".*.tmp"))


def test_warmup_stage_writes_a_reloadable_checkpoint_and_curves(stage_run):
    d, first, second = stage_run
    assert first == 0 and second == 0
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ckpt = d / "ckpt/warmup"
    tok = AutoTokenizer.from_pretrained(ckpt, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(ckpt, local_files_only=True)
    assert model.config.hidden_size == 64 and "{% generation %}" in tok.chat_template
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids("<|end|>")
    metrics = json.loads((d / "ws/metrics.json").read_text())
    assert metrics["order"] == "easy_to_hard" and metrics["train_steps"] == 12
    assert metrics["pretrain"]["train_steps"] == 2  # the from-scratch policy's LM pre-training ran first
    with open(d / "ws/loss.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows][:2] == [1, 2] and all(r["train_loss"] for r in rows[:2])
    assert any(r["eval_loss"] for r in rows)
    # the stage's MLflow child run carries the per-step curve and the params of its sections
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{d / 'mlflow.db'}")
    exp = client.get_experiment_by_name(yaml.safe_load((d / "params.yaml").read_text())["tracking"]["experiment"])
    runs = {r.data.tags.get("toolkiln.stage"): r for r in client.search_runs([exp.experiment_id])}
    assert {"score_difficulty", "warmup_sft"} <= set(runs)
    run = runs["warmup_sft"]
    assert run.data.params["sft.order"] == "easy_to_hard"
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert len(history) == len([r for r in rows if r["train_loss"]]) and history[0].step == 1
