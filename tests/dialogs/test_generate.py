"""Dialog generation with the simulator agents: types, structure, grounding, thoughts, voting, no silent loss."""

import json
from collections import Counter

import polars as pl
import pytest

from toolkiln.calls import format_calls
from toolkiln.dialogs.protocol import Action, vote
from toolkiln.dialogs.config import DialogsConfig, NoiseConfig, VotingConfig
from toolkiln.dialogs.generate import generate_dialogs, shard_budget, shard_ranges, type_quotas
from toolkiln.dialogs.pool import APIPool
from toolkiln.dialogs.values import result_problems
from toolkiln.callparse import parse_calls
from toolkiln.schema import DIALOG_SCHEMA
from toolkiln.verify.config import RuleConfig
from toolkiln.verify.model import DialogView, EmbeddedJudge
from toolkiln.verify.rules import rule_checks

QUIET = VotingConfig(noise=NoiseConfig(distractor=0.0, drop_optional=0.0, perturb_value=0.0))


@pytest.fixture(scope="module")
def clean(pool):
    cfg = DialogsConfig(n_dialogs=250, voting=QUIET, multi_turn=0.5, profile_in_system=0.5)
    return generate_dialogs(pool, cfg, seed=7, progress=False)


def _rows(res):
    return res.dialogs.to_dicts()


def test_exact_type_mix_and_schema(clean):
    df = clean.dialogs
    assert df.schema == pl.Schema(DIALOG_SCHEMA)
    assert df.height == 250 and df["id"].n_unique() == 250
    counts = Counter(df["type"].to_list())
    assert counts == Counter(type_quotas(DialogsConfig(n_dialogs=250), 250))
    shares = DialogsConfig().type_mix
    assert all(abs(counts[t] - 250 * w) < 1 for t, w in shares.items())


def test_every_dialog_passes_the_rule_layer(clean):
    checked = rule_checks(clean.dialogs, RuleConfig())
    bad = checked.filter(~pl.col("ok_rules"))
    assert bad.height == 0, bad["rule_reasons"].to_list()[:3]


def test_argument_values_are_grounded_and_results_conform(clean, pool):
    judge = EmbeddedJudge()
    for r in _rows(clean):
        d = DialogView.from_row(r)
        assert judge.hallucination(d).outcome in ("pass", "skipped"), (r["type"], judge.hallucination(d).reason)
        assert judge.tool_response(d).outcome in ("pass", "skipped")
        for m in json.loads(r["messages"]):
            if m["role"] == "tool":
                assert result_problems(json.loads(m["content"]), pool.by_name[m["name"]].api["returns"]) == []


def test_thoughts_give_the_source_of_every_argument(clean):
    n_canonical = n_system = n_tool = 0
    for r in _rows(clean):
        msgs = json.loads(r["messages"])
        for m in msgs:
            if m["role"] != "assistant" or not m.get("tool_calls"):
                continue
            th = m["thought"]
            assert set(th) >= {"tool", "why", "arguments"} and th["why"]
            assert th["tool"] == ", ".join(dict.fromkeys(c["name"] for c in m["tool_calls"]))
            multi = len(m["tool_calls"]) > 1
            for i, c in enumerate(m["tool_calls"]):
                for p, v in c["arguments"].items():
                    src = th["arguments"][f"{i}.{p}" if multi else p]
                    if src["from"] == "user":
                        said = msgs[src["turn"]]["content"]
                        assert msgs[src["turn"]]["role"] == "user"
                        texts = src["text"] if isinstance(src["text"], list) else [src["text"]]
                        assert all(t is None or t.strip("'\"").lower() in said.lower() for t in texts), (src, said)
                        if "canonical" in src:
                            n_canonical += 1
                            assert src["canonical"] == v
                    elif src["from"] == "system":
                        n_system += 1
                        assert str(v) in r["system"]
                    else:
                        n_tool += 1
                        assert src["from"] == "tool" and msgs[src["turn"]]["role"] == "tool"
                        assert json.dumps(v) in msgs[src["turn"]]["content"] or str(v) in msgs[src["turn"]]["content"]
    assert n_canonical > 10 and n_system > 0 and n_tool > 0  # dates/numbers in words, profile facts, dependent links


