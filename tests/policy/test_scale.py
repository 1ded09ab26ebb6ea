"""bench/policy_scale.py: overrides parse to params, the time predictor scales with data and layers, and a
run trains, scores and records each arm, skipping the arms its budget cannot hold."""

from __future__ import annotations

import json

import polars as pl
import pytest

from bench import policy_scale as S


def test_set_items_become_a_nested_override_with_yaml_values():
    got = S.parse_sets(["evaluate.device=cuda", "evaluate.batch_size=32", "policy.base_model=", "sft.epochs=2"])
    assert got == {
        "evaluate": {"device": "cuda", "batch_size": 32},
        "policy": {"base_model": None},
        "sft": {"epochs": 2},
    }
    for bad in ("evaluate.device", "=3", "a..b=1"):
        with pytest.raises(SystemExit, match="expected KEY.PATH=VALUE"):
            S.parse_sets([bad])


def test_every_arm_is_a_valid_params_override():
    for name in S.ARMS:
        params = S.arm_params(name, {}, None)
        assert params.sft.epochs >= 1
    assert S.arm_params("all", {}, None).difficulty.max_samples == 0
    assert S.arm_params("all_layers", {}, None).policy.train_layers == 0


def test_predictor_scales_measured_time_by_dialogs_epochs_and_layers():
    p = S.Predictor()
    assert p.seconds(100, 1, 8, True) is None  # nothing measured yet: the first arm always runs
    p.observe(
        {
            "train_tokens": 1000,
            "train_s": 10.0,
            "dialogs": 10,
            "epochs": 1,
            "train_layers": 8,
            "eval_s": 5.0,
            "score_s": 2.0,
            "scored": 10,
        }
    )
    assert p.seconds(20, 1, 8, False) == pytest.approx(20 * 100 * 0.01 + 5.0)
    assert p.seconds(20, 2, 8, True) == pytest.approx(40 * 100 * 0.01 + 5.0 + 20 * 0.2)
    # an unmeasured layer count costs the fastest measured rate times the first-guess factor
    assert p.seconds(20, 1, 30, False) == pytest.approx(20 * 100 * 0.01 * S.UNKNOWN_LAYERS_FACTOR + 5.0)


@pytest.mark.slow
def test_a_run_trains_and_scores_the_first_arm_and_skips_what_the_budget_cannot_hold(tmp_path):
    import torch

    from toolkiln.testing.examples import example_dialogs

    torch.set_num_threads(1)
    example_dialogs(40, seed=3).write_parquet(tmp_path / "train.parquet")
    example_dialogs(10, seed=4).write_parquet(tmp_path / "test.parquet")
    sets = [
        'policy.base_model=""',
        "policy.precision=float32",
        "policy.train_layers=0",
        "policy.scratch.hidden_size=32",
        "policy.scratch.n_layers=1",
        "policy.scratch.n_heads=2",
        "policy.scratch.n_kv_heads=2",
        "policy.scratch.intermediate_size=64",
        "policy.tokenizer.vocab_size=600",
        "policy.tokenizer.min_frequency=1",
        "difficulty.perplexity=none",
        "sft.max_steps=2",
        "sft.batch_size=4",
        "sft.eval_samples=4",
        "evaluate.dtype=float32",
        "evaluate.max_new_tokens=16",
        "evaluate.samples_per_type=1",
        "evaluate.targets=all",
        "evaluate.bfcl_categories=[irrelevance]",
        "evaluate.bfcl_limit=1",
    ]
    out = tmp_path / "res" / "scale.json"
    S.main(
        [
            "--arms",
            "default",
            "all",
            "--train",
            str(tmp_path / "train.parquet"),
            "--test",
            str(tmp_path / "test.parquet"),
            "--budget-s",
            "1",
            "--results",
            str(out),
            "--set",
            *sets,
        ]
    )
    res = json.loads(out.read_text())
    first, second = res["table"]
    assert first["arm"] == "default" and first["train_steps"] == 2 and first["dialogs"] > 0
    assert 0.0 <= first["overall"] <= 1.0 and "bfcl_irrelevance" in first
    assert second["arm"] == "all" and second["skipped"].startswith("predicted")
    outputs = pl.read_parquet(out.with_suffix(".outputs.parquet"))
    assert set(outputs["arm"]) == {"default"} and set(outputs["part"]) == {"synthetic", "bfcl"}
