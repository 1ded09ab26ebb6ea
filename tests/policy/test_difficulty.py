"""Difficulty scores: structural signals, rank combination, buckets, and cross-fitting without leakage."""

import numpy as np
import polars as pl
import pytest
import torch

from toolkiln.policy import difficulty as D
from toolkiln.policy.config import DifficultyConfig, ProbeConfig
from toolkiln.policy.examples import build_examples

PROBE = ProbeConfig(
    hidden_size=16, n_layers=1, n_heads=2, intermediate_size=32, max_steps=3, batch_size=4, max_train_samples=12
)


def test_structural_features_per_type(dialogs):
    rows = {r["type"]: r for r in dialogs.to_dicts()}
    f = {t: D.structural_features(r) for t, r in rows.items()}
    assert f["single"] == {"n_candidates": 3, "n_target_calls": 1, "n_turns": 2, "nesting": 0, "n_args": 2}
    assert f["parallel"]["n_target_calls"] == 2 and f["parallel"]["n_args"] == 6
    assert f["dependent"]["n_turns"] == 6 and f["dependent"]["n_target_calls"] == 1  # only the target turn's call
    assert f["non_tool"]["n_target_calls"] == 0 and f["clarification"]["n_args"] == 0
    nested = {**rows["single"], "calls": '[{"turn": 1, "name": "c", "arguments": {"a": [{"b": [1]}], "x": 2}}]'}
    assert D.structural_features(nested)["nesting"] == 3


def test_ranks_buckets_and_ties():
    r = D.pct_rank([3.0, 1.0, 1.0, float("nan")])
    assert r.tolist() == [0.75, 0.375, 0.375, 1.0]  # ties averaged, NaN as hardest
    score = np.array([0.5] * 6 + [0.9] * 3)  # heavy ties still give the requested sizes
    buckets = D.assign_buckets(score, [1 / 3, 2 / 3])
    assert [buckets.count(b) for b in ("easy", "medium", "hard")] == [3, 3, 3]
    assert buckets[-3:] == ["hard"] * 3
    with pytest.raises(ValueError, match=r"bucket_quantiles: got \[0.7, 0.2\]"):
        DifficultyConfig(bucket_quantiles=[0.7, 0.2])


def test_buckets_within_type_keep_the_type_mix():
    types = np.array(["call"] * 6 + ["refusal"] * 6)
    score = np.concatenate([np.linspace(0.0, 0.4, 6), np.linspace(0.6, 1.0, 6)])  # refusals all score higher
    overall = D.bucket_within_groups(score, None, [1 / 3, 2 / 3])
    assert set(overall[6:]) == {"medium", "hard"} and "refusal" not in {
        t for t, b in zip(types, overall) if b == "easy"
    }
    within = D.bucket_within_groups(score, types, [1 / 3, 2 / 3])
    for t in ("call", "refusal"):
        mine = [b for tt, b in zip(types, within) if tt == t]
        assert mine == ["easy", "easy", "medium", "medium", "hard", "hard"]  # ordered by score inside the type
    with pytest.raises(ValueError, match="bucket_within"):
        DifficultyConfig(bucket_within="domain")


def test_score_difficulty_buckets_within_type(dialogs, policy_cfg):
    cfg = DifficultyConfig(perplexity="none", bucket_within="type")
    t = D.score_difficulty(dialogs, policy_cfg, cfg, seed=0).table
    for _, part in t.group_by("type"):
        counts = [part["bucket"].to_list().count(b) for b in ("easy", "medium", "hard")]
        assert max(counts) - min(counts) <= 1, counts  # each type spread over the buckets, not one type per bucket


def test_structure_only_scores_order_buckets(dialogs, policy_cfg):
    res = D.score_difficulty(dialogs, policy_cfg, DifficultyConfig(perplexity="none"), seed=0)
    t = res.table
    assert t.height == dialogs.height and t["nll"].null_count() == t.height
    means = [t.filter(pl.col("bucket") == b)["structural"].mean() for b in ("easy", "medium", "hard")]
    assert means[0] < means[1] < means[2]
    assert set(t.filter(pl.col("type") == "dependent")["bucket"].to_list()) == {"hard"}


