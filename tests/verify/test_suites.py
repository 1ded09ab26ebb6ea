"""The expectation suites are the rule layer: a rule added to a suite rejects rows, a rule removed keeps them."""

from __future__ import annotations

import json
import re
import shutil

import polars as pl
import pytest

from toolkiln.schema import dialogs_frame
from toolkiln.argcheck import FORMAT_CHECKS
from toolkiln.verify.config import RuleConfig
from toolkiln.verify.rules import RULE_SUITES, rule_checks, rule_layer

from .conftest import edit, row_of


@pytest.fixture
def suites(tmp_path, repo_root):
    """A copy of the expectations folder a test may edit."""
    folder = tmp_path / "expectations"
    shutil.copytree(repo_root / "expectations", folder)
    return folder


def _edit_suite(folder, name: str, fn) -> None:
    path = folder / name
    suite = json.loads(path.read_text())
    fn(suite["expectations"])
    path.write_text(json.dumps(suite))


def test_a_rule_added_to_a_suite_rejects_rows_with_its_name_and_notes(clean, suites):
    users = [" ".join(m["content"] for m in json.loads(ms) if m["role"] == "user") for ms in clean["messages"]]
    asks_weather = [bool(re.search(r"(?i)weather|forecast", u)) for u in users]
    assert 0 < sum(asks_weather) < clean.height
    _edit_suite(
        suites,
        "dialog_turns.json",
        lambda es: es.append(
            {
                "type": "expect_column_values_to_not_match_regex",
                "kwargs": {
                    "column": "content",
                    "regex": "(?i)weather|forecast",
                    "row_condition": 'role == "user"',
                    "condition_parser": "pandas",
                },
                "meta": {
                    "name": "no_weather_talk",
                    "check": "ok_topic",
                    "notes": "This data set is not about weather.",
                },
            }
        ),
    )
    out = rule_checks(clean, RuleConfig(), expectations=suites)
    assert out["ok_topic"].to_list() == [not a for a in asks_weather]
    assert out["ok_rules"].to_list() == [not a for a in asks_weather]
    i = asks_weather.index(True)
    assert any(
        r.startswith("ok_topic: no_weather_talk at turn 0 (user): This data set is not about weather.")
        for r in out["rule_reasons"][i]
    )
    assert rule_checks(clean, RuleConfig())["ok_rules"].all()  # the repository's suites are untouched


def _with_arg(row: dict, api: str, key: str, value) -> dict:
    """The row with one argument of its ``api`` call changed, every derived column kept consistent."""
    from toolkiln.calls import format_calls

    msgs = json.loads(row["messages"])
    for m in msgs:
        for c in m.get("tool_calls") or []:
            if c["name"] == api:
                c["arguments"][key] = value
    calls = [
        {"turn": i, "name": c["name"], "arguments": c["arguments"]}
        for i, m in enumerate(msgs)
        for c in m.get("tool_calls") or []
    ]
    return {
        **row,
        "id": f"{row['id']}-{key}",
        "messages": json.dumps(msgs),
        "calls": json.dumps(calls),
        "target": format_calls(msgs[row["target_turn"]]["tool_calls"]),
    }


def _single(clean, api: str) -> dict:
    return row_of(clean.filter(pl.col("target").str.starts_with(f"[{api}(")), "single")


def test_a_rule_removed_from_a_suite_keeps_the_rows_it_rejected(clean, suites):
    rows = [
        edit(_single(clean, "weather.get_forecast"), id="odd-type", type="chitchat"),
        _with_arg(_single(clean, "restaurants.book_table"), "restaurants.book_table", "date", "2025-02-30"),
    ]
    frame = dialogs_frame(rows)
    before = rule_checks(frame, RuleConfig())
    assert not before["ok_fields"][0] and not before["ok_arg_format"][1] and not before["ok_rules"].any()
    assert any("known_type" in r for r in before["rule_reasons"][0])
    assert any(
        'format_date at turn 1: restaurants.book_table.date="2025-02-30"' in r for r in before["rule_reasons"][1]
    )

    _edit_suite(
        suites, "dialogs_rules.json", lambda es: es.remove(next(e for e in es if e["meta"]["name"] == "known_type"))
    )
    _edit_suite(
        suites,
        "dialog_arg_formats.json",
        lambda es: es.remove(next(e for e in es if e["meta"]["name"] == "format_date")),
    )
    after = rule_checks(frame, RuleConfig(), expectations=suites)
    assert after["ok_rules"].to_list() == [True, True]


