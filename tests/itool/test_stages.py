"""Two rounds as the DAG runs them (rounds.count: 2): find_deficiencies -> mcts_pairs -> preference_opt -> evaluate,
round 2 from round 1's checkpoint; real scripts and MLflow."""

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


def _round(d: Path, p: Path, k: int, start: Path) -> tuple[list[int], pl.DataFrame]:
    """One round's four stage scripts, with the arguments dvc.yaml gives round k."""
    r, rep = d / f"r{k}", d / f"rep{k}"
    codes = [
        _run("find_deficiencies.py", p, "--round", str(k), "--train", str(d / "train.parquet"),
             "--checkpoint", str(start), "--out", str(r / "deficiencies.parquet"),
             "--metrics", str(rep / "deficiencies.json")),
        _run("mcts_pairs.py", p, "--round", str(k), "--train", str(d / "train.parquet"),
             "--deficiencies", str(r / "deficiencies.parquet"), "--checkpoint", str(start),
             "--out", str(r / "pairs.parquet"), "--metrics", str(rep / "pairs.json")),
    ]  # fmt: skip
    pairs = pl.read_parquet(r / "pairs.parquet")
    if codes[-1] == 0:
        codes.append(
            _run("preference_opt.py", p, "--round", str(k), "--pairs", str(r / "pairs.parquet"),
                 "--checkpoint", str(start), "--out", str(d / f"ckpt/round_{k}"),
                 "--metrics", str(rep / "preference.json"), "--curves", str(rep / "curves.csv"))
        )  # fmt: skip
        codes.append(
            _run("evaluate.py", p, "--checkpoint", str(d / f"ckpt/round_{k}"), "--dialogs", str(d / "test.parquet"),
                 "--out-dir", str(d / f"eval{k}"), "--metrics", str(d / f"eval{k}/metrics.json"),
                 "--tag", f"round_{k}", "--stage", f"eval_round@{k}")
        )  # fmt: skip
    return codes, pairs


@pytest.fixture(scope="module")
def two_rounds(tmp_path_factory, tiny_policy, train_dialogs):
    folder, policy = tiny_policy
    d = tmp_path_factory.mktemp("rounds")
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
    codes, pairs = _round(d, p, 1, folder)
    # round 2 as dvc.yaml's `foreach` runs it with rounds.count: 2 - from round 1's checkpoint
    codes2, pairs2 = _round(d, p, 2, d / "ckpt/round_1") if codes == [0, 0, 0, 0] else ([], None)
    mp.undo()
    return d, codes, pairs, codes2, pairs2


def test_round_stages_chain_and_write_their_outputs(two_rounds):
    d, codes, pairs, _, _ = two_rounds
    assert codes == [0, 0, 0, 0], codes
    defs = pl.read_parquet(d / "r1/deficiencies.parquet")
    assert defs.filter(pl.col("selected")).height == 4 and set(pairs["dialog_id"]) <= set(defs["id"])
    m = json.loads((d / "rep1/pairs.json").read_text())
    assert m["pairs"] == pairs.height > 0 and m["prompts_searched"] == 4 and m["forward_passes"] > 0
    assert set(pairs["round"]) == {1} and pairs["prompt"].null_count() == 0
    pref = json.loads((d / "rep1/preference.json").read_text())
    assert pref["algorithm"] == "simpo" and pref["train_steps"] == 2 and pref["round"] == 1
    assert (d / "ckpt/round_1/config.json").is_file() and (d / "ckpt/round_1/toolkiln_call_style.json").is_file()
    assert (d / "rep1/curves.csv").read_text().startswith("step,loss,")
    ev = json.loads((d / "eval1/metrics.json").read_text())
    assert ev["tag"] == "round_1" and ev["synthetic"]["n"] == 5


def test_round_stages_log_mlflow_runs_under_one_pipeline(two_rounds):
    d, codes, _, codes2, _ = two_rounds
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{d / 'mlflow.db'}")
    exp = client.get_experiment_by_name(yaml.safe_load((d / "params.yaml").read_text())["tracking"]["experiment"])
    runs = {r.data.tags.get("toolkiln.stage"): r for r in client.search_runs([exp.experiment_id])}
    # the runs carry DVC's stage names (the Prefect flow links a stage to its run by them)
    stages = {f"{s}_round@{k}" for s in ("find_deficiencies", "mcts_pairs", "preference_opt", "eval") for k in (1, 2)}
    assert stages <= set(runs), sorted(runs)
    parents = {runs[s].data.tags.get("mlflow.parentRunId") for s in stages}
    assert len(parents) == 1 and None not in parents
    assert runs["mcts_pairs_round@1"].data.metrics["pairs"] > 0
    assert runs["preference_opt_round@1"].data.params["itool.preference.algorithm"] == "simpo"
    assert runs["find_deficiencies_round@1"].data.tags["toolkiln.round"] == "1"
    assert client.get_metric_history(runs["preference_opt_round@1"].info.run_id, "loss")
    # round 2 started from round 1's output: its stages say so, and it is tagged as round 2
    assert runs["mcts_pairs_round@2"].data.tags["toolkiln.round"] == "2"
    assert runs["mcts_pairs_round@2"].data.tags["toolkiln.checkpoint"] == str(d / "ckpt/round_1")
    assert runs["eval_round@2"].data.tags["toolkiln.checkpoint"] == str(d / "ckpt/round_2")


def test_a_second_round_starts_from_the_first_and_writes_its_own_outputs(two_rounds):
    d, codes, _, codes2, pairs2 = two_rounds
    assert codes2 == [0, 0, 0, 0], codes2
    assert set(pairs2["round"]) <= {2}
    pref = json.loads((d / "rep2/preference.json").read_text())
    assert pref["round"] == 2
    assert (d / "ckpt/round_2/config.json").is_file()
    assert json.loads((d / "eval2/metrics.json").read_text())["tag"] == "round_2"
