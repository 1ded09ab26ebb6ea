"""match(): BFCL's AST semantics on hand-made cases; partial_credit(): the graded reward."""

from __future__ import annotations

import pytest

from toolkiln.evaluate.ast_match import match, partial_credit, possible_answer_from_calls, standardize

DOC = {"name": "calc.area", "parameters": {"type": "dict", "required": ["base", "height"], "properties": {
    "base": {"type": "integer"}, "height": {"type": "float"}, "unit": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "string"}}, "dims": {"type": "tuple", "items": {"type": "integer"}},
    "opts": {"type": "dict", "properties": {}}}}}
ANSWER = [{"calc.area": {"base": [10], "height": [5.0], "unit": ["square meters", ""], "tags": [["a b", "c"], ""],
                         "dims": [[1, 2], ""], "opts": [{"mode": ["fast"], "x": [1, ""]}, ""]}}]
OTHER = {"name": "other.fn", "parameters": {"type": "dict", "required": ["q"], "properties": {"q": {"type": "string"}}}}


def call(name="calc.area", **args):
    return {"name": name, "arguments": {"base": 10, "height": 5.0, **args}}


def verdict(calls, category="simple_python", answer=ANSWER, docs=(DOC,)):
    return match(calls, answer, list(docs), category)


def test_exact_answer_and_optional_parameters():
    assert verdict([call()]).correct  # every optional parameter ("" accepted) left out
    assert verdict([call(unit="Square-Meters.", tags=["A_B", "c"], dims=(1, 2), opts={"mode": "FAST"})]).correct


@pytest.mark.parametrize("calls, error_type", [
    ([{"name": "calc.area", "arguments": {"base": 10}}], "missing_argument"),
    ([call(colour="red")], "extra_argument"),
    ([call(name="calc.volume")], "wrong_function"),
    ([call(unit="square feet")], "wrong_value"),
    ([call(tags=["c", "a b"])], "wrong_value"),  # list order matters
    ([call(tags=["a b", 3])], "wrong_value"),  # BFCL skips item types when "" (optional) is accepted
    ([call(opts={"mode": "slow"})], "wrong_value"),
    ([call(opts={"other": 1, "mode": "fast"})], "wrong_value"),
    ([call(), call()], "wrong_count"),
    ([], "no_call"),
    (None, "unparsable"),
])
def test_failures_name_their_error_type(calls, error_type):
    r = verdict(calls)
    assert not r.correct and r.error_type == error_type, r


def test_int_accepted_for_float_not_the_reverse():
    assert verdict([{"name": "calc.area", "arguments": {"base": 10, "height": 5}}]).correct
    r = verdict([{"name": "calc.area", "arguments": {"base": 10.0, "height": 5.0}}])
    assert not r.correct and r.error_type == "wrong_type"


def test_list_items_are_typed_one_level_deep():
    ans = [{"calc.area": {"base": [10], "height": [5.0], "tags": [["a b", "c"]]}}]
    assert verdict([call(tags=["a b", 3])], answer=ans).error_type == "wrong_type"
    assert verdict([call(tags=["A-B", "c"])], answer=ans).correct


def test_bool_is_not_an_int_and_list_is_not_a_tuple_for_arrays():
    assert verdict([{"name": "calc.area", "arguments": {"base": True, "height": 5.0}}]).error_type == "wrong_type"
    assert verdict([call(tags=("a b", "c"))]).error_type == "wrong_type"
    assert verdict([call(dims=[1, 2])]).correct


def test_json_schema_types_and_variable_rule():
    doc = {"name": "f", "parameters": {"type": "object", "required": ["n"], "properties": {
        "n": {"type": "number"}, "o": {"type": "object"}, "ref": {"type": "integer"}}}}
    ans = [{"f": {"n": [2.5], "o": [{"k": ["v"]}, ""], "ref": ["user_id", ""]}}]
    assert match([{"name": "f", "arguments": {"n": 2.5, "o": {"k": "V"}}}], ans, [doc], "simple").correct
    # BFCL's variable rule: an answer typed unlike the doc (a variable name) accepts that exact value.
    assert match([{"name": "f", "arguments": {"n": 2.5, "ref": "user_id"}}], ans, [doc], "simple").correct
    assert not match([{"name": "f", "arguments": {"n": 2.5, "ref": "USER_ID"}}], ans, [doc], "simple").correct


