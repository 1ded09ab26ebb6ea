"""Definition-clarity checks and the importers for real foreign tool docs (ToolACE, BFCL)."""

import glob
import json
import os

import polars as pl
import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from toolkiln.schema import api_from_dict
from toolkiln.synth.importers import import_bfcl_functions, import_toolace, normalize_api, normalize_name
from toolkiln.synth.validate import CHECKS, api_checks_frame, check_api

GOOD = {"name": "weather.get_forecast", "description": "Get the forecast for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City."},
            "days": {"type": "integer", "description": "Days.", "minimum": 1, "maximum": 16, "default": 3},
            "units": {"type": "string", "description": "Units.", "enum": ["metric", "imperial"]},
            "where": {"type": "object", "description": "Nested.", "properties": {
                "lat": {"type": "number", "description": "Latitude."}}, "required": ["lat"]}},
            "required": ["city"]},
        "returns": {"type": "object", "properties": {"temp": {"type": "number"}}}}


def mutate(path, value):
    api = json.loads(json.dumps(GOOD))
    obj = api
    for k in path[:-1]:
        obj = obj[k]
    if value is KeyError:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value
    return api


P = ("parameters", "properties")


@pytest.mark.parametrize("api, check", [
    (mutate(("name",), "get forecast"), "ok_name"),
    (mutate(("name",), "class"), "ok_name"),
    (mutate(("description",), ""), "ok_description"),
    (mutate(("parameters", "type"), "dict"), "ok_parameters"),
    (mutate(P + ("city", "type"), "str"), "ok_parameters"),
    (mutate(P + ("city", "description"), KeyError), "ok_param_descriptions"),
    (mutate(("parameters", "required"), ["city", "country"]), "ok_required"),
    (mutate(P + ("units", "enum"), ["metric", 3]), "ok_enum_default"),
    (mutate(P + ("days", "default"), "3"), "ok_enum_default"),
    (mutate(P + ("days", "minimum"), 30), "ok_constraints"),
    (mutate(P + ("city", "pattern"), "([a-z"), "ok_constraints"),
    (mutate(("returns",), {}), "ok_returns"),
    (mutate(P + ("where", "required"), ["lon"]), "ok_required"),
    (mutate(P + ("city", "minimum"), 3), "ok_parameters"),  # numeric keyword on a string
])
def test_each_check_catches_its_defect(api, check):
    assert check_api(GOOD) == []
    assert check in {c for c, _ in check_api(api)}


def test_check_frame_columns_and_reasons():
    rows = [api_from_dict(GOOD), api_from_dict(mutate(("name",), "bad name"))]
    rows.append({**api_from_dict(GOOD), "name": "x_y", "parameters": "{not json"})
    df = api_checks_frame(pl.DataFrame(rows))
    assert set(CHECKS) <= set(df.columns)
    assert df["ok"].to_list() == [True, False, False]
    assert df["reasons"][1][0].startswith("ok_name:")
    assert "invalid JSON" in df["reasons"][2][0]


# Schemas the JSON Schema 2020-12 meta-schema itself rejects, one defect each.
META_INVALID = [
    (P + ("city", "type"), "str"),
    (P + ("city", "type"), ["string", 3]),
    (P + ("days", "minimum"), "1"),
    (P + ("days", "maximum"), None),
    (P + ("units", "enum"), "metric"),
    (P + ("city", "pattern"), 3),
    (P + ("city", "maxLength"), -1),
    (P + ("city", "minLength"), 1.5),
    (P + ("city", "format"), ["date"]),
    (P + ("city", "description"), 7),
    (("parameters", "required"), "city"),
    (("parameters", "required"), ["city", "city"]),
    (("parameters", "properties"), ["city"]),
    (P + ("where", "properties"), "lat"),
    (P + ("where", "required"), [1]),
    (("returns", "properties"), {"temp": {"type": "float"}}),
    (("returns", "type"), "dict"),
]


def _meta_valid(api: dict) -> bool:
    try:
        Draft202012Validator.check_schema(api["parameters"])
        Draft202012Validator.check_schema(api["returns"])
    except SchemaError:
        return False
    return True


@pytest.mark.parametrize("path, value", META_INVALID)
def test_checker_rejects_what_json_schema_rejects(path, value):
    api = mutate(path, value)
    assert not _meta_valid(api)  # the fixture is a real meta-schema violation ...
    assert check_api(api), f"{path}={value!r} is invalid JSON Schema but passed the subset checker"  # ... and caught


