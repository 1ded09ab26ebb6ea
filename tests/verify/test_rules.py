"""The rule layer: clean dialogs pass every check; each rule family rejects its own violations with reasons."""

from __future__ import annotations

import json

import polars as pl
import pytest

from toolkiln.schema import DIALOG_TYPES, dialogs_frame
from toolkiln.verify.config import RuleConfig
from toolkiln.verify.rules import FAMILIES, RULE_CHECKS, rule_checks, rule_layer

from .conftest import edit, row_of


def run(rows: list[dict]) -> pl.DataFrame:
    return rule_checks(dialogs_frame(rows), RuleConfig())


def failed(out: pl.DataFrame, i: int = 0) -> set[str]:
    return {c for c in RULE_CHECKS if not out[c][i]}


def run_each(rows: list[dict]) -> pl.DataFrame:
    """Every row checked as if alone, in one GX pass (a pass costs ~1.5 s whatever its size): each row is its own
    uniqueness batch, so variants of one dialog do not duplicate each other."""
    return rule_layer(dialogs_frame(rows), RuleConfig(), batch=list(range(len(rows)))).checked


def test_clean_dialogs_of_every_type_pass(clean):
    out = rule_checks(clean, RuleConfig())
    assert set(out["type"]) == set(DIALOG_TYPES)
    assert out["ok_rules"].all(), out.filter(~pl.col("ok_rules"))["rule_reasons"].to_list()
    assert len(RULE_CHECKS) >= 18 and set(FAMILIES) == {"clarity", "executability", "correctness", "consistency"}


def test_missing_column_is_a_clear_error(clean):
    with pytest.raises(ValueError, match="missing columns \\['calls'\\]"):
        rule_checks(clean.drop("calls"), RuleConfig())


def _set_call(row, **args):
    def f(msgs):
        msgs[row["target_turn"]]["tool_calls"][0]["arguments"] = args
        return msgs
    calls = json.loads(row["calls"])
    for c in calls:
        if c["turn"] == row["target_turn"]:
            c["arguments"] = args
            break
    from toolkiln.calls import format_calls

    msgs = f(json.loads(row["messages"]))
    return {**row, "messages": json.dumps(msgs), "calls": json.dumps(calls),
            "target": format_calls(msgs[row["target_turn"]]["tool_calls"])}


def test_executability_failures_name_turn_and_argument(clean):
    single = row_of(clean.filter(pl.col("target").str.starts_with("[weather.get_forecast")), "single")
    out = run([_set_call(single, city="Oslo", days=30, units="kelvin", wind=True)])
    assert failed(out) == {"ok_arg_range", "ok_arg_enum", "ok_unknown_args"}
    reasons = " | ".join(out["rule_reasons"][0])
    assert "turn 1" in reasons and "days" in reasons and "'wind'" in reasons


def test_invented_function_fails_call_name(clean):
    single = row_of(clean, "single")

    def rename(msgs):
        msgs[1]["tool_calls"][0]["name"] = "weather.get_forecast_v2"
        msgs[2]["name"] = "weather.get_forecast_v2"
        return msgs
    bad = edit(single, messages=rename)
    out = run([bad])
    assert "ok_call_name" in failed(out)
    assert any("call_is_offered at turn 1: weather.get_forecast_v2" in r and "candidate list" in r
               for r in out["rule_reasons"][0])


def test_malformed_json_is_a_recorded_rejection_not_a_crash(clean):
    row = row_of(clean, "parallel")
    out = run([{**row, "id": "bad", "messages": "[{not json"}, {**row, "id": "other", "tools": "{}"}, row])
    assert not out["ok_fields"][0] and not out["ok_fields"][1]
    assert "invalid JSON" in out["rule_reasons"][0][0] and "tools" in out["rule_reasons"][1][0]
    assert out["ok_rules"][2]


def test_correctness_text_checks(clean):
    row = row_of(clean, "single")
    last = json.loads(row["messages"])[-1]["content"]

    def set_last(text):
        def f(msgs):
            msgs[-1]["content"] = text
            return msgs
        return f
    rows = [
        edit(row, id="empty", messages=set_last("  ")),
        edit(row, id="long", messages=set_last("x" * 5000)),
        edit(row, id="loop", messages=set_last(last + " " + "and again " * 80)),
        edit(row, id="ctrl", messages=set_last(last + "\x07")),
        edit(row, id="fffd", messages=set_last(last + "\ufffd")),
        edit(row, id="mixed", messages=set_last(last + " 我们明天早上九点在车站见面。")),
        edit(row, id="switch", messages=set_last("明天的天气很好，最高气温二十四度。")),
        edit(row, id="quoted", messages=set_last(last + ' The local name is "東京都庁舎".')),
    ]
    out = run_each(rows)  # the variants share user turns and target: each is its own uniqueness batch
    outs = {r["id"]: out[i] for i, r in enumerate(rows)}
    got = {k: failed(o) for k, o in outs.items()}
    assert got == {"empty": {"ok_nonempty"}, "long": {"ok_length"}, "loop": {"ok_length"}, "ctrl": {"ok_charset"},
                   "fffd": {"ok_charset"}, "mixed": {"ok_language"}, "switch": {"ok_language"}, "quoted": set()}
    last_turn = len(json.loads(row["messages"])) - 1
    assert any(r.startswith(f"ok_charset: valid_characters at turn {last_turn} (assistant): No invalid characters")
               for r in outs["ctrl"]["rule_reasons"][0])