def test_parallel_any_order_multiple_and_counts():
    docs = [DOC, OTHER]
    ans = [{"calc.area": {"base": [10], "height": [5.0]}}, {"other.fn": {"q": ["x"]}}]
    a, b = {"name": "calc.area", "arguments": {"base": 10, "height": 5.0}}, {"name": "other.fn", "arguments": {"q": "x"}}
    assert match([b, a], ans, docs, "parallel_multiple").correct
    assert match([a, b], ans, docs, "live_parallel").correct
    r = match([a, {"name": "other.fn", "arguments": {"q": "y"}}], ans, docs, "parallel")
    assert not r.correct and r.error_type == "wrong_value"
    assert match([a], ans, docs, "parallel").error_type == "wrong_count"
    # multiple: one call, judged against the expected function's doc, not the first doc offered
    assert match([b], [{"other.fn": {"q": ["x"]}}], docs, "multiple").correct
    assert match([a], [{"other.fn": {"q": ["x"]}}], docs, "live_multiple").error_type == "wrong_function"


def test_irrelevance_and_relevance():
    assert match(None, [], [DOC], "irrelevance").correct
    assert match([], [], [DOC], "live_irrelevance").correct
    r = match([call()], [], [DOC], "irrelevance")
    assert not r.correct and r.error_type == "call_on_irrelevance"
    assert match([call()], [], [DOC], "live_relevance").correct
    assert match([], [], [DOC], "live_relevance").error_type == "no_call"


def test_malformed_docs_raise_clear_errors():
    bad = {"name": "calc.area", "parameters": {"type": "dict", "required": [], "properties": {"base": {"type": "date"}}}}
    with pytest.raises(ValueError, match="calc.area.base.*'date'"):
        match([{"name": "calc.area", "arguments": {"base": 1}}], [{"calc.area": {"base": [1]}}], [bad], "simple")
    with pytest.raises(ValueError, match="no doc"):
        match([call()], [{"missing.fn": {}}], [DOC], "multiple")


def test_possible_answer_from_calls_allows_declared_defaults():
    doc = {"name": "w", "parameters": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string"}, "days": {"type": "integer", "default": 3}, "unit": {"type": "string"}}}}
    ans = possible_answer_from_calls([{"name": "w", "arguments": {"city": "Paris"}}], [doc])
    assert ans == [{"w": {"city": ["Paris"], "days": ["", 3]}}]
    ok = lambda args: match([{"name": "w", "arguments": args}], ans, [doc], "parallel").correct  # noqa: E731
    assert ok({"city": "paris"}) and ok({"city": "Paris", "days": 3})
    assert not ok({"city": "Paris", "days": 4}) and not ok({"city": "Paris", "unit": "c"})


def test_standardize_is_bfcls_normal_form():
    assert standardize("April 1, 2024") == standardize("april 1,2024") == "april12024"
    assert standardize("it's") == 'it"s'


GOLD = [{"name": "f", "arguments": {"a": 1, "b": "x"}}, {"name": "g", "arguments": {"c": [1, 2]}}]


def test_partial_credit_bounds_and_order_invariance():
    assert partial_credit(GOLD, GOLD) == 1.0
    assert partial_credit(GOLD[::-1], GOLD) == 1.0
    assert partial_credit([{"name": "f", "arguments": {"a": 1, "b": " X "}}, GOLD[1]], GOLD) == 1.0
    assert partial_credit(None, GOLD) == 0.0 and partial_credit([], GOLD) == 0.0
    assert partial_credit([{"name": "h", "arguments": {"a": 1, "b": "x"}}], GOLD[:1]) == 0.0
    assert partial_credit([], []) == 1.0 and partial_credit(None, []) == 1.0 and partial_credit(GOLD, []) == 0.0


def test_partial_credit_orders_degrees_of_wrongness():
    one = [GOLD[0]]
    wrong_value = partial_credit([{"name": "f", "arguments": {"a": 2, "b": "x"}}], one)
    missing_arg = partial_credit([{"name": "f", "arguments": {"a": 1}}], one)
    extra_arg = partial_credit([{"name": "f", "arguments": {"a": 1, "b": "x", "z": 0}}], one)
    no_args = partial_credit([{"name": "f", "arguments": {}}], one)
    assert 1.0 > extra_arg > missing_arg > no_args > 0.0
    assert 1.0 > wrong_value > no_args
    assert partial_credit(GOLD[:1], GOLD) == pytest.approx(0.5)  # one of two calls
    assert partial_credit(GOLD + [GOLD[0]], GOLD) == pytest.approx(2 / 3)  # an extra call costs
    assert partial_credit([{"name": "f", "arguments": {"a": True, "b": "x"}}], one) < 1.0  # True is not 1