def test_synthesized_apis_the_checker_accepts_are_valid_json_schema(tiny_tree):
    from toolkiln.synth.config import SynthConfig
    from toolkiln.synth.pool import synthesize_pool
    from toolkiln.synth.synthesizer import SimulatorSynthesizer

    cfg = SynthConfig(n_apis=120, batch_size=40, seed_examples=1, dedup={"method": "minhash", "embed_sample": 0, "threshold": 0.9})
    pool = synthesize_pool(tiny_tree, cfg, SimulatorSynthesizer(), seed=5, progress=False).pool
    apis = [{**r, "parameters": json.loads(r["parameters"]), "returns": json.loads(r["returns"])}
            for r in pool.iter_rows(named=True)]
    accepted = [a for a in apis if not check_api(a)]
    assert len(accepted) >= 100
    assert [a["name"] for a in accepted if not _meta_valid(a)] == []


def test_normalize_name():
    assert normalize_name("Market Trends API") == "Market_Trends_API"
    assert normalize_name("math.gcd") == "math.gcd"
    assert normalize_name("3D Print") == "_3D_Print"
    with pytest.raises(ValueError, match="non-empty string"):
        normalize_name("  ")


def test_normalize_types_names_and_defaults():
    api = normalize_api({"name": "Get Quote", "description": "Get a stock quote.", "parameters": {
        "type": "dict", "properties": {
            "from": {"type": "str", "description": "Start."},
            "include-lxx": {"type": "bool", "description": "Flag.", "default": "false"},
            "n": {"type": "int", "description": "Count.", "default": ""},
            "ids": {"type": "ArrayList", "description": "Ids.", "items": {"type": "String"}},
            "x": {"type": "float", "description": "X."}},
        "required": ["from"]}, "required": None}, lenient=True)
    p = api["parameters"]
    assert api["name"] == "Get_Quote" and api["provenance"]["original_name"] == "Get Quote"
    assert p["type"] == "object" and p["required"] == ["from_"]
    assert p["properties"]["from_"] == {"type": "string", "description": "Start.", "x-original-name": "from"}
    assert p["properties"]["include_lxx"]["default"] is False
    assert "default" not in p["properties"]["n"] and p["properties"]["n"]["x-original-default"] == ""
    assert p["properties"]["ids"]["items"]["type"] == "string"
    assert p["properties"]["x"]["type"] == "number"
    assert api["returns"]["x-inferred"] is True
    assert check_api(api) == []


def test_unknown_type_strict_vs_lenient():
    doc = {"name": "f", "description": "does a thing", "parameters": {"type": "object", "properties": {
        "d": {"type": "directory", "description": "A folder."}}}}
    with pytest.raises(ValueError, match="unknown type 'directory'"):
        normalize_api(doc)
    assert normalize_api(doc, lenient=True)["parameters"]["properties"]["d"]["x-original-type"] == "directory"


def test_every_toolace_tool_imports_and_validates(toolace_sample):
    records = json.loads(toolace_sample.read_text())
    apis = import_toolace(records)
    assert len(apis) > 200
    bad = {a["name"]: check_api(a) for a in apis if check_api(a)}
    assert bad == {}


def bfcl_files():
    bfcl = pytest.importorskip("bfcl_eval")
    d = os.path.join(os.path.dirname(bfcl.__file__), "data")
    files = [f for f in sorted(glob.glob(d + "/BFCL_v4_*.json")) if "format_sensitivity" not in f]
    return files, sorted(glob.glob(d + "/multi_turn_func_doc/*.json"))


def test_every_bfcl_function_doc_imports():
    """All 3,000+ BFCL function docs import; the few the validator flags have genuine doc defects."""
    singles, multi = bfcl_files()
    apis = []
    for f in singles:
        apis += import_bfcl_functions(json.loads(line) for line in open(f) if line.strip())
    for f in multi:
        apis += import_bfcl_functions([{"function": [json.loads(line) for line in open(f) if line.strip()]}])
    assert len(apis) > 3000
    flagged = {a["name"]: check_api(a) for a in apis if check_api(a)}
    assert len(flagged) / len(apis) < 0.05
    # spot-check that flags are real defects, not importer artefacts
    msgs = [m for probs in flagged.values() for _, m in probs]
    assert any("'dontcare' is not of type" in m for m in msgs)  # BFCL live sentinel in a typed default
    assert any("required ['adults', 'children', 'singles'] not in properties" in m for m in msgs)