def test_targets_follow_the_schema_semantics(clean, pool):
    for r in _rows(clean):
        msgs = json.loads(r["messages"])
        t = msgs[r["target_turn"]]
        assert t["role"] == "assistant"
        tools = {x["name"] for x in json.loads(r["tools"])}
        assert {pool.by_name[n].domain for n in tools} == {r["domain"]}  # same-domain distractors
        if r["type"] in ("non_tool", "clarification"):
            assert r["target"] == "" and not t.get("tool_calls") and t["content"]
        else:
            assert r["target"] == format_calls(t["tool_calls"])
            assert parse_calls(r["target"], strict=True).calls == [
                {"name": c["name"], "arguments": c["arguments"]} for c in t["tool_calls"]]
        if r["type"] == "parallel":
            assert len(t["tool_calls"]) >= 2
        if r["type"] == "dependent":
            assert any(m.get("tool_calls") for m in msgs[: r["target_turn"]])
            assert any(s["from"] == "tool" for s in t["thought"]["arguments"].values())
        if r["type"] == "clarification":
            assert t["content"].endswith("?")
            asked = msgs[r["target_turn"] + 1]
            assert asked["role"] == "user"
        if r["type"] == "non_tool":
            intent = json.loads(r["provenance"])["intent_api"]
            assert intent not in tools and not (pool.by_name[intent].leaves & {leaf for n in tools for leaf in pool.by_name[n].leaves})


def test_structure_is_varied(clean):
    prov = [json.loads(p) for p in clean.dialogs["provenance"]]
    assert sum(p["exchanges"] > 1 for p in prov) > 20  # multi-turn
    assert any(p["follow_up"] for p in prov)
    assert len({p["style"] for p in prov}) >= 6
    firsts = [json.loads(m)[0]["content"] for m in clean.dialogs["messages"]]
    assert len(set(firsts)) == len(firsts)
    assert clean.dialogs["n_candidates"].min() >= 2 and clean.dialogs["n_candidates"].max() >= 5


def test_deterministic_given_the_seed(pool):
    cfg = DialogsConfig(n_dialogs=40)
    a = generate_dialogs(pool, cfg, seed=3, progress=False)
    b = generate_dialogs(pool, cfg.model_copy(update={"batch_size": 7}), seed=3, progress=False)
    c = generate_dialogs(pool, cfg, seed=4, progress=False)
    assert a.dialogs.equals(b.dialogs) and a.rejects.equals(b.rejects)
    assert not a.dialogs.equals(c.dialogs)


def test_shards_own_their_budget_and_give_the_one_shard_dialogs_when_it_does_not_bind(pool):
    cfg = DialogsConfig(n_dialogs=60, max_attempts_factor=3.0)
    one = generate_dialogs(pool, cfg.model_copy(update={"shards": 1}), seed=5, progress=False)
    seven = generate_dialogs(pool, cfg.model_copy(update={"shards": 7}), seed=5, progress=False)
    assert one.rejects.height > 0 and one.metrics["shards"] == 1 and seven.metrics["shards"] == 7
    # slots keep their global index and seed: the same dialogs, the same attempts, rejects grouped by shard
    assert seven.dialogs.equals(one.dialogs)
    assert seven.rejects.sort("slot", "attempt").equals(one.rejects.sort("slot", "attempt"))
    ranges = shard_ranges(60, 7)
    assert [len(r) for r in ranges] == [8, 9, 8, 9, 8, 9, 9] and ranges[0].start == 0 and ranges[-1].stop == 60
    assert sum(shard_budget(cfg, r) for r in ranges) == 180
    assert shard_ranges(3, 8) == [range(0, 1), range(1, 2), range(2, 3)]  # never an empty shard
    # a tight budget binds per shard: each shard stops at its own share, not at a pooled one
    tight = cfg.model_copy(update={"max_attempts_factor": 1.0, "shards": 4})
    res = generate_dialogs(pool, tight, seed=5, progress=False)
    assert res.metrics["n_attempts"] <= 60
    for r in shard_ranges(60, 4):
        assert res.rejects.filter(pl.col("slot").is_between(r.start, r.stop - 1)).height + res.dialogs.filter(
            pl.col("provenance").str.json_path_match("$.slot").cast(pl.Int64).is_between(r.start, r.stop - 1)
        ).height <= shard_budget(tight, r)


