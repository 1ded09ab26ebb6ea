"""extract_json: the first JSON object/array in free model text, or a reason."""

import pytest

from toolkiln.llm.parse import extract_json


@pytest.mark.parametrize(
    "text,expected",
    [
        ('{"a": 1}', {"a": 1}),
        (
            'Sure! Here is the API:\n{"name": "get_weather", "parameters": {"city": "str"}}\nLet me know.',
            {"name": "get_weather", "parameters": {"city": "str"}},
        ),
        ('```json\n[{"name": "f", "arguments": {}}]\n```', [{"name": "f", "arguments": {}}]),
        ('```\n{"x": [1, 2, {"y": null}]}\n```\ntrailing commentary {not json}', {"x": [1, 2, {"y": None}]}),
        ('Braces in prose {like this} come first, then {"k": "v"}', {"k": "v"}),
        ('{"a": 1} and a second {"b": 2}', {"a": 1}),
        ("  \n[1, 2]  ", [1, 2]),
        ('{"s": "unicode ✓ and \\"quotes\\" and } braces"}', {"s": 'unicode ✓ and "quotes" and } braces'}),
    ],
)
def test_finds_first_json(text, expected):
    assert extract_json(text) == (expected, None)


def test_fence_preferred_over_earlier_prose_json():
    text = 'The schema looks like {"type": "object"}. Answer:\n```json\n{"answer": 42}\n```'
    assert extract_json(text) == ({"answer": 42}, None)


def test_non_json_fences_are_skipped():
    text = '```python\nd = {"a": 1,}\n```\nResult: {"ok": true}'
    assert extract_json(text) == ({"ok": True}, None)


def test_expect_object_skips_arrays_whole():
    text = 'See [1]. Calls: [{"inner": 1}] then {"outer": 2}'
    assert extract_json(text) == ([1], None)
    assert extract_json(text, expect="object") == ({"outer": 2}, None)
    assert extract_json('{"a": [1]}', expect="array")[0] is None


@pytest.mark.parametrize(
    "text,reason",
    [
        (None, "no text"),
        ("", "empty text"),
        ("   ", "empty text"),
        ("I cannot help with that.", "no JSON object or array found"),
        ('{"a": 1,}', "invalid JSON starting at char 0"),
        ('Here: {"name": "f", "args": {"x": 1', "invalid JSON starting at char 6"),
        ("```json\n{'single': 'quotes'}\n```", "in ```json block: invalid JSON"),
        ("42", "no JSON object or array found"),
    ],
)
def test_failures_carry_reasons(text, reason):
    obj, err = extract_json(text)
    assert obj is None and reason in err, err


def test_never_evaluates():
    # Python that would run if evaluated: it must come back as "not JSON", nothing else.
    obj, err = extract_json('__import__("os").system("echo pwned")')
    assert obj is None and "no JSON" in err


def test_many_braces_stay_bounded():
    text = "{x} " * 10_000 + '{"late": 1}'
    obj, err = extract_json(text)
    assert obj is None and "invalid JSON" in err


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "f", "parameters": {"type": "object", "properties": {}}, "returns": {"type": "obj',  # truncated
        '{"name": "f", "parameters": {"type": "object"},}',  # trailing comma
        '{\n// the API\n"name": "f", "parameters": {"type": "object"}}',  # a comment
    ],
)
def test_a_broken_value_is_refused_not_replaced_by_an_object_nested_in_it(text):
    obj, err = extract_json(text, expect="object")
    assert obj is None and "invalid JSON starting at char" in err, obj


def test_bracket_scanner_is_incremental_and_json_prefix_cuts_after_the_close():
    from toolkiln.llm.parse import BracketScanner, json_prefix

    text = '{"a": "}{", "b": [1, {"c": "\\""}]} trailing'
    whole = BracketScanner().feed(text)
    assert text[:whole] == '{"a": "}{", "b": [1, {"c": "\\""}]}'
    sc = BracketScanner()
    ends = [sc.feed(ch) for ch in text]
    assert ends.index(1) == whole - 1 and sc.closed and sc.feed("}") == 0
    assert json_prefix('{"x": 1}}\n') == '{"x": 1}'
    assert json_prefix("{unclosed") == "{unclosed" and json_prefix("no json") == "no json"
