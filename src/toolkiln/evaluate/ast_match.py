"""BFCL's AST-match semantics, and a partial-credit score for use as a reward (docs/architecture.md#evaluation).

:func:`match` judges parsed calls against BFCL ground truth
(``[{func: {param: [accepted values]}}]``) the way BFCL's checker does, so its
verdicts can be compared with the official ones (``bench/bfcl_agreement.py``):

* dispatch on the category name: ``irrelevance`` (correct iff no call),
  ``relevance`` (correct iff some call), ``parallel`` (same number of calls,
  any order; each expected call claims the *first* unclaimed output that
  matches it, BFCL's greedy rule), ``multiple`` (one call, judged against the
  expected function's doc), otherwise ``simple`` (one call, judged against the
  first doc);
* per call: the name must be the doc's; every required parameter present; no
  parameter outside both the doc and the expected answer; types checked (an int
  is accepted where the doc says float, not the reverse; a tuple where it says
  tuple; list items checked one level deep); strings compared after
  lower-casing and dropping spaces and ``,./-_*^`` (inside lists and flat dicts
  too); each value must be among the accepted ones; an expected parameter may
  be left out only when ``""`` is among its accepted values;
* BFCL's "variable" rule: when the accepted values have a different type than
  the doc (a variable name written as a string), a value of that type is
  compared as-is.

Doc types are BFCL's (``string integer float boolean array tuple dict any``)
or JSON Schema's (``number`` -> float, ``object`` -> dict), so the same matcher
scores our synthetic dialogs (ToolACE arXiv 2409.00920 §3 evaluates on BFCL).

:func:`partial_credit` grades a prediction in [0, 1] by function name,
argument names and values; it is the MCTS reward (iTool arXiv 2501.09766 §3.2).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = ["MatchResult", "match", "partial_credit", "possible_answer_from_calls", "ERROR_TYPES", "standardize"]

# Coarse error types (the harness's summary); ``detail`` keeps the specific reason.
ERROR_TYPES = ("unparsable", "no_call", "call_on_irrelevance", "wrong_count", "wrong_function", "missing_argument",
               "extra_argument", "wrong_type", "wrong_value")

_PY_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "number": float, "boolean": bool,
                              "array": list, "tuple": list, "dict": dict, "object": dict, "any": str}
_STD = re.compile(r"[ ,./\-_*^]")


@dataclass(frozen=True)
class MatchResult:
    correct: bool
    error_type: str | None = None  # one of ERROR_TYPES when not correct
    detail: str = ""


class _Fail(Exception):
    def __init__(self, error_type: str, detail: str):
        super().__init__(detail)
        self.result = MatchResult(False, error_type, detail)


def standardize(s: str) -> str:
    """BFCL's string normal form: no spaces or ``,./-_*^``, lower case, single quotes as double."""
    return _STD.sub("", s).lower().replace("'", '"')


def _std_item(x: Any) -> Any:
    return standardize(x) if type(x) is str else x


# -- types ------------------------------------------------------------------------------------------------------------

def _py_type(desc: Any, fname: str, param: str) -> type:
    try:
        return _PY_TYPES[desc]
    except (KeyError, TypeError):
        raise ValueError(f"{fname}.{param}: doc type {desc!r} is not one of {sorted(_PY_TYPES)}") from None


def _answer_type(options: Sequence) -> type | None:
    return next((type(o) for o in options if o != ""), None)


def _item_type_ok(item: Any, options: list, nested: type) -> bool:
    if type(item) is nested:
        return True
    opt_type = _answer_type(options)
    return opt_type is not None and type(item) is opt_type


def _type_check(value: Any, options: Sequence, expected: type, nested: type | None) -> tuple[bool, bool]:
    """(type ok, value is a 'variable') under BFCL's rules."""
    opt_type = _answer_type(options)
    variable = opt_type is not None and opt_type is not expected
    if type(value) is expected:
        if nested is None:
            return True, variable
        # Each list item must fit the nested type for at least one accepted list; a non-list option
        # (the optional marker "") imposes no item types, as in BFCL.
        for opt in options:
            if type(opt) is not list or all(_item_type_ok(v, opt, nested) for v in value):
                return True, variable
        return False, variable
    if opt_type is not None and type(value) is opt_type:
        return True, True
    return False, variable


# -- values -----------------------------------------------------------------------------------------------------------

