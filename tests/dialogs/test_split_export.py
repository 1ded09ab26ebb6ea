"""Split by API, the three export formats, and the BFCL round trip through the official checker."""

import json

import polars as pl
import pytest

from toolkiln.dialogs.config import DialogsConfig, NoiseConfig, VotingConfig
from toolkiln.dialogs.export import bfcl_function, to_bfcl, to_openai, to_sharegpt, write_exports
from toolkiln.dialogs.generate import generate_dialogs
from toolkiln.dialogs.split import key_apis, split_by_api
from toolkiln.schema import DIALOG_TYPES
from toolkiln.dialogs.config import SplitConfig

QUIET = VotingConfig(noise=NoiseConfig(distractor=0.0, drop_optional=0.0, perturb_value=0.0))


@pytest.fixture(scope="module")
def dialogs(pool):
    return generate_dialogs(pool, DialogsConfig(n_dialogs=300, voting=QUIET), seed=11, progress=False).dialogs


def test_split_keeps_test_apis_out_of_train(dialogs):
    res = split_by_api(dialogs, SplitConfig(test_fraction=0.2), seed=0)
    assert res.train.height + res.test.height == dialogs.height
    test_apis = set(res.test_apis)
    for r in res.train.to_dicts():
        assert not key_apis(r) & test_apis
        assert not {t["name"] for t in json.loads(r["tools"])} & test_apis
        assert r["n_candidates"] == len(json.loads(r["tools"]))
    assert all(key_apis(r) & test_apis for r in res.test.to_dicts() if key_apis(r))
    assert set(res.test["type"]) == set(DIALOG_TYPES)
    assert 0.15 <= res.metrics["test_share"] <= 0.5 and res.metrics["api_overlap"] == 0
    again = split_by_api(dialogs, SplitConfig(test_fraction=0.2), seed=0)
    assert again.train.equals(res.train) and again.test_apis == res.test_apis


def test_split_without_stripping_keeps_candidate_lists(dialogs):
    res = split_by_api(dialogs, SplitConfig(test_fraction=0.2, strip_test_distractors=False), seed=0)
    kept = dict(zip(dialogs["id"], dialogs["tools"]))
    assert all(kept[i] == t for i, t in zip(res.train["id"], res.train["tools"]))


def test_split_rejects_foreign_input():
    with pytest.raises(ValueError, match="lacks dialog columns"):
        split_by_api(pl.DataFrame({"id": ["a"]}), SplitConfig(), seed=0)


def test_exports_are_consistent(dialogs, tmp_path):
    res = split_by_api(dialogs, SplitConfig(), seed=1)
    counts = write_exports({"train": res.train, "test": res.test}, tmp_path, ["sharegpt", "openai", "bfcl"])
    assert counts["train/openai.jsonl"] == res.train.height and counts["test/sharegpt.json"] == res.test.height
    share = json.loads((tmp_path / "train" / "sharegpt.json").read_text())
    oai = [json.loads(line) for line in (tmp_path / "train" / "openai.jsonl").read_text().splitlines()]
    qs = [json.loads(line) for line in (tmp_path / "train" / "bfcl_question.jsonl").read_text().splitlines()]
    answers = [json.loads(line) for line in (tmp_path / "train" / "bfcl_possible_answer.jsonl").read_text().splitlines()]
    rows = res.train.to_dicts()
    assert len(share) == len(oai) == len(qs) == len(rows)
    assert len(answers) == sum(r["target"] != "" for r in rows)
    for r, s, o in zip(rows, share, oai):
        assert r["target"] in [t["value"] for t in s["conversations"] if t["from"] == "assistant"] or r["target"] == ""
        assert json.loads(r["tools"])[0]["name"] in s["system"]
        ids = [c["id"] for m in o["messages"] if m.get("tool_calls") for c in m["tool_calls"]]
        answered = [m["tool_call_id"] for m in o["messages"] if m["role"] == "tool"]
        assert sorted(answered) == sorted(ids)  # every call gets its result, by id
        assert o["messages"][o["metadata"]["target_turn"]]["role"] == "assistant"


def test_sharegpt_merges_consecutive_tool_results(dialogs):
    row = next(r for r in dialogs.to_dicts() if r["type"] == "parallel")
    conv = to_sharegpt(row)["conversations"]
    tools = [t for t in conv if t["from"] == "tool"]
    assert len(json.loads(tools[0]["value"])) >= 2 and {"name", "results"} <= set(json.loads(tools[0]["value"])[0])
    assert to_openai(row)["messages"][0]["role"] == "system"


def test_bfcl_docs_use_bfcl_type_names(pool):
    doc = bfcl_function(pool.by_name["weather.get_hourly_forecast"].api)
    loc = doc["parameters"]["properties"]["location"]
    assert doc["parameters"]["type"] == "dict" and loc["type"] == "dict"
    assert loc["properties"]["latitude"]["type"] == "float"


def test_official_bfcl_checker_grades_our_ground_truth_correct(dialogs):
    pytest.importorskip("bfcl_eval")
    from toolkiln.evaluate.oracle import load_oracle, to_bfcl_calls

    oracle = load_oracle()
    cats, n = set(), 0
    for i, r in enumerate(dialogs.to_dicts()):
        q, a = to_bfcl(r, i)
        cats.add(q["category"])
        target = json.loads(r["messages"])[r["target_turn"]].get("tool_calls") or []
        if a is None:
            assert oracle.check([], [], q["function"], q["category"])["valid"]
            continue
        verdict = oracle.check(to_bfcl_calls(target), a["ground_truth"], q["function"], q["category"])
        assert verdict["valid"], (r["target"], a, verdict)
        # and the target string itself, through BFCL's own decoder
        assert oracle.check_text(r["target"], a["ground_truth"], q["function"], q["category"])["valid"], r["target"]
        n += 1
        # the checker is not a rubber stamp: a changed required value fails
        first = target[0]
        req = [p for p in q["function"][[f["name"] for f in q["function"]].index(first["name"])]["parameters"]["required"]
               if isinstance(first["arguments"].get(p), str)]
        if req:
            wrong = [{**c, "arguments": {**c["arguments"], req[0]: c["arguments"][req[0]] + " nope"}} if c is first else c
                     for c in target]
            assert not oracle.check(to_bfcl_calls(wrong), a["ground_truth"], q["function"], q["category"])["valid"]
    assert n > 150 and cats == {"multiple", "parallel_multiple", "irrelevance"} | (cats & {"simple", "parallel"})


def test_split_records_whether_each_test_target_calls_unseen_apis(dialogs):
    from toolkiln.dialogs.split import TARGET_KINDS, target_apis, target_status

    res = split_by_api(dialogs, SplitConfig(test_fraction=0.3), seed=0)
    test_apis = set(res.test_apis)
    kinds = [json.loads(r["provenance"])["split_target"] for r in res.test.to_dicts()]
    assert set(kinds) <= set(TARGET_KINDS) and sum(res.metrics["test_targets"].values()) == res.test.height
    for r, k in zip(res.test.to_dicts(), kinds):
        names = target_apis(r)
        assert k == ("no_call" if not names else "unseen" if names <= test_apis else
                     "seen" if not names & test_apis else "partly_seen")
    row = {"calls": json.dumps([{"turn": 1, "name": "a"}, {"turn": 3, "name": "b"}]), "target_turn": 3}
    assert target_status(row, {"a"}) == "seen" and target_status(row, {"b"}) == "unseen"
    assert target_status({**row, "target_turn": 2}, {"a"}) == "no_call"
