"""Verdict agreement between our parser + matcher and BFCL's official decoder + checker (docs/architecture.md#evaluation).

The possible answers of each BFCL entry are turned into model outputs —
the answer itself (first / last accepted values, optional parameters left out)
and systematic perturbations of it (dropped / extra / renamed arguments, wrong
types, int<->float, string normalisation, reordered / dropped / duplicated
parallel calls, ...) — and both sides judge every output twice: as decoded
calls (checker against checker) and as the text ``format_calls`` renders
(decoder + checker against parser + matcher, ours in ``strict`` mode, which
follows BFCL's decoding rules). Text-only cases add outputs that BFCL decodes
differently on purpose; each such difference is listed in
:data:`INTENTIONAL` with its reason.

Only harmless text reaches the official decoder (it ``eval``\\ s arithmetic).
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from toolkiln.calls import format_calls, format_value
from toolkiln.evaluate.ast_match import match
from toolkiln.evaluate.harness import judge
from toolkiln.evaluate.oracle import Oracle, to_bfcl_calls
from toolkiln.callparse import parse_calls

# Perturbations on which we disagree with BFCL by design (text mode), and why.
INTENTIONAL = {
    "bare_variable": "BFCL decodes an unquoted name (x=foo) as the string 'foo'; ours accepts literals only and "
                     "reports the output unparsable, since a name is not a value the model has committed to",
    "positional_arg": "BFCL silently drops positional arguments (f(1, b=2) -> {b: 2}); ours refuses them with a reason "
                      "because the target format is keyword-only and a dropped value would be judged as missing",
    "arithmetic": "BFCL eval()s arithmetic in argument positions (x=2+3 -> 5); ours never evaluates model output "
                  "and refuses the expression",
}


@dataclass
class Case:
    entry_id: str
    category: str
    perturbation: str
    calls: list[dict] | None = None  # structured output (None for text-only cases)
    text: str | None = None  # rendered output


@dataclass
class CategoryReport:
    category: str
    entries: int = 0
    cases: int = 0
    agree: int = 0
    ours_correct: int = 0
    official_correct: int = 0
    by_perturbation: dict = field(default_factory=lambda: defaultdict(Counter))
    differences: list = field(default_factory=list)

    def as_dict(self, max_examples: int = 5) -> dict:
        diffs_by_p: dict[str, list] = defaultdict(list)
        for d in self.differences:
            diffs_by_p[d["perturbation"]].append(d)
        return {
            "entries": self.entries, "cases": self.cases, "agree": self.agree,
            "agreement": self.agree / self.cases if self.cases else 1.0,
            "ours_correct": self.ours_correct, "official_correct": self.official_correct,
            "by_perturbation": {p: dict(c) for p, c in sorted(self.by_perturbation.items())},
            "differences": {p: {"count": len(ds), "intentional": p in INTENTIONAL, "reason": INTENTIONAL.get(p),
                                "examples": ds[:max_examples]} for p, ds in sorted(diffs_by_p.items())},
        }


# -- model outputs from possible answers ----------------------------------------------------------------------------

def answer_calls(ground_truth: list[dict], pick: str = "first", optional: bool = True) -> list[dict]:
    """A model output that BFCL should accept: one accepted value per parameter."""
    calls = []
    for item in ground_truth:
        (name, params), = item.items()
        args = {}
        for p, options in params.items():
            given = [o for o in options if o != ""]
            if not given or (not optional and "" in options):
                continue
            args[p] = copy.deepcopy(given[0] if pick == "first" else given[-1])
        calls.append({"name": name, "arguments": args})
    return calls


def _dummy(spec: dict) -> Any:
    t = spec.get("type") if isinstance(spec, dict) else None
    if spec.get("enum") if isinstance(spec, dict) else None:
        return spec["enum"][0]
    return {"string": "x", "integer": 1, "float": 1.5, "number": 1.5, "boolean": True, "array": [],
            "tuple": [], "dict": {}, "object": {}}.get(t, "x")


def _wrong_type(v: Any) -> Any:
    if isinstance(v, bool):
        return "true"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(v)
    if isinstance(v, str):
        return 12345
    if isinstance(v, list):
        return "x"
    if isinstance(v, dict):
        return [v]
    return 0


def _first_arg(calls: list[dict], pred: Callable[[Any], bool]) -> tuple[int, str] | None:
    for i, c in enumerate(calls):
        for k, v in c["arguments"].items():
            if pred(v):
                return i, k
    return None


def _with(calls: list[dict], where: tuple[int, str] | None, fn: Callable[[Any], Any]) -> list[dict] | None:
    if where is None:
        return None
    out = copy.deepcopy(calls)
    i, k = where
    out[i]["arguments"][k] = fn(out[i]["arguments"][k])
    return out


def _docs_by_name(functions: list[dict]) -> dict[str, dict]:
    return {f["name"]: f for f in functions}


def perturbations(entry: dict) -> list[tuple[str, list[dict]]]:
    """Structured outputs for one entry: ``(name, calls)``; entries with no answer get relevance probes."""
    gt, funcs = entry["ground_truth"], entry["function"]
    if not gt:  # irrelevance / relevance: an empty output and a plausible call
        if not funcs:
            return [("empty_list", []), ("call_unknown_function", [{"name": "lookup", "arguments": {"q": "x"}}])]
        f = funcs[0]
        props = f["parameters"].get("properties", {})
        call = {"name": f["name"], "arguments": {p: _dummy(props[p]) for p in f["parameters"].get("required", [])
                                                  if p in props}}
        return [("empty_list", []), ("call_first_function", [call]), ("two_calls", [call, copy.deepcopy(call)])]
    base = answer_calls(gt)
    docs = _docs_by_name(funcs)
    out: list[tuple[str, list[dict] | None]] = [
        ("answer_first", base), ("answer_last", answer_calls(gt, "last")),
        ("answer_minimal", answer_calls(gt, optional=False)), ("empty_list", []),
    ]
    req = _first_arg(base, lambda v: True)
    if req is not None:
        i, _ = req
        required = docs.get(base[i]["name"], {}).get("parameters", {}).get("required", [])
        k = next((k for k in base[i]["arguments"] if k in required), None)
        if k is not None:
            dropped = copy.deepcopy(base)
            del dropped[i]["arguments"][k]
            out.append(("drop_required", dropped))
        renamed = copy.deepcopy(base)
        k0 = next(iter(base[i]["arguments"]))
        renamed[i]["arguments"][k0 + "_x"] = renamed[i]["arguments"].pop(k0)
        out.append(("rename_argument", renamed))
    extra = copy.deepcopy(base)
    extra[0]["arguments"]["toolkiln_extra"] = 1
    out.append(("extra_unknown_argument", extra))
    # A real parameter of the doc that the answer does not list: BFCL calls it unexpected.
    for i, c in enumerate(base):
        props = docs.get(c["name"], {}).get("parameters", {}).get("properties", {})
        unlisted = [p for p in props if p not in next(iter(gt[i].values()))]
        if unlisted:
            e2 = copy.deepcopy(base)
            e2[i]["arguments"][unlisted[0]] = _dummy(props[unlisted[0]])
            out.append(("extra_doc_parameter", e2))
            break
    wrong_name = copy.deepcopy(base)
    wrong_name[0]["name"] = wrong_name[0]["name"] + "_v2"
    out.append(("wrong_function_name", wrong_name))
    out.append(("wrong_type", _with(base, _first_arg(base, lambda v: True), _wrong_type)))
    out.append(("none_value", _with(base, _first_arg(base, lambda v: True), lambda v: None)))
    is_int = lambda v: type(v) is int  # noqa: E731
    is_float = lambda v: type(v) is float  # noqa: E731
    out.append(("int_to_float", _with(base, _first_arg(base, is_int), float)))
    out.append(("float_to_int", _with(base, _first_arg(base, is_float), lambda v: int(v) if v.is_integer() else round(v))))
    out.append(("bool_to_int", _with(base, _first_arg(base, lambda v: type(v) is bool), int)))
    is_str = lambda v: type(v) is str and v.strip() != ""  # noqa: E731
    out.append(("string_normalised", _with(base, _first_arg(base, is_str), lambda s: s.upper().replace(" ", "-") + ".")))
    out.append(("string_changed", _with(base, _first_arg(base, is_str), lambda s: s + " zz")))
    out.append(("string_single_quote", _with(base, _first_arg(base, is_str), lambda s: s + "'")))
    has_list = lambda v: type(v) is list and len(v) >= 2 and v != v[::-1]  # noqa: E731
    out.append(("list_reversed", _with(base, _first_arg(base, has_list), lambda v: v[::-1])))
    str_list = lambda v: type(v) is list and any(type(x) is str for x in v)  # noqa: E731
    out.append(("list_strings_normalised", _with(base, _first_arg(base, str_list),
                                                 lambda v: [x.upper() if type(x) is str else x for x in v])))
    out.append(("list_to_tuple", _with(base, _first_arg(base, lambda v: type(v) is list), tuple)))
    has_dict = lambda v: type(v) is dict and v  # noqa: E731

    def _dict_changed(d: dict) -> dict:
        d = dict(d)
        k = next(iter(d))
        d[k] = d[k] + " zz" if type(d[k]) is str else [d[k]]
        return d

    out.append(("dict_value_changed", _with(base, _first_arg(base, has_dict), _dict_changed)))
    out.append(("dict_key_dropped", _with(base, _first_arg(base, has_dict), lambda d: dict(list(d.items())[1:]))))
    if len(base) >= 2:
        out.append(("calls_reordered", base[::-1]))
        out.append(("call_dropped", base[:-1]))
    out.append(("call_duplicated", base + [copy.deepcopy(base[0])]))
    return [(n, c) for n, c in out if c is not None]


def _text_only(base_text: str, base: list[dict]) -> list[tuple[str, str]]:
    """Text variants of the answer; the last three kinds are the INTENTIONAL differences."""
    out = [("text_fenced", f"```python\n{base_text}\n```"), ("text_prose_wrapped", f"Sure! {base_text}"),
           ("text_plain_refusal", "I cannot help with that, none of the functions fit."), ("text_empty", ""),
           ("text_quoted", f"'{base_text}'")]
    if len(base) == 1:
        out.append(("text_no_brackets", base_text[1:-1]))
    if not base or not base[0]["arguments"]:
        return out
    name, args = base[0]["name"], base[0]["arguments"]
    parts = {k: f"{k}={format_value(v)}" for k, v in args.items()}

    def src(replace: dict[str, str], first: str | None = None) -> str:
        items = [first] if first else []
        items += [replace.get(k, part) for k, part in parts.items() if not (first and k == next(iter(parts)))]
        rest = format_calls(base[1:])[1:-1]  # the other calls unchanged, so parallel items stay comparable
        return f"[{name}({', '.join(items)})" + (f", {rest}]" if rest else "]")

    var = next((k for k, v in args.items() if type(v) is str and v.isidentifier()
                and v not in ("True", "False", "None")), None)
    if var is not None:
        out.append(("bare_variable", src({var: f"{var}={args[var]}"})))
    out.append(("positional_arg", src({}, first=format_value(next(iter(args.values()))))))
    num = next((k for k, v in args.items() if type(v) is int), None)
    if num is not None:
        out.append(("arithmetic", src({num: f"{num}={args[num] - 1}+1"})))
    return out


def build_cases(entries: Iterable[dict]) -> list[Case]:
    cases = []
    for e in entries:
        structured = perturbations(e)
        for name, calls in structured:
            cases.append(Case(e["id"], e["category"], name, calls=calls, text=format_calls(calls)))
        base = structured[0][1] if e["ground_truth"] else structured[1][1]
        for name, text in _text_only(format_calls(base), base):
            cases.append(Case(e["id"], e["category"], name, text=text))
    return cases


# -- running both sides -----------------------------------------------------------------------------------------------

def _ours(case: Case, entry: dict, text_mode: bool, strict: bool = True) -> tuple[bool, str | None]:
    try:
        if text_mode:
            r = judge(parse_calls(case.text, strict=strict), entry["ground_truth"], entry["function"], entry["category"])
        else:
            r = match(case.calls, entry["ground_truth"], entry["function"], entry["category"])
        return r.correct, r.error_type
    except Exception as exc:  # noqa: BLE001 - a crash is a verdict to report, not to hide
        return False, f"crash: {type(exc).__name__}: {exc}"


def _official(oracle: Oracle, case: Case, entry: dict, text_mode: bool) -> tuple[bool, str | None]:
    try:
        if text_mode:
            r = oracle.check_text(case.text, entry["ground_truth"], entry["function"], entry["category"])
        else:
            r = oracle.check(to_bfcl_calls(case.calls), entry["ground_truth"], entry["function"], entry["category"])
        return bool(r["valid"]), r.get("error_type")
    except Exception as exc:  # noqa: BLE001 - BFCL's checker crashes on a few malformed outputs
        return False, f"crash: {type(exc).__name__}: {exc}"


MODES = ("structured", "text", "text_tolerant")


def run_agreement(entries: list[dict], oracle: Oracle,
                  modes: tuple[str, ...] = ("structured", "text")) -> dict[str, dict[str, CategoryReport]]:
    """``{mode: {category: CategoryReport}}`` over every case of every entry.

    ``structured``: checker vs checker on decoded calls; ``text``: BFCL's decoder +
    checker vs our strict parser + matcher; ``text_tolerant``: the same with our
    tolerant parser, whose extra acceptances (fences, prose, quotes) are by design.
    """
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ValueError(f"agreement modes {bad}: expected a subset of {MODES}")
    by_id = {e["id"]: e for e in entries}
    cases = build_cases(entries)
    reports: dict[str, dict[str, CategoryReport]] = {m: {} for m in modes}
    counted: dict[str, set] = {m: set() for m in modes}
    for case in cases:
        entry = by_id[case.entry_id]
        for mode in modes:
            if mode == "structured" and case.calls is None:
                continue
            rep = reports[mode].setdefault(case.category, CategoryReport(case.category))
            if case.entry_id not in counted[mode]:
                counted[mode].add(case.entry_id)
                rep.entries += 1
            text = mode != "structured"
            ours = _ours(case, entry, text, strict=mode == "text")
            theirs = _official(oracle, case, entry, text)
            rep.cases += 1
            rep.ours_correct += ours[0]
            rep.official_correct += theirs[0]
            agree = ours[0] == theirs[0]
            rep.agree += agree
            rep.by_perturbation[case.perturbation]["agree" if agree else "differ"] += 1
            if not agree:
                rep.differences.append({"id": case.entry_id, "perturbation": case.perturbation,
                                        "ours": {"correct": ours[0], "error_type": ours[1]},
                                        "official": {"correct": theirs[0], "error_type": theirs[1]},
                                        "output": (case.text or "")[:200]})
    return reports