def _dict_ok(value: Any, options: Sequence) -> bool:
    if not isinstance(value, dict):
        return False
    for opt in options:
        if opt == "":
            continue
        if all(k in opt and _std_item(v) in [_std_item(o) for o in opt[k]] for k, v in value.items()) \
                and all(k in value or "" in accepted for k, accepted in opt.items()):
            return True
    return False


def _list_dict_ok(value: list, options: Sequence) -> bool:
    for opt in options:
        if len(value) == len(opt) and all(_dict_ok(v, [o]) for v, o in zip(value, opt)):
            return True
    return False


def _list_ok(value: list, options: Sequence) -> bool:
    got = [_std_item(x) for x in value]
    return any(got == [_std_item(x) for x in opt] for opt in options)


def _check_param(param: str, value: Any, spec: Mapping, options: Sequence, fname: str) -> None:
    desc = spec.get("type") if isinstance(spec, dict) else None
    expected = _py_type(desc, fname, param)
    nested = None
    if desc == "array" or desc == "tuple":
        items = spec.get("items")
        nested = _py_type(items.get("type") if isinstance(items, dict) else None, fname, f"{param}.items")
    if desc == "tuple" and type(value) is tuple:
        value = list(value)  # JSON ground truth has no tuples
    if expected is float and type(value) is int:
        value = float(value)
    ok, variable = _type_check(value, options, expected, nested)
    if not ok:
        raise _Fail("wrong_type", f"{fname}.{param}: expected {desc}" + (f" of {spec['items'].get('type')}" if nested else "")
                    + f", got {type(value).__name__} {value!r}")
    if not variable:
        if expected is dict:
            good = _dict_ok(value, options)
        elif expected is list and nested is dict:
            good = _list_dict_ok(value, options)
        elif expected is str:
            good = standardize(value) in [standardize(o) for o in options if type(o) is str]
        elif expected is list:
            good = _list_ok(value, options)
        else:
            good = value in options
    else:
        good = value in options
    if not good:
        raise _Fail("wrong_value", f"{fname}.{param}: {value!r} is not among the accepted values {list(options)!r}")


def _check_call(doc: Mapping, call: Mapping, answer: Mapping[str, Sequence]) -> None:
    fname = doc.get("name")
    if call.get("name") != fname:
        raise _Fail("wrong_function", f"expected a call to {fname}, got {call.get('name')}")
    params = doc.get("parameters") or {}
    props = params.get("properties") or {}
    args = call.get("arguments") or {}
    for p in params.get("required") or []:
        if p not in args:
            raise _Fail("missing_argument", f"{fname}: required argument {p!r} is missing")
    for p, v in args.items():
        if p not in props or p not in answer:
            raise _Fail("extra_argument", f"{fname}: unexpected argument {p!r}"
                        + ("" if p in props else " (not in the function's parameters)"))
        _check_param(p, v, props[p], answer[p], fname)
    for p, accepted in answer.items():
        if p not in args and "" not in accepted:
            raise _Fail("missing_argument", f"{fname}: argument {p!r} is missing and not optional")


def _doc_for(docs: Sequence[Mapping], name: str) -> Mapping:
    for d in docs:
        if d.get("name") == name:
            return d
    raise ValueError(f"expected function {name!r} has no doc among {[d.get('name') for d in docs]}")


def _parallel(pred: list[dict], answers: Sequence[Mapping], docs: Sequence[Mapping]) -> MatchResult:
    if not pred and answers:
        return MatchResult(False, "no_call", f"expected {len(answers)} call(s), got none")
    if len(pred) != len(answers):
        return MatchResult(False, "wrong_count", f"expected {len(answers)} calls, got {len(pred)}")
    claimed: set[int] = set()
    for i, ans in enumerate(answers):
        (gname, gargs), = ans.items()
        doc = _doc_for(docs, gname)
        fails = []
        for j, call in enumerate(pred):
            if j in claimed:
                continue
            try:
                _check_call(doc, call, gargs)
            except _Fail as f:
                fails.append((call.get("name") == gname, f.result))
                continue
            claimed.add(j)
            break
        else:
            # The most telling reason: a same-name call's mismatch, else "wrong function".
            same = [r for same_name, r in fails if same_name]
            r = same[0] if same else MatchResult(False, "wrong_function", f"no call to {gname}")
            return MatchResult(False, r.error_type, f"expected call {i} ({gname}) unmatched: {r.detail}")
    return MatchResult(True)


