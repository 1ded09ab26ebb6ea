"""Round 1 as the DAG runs it: find_deficiencies -> mcts_pairs -> preference_opt -> evaluate, real scripts and MLflow."""

import importlib.util
import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from toolkiln.config import deep_merge, load_params, read_yaml_mapping

pytestmark = pytest.mark.slow  # trains (two preference steps) and evaluates a tiny checkpoint

REPO = Path(__file__).resolve().parents[2]


def _run(script: str, params: Path, *args: str) -> int:
    # in-process (the scripts' main(argv)): the same code path as `dvc repro`, without paying torch imports again
    spec = importlib.util.spec_from_file_location(script[:-3], REPO / "stages" / script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    try:
        mod.main(["--params", str(params), *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def round_1(tmp_path_factory, tiny_policy, train_dialogs):
    folder, policy = tiny_policy
    d = tmp_path_factory.mktemp("round_1")
    params = deep_merge(read_yaml_mapping(REPO / "params.yaml"), read_yaml_mapping(REPO / "profiles/smoke.itool.yaml"))
    params = deep_merge(
        params,
        {
            "policy": policy.model_dump(mode="json"),
            "itool": {
                "deficiency": {"mode": "both", "n_samples": 2, "max_new_tokens": 8},
                # a random policy writes garbage: a near-zero gap still tells a parsable step from an unparsable one
                "mcts": {"max_new_tokens": 24, "temperature": 1.0},
                "pairs": {"min_gap": 0.0, "min_chosen": -1.0},
                "preference": {"lora_r": 4, "lora_alpha": 8},
            },
            "evaluate": {
                "batch_size": 4,
                "max_new_tokens": 8,
                "samples_per_type": 1,
                "bfcl_categories": ["irrelevance"],
                "bfcl_limit": 1,
                "targets": "all",
            },
        },
    )
    params["tracking"].update(tracking_uri=f"sqlite:///{d / 'mlflow.db'}", artifact_dir=str(d / "mlartifacts"))
    p = d / "params.yaml"
    p.write_text(yaml.safe_dump(params, sort_keys=False))
    load_params(p)
    train_dialogs.write_parquet(d / "train.parquet")
    train_dialogs.tail(5).write_parquet(d / "test.parquet")
    mp = pytest.MonkeyPatch()
    mp.setenv("TOOLKILN_PIPELINE_ID", "itool-test")
    codes = [
        _run(
            "find_deficiencies.py",
            p,
            "--round",
            "1",
            "--train",
            str(d / "train.parquet"),
            "--checkpoint",
            str(folder),
            "--out",
            str(d / "r1/deficiencies.parquet"),
            "--metrics",
            str(d / "rep/deficiencies.json"),
        ),
        _run(
            "mcts_pairs.py",
            p,
            "--round",
            "1",
            "--train",
            str(d / "train.parquet"),
            "--deficiencies",
            str(d / "r1/deficiencies.parquet"),
            "--checkpoint",
            str(folder),
            "--out",
            str(d / "r1/pairs.parquet"),
            "--metrics",
            str(d / "rep/pairs.json"),
        ),
    ]
    pairs = pl.read_parquet(d / "r1/pairs.parquet")
    if codes[-1] == 0:
        codes.append(
            _run(
                "preference_opt.py",
                p,
                "--round",
                "1",
                "--pairs",
                str(d / "r1/pairs.parquet"),
                "--checkpoint",
                str(folder),
                "--out",
                str(d / "ckpt/round_1"),
                "--metrics",
                str(d / "rep/preference.json"),
                "--curves",
                str(d / "rep/curves.csv"),
            )
        )
        codes.append(
            _run(
                "evaluate.py",
                p,
                "--checkpoint",
                str(d / "ckpt/round_1"),
                "--dialogs",
                str(d / "test.parquet"),
                "--out-dir",
                str(d / "eval"),
                "--metrics",
                str(d / "eval/metrics.json"),
                "--tag",
                "round_1",
            )
        )
    mp.undo()
    return d, codes, pairs


def test_round_stages_chain_and_write_their_outputs(round_1):
    d, codes, pairs = round_1
    assert codes == [0, 0, 0, 0], codes
    defs = pl.read_parquet(d / "r1/deficiencies.parquet")
    assert defs.filter(pl.col("selected")).height == 4 and set(pairs["dialog_id"]) <= set(defs["id"])
    m = json.loads((d / "rep/pairs.json").read_text())
    assert m["pairs"] == pairs.height > 0 and m["prompts_searched"] == 4 and m["forward_passes"] > 0
    assert set(pairs["round"]) == {1} and pairs["prompt"].null_count() == 0
    pref = json.loads((d / "rep/preference.json").read_text())
    assert pref["algorithm"] == "simpo" and pref["train_steps"] == 2 and pref["round"] == 1
    assert (d / "ckpt/round_1/config.json").is_file() and (d / "ckpt/round_1/toolkiln_call_style.json").is_file()
    assert (d / "rep/curves.csv").read_text().startswith("step,loss,")
    ev = json.loads((d / "eval/metrics.json").read_text())
    assert ev["tag"] == "round_1" and ev["synthetic"]["n"] == 5


def test_round_stages_log_mlflow_runs_under_one_pipeline(round_1):
    d, codes, _ = round_1
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{d / 'mlflow.db'}")
    exp = client.get_experiment_by_name(yaml.safe_load((d / "params.yaml").read_text())["tracking"]["experiment"])
    runs = {r.data.tags.get("toolkiln.stage"): r for r in client.search_runs([exp.experiment_id])}
    stages = {"find_deficiencies_round_1", "mcts_pairs_round_1", "preference_opt_round_1", "eval_round_1"}
    assert stages <= set(runs)
    parents = {runs[s].data.tags.get("mlflow.parentRunId") for s in stages}
    assert len(parents) == 1 and None not in parents
    assert runs["mcts_pairs_round_1"].data.metrics["pairs"] > 0
    assert runs["preference_opt_round_1"].data.params["itool.preference.algorithm"] == "simpo"
    assert runs["find_deficiencies_round_1"].data.tags["toolkiln.round"] == "1"
    assert client.get_metric_history(runs["preference_opt_round_1"].info.run_id, "loss")