def test_removing_a_computed_column_expectation_keeps_its_rows(clean, suites):
    frame = dialogs_frame(
        [_with_arg(_single(clean, "weather.get_forecast"), "weather.get_forecast", "units", "kelvin")]
    )
    before = rule_checks(frame, RuleConfig())
    assert not before["ok_arg_enum"][0] and any("not in enum" in r for r in before["rule_reasons"][0])
    _edit_suite(
        suites, "dialogs_rules.json", lambda es: es.remove(next(e for e in es if e["meta"]["name"] == "arg_enum"))
    )
    assert rule_checks(frame, RuleConfig(), expectations=suites)["ok_rules"][0]


def test_suites_say_which_checks_are_computed(repo_root):
    for table, file in RULE_SUITES.items():
        suite = json.loads((repo_root / "expectations" / file).read_text())
        assert suite["meta"]["table"] == table
        for e in suite["expectations"]:
            meta = e["meta"]
            assert meta["name"] and meta["notes"] and meta["check"].startswith("ok_"), e
            column = e["kwargs"].get("column")
            if column and column.startswith("ok_"):  # a computed boolean: its meta says by what
                assert meta.get("computed"), e
            else:
                assert "computed" not in meta, e
    natives = sum(
        "computed" not in e["meta"]
        for f in RULE_SUITES.values()
        for e in json.loads((repo_root / "expectations" / f).read_text())["expectations"]
    )
    assert natives >= 30


# Values the Python format checkers (used where dialogs are generated) and the suite's regexes must agree on.
FORMAT_CASES = {
    "date": [
        "2025-02-28",
        "2024-02-29",
        "2025-02-29",
        "2025-02-30",
        "2025-04-31",
        "2025-12-31",
        "31/12/2025",
        "2025-1-01",
    ],
    "date-time": [
        "2025-03-01T09:30:00Z",
        "2025-03-01T09:30:00+05:30",
        "2025-03-01t09:30:00.5z",
        "2025-03-01T09:30:00",
        "2025-03-01T09:30Z",
        "2025-03-01 09:30:00Z",
        "2025-03-01T09:30:00+0530",
        "2025-02-30T09:30:00Z",
        "2025-13-01T10:00:00",
    ],
    "time": ["09:30", "23:59:59", "24:00", "25:61", "noon", "09:30:00Z"],
    "email": ["a.b@example.com", "john.doe(at)mail", "not an email", "x@y.io"],
    "uri": ["https://example.com/a?b=1", "www example com", "notaurl"],
    "ipv4": ["10.0.0.1", "256.1.1.1", "10.0.0", "01.2.3.4"],
    "ipv6": ["2001:db8::1", "::1", "2001::db8::1", "fe80::1:2:3:4", "12345::"],
    "uuid": ["123e4567-e89b-12d3-a456-426614174000", "1234-not-a-uuid"],
    "hostname": ["api.example.com", "bad host!.com", "-lead.example"],
    "duration": ["P3D", "PT1H30M", "P", "3 days"],
    "currency": ["EUR", "eur"],
    "color": ["#fff", "#12ab9F", "red"],
}


def test_format_regexes_agree_with_the_python_checkers(repo_root):
    suite = json.loads((repo_root / "expectations" / "dialog_arg_formats.json").read_text())
    regex = {
        e["kwargs"]["row_condition"].split('"')[1]: re.compile(e["kwargs"]["regex"]) for e in suite["expectations"]
    }
    assert set(regex) == set(FORMAT_CHECKS)
    for fmt, values in FORMAT_CASES.items():
        for v in values:
            assert bool(regex[fmt].search(v)) == FORMAT_CHECKS[fmt](v), (fmt, v)


def test_tables_are_what_gx_reads(clean):
    layer = rule_layer(clean, RuleConfig())
    t = layer.tables
    assert t["dialogs"].height == clean.height and set(t["turns"]["row"]) == set(range(clean.height))
    assert t["turns"].height == clean.height + int(clean["n_turns"].sum())  # the system prompt is turn -1
    assert t["calls"].height == int(clean["n_calls"].sum())
    assert set(layer.gx) == {"dialogs_rules", "dialog_turns", "dialog_calls", "dialog_arg_formats"}
    assert set(layer.timings) == {"structural", "text", "gx", "assemble"}
