"""bench/policy_levers.py: the validation sample never holds an API the warm-up pool calls, and the name
statistics tell copying a tool from picking the right one."""

from __future__ import annotations

import json

import polars as pl

from bench.policy_levers import name_stats, validation_sample


def _row(i: int, kind: str, target: list[str], other: list[str] = ()) -> dict:
    calls = [{"turn": 1, "name": n, "arguments": {}} for n in target] + [
        {"turn": 3, "name": n, "arguments": {}} for n in other
    ]
    return {
        "id": f"d{i}",
        "type": kind,
        "calls": json.dumps(calls),
        "target_turn": 1,
        "apis": sorted(set(target) | set(other)),
        "tools": json.dumps([{"name": n} for n in ["a", "b", "c", "d", "e"]]),
    }


def test_validation_sample_excludes_every_api_the_pool_calls():
    rows = [
        _row(0, "single", ["a"]),
        _row(1, "single", ["b"], other=["c"]),  # the pool: calls a, b, c
        _row(2, "single", ["a"]),  # target calls a pool API -> out
        _row(3, "single", ["d"], other=["a"]),  # only the target turn counts -> in
        _row(4, "single", ["c", "e"]),  # one pool API among the target's -> out
        _row(5, "non_tool", []),  # no call -> in
        _row(6, "single", ["e"]),  # in
    ]
    train = pl.DataFrame(rows)
    difficulty = pl.DataFrame(
        {"id": [f"d{i}" for i in range(7)], "bucket": ["easy", "hard", None, None, None, None, None]}
    )
    val, info = validation_sample(train, difficulty, per_type=10, seed=0)
    assert sorted(val["id"].to_list()) == ["d3", "d5", "d6"]
    assert info == {"pool": 2, "pool_apis": 3, "eligible": 3}
    assert validation_sample(train, difficulty, per_type=1, seed=0)[0].height == 2  # one per type present


def test_name_stats_separates_offered_names_from_gold_names():
    val = pl.DataFrame([_row(i, "single", ["a"]) for i in range(4)])
    scored = pl.DataFrame(
        {
            "id": ["d0", "d1", "d2", "d3"],
            "group": ["single"] * 4,
            "calls": [
                json.dumps([{"name": "a", "arguments": {}}]),  # gold
                json.dumps([{"name": "b", "arguments": {}}]),  # offered, wrong
                json.dumps([{"name": "zz", "arguments": {}}]),  # invented
                None,  # no call written: not counted
            ],
            "gold": ["[a()]"] * 4,
        }
    )
    stats = name_stats(scored, val)
    assert stats["calling_predictions"] == 3
    assert abs(stats["names_in_tools"] - 2 / 3) < 1e-9
    assert abs(stats["names_gold"] - 1 / 3) < 1e-9


def test_reply_kinds_tell_calls_questions_summaries_and_broken_output_apart():
    from bench.policy_levers import reply_kinds

    scored = pl.DataFrame(
        {
            "group": ["single", "single", "dependent", "dependent", "non_tool"],
            "output": [
                '[get_weather(city="Paris")]',
                "Which city do you mean?",
                "Done. The result: ID 7, name Paris.",
                "[get_weather(city=",
                "Sure.",
            ],
            "calls": [json.dumps([{"name": "get_weather", "arguments": {"city": "Paris"}}]), None, None, None, "[]"],
        }
    )
    got = reply_kinds(scored)
    assert list(got) == ["single", "dependent", "non_tool"]  # the TYPES order
    assert got["single"] == {"calls": 1, "question": 1, "text": 0, "other": 0}
    assert got["dependent"] == {"calls": 0, "question": 0, "text": 1, "other": 1}
    assert got["non_tool"] == {"calls": 0, "question": 0, "text": 1, "other": 0}


def test_a_variants_own_pool_keeps_the_validation_dialogs_and_their_apis_out():
    from bench.policy_levers import pool_source

    train = pl.DataFrame(
        [
            _row(0, "single", ["a"]),
            _row(1, "single", ["b"]),
            _row(2, "dependent", ["c"], other=["a"]),
            _row(3, "single", ["d"]),
        ]
    )
    val = train.filter(pl.col("id") == "d0")  # its target calls a
    assert pool_source(train, val)["id"].to_list() == ["d1", "d3"]  # d0 is validation, d2 calls a too
