"""The LLM-prompted agents over real HTTP: the local chat-completions test server plays the model.

The server's responder (:class:`toolkiln.testing.scripted.ScriptedLLM`) answers each agent's
prompt as a model would; faults and malformed replies must end as recorded rejections.
"""

import json

import pytest

from toolkiln.dialogs.config import DialogsConfig
from toolkiln.dialogs.generate import generate_dialogs, simulator_agents
from toolkiln.dialogs.llm_agents import TOOL_SYSTEM, USER_SYSTEM, LLMTool, LLMUser, llm_agents, parse_action
from toolkiln.testing.scripted import ScriptedLLM
from toolkiln.llm import make_backend
from toolkiln.llm.config import LLMConfig, LLMRuntime
from toolkiln.testing.chatserver import ChatTestServer, FaultPlan
from toolkiln.verify.config import RuleConfig
from toolkiln.verify.model import DialogView, EmbeddedJudge
from toolkiln.verify.rules import rule_checks


def _backend(srv, trace=None, concurrency=8):
    cfg = LLMConfig(backend="openai", base_url=srv.base_url, model="scripted")
    rt = LLMRuntime(cache_dir="", max_retries=2, backoff_s=0.01, max_backoff_s=0.05, timeout_s=10.0, concurrency=concurrency)
    return make_backend(cfg, rt, trace_path=trace), cfg


def test_llm_agents_generate_valid_dialogs_over_http(pool, tmp_path):
    trace = tmp_path / "trace.jsonl"
    cfg = DialogsConfig(n_dialogs=40, batch_size=12)
    with ChatTestServer(responder=ScriptedLLM()) as srv:
        backend, llm_cfg = _backend(srv, trace)
        res = generate_dialogs(pool, cfg, seed=5, agents=llm_agents(cfg.voting, llm_cfg), backend=backend,
                               progress=False)
        assert srv.max_in_flight > 1  # requests of a round go out concurrently
    df = res.dialogs
    assert df.height == 40 and res.rejects.height == 0
    assert res.metrics["agents"] == {"user": "llm", "assistant": "llm", "tool": "llm"}
    assert rule_checks(df, RuleConfig())["ok_rules"].all()
    judge = EmbeddedJudge()
    for r in df.to_dicts():
        d = DialogView.from_row(r)
        assert judge.hallucination(d).outcome != "fail" and judge.tool_response(d).outcome != "fail"
    # every row traces back to the raw traffic next to the outputs
    keys = {json.loads(line)["key"] for line in trace.read_text().splitlines()}
    for p in df["provenance"]:
        prov = json.loads(p)
        assert prov["llm_keys"] and set(prov["llm_keys"]) <= keys
        assert all(v["n"] == 3 for v in prov["votes"])


def test_malformed_replies_are_rejections_with_reasons(pool):
    # one shard: the whole attempt budget is pooled, so a burst of injected faults cannot exhaust a small shard
    cfg = DialogsConfig(n_dialogs=40, batch_size=16, max_attempts_factor=3.0, shards=1)
    faults = FaultPlan(p_500=0.05, seed=3)
    with ChatTestServer(responder=ScriptedLLM(malformed=0.12, seed=1), faults=faults) as srv:
        backend, llm_cfg = _backend(srv)
        res = generate_dialogs(pool, cfg, seed=6, agents=llm_agents(cfg.voting, llm_cfg), backend=backend,
                               progress=False)
    rej = res.rejects
    assert res.dialogs.height == 40 and rej.height > 0
    assert res.metrics["n_attempts"] == res.dialogs.height + rej.height  # nothing dropped silently
    reasons = " | ".join(rej["reason"])
    assert "unparsable reply" in reasons and ("vote:" in reasons or "summary expected" in reasons)
    assert set(rej["agent"]) <= {"llm", "simulator", "planner"} and rej["phase"].null_count() == 0
    assert rule_checks(res.dialogs, RuleConfig())["ok_rules"].all()


def test_dead_endpoint_is_a_rejection_not_a_crash(pool):
    cfg = DialogsConfig(n_dialogs=3, max_attempts_factor=1.0)
    llm_cfg = LLMConfig(backend="openai", base_url="http://127.0.0.1:9/v1")
    rt = LLMRuntime(cache_dir="", max_retries=0, timeout_s=2.0)
    res = generate_dialogs(pool, cfg, seed=0, agents=llm_agents(cfg.voting, llm_cfg), backend=make_backend(llm_cfg, rt),
                           progress=False)
    assert res.dialogs.height == 0 and res.rejects.height == 3
    assert all(r.startswith("user: backend error") for r in res.rejects["reason"])


