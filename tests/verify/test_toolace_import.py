"""Real ToolACE dialogs (a JSON sample of ToolACE's released data, path in $TOOLKILN_TOOLACE_SAMPLE) -> dialog rows,
and what the rule layer flags in them. Skipped when no sample is given: the data is not ours to ship."""

from __future__ import annotations

import json

import polars as pl
import pytest

from toolkiln.verify.config import RuleConfig
from toolkiln.verify.rules import rule_checks
from toolkiln.verify.toolace_import import import_toolace_dialogs, main


@pytest.fixture(scope="module")
def records():
    import os
    from pathlib import Path

    path = Path(os.environ.get("TOOLKILN_TOOLACE_SAMPLE", ""))
    if not path.is_file():
        pytest.skip("no ToolACE sample: set TOOLKILN_TOOLACE_SAMPLE to a JSON file of ToolACE records")
    return json.loads(path.read_text())


def test_every_record_converts_to_a_dialog_row(records):
    res = import_toolace_dialogs(records)
    assert res.failures == [] and res.dialogs.height == len(records)
    first = res.dialogs.row(0, named=True)
    tools = json.loads(first["tools"])
    assert "Market_Trends_API" in {t["name"] for t in tools}
    assert '"parameters"' not in first["system"]  # the tool list lives in `tools`, not in the prompt
    msgs = json.loads(first["messages"])
    assert [m["role"] for m in msgs[:4]] == ["user", "assistant", "tool", "assistant"]
    assert msgs[1]["tool_calls"][0] == {"name": "Market_Trends_API", "arguments": {"trend_type": "MARKET_INDEXES", "country": "us"}}
    # an observation with several results becomes one tool turn per call
    n_results = sum(len(json.loads(c["value"])) for r in records for c in r["conversations"] if c["from"] == "observation")
    n_tool_turns = sum(m["role"] == "tool" for s in res.dialogs["messages"] for m in json.loads(s))
    assert n_tool_turns == n_results
    assert set(res.dialogs["type"]) <= {"single", "parallel", "non_tool"}


def test_truncated_call_names_are_repaired_and_recorded(records):
    raw = import_toolace_dialogs(records, repair_names=False)
    fixed = import_toolace_dialogs(records)
    raw_out, fixed_out = rule_checks(raw.dialogs, RuleConfig()), rule_checks(fixed.dialogs, RuleConfig())
    assert (~raw_out["ok_call_name"]).sum() > 40  # as released, most calls name a function nobody offered
    assert (~fixed_out["ok_call_name"]).sum() <= 5 and fixed.repairs > 80
    prov = json.loads(fixed.dialogs["provenance"][0])
    assert {"turn": 1, "from": "API", "to": "Market_Trends_API"} in prov["name_repairs"]


def test_rule_layer_flags_real_defects(records):
    out = rule_checks(import_toolace_dialogs(records).dialogs, RuleConfig())
    reasons = [r for rs in out["rule_reasons"] for r in rs]
    # a zip code passed as an int to a string parameter; an empty assistant turn where a question was lost
    assert any("Get_Zip_Code_Information.postal_code: expected str, got int 10001" in r for r in reasons)
    assert any(r.startswith("ok_nonempty: turn_not_empty at turn 1 (assistant)") for r in reasons)
    assert 0.5 < out["ok_rules"].mean() < 1.0


def test_bad_records_are_reported_not_dropped(records):
    res = import_toolace_dialogs([{"system": "no tools here", "conversations": []}, records[0],
                                  {**records[0], "conversations": [{"from": "narrator", "value": "x"}]}])
    assert res.dialogs.height == 1
    assert [f["record"] for f in res.failures] == [0, 2]
    assert "no JSON tool list" in res.failures[0]["reason"] and "narrator" in res.failures[1]["reason"]


def test_cli_summary(records, tmp_path, capsys, repo_root):
    src = tmp_path / "s.json"
    src.write_text(json.dumps(records[:10]))
    assert main(["--in", str(src), "--out", str(tmp_path / "d.parquet")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["imported"] == 10 and pl.read_parquet(tmp_path / "d.parquet").height == 10
    assert "ok_arg_types" in report["rules"]["checks"]
