"""Curriculum order and the warm-up's data plumbing; configs reject bad values with clear messages."""

from collections import Counter

import polars as pl
import pytest
from pydantic import ValidationError

from toolkiln.policy.config import PolicyConfig, ScratchModelConfig, SFTConfig
from toolkiln.policy.sft import curriculum, loss_curves
from toolkiln.policy.warmup import bucket_lookup, stratified_cap

BUCKETS = ["hard", "easy", "medium", "easy", "hard", "medium", "easy", "hard", "medium"]


def test_easy_to_hard_orders_buckets_and_random_keeps_the_same_multiset():
    e2h = curriculum(BUCKETS, "easy_to_hard", epochs=2, seed=0)
    labels = [BUCKETS[i] for i in e2h]
    assert labels == ["easy"] * 6 + ["medium"] * 6 + ["hard"] * 6
    assert set(e2h[:3]) == set(e2h[3:6]) == {1, 3, 6}  # each pass covers the whole easy bucket once
    rnd = curriculum(BUCKETS, "random", epochs=2, seed=0)
    assert Counter(rnd) == Counter(e2h) == Counter({i: 2 for i in range(len(BUCKETS))})
    assert [BUCKETS[i] for i in rnd] != labels
    assert curriculum(BUCKETS, "random", 2, seed=0) == rnd and curriculum(BUCKETS, "random", 2, seed=1) != rnd
    with pytest.raises(ValueError, match=r"bucket labels \['trivial'\]"):
        curriculum(["trivial"], "random", 1, 0)


def test_stratified_cap_and_join():
    keep = stratified_cap(BUCKETS * 10, 30, seed=0)
    assert len(keep) == 30
    assert Counter((BUCKETS * 10)[i] for i in keep) == {"easy": 10, "medium": 10, "hard": 10}
    assert stratified_cap(BUCKETS, 0, 0) == list(range(len(BUCKETS)))
    diff = pl.DataFrame({"id": ["a", "b", "c"], "bucket": ["easy", "hard", None]})
    assert bucket_lookup(diff, ["b", "a", "c"]) == {"a": "easy", "b": "hard", "c": None}
    with pytest.raises(ValueError, match="1 training dialogs are missing from it"):
        bucket_lookup(diff, ["a", "zz"])


def test_loss_curves_merge_train_and_eval_rows():
    hist = [{"step": 1, "loss": 3.0, "learning_rate": 1e-3}, {"step": 2, "loss": 2.0},
            {"step": 2, "eval_loss": 2.5}, {"step": 2, "train_runtime": 1.0}]
    assert loss_curves(hist) == [{"step": 1, "train_loss": 3.0, "learning_rate": 1e-3},
                                 {"step": 2, "train_loss": 2.0, "eval_loss": 2.5}]


def test_configs_name_the_bad_value():
    with pytest.raises(ValidationError, match="hidden_size: got 30; expected a multiple of n_heads=4"):
        ScratchModelConfig(hidden_size=30, n_heads=4)
    with pytest.raises(ValidationError, match="lora.enabled: got true with base_model ''"):
        PolicyConfig(lora={"enabled": True})
    with pytest.raises(ValidationError, match="max_position_embeddings: got 64; expected >= render.max_length=768"):
        PolicyConfig(scratch={"max_position_embeddings": 64})
    with pytest.raises(ValidationError):
        SFTConfig(order="hard_to_easy")


def test_length_grouping_cuts_padding_but_keeps_buckets_and_multiset():
    import random

    rnd = random.Random(0)
    buckets = [rnd.choice(["easy", "medium", "hard"]) for _ in range(200)]
    lengths = [rnd.randint(50, 500) for _ in range(200)]

    def padding(order):
        return sum(max(lengths[i] for i in order[s:s + 8]) * len(order[s:s + 8]) - sum(lengths[i] for i in order[s:s + 8])
                   for s in range(0, len(order), 8))

    for kind in ("easy_to_hard", "random"):
        plain = curriculum(buckets, kind, 2, seed=0)
        grouped = curriculum(buckets, kind, 2, seed=0, lengths=lengths, batch_size=8)
        extra = Counter(grouped) - Counter(plain)
        assert not Counter(plain) - Counter(grouped) and sum(extra.values()) <= 3 * 7  # < one batch per bucket
        assert len(grouped) % 8 == 0
        assert padding(grouped) < padding(plain) / 3
    labels = [buckets[i] for i in curriculum(buckets, "easy_to_hard", 2, 0, lengths=lengths, batch_size=8)]
    assert labels == sorted(labels, key=["easy", "medium", "hard"].index)
