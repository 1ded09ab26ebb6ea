"""bench/claims.py: every claim's arms run end to end at a tiny scale, with equal steps, the claims.json
shape, MLflow runs per arm x seed, and a rerun that trains nothing."""

from __future__ import annotations

import json
import random

import polars as pl
import pytest

from bench import claims as C
from toolkiln.testing.examples import example_dialogs


def test_verdict_needs_a_margin_over_one_seed_std_and_two_seeds():
    assert C.verdict([0.5, 0.6, 0.55], [0.3, 0.32, 0.31])["verdict"] == "reproduced"
    assert C.verdict([0.3, 0.32], [0.5, 0.6])["verdict"] == "not reproduced"
    assert C.verdict([0.40, 0.50, 0.60], [0.38, 0.48, 0.58])["verdict"] == "inconclusive"  # +2 points, std 10
    assert C.verdict([0.9], [0.1])["verdict"] == "inconclusive"  # one seed decides nothing


def test_every_preference_arm_names_a_search_and_valid_overrides():
    from toolkiln.itool.config import MCTSConfig, PreferenceConfig

    assert C.CLAIMS["preference"]["arms"] == ("warmup", *C.PREFERENCE_ARMS)
    for arm, (search, algo, update) in C.PREFERENCE_ARMS.items():
        MCTSConfig.model_validate({**MCTSConfig().model_dump(), **C.SEARCHES[search]})
        fields = {k: v for k, v in update.items() if k != "lr_factor"}
        PreferenceConfig.model_validate({**PreferenceConfig().model_dump(), **fields})  # unknown keys raise
        assert (algo is None) == (arm == "sft_control")
    assert C.PREFERENCE_ARMS["round1_simpo_cool_calls"][2]["max_text_share"] == 0.0


def test_the_table_reads_every_seed_on_disk_not_only_the_seeds_run_now(tmp_path):
    def put(claim, arm, seed, overall):
        path = tmp_path / "runs" / claim / arm / f"seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"overall": overall}))

    put("curriculum", "easy_to_hard", 0, 0.2)
    put("curriculum", "easy_to_hard", 1, 0.4)
    put("curriculum", "random", 1, 0.1)
    put("preference", "warmup", 0, 0.3)  # a claim not run now keeps its table
    (tmp_path / "runs" / "curriculum" / "random" / "seed1.json.tmp").write_text("{}")
    runs = C.runs_on_disk(tmp_path)
    assert list(runs) == ["curriculum", "preference"]
    assert runs["curriculum"]["easy_to_hard"] == {0: {"overall": 0.2}, 1: {"overall": 0.4}}
    assert list(runs["curriculum"]["random"]) == [1]
    table = C.aggregate(runs)["claims"]["curriculum"]["arms"]["easy_to_hard"]
    assert table["seed_ids"] == [0, 1] and table["mean"]["overall"] == pytest.approx(0.3)


def test_a_seed_whose_arms_trained_on_different_data_is_flagged(tmp_path):
    runs = {
        "curriculum": {
            "easy_to_hard": {0: {"overall": 0.2}, 1: {"overall": 0.3, "data": "aaa"}},
            "random": {0: {"overall": 0.1}, 1: {"overall": 0.2, "data": "bbb"}},
        }
    }
    block = C.aggregate(runs)["claims"]["curriculum"]
    assert block["mixed_data_seeds"] == [1]
    assert block["data"]["0"] == {C.LEGACY_DATA: ["easy_to_hard", "random"]}
    md = C.markdown(C.aggregate(runs))
    assert "seed 1: arms trained on different data" in md and "not a paired comparison" in md
    same = {"curriculum": {a: {0: {"overall": 0.1, "data": "aaa"}} for a in ("easy_to_hard", "random")}}
    assert C.aggregate(same)["claims"]["curriculum"]["mixed_data_seeds"] == []
    assert "different data" not in C.markdown(C.aggregate(same))


def test_data_fingerprint_sees_the_pool_rows_and_the_test_ids():
    d = pl.DataFrame({"id": ["a", "b", "c"], "type": ["single"] * 3, "text": ["x", "y", "z"]})
    pool, test = d.head(2).select("id"), pl.DataFrame({"id": ["t1", "t2"]})
    fp = C.data_fingerprint(d, test, pool)
    assert fp == C.data_fingerprint(d.reverse(), test.reverse(), pool)  # row order does not matter
    changed = d.with_columns(pl.when(pl.col("id") == "b").then(pl.lit("q")).otherwise(pl.col("text")).alias("text"))
    assert C.data_fingerprint(changed, test, pool) != fp  # a pool dialog's content
    assert C.data_fingerprint(d.with_columns(text=pl.lit("w")).head(2).vstack(d.tail(1)), test, pool) != fp
    assert C.data_fingerprint(d, pl.DataFrame({"id": ["t1", "t3"]}), pool) != fp  # another test split
    other = d.with_columns(pl.when(pl.col("id") == "c").then(pl.lit("q")).otherwise(pl.col("text")).alias("text"))
    assert C.data_fingerprint(other, test, pool) == fp  # a dialog outside the pool


