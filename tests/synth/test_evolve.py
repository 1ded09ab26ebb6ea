"""Adaptation and each evolution operator (ToolACE §3.1) as explicit, tested transformations."""

import copy
import json
import random

import pytest

from toolkiln.synth.config import SynthConfig
from toolkiln.synth.evolve import (OPS, ExampleBuffer, add_constraints, add_functionality, add_parameters,
                                   mutate_types, sample_spec, steps_for_level, update_returns)
from toolkiln.synth.synthesizer import SimulatorSynthesizer
from toolkiln.synth.validate import check_api

BASE = {
    "name": "get_hourly_forecast", "description": "Get the hourly weather forecast for a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name."},
        "hours": {"type": "integer", "description": "Hours ahead."},
        "latitude": {"type": "number", "description": "Latitude."}},
        "required": ["city"]},
    "returns": {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object"}}}},
    "domain": "weather", "category": "forecasts", "functionalities": ["get the hourly weather forecast for a city"],
}


def props(api):
    return api["parameters"]["properties"]


def test_add_functionality_adds_leaf_and_optional_params():
    api, note = add_functionality(BASE, random.Random(0), "list severe weather alerts for a country")
    assert api["functionalities"][-1] == "list severe weather alerts for a country"
    assert "country" in props(api) and "country" not in api["parameters"]["required"]
    assert "Also supports" in api["description"]
    assert BASE["functionalities"] == ["get the hourly weather forecast for a city"]  # input untouched
    assert check_api(api) == []


def test_add_parameters_adds_optional_generic_params():
    api, note = add_parameters(BASE, random.Random(1))
    new = set(props(api)) - set(props(BASE))
    assert 1 <= len(new) <= 2
    assert api["parameters"]["required"] == ["city"]
    assert check_api(api) == []


@pytest.mark.parametrize("seed", range(6))
def test_add_constraints_constrains_one_param(seed):
    api, note = add_constraints(BASE, random.Random(seed))
    changed = [n for n in props(api) if props(api)[n] != props(BASE)[n]]
    assert len(changed) == 1, note
    added = set(props(api)[changed[0]]) - set(props(BASE)[changed[0]])
    assert added & {"minimum", "maximum", "pattern", "enum", "format", "minLength", "maxLength"}
    assert check_api(api) == []


def test_mutate_types_can_make_array_object_and_array_of_objects():
    kinds = set()
    for seed in range(40):
        api, note = mutate_types(BASE, random.Random(seed))
        assert check_api(api) == [], note
        types = {s["type"] for s in props(api).values()}
        if "array" in types:
            arr = next(s for s in props(api).values() if s["type"] == "array")
            kinds.add("array_of_objects" if arr["items"].get("type") == "object" else "array")
        if "object" in types:
            kinds.add("object")
            obj = next(s for s in props(api).values() if s["type"] == "object")
            # required scalars moved into the nested object stay required there
            if "city" in obj["properties"]:
                assert "city" in obj.get("required", [])
    assert kinds == {"array", "object", "array_of_objects"}


def test_update_returns_enriches_result():
    api, note = update_returns(BASE, random.Random(0))
    assert len(api["returns"]["properties"]) == len(BASE["returns"]["properties"]) + 1
    assert check_api(api) == []


def test_sample_spec_respects_levels_and_subtree(tiny_tree):
    cfg = SynthConfig(n_apis=10)
    rng = random.Random(0)
    specs = [sample_spec(tiny_tree, cfg, rng, i, None) for i in range(300)]
    assert {s.level for s in specs} == {1, 2, 3}
    for s in specs:
        assert len(s.ops) == steps_for_level(s.level, cfg.evolution.max_steps)
        assert set(s.ops) <= set(OPS)
        dom = tiny_tree.domain(s.domain)
        cat = next(c for c in dom.categories if c.slug == s.category)
        assert s.leaves[0] in cat.functionalities
        assert all(any(leaf in c.functionalities for c in dom.categories) for leaf in s.leaves)  # stays in the subtree
        assert len(s.leaves) <= cfg.max_leaves[s.level - 1] + 1
    assert all(len(s.leaves) == 1 for s in specs if s.level == 1)


def test_example_buffer_is_bounded_fifo():
    buf = ExampleBuffer(capacity=2)
    for i in range(5):
        buf.add("d", {"name": f"a{i}"})
    assert buf.size("d") == 2
    assert {buf.sample("d", random.Random(s))["name"] for s in range(20)} == {"a3", "a4"}
    assert buf.sample("other", random.Random(0)) is None


def test_example_passes_house_style(tiny_tree):
    cfg = SynthConfig(n_apis=10)
    example = copy.deepcopy(BASE) | {"name": "weather.get_forecast"}
    example["parameters"]["properties"]["language"] = {"type": "string", "description": "Language."}
    spec = sample_spec(tiny_tree, cfg, random.Random(3), 0, None)
    spec = type(spec)(**{**spec.__dict__, "example": example, "ops": ()})
    out = SimulatorSynthesizer().realise_one(spec)
    assert "." in out.api["name"]  # naming convention inherited
    assert "language" in props(out.api)
    assert out.trace["example"] == "weather.get_forecast"


def test_simulator_is_deterministic_and_valid(tiny_tree):
    cfg = SynthConfig(n_apis=10)
    rng = random.Random(7)
    specs = [sample_spec(tiny_tree, cfg, rng, i, None) for i in range(200)]
    a = [o.api for o in SimulatorSynthesizer().realise(specs)]
    b = [o.api for o in SimulatorSynthesizer().realise(specs)]
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert all(x is not None and check_api(x) == [] for x in a)
    assert len({x["name"] for x in a}) == len(a)  # name registry avoids collisions
