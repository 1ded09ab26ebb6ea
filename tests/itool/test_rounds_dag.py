"""K preference rounds as DVC stages: ``rounds`` in params.yaml -> one stage group per round in the DAG.

DVC resolves ``dvc.yaml``'s ``foreach`` over ``rounds.chain``; these tests ask DVC's own resolver what the
default (1 round) and ``profiles/rounds2.yaml`` (2 rounds) make of the real ``dvc.yaml``.
"""

import shutil

import pytest
import yaml

from flows.run import artifact_key
from toolkiln.config import ParamsError, deep_merge, load_params, read_yaml_mapping
from toolkiln.dagcheck import listed_deps
from toolkiln.dvcfile import resolved_stages
from toolkiln.itool.config import round_chain

KINDS = ("find_deficiencies_round", "mcts_pairs_round", "preference_opt_round", "eval_round")


def _resolve(tmp_path, repo_root, *profiles):
    params = read_yaml_mapping(repo_root / "params.yaml")
    for prof in profiles:
        params = deep_merge(params, read_yaml_mapping(repo_root / prof))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    load_params(tmp_path / "params.yaml")  # the merged profile is valid params
    shutil.copy(repo_root / "dvc.yaml", tmp_path / "dvc.yaml")
    return resolved_stages(tmp_path)


def _outs(stage):
    return [o if isinstance(o, str) else next(iter(o)) for o in stage.get("outs", [])]


def test_default_runs_one_round_from_the_warmup(tmp_path, repo_root):
    st = _resolve(tmp_path, repo_root)
    assert {n for n in st if "round" in n} == {f"{k}@1" for k in KINDS}
    assert "checkpoints/warmup" in listed_deps(st["mcts_pairs_round@1"])
    assert "--checkpoint checkpoints/warmup" in st["preference_opt_round@1"]["cmd"]
    assert _outs(st["preference_opt_round@1"]) == ["checkpoints/round_1"]
    assert "reports/eval_round_1/metrics.json" in listed_deps(st["report"])


def test_two_round_profile_chains_round_2_on_round_1(tmp_path, repo_root):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = _resolve(tmp_path / "one", repo_root)
    two = _resolve(tmp_path / "two", repo_root, "profiles/rounds2.yaml")
    assert {n for n in two if "round" in n} == {f"{k}@{r}" for k in KINDS for r in (1, 2)}
    # round 2 reads round 1's checkpoint and writes its own folders
    for kind in ("find_deficiencies_round", "mcts_pairs_round", "preference_opt_round"):
        assert "checkpoints/round_1" in listed_deps(two[f"{kind}@2"]), kind
        assert "--round 2" in two[f"{kind}@2"]["cmd"]
    assert "data/round_2/pairs.parquet" in _outs(two["mcts_pairs_round@2"])
    assert _outs(two["preference_opt_round@2"]) == ["checkpoints/round_2"]
    assert "--stage eval_round@2" in two["eval_round@2"]["cmd"]
    # the report waits for the last round's evaluation
    assert "reports/eval_round_2/metrics.json" in listed_deps(two["report"])
    # adding a round leaves round 1's stages exactly as they were, so DVC keeps them cached
    for kind in KINDS:
        assert two[f"{kind}@1"] == one[f"{kind}@1"], kind


def test_round_chain_is_what_the_count_implies():
    assert round_chain(3) == {"1": "checkpoints/warmup", "2": "checkpoints/round_1", "3": "checkpoints/round_2"}


@pytest.mark.parametrize(
    ("rounds", "message"),
    [
        ({"count": 2}, r"does not match rounds.count=2; expected .*'2': 'checkpoints/round_1'"),
        ({"count": 1, "chain": {"1": "checkpoints/round_0"}}, "does not match rounds.count=1"),
        ({"count": 1, "chain": {1: "checkpoints/warmup"}}, "DVC's foreach silently skips integer keys"),
        ({"count": 0, "chain": {}}, "rounds.count: got 0"),
        ({"k": 2}, "rounds.k: unknown key"),
    ],
)
def test_bad_rounds_params_fail_with_what_to_write(tmp_path, rounds, message):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"rounds": rounds}))
    with pytest.raises(ParamsError, match=message):
        load_params(p)


def test_round_stage_names_make_valid_prefect_artifact_keys():
    assert artifact_key("eval_round@2", "metrics") == "eval-round-2-metrics"
    assert artifact_key("warmup_sft", "mlflow") == "warmup-sft-mlflow"
