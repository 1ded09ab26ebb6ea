"""Argument values: schema-valid, plausible for the parameter, and said in forms the grounding check reads back."""

import random
import re

import pytest

from toolkiln.testing.pool import API_DICTS
from toolkiln.dialogs.regexgen import sample_pattern
from toolkiln.dialogs.surface import mention, say
from toolkiln.dialogs.values import CITIES, gen_value, pair_fix
from toolkiln.argcheck import compile_parameters
from toolkiln.verify.model import Context, grounded


def test_generated_arguments_satisfy_every_fixture_schema():
    rng = random.Random(0)
    for api in API_DICTS:
        check = compile_parameters(api["name"], api["parameters"])
        props = api["parameters"]["properties"]
        for _ in range(40):
            args = {k: gen_value(k, s, rng, optional_share=0.7) for k, s in props.items()}
            assert check(args) == [], (api["name"], args)


def test_values_are_plausible_for_the_parameter_name():
    rng = random.Random(1)
    assert gen_value("city", {"type": "string"}, rng) in CITIES
    assert re.fullmatch(r"[a-z]+\.[a-z]+@[\w.]+", gen_value("email", {"type": "string", "format": "email"}, rng))
    assert 3 <= gen_value("limit", {"type": "integer"}, rng) <= 50
    assert gen_value("season", {"type": "integer"}, rng) in range(2015, 2026)
    assert gen_value("units", {"type": "string", "enum": ["metric", "imperial"]}, rng) in ("metric", "imperial")
    lat = gen_value("latitude", {"type": "number", "minimum": -90, "maximum": 90}, rng)
    assert isinstance(lat, float) and -90 <= lat <= 90
    # a range the vocabulary does not expect still wins
    assert gen_value("party_size", {"type": "integer", "minimum": 40, "maximum": 45}, rng) in range(40, 46)


@pytest.mark.parametrize("pattern", [r"^[A-Z0-9-]{6,20}$", r"^CVE-\d{4}-\d{4,}$", r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$",
                                     r"^10\.\d{4,9}/\S+$", r"^0x[a-fA-F0-9]{40}$", r"^(ab|cd)+[^0-9]{2}$", r"(x)\1"])
def test_pattern_strings_match(pattern):
    rng = random.Random(2)
    for _ in range(20):
        s = sample_pattern(pattern, rng)
        assert s is not None and re.search(pattern, s), (pattern, s)


def test_unsupported_pattern_is_reported_not_faked():
    assert sample_pattern(r"^(?!x)[a-z]+$", random.Random(0)) is None
    assert sample_pattern(r"([unclosed", random.Random(0)) is None


def test_surface_forms_are_grounded_and_keep_the_canonical_value():
    rng = random.Random(3)
    seen = set()
    for _ in range(200):
        s = say("date", {"type": "string", "format": "date"}, "2024-05-03", rng, date_text=1.0)
        seen.add(s.text)
        assert s.canonical == "2024-05-03"
        assert grounded("2024-05-03", Context.of([f"Book it for {s.text}, please."]), {})
    assert len(seen) >= 4 and "May 3rd, 2024" in seen
    three = say("days", {"type": "integer"}, 3, random.Random(0), number_words=1.0)
    assert three.text == "three" and three.canonical == 3
    assert grounded(3, Context.of([f"for {three.text} days"]), {})
    big = [say("steps", {"type": "integer"}, 12500, random.Random(i)).text for i in range(10)]
    assert "12,500" in big and all(grounded(12500, Context.of([b]), {}) for b in big)
    # years and identifiers are never reworded
    assert say("season", {"type": "integer"}, 2021, random.Random(0), number_words=1.0).text == "2021"


def test_mentions_put_values_in_fitting_phrases():
    rng = random.Random(4)
    m = mention("city", {"type": "string"}, "Lisbon", rng)
    assert "Lisbon" in m.text and m.text != "Lisbon"
    f = mention("filters", {"type": "array", "items": {"type": "object", "properties": {"operator": {"enum": ["eq", "lt"]}}}},
                [{"field": "status", "operator": "lt", "value": "open"}], rng)
    assert "status" in f.text and "open" in f.text and "below" in f.text


def test_pair_fix_orders_paired_dates():
    args = pair_fix({"start_date": "2025-02-01", "end_date": "2024-12-01", "check_in": "2024-03-03",
                     "check_out": "2024-03-03"})
    assert args["start_date"] < args["end_date"] and args["check_in"] < args["check_out"]


def test_date_time_arguments_carry_an_offset_the_user_states():
    from toolkiln.argcheck import FORMAT_CHECKS

    schema = {"type": "string", "format": "date-time", "description": "Departure time."}
    rng = random.Random(5)
    offsets = set()
    for _ in range(100):
        v = gen_value("departure_time", schema, rng)
        assert FORMAT_CHECKS["date-time"](v), v
        offsets.add(v[19:])
        s = say("departure_time", schema, v, rng, date_text=1.0)
        assert s.canonical == v and "UTC" in s.text
        assert grounded(v, Context.of([f"Leave on {s.text}."]), schema)
    assert "Z" in offsets and len(offsets) >= 3