def test_vote_keeps_the_majority_and_rejects_disagreement():
    call = lambda v: Action("calls", [{"name": "f", "arguments": {"x": v}}])  # noqa: E731
    winner, rec = vote([call(1), call(1), call(2)], 0.66)
    assert winner.calls[0]["arguments"] == {"x": 1} and rec == {"n": 3, "top": 2, "counts": [2, 1]}
    assert vote([call(1), call(2), call(3)], 0.66)[0] is None
    assert vote([call(1), call(1), call(2)], 1.0)[0] is None
    bad = [Action("invalid", error="x") for _ in range(3)]
    assert vote(bad, 0.3)[0] is None  # unusable samples never agree with each other
    # parallel calls agree in any order
    ab = Action("calls", [{"name": "f", "arguments": {}}, {"name": "g", "arguments": {}}])
    ba = Action("calls", [{"name": "g", "arguments": {}}, {"name": "f", "arguments": {}}])
    assert vote([ab, ba, ab], 1.0)[0] is not None


def test_noisy_samples_are_voted_out_and_recorded(pool):
    noisy = VotingConfig(noise=NoiseConfig(distractor=0.25, drop_optional=0.25, perturb_value=0.2))
    res = generate_dialogs(pool, DialogsConfig(n_dialogs=120, voting=noisy, max_attempts_factor=6.0), seed=1,
                           progress=False)
    m = res.metrics
    assert res.dialogs.height == 120 and m["n_attempts"] == 120 + res.rejects.height  # nothing dropped silently
    assert res.rejects.height > 0 and set(res.rejects["reason"].str.split(":").list.first()) == {"vote"}
    votes = [v for p in res.dialogs["provenance"] for v in json.loads(p)["votes"]]
    assert votes and all(v["top"] / v["n"] >= 0.66 for v in votes) and any(v["top"] < v["n"] for v in votes)
    single = generate_dialogs(pool, DialogsConfig(n_dialogs=120, voting=noisy.model_copy(update={"n": 1})), seed=1,
                              progress=False)
    # without voting the mistakes stay in the data (labelled), and the rule layer catches some of them
    flagged = sum(any(v.get("noisy_winner") for v in json.loads(p)["votes"]) for p in single.dialogs["provenance"])
    assert flagged > 10 and rule_checks(single.dialogs, RuleConfig())["ok_rules"].sum() < 120


def test_pool_without_dependencies_records_every_attempt(pool_frame):
    flat = APIPool.from_frame(pool_frame.filter(~pl.col("name").str.contains("search|forecast|list_transactions")))
    assert not flat.link_slots
    res = generate_dialogs(flat, DialogsConfig(n_dialogs=5, type_mix={"dependent": 1.0}), seed=0, progress=False)
    assert res.dialogs.height == 0 and res.rejects.height == res.metrics["n_attempts"] == 7
    assert all("dependent API pair" in r for r in res.rejects["reason"])


def test_bad_pool_is_a_clear_error(pool_frame):
    with pytest.raises(ValueError, match="duplicate API name"):
        APIPool.from_frame(pl.concat([pool_frame, pool_frame.head(1)]))
    with pytest.raises(ValueError, match="missing columns"):
        APIPool.from_frame(pool_frame.drop("returns"))
    with pytest.raises(ValueError, match="empty"):
        APIPool([])


def test_a_bug_in_an_agent_fails_generation_but_a_bad_reply_is_a_rejection(pool):
    from toolkiln.dialogs.agents import AgentError, BadReply, SimulatorTool
    from toolkiln.dialogs.generate import simulator_agents

    class BuggyTool(SimulatorTool):
        def respond(self, st, ph, results):
            return {}["no such key"]  # a programming error, not something a model said

    class PickyTool(SimulatorTool):
        def respond(self, st, ph, results):
            raise BadReply("the result is not JSON")

    cfg = DialogsConfig(n_dialogs=6, type_mix={"single": 1.0, "parallel": 0.0, "dependent": 0.0, "non_tool": 0.0,
                                               "clarification": 0.0})
    with pytest.raises(AgentError, match="tool agent .BuggyTool. crashed.*KeyError.*bug in the agent's code"):
        generate_dialogs(pool, cfg, seed=0, agents={**simulator_agents(cfg), "tool": BuggyTool()}, progress=False)
    res = generate_dialogs(pool, cfg, seed=0, agents={**simulator_agents(cfg), "tool": PickyTool()}, progress=False)
    assert res.dialogs.height == 0 and res.rejects.height > 0
    assert set(res.rejects["reason"]) == {"tool: the result is not JSON"}
