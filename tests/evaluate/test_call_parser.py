"""parse_calls: literal-only reading of model output; unsafe payloads are refused with a reason, never run."""

from __future__ import annotations

import pytest

from toolkiln.calls import format_calls
from toolkiln.callparse import MAX_DEPTH, parse_calls


def test_python_call_list_with_dotted_names_and_nested_literals():
    r = parse_calls('[f(a=1, b="x"), pkg.sub.g(c=[1, -2.5, +3], d={"k": (1, None)}, e=True, f=False, g=None)]')
    assert r.error is None and not r.refused
    assert r.calls == [{"name": "f", "arguments": {"a": 1, "b": "x"}},
                       {"name": "pkg.sub.g", "arguments": {"c": [1, -2.5, 3], "d": {"k": (1, None)}, "e": True,
                                                           "f": False, "g": None}}]


def test_round_trips_format_calls():
    calls = [{"name": "a.b", "arguments": {"s": 'quote " and \\ and \n and é', "n": -7, "x": 1e-3,
                                           "l": [{"k": [True, None]}], "empty": {}}},
             {"name": "c", "arguments": {}}]
    assert parse_calls(format_calls(calls), strict=True).calls == calls


@pytest.mark.parametrize("payload, kind", [
    ("[f(x=__import__('os').getpid())]", "Call"),
    ("[f(x=1+2)]", "BinOp"),
    ("[f(x=2**100**100)]", "BinOp"),
    ("[f(x=lambda: 1)]", "Lambda"),
    ("[f(x=os.environ)]", "Attribute"),
    ("[f(x=[i for i in range(3)])]", "ListComp"),
    ("[f(x={k: 1 for k in 'ab'})]", "DictComp"),
    ("[f(x=(i for i in 'ab'))]", "GeneratorExp"),
    ("[f(x=secret)]", "Name 'secret'"),
    ("[f(x=-secret)]", "Name 'secret'"),
    ("[f(x=f'{secret}')]", "JoinedStr"),
    ("[f(x=data[0])]", "Subscript"),
    ("[f(x={1, 2})]", "Set"),
    ("[f(x=1 if True else 2)]", "IfExp"),
    ("[f(x=[*a])]", "Starred"),
    ("[f(x={**a})]", "'**' unpacking"),
    ("[f(**kw)]", "'**' argument unpacking"),
    ("[f(1, b=2)]", "positional argument"),
    ("[getattr(os, 'system')('ls').run(x=1)]", "cannot name a function"),
])
@pytest.mark.parametrize("strict", [True, False])
def test_non_literals_are_refused_with_a_reason_naming_the_node(payload, kind, strict):
    r = parse_calls(payload, strict=strict)
    assert r.calls is None
    assert r.refused, r.error
    assert kind in r.error


def test_refused_payload_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    payloads = [f"[f(x=__import__('os').mkdir({str(marker)!r}))]",
                f"[f(x=open({str(marker)!r}, 'w').write('x'))]",
                f"[f(x=(lambda: __import__('os').mkdir({str(marker)!r}))())]",
                f"```python\n[f(x=__import__('pathlib').Path({str(marker)!r}).touch())]\n```"]
    for p in payloads:
        for strict in (True, False):
            assert parse_calls(p, strict=strict).calls is None
    assert not marker.exists()


def test_strict_follows_bfcl_decoding_rules():
    assert parse_calls("f(a=1)", strict=True).calls == [{"name": "f", "arguments": {"a": 1}}]  # brackets added
    assert parse_calls("  `[f(a=1)]`\n", strict=True).calls == [{"name": "f", "arguments": {"a": 1}}]
    assert parse_calls("", strict=True).calls == []  # no output = no call
    assert parse_calls("[]", strict=True).calls == []
    for text in ("```python\n[f(a=1)]\n```", "Sure: [f(a=1)]", "'[f(a=1)]'", '[{"name": "f", "arguments": {"a": 1}}]', "Paris"):
        r = parse_calls(text, strict=True)
        assert r.calls is None and r.error and not r.refused, text


@pytest.mark.parametrize("text", [
    "```python\n[f(a=1)]\n```",
    "```\nf(a=1)\n```",
    "Sure! Here you go: [f(a=1)] - hope it helps.",
    "<TOOLCALL>[f(a=1)]</TOOLCALL>",
    '<tool_call>{"name": "f", "arguments": {"a": 1}}</tool_call>',
    '{"name": "f", "arguments": "{\\"a\\": 1}"}',
    '{"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}',
    '{"tool_calls": [{"function": {"name": "f", "arguments": "{\\"a\\": 1}"}}]}',
    '```json\n[{"function": "f", "parameters": {"a": 1}}]\n```',
    "[{'name': 'f', 'arguments': {'a': 1}}]",
    'I will call it: {"name": "f", "parameters": {"a": 1}} now.',
])
def test_tolerant_mode_reads_fences_tags_prose_and_json(text):
    r = parse_calls(text)
    assert r.calls == [{"name": "f", "arguments": {"a": 1}}], r.error


def test_tolerant_mode_no_call_in_prose():
    r = parse_calls("I cannot help with that (none of the tools fit).")
    assert r.calls is None and not r.refused and "no function call" in r.error
    assert parse_calls("The capital is Paris.").calls is None
    assert parse_calls("   ").calls == []


def test_tolerant_mode_bare_word_call_in_prose_is_not_an_attempt():
    # "see note(1)" is prose, not a refused call; a bracketed call list with a positional argument is an attempt.
    assert not parse_calls("see note(1) for details").refused
    assert parse_calls("Here: [f(1)]").refused


def test_bad_json_tool_call_is_refused():
    r = parse_calls('{"name": "f", "arguments": "{not json"}')
    assert r.calls is None and r.refused and "not JSON" in r.error


def test_limits():
    deep = "[f(x=" + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + ")]"
    r = parse_calls(deep, strict=True)
    assert r.calls is None and "nested deeper" in r.error
    assert "exceeds" in parse_calls("x" * 300_000).error
    assert parse_calls(None).calls is None
    assert parse_calls("[f(a=1", strict=True).calls is None  # truncated generation