def test_mixed_agents_llm_tool_with_simulated_user_and_assistant(pool):
    cfg = DialogsConfig(n_dialogs=15)

    def bad_tool(body):  # a tool model that ignores the returns schema
        if body["messages"][0]["content"] == TOOL_SYSTEM:
            return json.dumps({"unexpected": [1, 2]}) if "get_air_quality" in body["messages"][1]["content"] else \
                ScriptedLLM().tool(json.loads(body["messages"][1]["content"]))
        raise AssertionError("only the tool agent is an LLM here")

    with ChatTestServer(responder=bad_tool) as srv:
        backend, _ = _backend(srv)
        agents = {**simulator_agents(cfg), "tool": LLMTool()}
        res = generate_dialogs(pool, cfg.model_copy(update={"max_attempts_factor": 4.0}), seed=2, agents=agents,
                               backend=backend, progress=False)
    assert res.metrics["agents"]["tool"] == "llm" and res.metrics["agents"]["user"] == "simulator"
    assert res.dialogs.height == 15
    for r in res.dialogs.to_dicts():
        assert "weather.get_air_quality" not in {m.get("name") for m in json.loads(r["messages"])}


def test_tool_results_must_conform_to_returns(pool):
    def wrong_types(body):
        return json.dumps({"aqi": "very high", "category": 3})

    with ChatTestServer(responder=wrong_types) as srv:
        backend, _ = _backend(srv)
        cfg = DialogsConfig(n_dialogs=6, type_mix={"single": 1.0}, max_attempts_factor=1.0, multi_turn=0.0)
        agents = {**simulator_agents(cfg), "tool": LLMTool()}
        res = generate_dialogs(pool, cfg, seed=0, agents=agents, backend=backend, progress=False)
    assert res.dialogs.height == 0 and res.rejects.height == 6
    assert all(r.startswith("tool_result_schema") or r.startswith("tool: unparsable") for r in res.rejects["reason"])


def test_user_agent_must_say_the_values_and_keep_the_omitted_one(pool):
    cfg = DialogsConfig(n_dialogs=8, type_mix={"clarification": 1.0}, max_attempts_factor=1.0, multi_turn=0.0)

    def leaky(body):
        payload = json.loads(body["messages"][1]["content"])
        if body["messages"][0]["content"] == USER_SYSTEM:
            vals = [m["value"] for t in payload["brief"]["tasks"] for m in t["mention"].values()]
            vals.append(payload["brief"]["answer"]["value"])  # gives away what it should leave out
            return json.dumps({"utterance": "Please do it with " + ", ".join(map(str, vals))})
        raise AssertionError("unreachable: every dialog is rejected at the user turn")

    with ChatTestServer(responder=leaky) as srv:
        backend, _ = _backend(srv)
        res = generate_dialogs(pool, cfg, seed=0, agents={**simulator_agents(cfg), "user": LLMUser()},
                               backend=backend, progress=False)
    assert res.dialogs.height == 0
    assert all(r.startswith("user: leaked") for r in res.rejects["reason"])


@pytest.mark.parametrize("text,kind,error", [
    ('{"content": "Which city?"}', "text", ""),
    ('Sure! ```json\n{"thought": {"tool": "f", "why": "w", "arguments": {"x": "user"}}, '
     '"tool_calls": [{"name": "f", "arguments": "{\\"x\\": 1}"}]}\n```', "calls", ""),
    ('{"tool_calls": [{"name": "f", "arguments": {"x": 1}}]}', "invalid", "structured thought"),
    ('{"thought": {"tool": "f", "why": "w", "arguments": {}}, "tool_calls": [{"name": "f", "arguments": {"x": 1}}]}',
     "invalid", "no source for arguments ['x']"),
    ('{"thought": {"why": "w", "arguments": {"0.x": "u", "1.x": "u"}}, "tool_calls": [{"name": "f", "arguments": '
     '{"x": 1}}, {"name": "f", "arguments": {"x": 2}}]}', "calls", ""),
    ("I would call f with x=1.", "invalid", "unparsable reply"),
    ('{"tool_calls": [{"arguments": {}}]}', "invalid", "no string 'name'"),
    ('{"content": ""}', "invalid", "neither"),
])
def test_parse_action(text, kind, error):
    a = parse_action(text)
    assert a.kind == kind and error in a.error
    if kind == "calls":
        assert a.thought["tool"] == "f" and a.calls[0]["arguments"] == {"x": 1}