def match(pred_calls: list[dict] | None, possible_answer: Sequence[Mapping] | None, func_docs: Sequence[Mapping],
          category: str) -> MatchResult:
    """BFCL's verdict on ``pred_calls`` (``[{"name", "arguments"}]``, ``None`` = unparsable output).

    ``possible_answer`` is BFCL's ground truth list (empty/None for irrelevance);
    ``func_docs`` the docs offered; ``category`` a BFCL category name
    (``simple_python``, ``live_parallel_multiple``, ``irrelevance`` ...).
    Malformed docs or answers raise ``ValueError`` naming the function and parameter.
    """
    has_call = bool(pred_calls)
    if "irrelevance" in category:
        if has_call:
            return MatchResult(False, "call_on_irrelevance", f"expected no call, got {len(pred_calls)}")
        return MatchResult(True)
    if "relevance" in category:
        if has_call:
            return MatchResult(True)
        return MatchResult(False, "unparsable" if pred_calls is None else "no_call", "expected a call, got none")
    if pred_calls is None:
        return MatchResult(False, "unparsable", "the output has no parsable call list")
    answers = list(possible_answer or [])
    docs = list(func_docs)
    try:
        if "parallel" in category:
            return _parallel(pred_calls, answers, docs)
        if not pred_calls:
            return MatchResult(False, "no_call", f"expected {len(answers)} call(s), got none")
        if "multiple" in category:
            if len(pred_calls) != len(answers):
                return MatchResult(False, "wrong_count", f"expected {len(answers)} call, got {len(pred_calls)}")
            (gname, gargs), = answers[0].items()
            _check_call(_doc_for(docs, gname), pred_calls[0], gargs)
            return MatchResult(True)
        if len(pred_calls) != 1:
            return MatchResult(False, "wrong_count", f"expected 1 call, got {len(pred_calls)}")
        _check_call(docs[0], pred_calls[0], next(iter(answers[0].values())))
        return MatchResult(True)
    except _Fail as f:
        return f.result


def possible_answer_from_calls(gold_calls: Sequence[Mapping], func_docs: Sequence[Mapping]) -> list[dict]:
    """Gold calls of a synthetic dialog -> BFCL ground truth.

    Each given argument accepts exactly its value; a parameter the gold call
    leaves out but whose doc declares a ``default`` may be omitted or set to
    that default (BFCL's ``""`` marker); any other parameter is unexpected.
    """
    out = []
    for call in gold_calls:
        doc = _doc_for(func_docs, call["name"])
        props = (doc.get("parameters") or {}).get("properties") or {}
        ans: dict[str, list] = {k: [v] for k, v in (call.get("arguments") or {}).items()}
        for p, spec in props.items():
            if p not in ans and isinstance(spec, Mapping) and "default" in spec:
                ans[p] = ["", spec["default"]]
        out.append({call["name"]: ans})
    return out


# -- partial credit ---------------------------------------------------------------------------------------------------

def _same_value(a: Any, b: Any) -> bool:
    if type(a) is str and type(b) is str:
        return standardize(a) == standardize(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    return a == b


def _pair_score(pred: Mapping, gold: Mapping) -> float:
    """Name, then argument names (Jaccard), then values (share of gold arguments reproduced), a third each."""
    if pred.get("name") != gold.get("name"):
        return 0.0  # arguments of another function say nothing about this one
    pa, ga = pred.get("arguments") or {}, gold.get("arguments") or {}
    keys = set(pa) | set(ga)
    names = len(set(pa) & set(ga)) / len(keys) if keys else 1.0
    values = sum(k in pa and _same_value(pa[k], v) for k, v in ga.items()) / len(ga) if ga else (1.0 if not pa else 0.0)
    return (1.0 + names + values) / 3.0


def partial_credit(pred_calls: list[dict] | None, gold_calls: list[dict] | None) -> float:
    """Graded agreement in [0, 1]: 1 iff every gold call is reproduced (names, argument names, values).

    Calls are paired to maximise the total pair score (any order); the total is
    divided by the larger of the two call counts, so missing and extra calls
    both cost. No gold calls (irrelevance): 1 iff the prediction makes no call.
    An unparsable prediction (``None``) scores 0 when a call is expected.
    """
    gold = list(gold_calls or [])
    pred = list(pred_calls or [])
    if not gold:
        return 0.0 if pred else 1.0
    if not pred:
        return 0.0
    from scipy.optimize import linear_sum_assignment

    scores = [[_pair_score(p, g) for g in gold] for p in pred]
    rows, cols = linear_sum_assignment(scores, maximize=True)  # best pairing, any order
    return float(sum(scores[i][j] for i, j in zip(rows, cols)) / max(len(pred), len(gold)))