def test_type_buckets_keep_the_type_mix_in_every_bucket():
    ids = [f"d{i}" for i in range(60)]
    diff = pl.DataFrame(
        {
            "id": ids,
            "type": ["single", "parallel", "non_tool"] * 20,
            "combined": [random.Random(i).random() for i in range(60)],
            "bucket": ["easy"] * 57 + [None] * 3,
        }
    )
    pool = C.type_buckets(diff, 30, seed=0)
    assert pool.height == 30 and set(pool["id"].to_list()) <= set(ids[:57])
    counts = {(t, b): n for t, b, n in pool.group_by("type", "bucket").len().iter_rows()}
    # 10 per type, cut in thirds of the type's own difficulty ranking: every bucket holds every type
    assert counts == {
        (t, b): n for t in ("single", "parallel", "non_tool") for b, n in (("easy", 4), ("medium", 3), ("hard", 3))
    }
    single = pool.filter(pl.col("type") == "single").join(diff, on="id")
    hardest = single.sort("combined")["bucket"].to_list()
    assert hardest[0] == "easy" and hardest[-1] == "hard"
    with pytest.raises(ValueError, match="combined"):
        C.type_buckets(diff.drop("combined"), 10, seed=0)


@pytest.mark.slow
def test_quick_claims_run_every_arm_with_equal_steps_and_resume(tmp_path, monkeypatch):
    import torch

    from toolkiln.config import Params

    torch.set_num_threads(1)
    # dialogs that pass the rule layer, so the verified arm keeps the clean ones
    train, test = example_dialogs(60, seed=11), example_dialogs(20, seed=12)
    rng = random.Random(0)
    difficulty = train.select("id", "type").with_columns(
        pl.Series("combined", [rng.random() for _ in range(train.height)]), pl.lit("medium").alias("bucket")
    )
    params = Params.model_validate(
        {
            "tracking": {
                "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db",
                "artifact_dir": str(tmp_path / "art"),
                "experiment": "t",
            },
            "policy": {
                "base_model": "",
                "precision": "float32",
                "train_layers": 0,
                "scratch": {"hidden_size": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 2, "intermediate_size": 64},
                "tokenizer": {"vocab_size": 600, "min_frequency": 1},
            },
            "sft": {"batch_size": 4, "logging_steps": 1},
            "evaluate": {
                "batch_size": 8,
                "max_new_tokens": 24,
                "dtype": "float32",
                "bfcl_categories": ["simple_python", "irrelevance"],
            },
            "verify": {"model": {"judge": "embedded", "encoder": "minilm"}},
            "itool": {
                "deficiency": {"max_new_tokens": 16},
                "mcts": {"iterations": 2, "width": 2, "depth": 2, "max_new_tokens": 24},
                "pairs": {"min_chosen": -1.0, "min_pairs": 0},
                "preference": {"batch_size": 2, "max_steps": 2, "logging_steps": 1, "max_length": 768},
            },
        }
    )
    scale = C.Scale(n_train=30, steps=3, test_per_type=2, bfcl_limit=1, max_prompts=2, seeds=(0,))
    out = tmp_path / "claims"
    result = C.run_claims(
        params, train, test, difficulty, scale=scale, out=out, checkpoints=tmp_path / "ckpt", log=lambda m: None
    )

    saved = json.loads((out / "claims.json").read_text())
    assert set(saved["claims"]) == set(C.CLAIMS)
    for claim, spec in C.CLAIMS.items():
        block = saved["claims"][claim]
        assert list(block["arms"]) == list(spec["arms"])
        assert block["verdict"] == "inconclusive"  # one seed
        assert all(len(a["seeds"]) == 1 and 0.0 <= a["mean"]["overall"] <= 1.0 for a in block["arms"].values())
        assert (out / f"{claim}.png").stat().st_size > 0
    arms = {(c, a): saved["claims"][c]["arms"][a]["seeds"][0] for c in C.CLAIMS for a in C.CLAIMS[c]["arms"]}
    # equal compute: every warm-up arm took the same optimizer steps, smaller sets included
    for key in [
        ("verification", "corrupted"),
        ("verification", "verified"),
        ("curriculum", "random"),
        ("diversity", "no_parallel"),
        ("diversity", "no_non_tool"),
        ("curriculum", "easy_to_hard"),
    ]:
        assert arms[key]["train_steps"] == 3, key
    assert arms[("diversity", "no_parallel")]["train_dialogs"] < arms[("diversity", "full")]["train_dialogs"]
    corruption = arms[("verification", "corrupted")]["corruption"]
    assert 0 < corruption["corrupted_rule"] <= round(0.32 * 30) and corruption["corrupted_model"] <= round(0.09 * 30)
    ver = arms[("verification", "verified")]["verify"]
    assert ver["corrupted_caught"] > 0 and ver["kept"] < 30  # the rule layer rejects injected errors
    pref = arms[("preference", "round1_simpo")]
    assert pref["prompts_searched"] == 2 and "pairs" in pref
    assert arms[("preference", "sft_control")]["train_steps"] == pref["train_steps"]
    # the openings variant searches the same deficient prompts with the offered tools' openings at the root
    opened = arms[("preference", "round1_simpo_openings")]
    assert opened["prompts_searched"] == 2 and opened["rollouts"] > pref["rollouts"]
    balanced = arms[("preference", "round1_simpo_openings_balanced")]
    assert balanced["pairs"] == opened["pairs"] and balanced["pairs_trained"] <= balanced["pairs"]  # same search
    # the cool arms search once more, at the lower temperature, and share that search
    cool, cool_strong = arms[("preference", "round1_simpo_cool")], arms[("preference", "round1_simpo_cool_strong")]
    assert cool["temperature"] == C.COOL != opened["temperature"] == params.itool.mcts.temperature
    assert cool_strong["pairs"] == cool["pairs"] and cool_strong["rollouts"] == cool["rollouts"]
    calls = arms[("preference", "round1_simpo_cool_calls")]
    assert calls["pairs"] == cool["pairs"] and calls["pairs_trained"] <= calls["pairs"]
    assert (tmp_path / "ckpt" / "round1_seed0" / "pairs_cool.parquet").exists()
    assert arms[("curriculum", "random")]["heldout_nll"] > 0
    assert "-> **inconclusive**" in (out / "claims.md").read_text()
    # every run records the data it trained on; one data set here, so no seed is flagged
    assert {r["data"] for r in arms.values()} == {C.data_fingerprint(train, test, C.type_buckets(difficulty, 30, 0))}
    assert all(not saved["claims"][c]["mixed_data_seeds"] for c in C.CLAIMS)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=params.tracking.tracking_uri)
    exp = client.get_experiment_by_name("t-claims-curriculum")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.data.tags["toolkiln.arm"] for r in runs) == ["easy_to_hard", "random"]

    # a rerun reads every arm from disk
    monkeypatch.setattr(C, "run_arm", lambda *a, **k: pytest.fail("a finished arm ran again"))
    again = C.run_claims(
        params, train, test, difficulty, scale=scale, out=out, checkpoints=tmp_path / "ckpt", log=lambda m: None
    )
    assert again["claims"] == result["claims"]
    # a run asked for one claim keeps every other claim's finished runs in the table
    one = C.run_claims(
        params,
        train,
        test,
        difficulty,
        scale=scale,
        out=out,
        checkpoints=tmp_path / "ckpt",
        claims=("curriculum",),
        log=lambda m: None,
    )
    assert one["claims"] == result["claims"]
    assert set(json.loads((out / "claims.json").read_text())["claims"]) == set(C.CLAIMS)
    # the table alone, rebuilt from the runs on disk, runs nothing and says the same
    (out / "claims.json").unlink()
    alone = C.run_claims(
        params, train, test, difficulty, scale=scale, out=out, checkpoints=tmp_path / "ckpt", table_only=True
    )
    assert alone["claims"] == result["claims"] and (out / "claims.json").exists()
    # --arms: only the named arms run; an arm no chosen claim has is refused before anything runs
    done = out / "runs" / "curriculum" / "random" / "seed0.json"
    saved = json.loads(done.read_text())
    done.unlink()
    (out / "runs" / "curriculum" / "easy_to_hard" / "seed0.json").unlink()
    ran = []
    monkeypatch.setattr(C, "run_arm", lambda setup, claim, arm, seed: ran.append(arm) or dict(saved))
    kw = dict(scale=scale, out=out, checkpoints=tmp_path / "ckpt", claims=("curriculum",), log=lambda m: None)
    C.run_claims(params, train, test, difficulty, arms=("random",), **kw)
    assert ran == ["random"] and done.exists()
    with pytest.raises(ValueError, match="round1_simpo"):
        C.run_claims(params, train, test, difficulty, arms=("round1_simpo",), **kw)
