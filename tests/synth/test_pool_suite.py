"""The api_pool suite is the definition-clarity rule layer: GX states the rules over flattened API tables."""

from __future__ import annotations

import json

import polars as pl

from toolkiln.schema import api_from_dict
from toolkiln.synth.validate import SUITE, api_rule_layer, api_tables

from .test_validate_import import GOOD, P, mutate


def _frame(apis: list[dict]) -> pl.DataFrame:
    return pl.DataFrame([api_from_dict(a) for a in apis])


def test_tables_have_a_row_per_api_and_per_parameter():
    nested = mutate(
        P + ("where",),
        {
            "type": "object",
            "description": "Place.",
            "properties": {
                "lat": {"type": "number", "description": "Latitude."},
                "tags": {"type": "array", "description": "Tags.", "items": {"type": "string"}},
            },
        },
    )
    tables, _ = api_tables(_frame([GOOD, nested]))
    assert tables["apis"].height == 2
    params = tables["api_params"].filter(pl.col("row") == 1)
    assert {"parameters.where.lat", "parameters.where.tags", "parameters.where.tags.items"} <= set(params["path"])
    assert params.filter(pl.col("path") == "parameters.where.tags.items")["kind"].to_list() == ["items"]


def test_native_rules_reject_with_the_expectation_name_and_place():
    undocumented = mutate(P + ("city", "description"), None)
    bad_items = mutate(P + ("city",), {"type": "array", "description": "Cities.", "items": {"type": "text"}})
    keyword_name = mutate(("name",), "weather.import")
    out, gx = api_rule_layer(_frame([GOOD, undocumented, bad_items, keyword_name]))
    assert out["ok"].to_list() == [True, False, False, False]
    assert not out["ok_param_descriptions"][1] and not out["ok_parameters"][2] and not out["ok_name"][3]
    assert any(r.startswith("ok_param_descriptions: param_described at parameters.city:") for r in out["reasons"][1])
    assert any(r.startswith("ok_parameters: param_type_known at parameters.city.items:") for r in out["reasons"][2])
    assert any("name_not_keyword" in r for r in out["reasons"][3])
    assert set(gx) == {"apis", "api_params"}


def test_removing_a_rule_from_the_suite_keeps_its_rows(tmp_path):
    suite = json.loads(SUITE.read_text())
    suite["expectations"] = [
        e for e in suite["expectations"] if e["meta"]["name"] not in ("param_described", "param_description_not_blank")
    ]
    path = tmp_path / "api_pool.json"
    path.write_text(json.dumps(suite))
    undocumented = mutate(P + ("city", "description"), None)
    assert not api_rule_layer(_frame([undocumented]))[0]["ok"][0]
    assert api_rule_layer(_frame([undocumented]), path)[0]["ok"][0]