@pytest.mark.parametrize("mutate, check", [
    (lambda m: [m[1], m[0]] + m[2:], "ok_role_order"),  # assistant before user
    (lambda m: m[:1] + [{"role": "tool", "name": "weather.get_forecast", "content": "{}"}] + m[1:], "ok_tool_responses"),
    (lambda m: m[:2] + [{**m[2], "name": "email.send_email"}] + m[3:], "ok_tool_responses"),
    (lambda m: m + [dict(m[-1])], "ok_role_order"),  # two assistant answers in a row
])
def test_consistency_of_roles_and_tool_responses(clean, mutate, check):
    row = row_of(clean.filter(pl.col("target").str.starts_with("[weather.get_forecast")), "single")
    msgs = mutate(json.loads(row["messages"]))
    tt = next(i for i, m in enumerate(msgs) if m.get("tool_calls"))
    calls = [{"turn": i, "name": c["name"], "arguments": c["arguments"]}
             for i, m in enumerate(msgs) for c in m.get("tool_calls") or []]
    bad = {**row, "messages": json.dumps(msgs), "calls": json.dumps(calls), "target_turn": tt, "n_turns": len(msgs)}
    out = run([bad])
    assert check in failed(out), out["rule_reasons"][0]


def test_format_type_and_dependency(clean):
    dep = row_of(clean, "dependent")
    single = row_of(clean, "single")

    def unlink(msgs):  # the dependent call no longer uses the id the first call returned
        msgs[3]["tool_calls"][0]["arguments"]["user_id"] = 424242
        return msgs
    from toolkiln.calls import format_calls

    broken = edit(dep, messages=unlink)
    msgs = json.loads(broken["messages"])
    broken.update(target=format_calls(msgs[3]["tool_calls"]),
                  calls=json.dumps([{"turn": i, "name": c["name"], "arguments": c["arguments"]}
                                    for i, m in enumerate(msgs) for c in m.get("tool_calls") or []]))
    rows = [
        broken,
        {**single, "id": "json-target", "target": json.dumps([{"name": "f", "arguments": {}}])},
        {**single, "id": "spaced", "target": single["target"].replace(", ", ",  ")},  # same calls, other spelling
        {**single, "id": "as-parallel", "type": "parallel"},
    ]
    out = run_each(rows)
    assert [failed(out, i) for i in range(len(rows))] == [{"ok_dependency"}, {"ok_format"}, set(), {"ok_dialog_type"}]


def test_fields_consistency(clean):
    row = row_of(clean, "parallel")
    rows = [{**row, "id": "a", "n_calls": row["n_calls"] + 1}, {**row, "id": "b", "apis": ["x.y"]},
            {**row, "id": "c", "target_turn": 0}, {**row, "id": "d", "type": "chitchat"}]
    out = run_each(rows)
    assert all("ok_fields" in failed(out, i) for i in range(len(rows)))


def test_duplicates_keep_the_first_occurrence(clean):
    a, b = clean.row(0, named=True), clean.row(1, named=True)
    out = run([a, b, {**a, "id": "copy"}, {**b, "messages": b["messages"]}])  # a copy, and b's id reused
    assert out["ok_unique"].to_list() == [True, True, False, False]
    assert out["rule_reasons"][2].to_list() == [f"ok_unique: unique_sample (same as dialog {a['id']}): No duplicate samples: "
                                                "the same user turns and target as an earlier dialog."]


def test_definition_clarity_of_offered_tools(clean):
    row = row_of(clean, "single")

    def vague(tools):
        tools[0]["description"] = ""
        tools[0]["parameters"]["required"] = ["nonexistent"]
        return tools
    out = run([edit(row, tools=vague)])
    assert "ok_api_clarity" in failed(out)
    assert any("ok_description" in r for r in out["rule_reasons"][0])


def test_pool_apis_are_trusted_only_when_unchanged(clean):
    from toolkiln.schema import api_from_dict, apis_frame
    from toolkiln.testing.examples import APIS
    from toolkiln.verify.rules import RuleCaches

    row = row_of(clean, "single")
    tools = json.loads(row["tools"])
    vague = {**tools[0], "description": "short"}  # fails definition clarity (< 10 characters)
    pool = apis_frame([api_from_dict(a) for a in APIS if a["name"] != vague["name"]] + [api_from_dict(vague)])
    caches = RuleCaches()
    caches.trust_pool(pool)
    same = {**row, "tools": json.dumps([vague] + tools[1:])}
    drifted = {**row, "id": "x", "tools": json.dumps([{**vague, "description": "tiny"}] + tools[1:])}
    out = rule_checks(dialogs_frame([same]), RuleConfig(), caches)
    assert out["ok_api_clarity"][0]  # equal to its pool entry: the pool stage already judged it
    out = rule_checks(dialogs_frame([drifted]), RuleConfig(), caches)
    assert not out["ok_api_clarity"][0] and "ok_description" in out["rule_reasons"][0][0]


def test_tool_list_split_falls_back_on_a_nested_boundary_lookalike(clean):
    from toolkiln.verify.rules import RuleCaches, parse_tools

    row = row_of(clean, "single")
    tools = json.loads(row["tools"])
    params = json.loads(json.dumps(tools[0]["parameters"]))
    first = next(iter(params["properties"]))
    params["properties"][first]["examples"] = [{"name": "a"}, {"name": "b"}]  # contains ', {"name": '
    tricky = {**tools[0], "parameters": params}
    text = json.dumps([tricky] + tools[1:])
    assert text.count(', {"name": ') > len(tools) - 1
    caches = RuleCaches()
    ts = parse_tools(text, caches)
    assert ts.error is None and ts.names == {t["name"] for t in tools}
    assert ts.by_name[tricky["name"]]["parameters"] == params
    assert parse_tools(json.dumps(tools), caches).names == ts.names  # the clean list still splits
