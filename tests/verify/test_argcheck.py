"""Compiled argument checkers: each constraint family, and agreement with jsonschema where semantics coincide."""

from __future__ import annotations

import jsonschema
import pytest

from toolkiln.argcheck import CheckerCache, compile_parameters

PARAMS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2, "maxLength": 20},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "ratio": {"type": "number", "exclusiveMinimum": 0},
        "units": {"type": "string", "enum": ["metric", "imperial"]},
        "flag": {"type": "boolean", "enum": [True]},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "day": {"type": "string", "format": "date"},
        "mail": {"type": "string", "format": "email"},
        "at": {"type": "string", "format": "date-time"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"],
                  "additionalProperties": False},
    },
    "required": ["city"],
}
check = compile_parameters("weather.get", PARAMS)


@pytest.mark.parametrize("args, expected", [
    ({"city": "Oslo"}, set()),
    ({}, {"ok_required_args"}),
    ({"city": "Oslo", "color": "red"}, {"ok_unknown_args"}),
    ({"city": 5}, {"ok_arg_types"}),
    ({"city": "Oslo", "days": 2.0}, {"ok_arg_types"}),  # integer means int: the target renders 2.0
    ({"city": "Oslo", "days": True}, {"ok_arg_types"}),  # bool is not a number
    ({"city": "Oslo", "ratio": 3}, set()),  # number accepts int
    ({"city": "Oslo", "days": 15}, {"ok_arg_range"}),
    ({"city": "Oslo", "ratio": 0}, {"ok_arg_range"}),
    ({"city": "O"}, {"ok_arg_range"}),
    ({"city": "Oslo", "tags": ["a", "b", "c"]}, {"ok_arg_range"}),
    ({"city": "Oslo", "units": "kelvin"}, {"ok_arg_enum"}),
    ({"city": "Oslo", "flag": 1}, {"ok_arg_types"}),
    ({"city": "Oslo", "code": "eur"}, {"ok_arg_pattern"}),
    ({"city": "Oslo", "day": "2025-02-30"}, {"ok_arg_format"}),
    ({"city": "Oslo", "day": "2024-02-29"}, set()),
    ({"city": "Oslo", "mail": "bob(at)x"}, {"ok_arg_format"}),
    # date-time is RFC 3339 (as in JSON Schema): seconds and a UTC offset are required
    ({"city": "Oslo", "at": "2025-03-01T09:30:00Z"}, set()),
    ({"city": "Oslo", "at": "2025-03-01t09:30:00.25+05:30"}, set()),
    ({"city": "Oslo", "at": "2025-03-01T09:30:00"}, {"ok_arg_format"}),
    ({"city": "Oslo", "at": "2025-03-01T09:30Z"}, {"ok_arg_format"}),
    ({"city": "Oslo", "at": "2025-03-01 09:30:00Z"}, {"ok_arg_format"}),
    ({"city": "Oslo", "at": "2025-03-01T09:30:00+0530"}, {"ok_arg_format"}),
    ({"city": "Oslo", "at": "2025-02-30T09:30:00Z"}, {"ok_arg_format"}),
    ({"city": "Oslo", "tags": ["a", 3]}, {"ok_arg_types"}),
    ({"city": "Oslo", "where": {}}, {"ok_required_args"}),
    ({"city": "Oslo", "where": {"lat": 1.5, "lon": 2}}, {"ok_unknown_args"}),
    ([1, 2], {"ok_arg_types"}),
])
def test_each_constraint_maps_to_its_check(args, expected):
    assert {c for c, _ in check(args)} == expected


def test_reasons_name_the_argument_path_and_value():
    (problem,) = check({"city": "Oslo", "where": {"lat": "north"}})
    assert problem[0] == "ok_arg_types"
    assert "weather.get.where.lat" in problem[1] and '"north"' in problem[1]


@pytest.mark.parametrize("args", [
    {"city": "Oslo"}, {}, {"city": 5}, {"city": "Oslo", "days": 15}, {"city": "Oslo", "units": "kelvin"},
    {"city": "Oslo", "code": "eur"}, {"city": "Oslo", "tags": ["a", 3]}, {"city": "Oslo", "where": {}},
    {"city": "Oslo", "ratio": 0}, {"city": "Oslo", "tags": ["x", "y", "z"]}, {"city": "O"},
])
def test_agrees_with_jsonschema_on_shared_semantics(args):
    schema = {**PARAMS, "additionalProperties": False}
    assert (not check(args)) == jsonschema.Draft202012Validator(schema).is_valid(args)


def test_toolace_python_type_names_are_read_as_json_types():
    c = compile_parameters("f", {"type": "dict", "properties": {"n": {"type": "int"}, "x": {"type": "float"},
                                                                  "s": {"type": "str"}}, "required": ["n"]})
    assert c({"n": 3, "x": 2, "s": "a"}) == []
    assert {k for k, _ in c({"n": "3"})} == {"ok_arg_types"}