def test_crossfit_never_scores_a_sample_with_a_probe_trained_on_it(monkeypatch, dialogs, tokenizer, policy_cfg):
    torch.set_num_threads(1)
    ex, _ = build_examples(dialogs.to_dicts()[:30], tokenizer, policy_cfg.render)
    trained_on: list[set] = []
    scored_by: list[set] = []
    real_train, real_nll = D.train_sft, D.target_nll

    def spy_train(model, tok, examples, *a, **kw):
        trained_on.append({e["id"] for e in examples})
        return real_train(model, tok, examples, *a, **kw)

    def spy_nll(model, tok, examples, **kw):
        scored_by.append({e["id"] for e in examples})
        return real_nll(model, tok, examples, **kw)

    monkeypatch.setattr(D, "train_sft", spy_train)
    monkeypatch.setattr(D, "target_nll", spy_nll)
    nll, fold, metrics = D.crossfit_nll(
        ex, tokenizer, policy_cfg, DifficultyConfig(folds=3, probe=PROBE), seed=0, device="cpu"
    )
    assert len(trained_on) == len(scored_by) == 3
    for train_ids, scored_ids in zip(trained_on, scored_by):
        assert train_ids and scored_ids and not train_ids & scored_ids
    assert set().union(*scored_by) == {e["id"] for e in ex}  # every sample scored exactly once
    assert sum(len(s) for s in scored_by) == len(ex)
    assert np.isfinite(nll).all() and np.bincount(fold).tolist() == [10, 10, 10]
    assert metrics["probe_params"] < 50_000


def test_score_difficulty_with_probes_fills_every_column(dialogs, policy_cfg):
    torch.set_num_threads(1)
    res = D.score_difficulty(dialogs.head(24), policy_cfg, DifficultyConfig(folds=2, probe=PROBE), seed=3)
    t = res.table
    assert t["nll"].null_count() == 0 and (t["ppl"] > 1).all()
    assert set(t["fold"].to_list()) == {0, 1}
    assert {b: v["n"] for b, v in res.metrics["buckets"].items()} == {"easy": 8, "medium": 8, "hard": 8}
    assert -1 <= res.metrics["spearman_nll_structural"] <= 1


def test_only_a_stratified_subset_is_scored(dialogs, policy_cfg):
    res = D.score_difficulty(dialogs, policy_cfg, DifficultyConfig(perplexity="none", max_samples=20), seed=0)
    t = res.table
    assert t.height == dialogs.height and t["id"].to_list() == dialogs["id"].to_list()
    scored = t.filter(pl.col("bucket").is_not_null())
    assert scored.height == 20 and res.metrics["n_scored"] == 20
    assert scored.group_by("type").len()["len"].to_list() == [4] * 5  # the type mix is kept
    assert t.filter(pl.col("bucket").is_null())["n_args"].null_count() == 0  # structure still reported for all
    with pytest.raises(ValueError, match="duplicate dialog ids"):
        D.score_difficulty(
            pl.concat([dialogs.head(3), dialogs.head(1)]), policy_cfg, DifficultyConfig(perplexity="none"), seed=0
        )


def test_type_weights_scale_a_types_share_of_the_scored_subset(dialogs, policy_cfg):
    types = ["single"] * 600 + ["dependent"] * 300 + ["parallel"] * 100
    plain = D.stratified_subset(types, 200, 0)
    assert np.array_equal(plain, D.stratified_subset(types, 200, 0, {}))  # no weights: the unweighted draw
    counts = {t: sum(types[i] == t for i in D.stratified_subset(types, 200, 0, {"dependent": 2.0})) for t in set(types)}
    # shares 600 : 2 x 300 : 100 of 200 rows
    assert counts == {"single": 92, "dependent": 92, "parallel": 15}
    res = D.score_difficulty(
        dialogs,
        policy_cfg,
        DifficultyConfig(perplexity="none", max_samples=20, type_weights={"dependent": 3.0}),
        seed=0,
    )
    scored = res.table.filter(pl.col("bucket").is_not_null())
    by_type = dict(scored.group_by("type").len().iter_rows())
    assert by_type["dependent"] > by_type["single"] and sum(by_type.values()) <= 20
    with pytest.raises(ValueError, match="type_weights: got .*dependant"):
        DifficultyConfig(type_weights={"dependant": 2.0})
    with pytest.raises(ValueError, match="positive finite"):
        DifficultyConfig(type_weights={"dependent": 0.0})