def test_cache_compiles_once_per_schema_and_recompiles_on_change():
    cache = CheckerCache()
    a = cache.get("f", {"type": "object", "properties": {"x": {"type": "integer"}}})
    b = cache.get("f", {"type": "object", "properties": {"x": {"type": "integer"}}})
    assert a is b and cache.compiled == 1
    c = cache.get("f", {"type": "object", "properties": {"x": {"type": "string"}}})
    assert cache.compiled == 2 and c({"x": "s"}) == [] and a({"x": "s"}) != []


@pytest.mark.parametrize("value", ["2025-03-01T09:30:00Z", "2025-03-01t09:30:00.25z", "2025-03-01T09:30:00-08:00",
                                   "2025-03-01T09:30:00", "2025-03-01T09:30Z", "2025-03-01 09:30:00Z",
                                   "2025-03-01T09:30:00+0530", "2025-13-01T09:30:00Z"])
def test_date_time_agrees_with_jsonschema(value):
    schema = {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}}
    ours = not compile_parameters("f", schema)({"at": value})
    theirs = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
                                             ).is_valid({"at": value})
    assert ours == theirs


def test_model_written_pattern_cannot_hang_the_check():
    # ^(a|aa)+$ against 40 a's and a '!' backtracks ~fib(40) times under Python's re: hours.
    evil = compile_parameters("f", {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a|aa)+$"}}})
    problems = evil({"s": "a" * 40 + "!"})
    assert [k for k, _ in problems] == ["ok_arg_pattern"]
    assert "too expensive" in problems[0][1] and "catastrophic backtracking" in problems[0][1]
    assert evil({"s": "aaaa"}) == []  # the same pattern on a matching value is an ordinary check


def test_pattern_guard_refuses_oversized_patterns_and_values():
    from toolkiln.saferegex import MAX_PATTERN, MAX_SUBJECT, BadPattern, PatternTimeout, compile_guarded

    with pytest.raises(BadPattern, match="exceeds"):
        compile_guarded("a" * (MAX_PATTERN + 1))
    with pytest.raises(BadPattern, match="does not compile"):
        compile_guarded("([a-z]")
    with pytest.raises(PatternTimeout, match="exceeds"):
        compile_guarded("^a").search("a" * (MAX_SUBJECT + 1))
    assert compile_guarded(r"^\d{3}-\d{4}$").search("555-0100")


@pytest.mark.parametrize("pattern, shape", [
    (r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$", (6, 0)),  # an optional group counts twice, {1,3} three times
    (r"^[a-z]{2}-[a-z]+-\d$", (1, 1)),
    (r"^(ab|cd)\d{4,9}$", (12, 0)),
    (r"^(a|aa)+$", None),  # a repeated alternation: exponential backtracking
    (r"(x+x+)+y", None),  # a repeated repeat
    (r"^(?=a)b", None),  # lookaround: no bound claimed
    (r"(a)\1", None),  # backreference
    (r"^\p{L}+$", None),  # syntax only the regex module knows
])
def test_pattern_shape_bounds_only_patterns_it_understands(pattern, shape):
    from toolkiln.saferegex import pattern_shape

    assert pattern_shape(pattern) == shape


def test_untimed_fast_path_agrees_with_the_timed_match(monkeypatch):
    import toolkiln.saferegex as sr

    patterns = [r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$", r"^[a-z]{2}-[a-z]+-\d$", r"^10\.\d{4,9}/\S+$", r"\d{3}", r"^(ab|cd)x?$"]
    subjects = ["FR", "FR-IDF", "fr", "us-east-1", "us-east-", "10.1234/abc", "10.12/x", "a123b", "abx", "cd", ""]
    fast = {(p, s): sr.compile_guarded(p).search(s) for p in patterns for s in subjects}
    calls = []
    real = sr.GuardedPattern.search

    def no_fast_path(self, s):  # every match through the timed branch
        calls.append(s)
        return self._rx.search(s, timeout=sr.TIMEOUT_S) is not None

    monkeypatch.setattr(sr.GuardedPattern, "search", no_fast_path)
    timed = {(p, s): sr.compile_guarded(p).search(s) for p in patterns for s in subjects}
    monkeypatch.setattr(sr.GuardedPattern, "search", real)
    assert fast == timed and len(calls) == len(timed)
    assert fast[(r"^[a-z]{2}-[a-z]+-\d$", "us-east-1")] and not fast[(r"^[a-z]{2}-[a-z]+-\d$", "us-east-")]


def test_long_subjects_keep_the_timeout_even_for_simple_patterns(monkeypatch):
    import toolkiln.saferegex as sr

    seen = []

    class Spy:
        def search(self, s, timeout=None):
            seen.append(timeout)
            return None

    rx = sr.GuardedPattern(r"^[a-z]+[a-z]+[a-z]+!$", Spy())
    rx.search("a" * 5)  # 25 * 6**3 paths: untimed
    rx.search("a" * 500)  # 500**2 * 501**3 paths: timed
    assert seen == [None, sr.TIMEOUT_S]
