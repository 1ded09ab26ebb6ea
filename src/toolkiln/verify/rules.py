"""The rule layer of ToolACE's dual-layer verification (ToolACE §3.3; README "Verification").

The rules are the expectation suites. Every dialog row is flattened into tables
GX reads natively (polars builds them), and one suite per table states the rules:

=============  ===========================  =========================================================
table          suite (``expectations/``)    one row per
=============  ===========================  =========================================================
``dialogs``    ``dialogs_rules.json``       dialog: its own columns, the role sequence, counts and
                                            names derived from the messages, the dedup key, and the
                                            computed ``ok_<check>`` columns below
``turns``      ``dialog_turns.json``        turn (the system prompt is turn -1): role, content,
                                            whether it calls, the tool name, repetition features
``calls``      ``dialog_calls.json``        call: name, and the offered API of that name (or null)
``arg_formats`` ``dialog_arg_formats.json`` string argument value (any depth) under a ``format``
=============  ===========================  =========================================================

GX runs each suite with ``result_format: COMPLETE``; every unexpected table row becomes a reason
``"<check>: <expectation name> at <where>: <notes>"`` on its dialog, and the dialog fails the expectation's
``meta.check`` (one of the ``ok_<check>`` columns in ToolACE's four families below, or a new one a suite
names). Uniqueness expectations keep the first copy. Adding an expectation to a suite adds a rule; removing
one removes it: no code changes either way.

What GX cannot state over a table stays computed here and reaches the suite as a boolean column that
``dialogs_rules.json`` asserts (its ``meta.computed`` says by what), with detailed reasons: definition
clarity (:func:`toolkiln.synth.validate.check_api` per offered API), argument types, enums, ranges,
patterns, required and unknown arguments (a compiled checker per API schema,
:mod:`toolkiln.argcheck`), the pairing of calls and tool responses, dependent references and the
target's call-list format (walks over the turn sequence), parseability (``ok_fields``), and the script
analysis of ``ok_language`` (a turn-table column). The families:

* API definition clarity: ``ok_api_clarity``;
* call executability: ``ok_call_name``, ``ok_required_args``, ``ok_unknown_args``, ``ok_arg_types``,
  ``ok_arg_enum``, ``ok_arg_range``, ``ok_arg_pattern``, ``ok_arg_format``;
* dialog correctness: ``ok_fields``, ``ok_nonempty``, ``ok_length``, ``ok_charset``, ``ok_language``;
* consistency: ``ok_role_order``, ``ok_tool_responses``, ``ok_dependency``, ``ok_format``,
  ``ok_dialog_type``, ``ok_unique``.

The structural pass parses each row once with caches (:class:`RuleCaches`): each distinct API text in the
candidate lists is parsed, clarity-checked and compiled once (pool APIs can be trusted for clarity, since
``synthesize_apis`` already gated them). A row whose JSON cannot be parsed fails ``ok_fields`` and adds no
turn, call or argument rows.
"""

from __future__ import annotations

import gc
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from toolkiln.calls import format_calls
from toolkiln.callparse import parse_calls
from toolkiln.schema import DIALOG_SCHEMA
from toolkiln.synth.validate import check_api
from toolkiln.argcheck import FORMAT_VALUE, CheckerCache, short
from toolkiln.verify.config import RuleConfig

try:  # orjson parses the three JSON columns ~3x faster; the stdlib is the fallback
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover - orjson ships with the pinned environment
    import json

    _loads = json.loads

FAMILIES: dict[str, tuple[str, ...]] = {
    "clarity": ("ok_api_clarity",),
    "executability": ("ok_call_name", "ok_required_args", "ok_unknown_args", "ok_arg_types", "ok_arg_enum",
                      "ok_arg_range", "ok_arg_pattern", "ok_arg_format"),
    "correctness": ("ok_fields", "ok_nonempty", "ok_length", "ok_charset", "ok_language"),
    "consistency": ("ok_role_order", "ok_tool_responses", "ok_dependency", "ok_format", "ok_dialog_type", "ok_unique"),
}
RULE_CHECKS: tuple[str, ...] = tuple(c for cs in FAMILIES.values() for c in cs)
CHECK_FAMILY = {c: f for f, cs in FAMILIES.items() for c in cs}
CHECK_INDEX = {c: j for j, c in enumerate(RULE_CHECKS)}


SCRIPTS = {
    "latin": r"\p{Latin}", "cjk": r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]", "cyrillic": r"\p{Cyrillic}",
    "arabic": r"\p{Arabic}", "greek": r"\p{Greek}", "devanagari": r"\p{Devanagari}", "hebrew": r"\p{Hebrew}",
    "thai": r"\p{Thai}",
}
# Quoted spans are names, titles or tool output being relayed, not the turn's language.
QUOTED = r"\"[^\"]*\"|“[^”]*”|「[^」]*」|『[^』]*』|«[^»]*»|`[^`]*`"
NO_OTHER_TEXT_RE = re.compile(r"no other text", re.I)
# A sentence ends at . ! ? followed by a space or the end, or at a newline; "0.23", "a.jpg", URLs stay whole.
# Only pieces with a letter count ("-" bullets and "1." numbering repeat legitimately).
SENTENCE = r"(?:[^.!?\n]|[.!?][^\s.!?])+"


@dataclass
class ToolSet:
    """A parsed ``tools`` cell: candidate names, API dicts and the definition-clarity problems."""

    names: frozenset
    by_name: dict
    clarity: list
    error: str | None = None


@dataclass
class RuleCaches:
    """Caches shared across calls (the benchmark and the injection evaluation reuse them)."""

    checkers: CheckerCache = field(default_factory=lambda: CheckerCache(defer_formats=True))
    toolsets: dict = field(default_factory=dict)
    clarity: dict = field(default_factory=dict)  # API name -> (API dict, clarity problems)
    pieces: dict = field(default_factory=dict)  # one API's JSON text -> (API dict, clarity problems)

    def trust_pool(self, pool: pl.DataFrame) -> int:
        """Take the pool's APIs as already clear (``synthesize_apis`` drops the rest): an offered tool equal to
        its pool entry is not re-validated; one that is new or differs still is. Returns the APIs registered."""
        from toolkiln.schema import api_to_dict

        cols = {c: pool[c].to_list() for c in ("name", "description", "parameters", "returns", "domain", "category",
                                                "functionalities") if c in pool.columns}
        for i, name in enumerate(cols["name"]):
            row = {c: v[i] for c, v in cols.items()}
            row["parameters"], row["returns"] = _loads(row["parameters"]), _loads(row["returns"])
            self.clarity[name] = (api_to_dict(row), [])
        return pool.height


def _clarity(api: dict, caches: RuleCaches) -> list[str]:
    key = api.get("name")
    hit = caches.clarity.get(key)
    if hit is not None and hit[0] == api:
        return hit[1]
    probs = [f"api {key!r} {c}: {m}" for c, m in check_api(api)]
    caches.clarity[key] = (api, probs)
    return probs


def _api_obj(t: dict) -> dict:
    params = t.get("parameters")
    if isinstance(params, str):  # a pool row pasted as-is keeps its JSON-in-JSON
        try:
            return {**t, "parameters": _loads(params)}
        except Exception:  # noqa: BLE001 - left as is; definition clarity reports it
            pass
    return t


_PIECE_SEP = ', {"name": '


def _pieces(text: str, caches: RuleCaches) -> list[tuple[dict, list]] | None:
    """The list's API objects parsed one distinct API text at a time, or None when the text does not split.

    Candidate lists are drawn from one pool, so the same API text recurs across dialogs while whole lists
    rarely do. Splitting at ``, {"name": `` is only a guess at element boundaries; a wrong split leaves a
    piece that is not one complete JSON object (JSON is self-delimiting), and then the caller parses the
    whole list instead.
    """
    if not (text.startswith('[{"name": ') and text.endswith("}]")):
        return None
    parts = text[1:-1].split(_PIECE_SEP)
    out = []
    for j, part in enumerate(parts):
        piece = part if j == 0 else '{"name": ' + part
        hit = caches.pieces.get(piece)
        if hit is None:
            try:
                obj = _loads(piece)
            except Exception:  # noqa: BLE001 - not an element boundary
                return None
            if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
                return None
            obj = _api_obj(obj)
            hit = caches.pieces[piece] = (obj, _clarity(obj, caches))
        out.append(hit)
    return out


def parse_tools(text: Any, caches: RuleCaches) -> ToolSet:
    hit = caches.toolsets.get(text)
    if hit is not None:
        return hit
    parsed = _pieces(text, caches) if isinstance(text, str) else None
    if parsed is None:
        try:
            tools = _loads(text)
        except Exception as exc:  # noqa: BLE001 - any decode failure is the same finding
            tools = None
            err = f"tools: invalid JSON ({exc})"
        else:
            err = None if isinstance(tools, list) and all(isinstance(t, dict) and isinstance(t.get("name"), str)
                                                          for t in tools) \
                else "tools: must be a JSON list of API objects with a 'name'"
        if err is None:
            parsed = [(o, _clarity(o, caches)) for o in map(_api_obj, tools)]
    if parsed is None:
        ts = ToolSet(frozenset(), {}, [], err)
    else:
        by_name, clarity = {}, []
        for t, probs in parsed:
            if t["name"] in by_name:
                clarity.append(f"api {t['name']!r}: offered twice in the candidate list")
            by_name[t["name"]] = t
            clarity.extend(probs)
        ts = ToolSet(frozenset(by_name), by_name, clarity)
    if isinstance(text, str) and len(caches.toolsets) < 20_000:
        caches.toolsets[text] = ts
    return ts


def _in_text(v: Any, text: str) -> bool:
    if isinstance(v, bool) or v is None:
        return False
    if isinstance(v, (int, float)):
        needle = repr(v) if isinstance(v, float) else str(v)
        i = text.find(needle)
        while i >= 0:  # a whole number, not the digits inside a longer one
            before = text[i - 1] if i else " "
            after = text[i + len(needle)] if i + len(needle) < len(text) else " "
            if not (before.isdigit() or before == ".") and not after.isdigit():
                return True
            i = text.find(needle, i + 1)
        return False
    if isinstance(v, str):
        return len(v) > 0 and v in text
    return False


def _flat_values(v: Any) -> list:
    if isinstance(v, dict):
        return [x for y in v.values() for x in _flat_values(y)]
    if isinstance(v, list):
        return [x for y in v for x in _flat_values(y)]
    return [v]


class _Row:
    """Collects the computed (check, reason) problems of one dialog."""

    __slots__ = ("probs",)

    def __init__(self) -> None:
        self.probs: list[tuple[str, str]] = []

    def bad(self, check: str, reason: str) -> None:
        self.probs.append((check, reason))


@dataclass
class _Tables:
    """Rows of the flattened tables, appended by the structural pass (one list of tuples per table)."""

    dialogs: list[tuple] = field(default_factory=list)
    turns: list[tuple] = field(default_factory=list)
    calls: list[tuple] = field(default_factory=list)
    arg_formats: list[tuple] = field(default_factory=list)


# Column order of the tuples above; the dialog table also gets the row's own columns (id, type, ...).
DIALOG_DERIVED = {"row": pl.Int64, "role_sequence": pl.Utf8, "n_messages": pl.Int64, "n_calls_found": pl.Int64,
                  "n_offered": pl.Int64, "called_apis": pl.Utf8, "target_role": pl.Utf8, "n_target_calls": pl.Int64,
                  "first_call_turn": pl.Int64, "user_text": pl.Utf8}
TURN_COLUMNS = {"row": pl.Int64, "turn": pl.Int64, "role": pl.Utf8, "content": pl.Utf8, "has_calls": pl.Boolean,
                "tool_name": pl.Utf8}
CALL_COLUMNS = {"row": pl.Int64, "turn": pl.Int64, "name": pl.Utf8, "offered_api": pl.Utf8}
ARG_FORMAT_COLUMNS = {"row": pl.Int64, "turn": pl.Int64, "path": pl.Utf8, "format": pl.Utf8, "value": pl.Utf8}


@dataclass
class _Parsed:
    """One row's columns, its parsed JSON and its parsed candidate list."""

    idx: int
    type: Any
    system: str
    target_turn: Any
    target: Any
    msgs: list
    calls_col: Any
    tools: ToolSet


@dataclass
class _Walk:
    """What the turn walk derives from the messages."""

    roles: list[str] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    call_turns: list[int] = field(default_factory=list)
    tool_texts: list[tuple[int, str]] = field(default_factory=list)  # (turn, content) of every tool result
    users: list[str] = field(default_factory=list)


_COLUMN_NAMES = ("id", "type", "domain", "system", "tools", "messages", "target_turn", "target", "calls", "apis",
                 "n_candidates", "n_calls", "n_turns")


def _parse_row(r: _Row, row: tuple) -> tuple | None:
    """Nulls and the JSON columns; None (with an ``ok_fields`` problem) when the row cannot be read."""
    if None in row:
        r.bad("ok_fields", f"null fields {[k for k, v in zip(_COLUMN_NAMES, row[1:]) if v is None]}")
        return None
    try:
        return _loads(row[6]), _loads(row[9])
    except Exception as exc:  # noqa: BLE001 - any decode failure is the same finding
        r.bad("ok_fields", f"messages/calls: invalid JSON ({exc})")
        return None


def _walk_calls(r: _Row, p: _Parsed, i: int, tcs: Any, caches: RuleCaches, w: _Walk, out: _Tables) -> None:
    """One assistant call turn: a row per call (name, offered API), its arguments against the compiled schema."""
    if not isinstance(tcs, list):
        r.bad("ok_fields", f"turn {i}: tool_calls must be a list")
        return
    for c in tcs:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            r.bad("ok_fields", f"turn {i}: a tool call needs a string 'name'")
            continue
        name, args = c["name"], c.get("arguments", {})
        w.calls.append({"turn": i, "name": name, "arguments": args})
        api = p.tools.by_name.get(name)
        out.calls.append((p.idx, i, name, None if api is None else name))
        if api is None:
            continue
        for check, reason in caches.checkers.get(name, api.get("parameters"))(args):
            if check == FORMAT_VALUE:  # judged by the format regexes of the arg-format suite
                fmt, path, value = reason
                out.arg_formats.append((p.idx, i, path, fmt, value))
            else:
                r.bad(check, f"turn {i}: {reason}")


def _walk_turns(r: _Row, p: _Parsed, caches: RuleCaches, out: _Tables) -> _Walk:
    """Every message: a row of the turn table (role, content, calls, tool name); call turns go to the call table."""
    w = _Walk()
    no_other_text = NO_OTHER_TEXT_RE.search(p.system) is not None
    out.turns.append((p.idx, -1, "system", p.system, False, None))
    for i, m in enumerate(p.msgs):
        role, content, tcs = m.get("role"), m.get("content"), m.get("tool_calls")
        if content is None:
            content = ""
        if not isinstance(content, str):
            r.bad("ok_fields", f"turn {i}: content must be a string")
            content = str(content)
        if role == "user":
            w.roles.append("u")
            w.users.append(content)
        elif role == "assistant" and tcs:
            w.roles.append("c")
            w.call_turns.append(i)
            _walk_calls(r, p, i, tcs, caches, w, out)
            if no_other_text and content.strip():
                r.bad("ok_format", f"turn {i}: the system prompt allows no text beside the calls, got {short(content)}")
        elif role == "assistant":
            w.roles.append("a")
        elif role == "tool":
            w.roles.append("t")
            w.tool_texts.append((i, content))
        else:
            w.roles.append("?")
        name = m.get("name")
        out.turns.append((p.idx, i, role if isinstance(role, str) else repr(role), content, bool(tcs),
                          name if isinstance(name, str) else None))
    return w


def _check_dependent_values(r: _Row, p: _Parsed, w: _Walk, target_calls: list, tool_sourced: int) -> None:
    """Without formalised thinking to follow, some value of a dependent call must come from an earlier result."""
    tt = p.target_turn
    if p.type != "dependent" or not target_calls or not isinstance(tt, int) or tool_sourced:
        return
    earlier = " ".join(c for i, c in w.tool_texts if i < tt)
    values = [v for c in target_calls if isinstance(c, dict) for v in _flat_values(c.get("arguments", {}))]
    if not any(_in_text(v, earlier) for v in values):
        r.bad("ok_dependency", f"turn {tt}: no argument value of the dependent call appears in an earlier tool "
                               f"result (values {short(values, 60)})")


def _check_row(r: _Row, row: tuple, caches: RuleCaches, out: _Tables) -> None:
    """The computed checks of one row, and its rows of the flattened tables GX reads."""
    idx = row[0]
    parsed = _parse_row(r, row)
    msgs = parsed[0] if parsed else None
    if parsed is not None and not (isinstance(msgs, list) and msgs and all(isinstance(m, dict) for m in msgs)):
        r.bad("ok_fields", "messages: must be a non-empty JSON list of turn objects")
        parsed = None
    ts = parse_tools(row[5], caches) if parsed is not None else None
    if ts is not None and ts.error:
        r.bad("ok_fields", ts.error)
        parsed = None
    if parsed is None:  # unreadable: no flattened rows, so GX judges only the row's own columns
        out.dialogs.append((idx, None, None, None, None, None, None, None, None, None))
        return
    for prob in ts.clarity:
        r.bad("ok_api_clarity", prob)
    p = _Parsed(idx=idx, type=row[2], system=row[4], target_turn=row[7], target=row[8], msgs=msgs,
                calls_col=parsed[1], tools=ts)
    w = _walk_turns(r, p, caches, out)
    _check_tool_responses(r, msgs, w.roles)
    if p.calls_col != w.calls:
        r.bad("ok_fields", f"calls column ({len(p.calls_col) if isinstance(p.calls_col, list) else '?'} calls) "
                           f"does not match the tool_calls in messages ({len(w.calls)})")
    tt = p.target_turn
    target_msg = msgs[tt] if isinstance(tt, int) and 0 <= tt < len(msgs) else None
    target_calls = (target_msg.get("tool_calls") or []) if target_msg is not None else []
    if not isinstance(target_calls, list):
        target_calls = []
    _check_format(r, p.target, target_calls)
    _check_dependent_values(r, p, w, target_calls, _check_references(r, msgs, w.call_turns))
    # Dedup key: what a sample teaches, the user's words (normalised) beside the supervised answer.
    users = " ".join(" ".join(u.lower().split()) for u in w.users)
    out.dialogs.append((idx, "".join(w.roles), len(msgs), len(w.calls), len(ts.names),
                        "\x1f".join(sorted({c["name"] for c in w.calls})),
                        target_msg.get("role") if target_msg is not None else None, len(target_calls),
                        w.call_turns[0] if w.call_turns else None, users))


_PATH_RE = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _field(value: Any, path: str) -> tuple[bool, Any]:
    """``results[0].name`` (or ``results.0.name``) of a parsed tool result."""
    for index, key in _PATH_RE.findall(str(path)):
        part = index or key
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def _check_references(r: _Row, msgs: list, call_turns: list[int]) -> int:
    """Formalised thinking cites where each argument comes from; those references must resolve.

    ``{"from": "tool", "turn": k, "api": A, "field": f}``: turn k is an earlier result of A whose ``f`` is the
    argument's value. ``{"from": "user"|"system", "turn": k, "text": T}``: T is said in that turn (or the system
    prompt). Returns how many tool-sourced arguments were checked.
    """
    n_tool = 0
    for t in call_turns:
        th = msgs[t].get("thought")
        srcs = th.get("arguments") if isinstance(th, dict) else None
        if not isinstance(srcs, dict):
            continue
        args = {k: v for c in msgs[t].get("tool_calls") or [] if isinstance(c, dict)
                for k, v in (c.get("arguments") or {}).items()} if len(msgs[t]["tool_calls"]) == 1 else {}
        for arg, src in srcs.items():
            if not isinstance(src, dict):
                continue
            k = src.get("turn")
            if src.get("from") == "tool":
                n_tool += 1
                if not isinstance(k, int) or not 0 <= k < t or msgs[k].get("role") != "tool":
                    r.bad("ok_dependency", f"turn {t}: {arg} cites tool result at turn {k}, which is not an earlier "
                                           "tool turn")
                    continue
                if src.get("api") and msgs[k].get("name") != src["api"]:
                    r.bad("ok_dependency", f"turn {t}: {arg} cites {src['api']}'s result, but turn {k} is "
                                           f"{msgs[k].get('name')}'s")
                    continue
                if arg in args and "field" in src:
                    try:
                        found, value = _field(_loads(msgs[k].get("content") or ""), src["field"])
                    except Exception:  # noqa: BLE001 - a non-JSON result cannot supply a field
                        found, value = False, None
                    if not found or value != args[arg]:
                        r.bad("ok_dependency", f"turn {t}: {arg}={short(args[arg])} but turn {k}'s "
                                               f"{src['field']} is {short(value) if found else 'missing'}")
            elif src.get("from") == "user" and isinstance(k, int) and isinstance(src.get("text"), (str, list)):
                texts = src["text"] if isinstance(src["text"], list) else [src["text"]]
                said = (msgs[k].get("content") or "").lower() if 0 <= k < t and msgs[k].get("role") == "user" else None
                # Case-insensitive: a reply starts with a capital ("Sci-fi, please.") the thought quotes in lower case.
                if said is None or not all(isinstance(x, str) and x.lower() in said for x in texts):
                    r.bad("ok_dependency", f"turn {t}: {arg} cites {short(src['text'])} in user turn {k}, which does "
                                           "not say it")
    return n_tool


def _check_tool_responses(r: _Row, msgs: list, roles: list[str]) -> None:
    i, n = 0, len(msgs)
    while i < n:
        if roles[i] == "t":
            r.bad("ok_tool_responses", f"turn {i}: tool response without a preceding call (orphan)")
            while i < n and roles[i] == "t":
                i += 1
            continue
        if roles[i] != "c":
            i += 1
            continue
        called = [c.get("name") for c in msgs[i].get("tool_calls") or [] if isinstance(c, dict)]
        j = i + 1
        answered = []
        while j < n and roles[j] == "t":
            answered.append((j, msgs[j].get("name")))
            j += 1
        if answered or j < n:  # a trailing call without results is the supervised target, not an error
            pending = list(called)
            for k, name in answered:
                if name in pending:
                    pending.remove(name)
                else:
                    r.bad("ok_tool_responses", f"turn {k}: tool response names {name!r}, which turn {i} did not "
                                               f"call (or already answered); called {called}")
            for name in pending:
                r.bad("ok_tool_responses", f"turn {i}: call to {name!r} got no tool response")
        i = j


def _check_format(r: _Row, target: str, target_calls: list) -> None:
    try:
        expected = format_calls(target_calls) if target_calls else ""
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        r.bad("ok_format", f"target turn calls have no Python-literal form: {exc}")
        return
    if target == expected:
        return
    if not expected:
        r.bad("ok_format", f"target {short(target)} but the target turn makes no call (expected '')")
        return
    # Slow path, rare: an equivalent but differently spelled call list is fine (read with ast only).
    stripped = target.strip() if isinstance(target, str) else ""
    parsed = parse_calls(stripped, strict=True).calls if stripped.startswith("[") and stripped.endswith("]") else None
    if parsed is None:
        r.bad("ok_format", f"target {short(target, 80)} is not a Python call list [f(a=1), ...]")
    elif parsed != [{"name": c.get("name"), "arguments": c.get("arguments", {})} for c in target_calls]:
        r.bad("ok_format", f"target {short(target, 80)} does not render the target turn's calls {short(expected, 80)}")


def _text_features(turns: pl.DataFrame, cfg: RuleConfig) -> pl.DataFrame:
    """The turn table plus the measurements its suite thresholds: repetition features and ``ok_language``.

    ``distinct_token_share`` (distinct/total whitespace tokens) is set on prose turns of at least
    ``runaway_min_tokens`` tokens, ``top_sentence_repeats`` (how often the most repeated sentence occurs)
    on prose turns long enough to repeat one; null elsewhere, which GX skips.
    """
    content = pl.col("content")
    prose = pl.col("role").is_in(["user", "assistant"])
    turns = turns.with_row_index("_i")
    cand = turns.filter(prose & (content.str.len_chars() >= 2 * cfg.runaway_min_tokens)).select(
        "_i", toks=content.str.split(" ").list.eval(pl.element().filter(pl.element() != "")))
    cand = cand.select("_i", n=pl.col("toks").list.len(), u=pl.col("toks").list.n_unique()).filter(
        pl.col("n") >= cfg.runaway_min_tokens).select("_i", distinct_token_share=pl.col("u") / pl.col("n"))
    # A generation stuck in a loop repeats a sentence; a prose turn practically never says one sentence 5 times.
    sent = turns.filter(prose & (content.str.len_chars() >= 8 * cfg.runaway_repeats)).select(
        "_i", top_sentence_repeats=content.str.extract_all(SENTENCE).list.eval(
            pl.element().str.strip_chars().filter(pl.element().str.contains(r"\p{L}")).unique_counts().max()
        ).list.first().cast(pl.Int64))
    lang = _language(turns.filter(prose), cfg)
    return (turns.join(cand, on="_i", how="left").join(sent, on="_i", how="left")
            .join(lang.select("_i", "language_reason"), on="_i", how="left")
            .with_columns(ok_language=pl.col("language_reason").is_null()).sort("_i").drop("_i"))


def _language(prose: pl.DataFrame, cfg: RuleConfig) -> pl.DataFrame:
    """(``_i``, ``language_reason``) of mixed-language turns and of assistants in another script than their user."""
    # Pure-ASCII turns are Latin or letterless: only the (rare) non-ASCII ones pay for script counting.
    na = prose.filter(pl.col("content").str.contains(r"[^\x00-\x7F]"))
    empty = pl.DataFrame(schema={"_i": pl.UInt32, "language_reason": pl.Utf8})
    if na.height == 0:
        return empty
    text = pl.col("content").str.replace_all(QUOTED, " ")
    na = na.with_columns(**{s: text.str.count_matches(rx) for s, rx in SCRIPTS.items()})
    names = list(SCRIPTS)
    counts = na.select(names).to_numpy().astype("int64")  # u32 from polars: negating would wrap
    order = (-counts).argsort(axis=1)
    total = counts.sum(axis=1)
    first = counts[range(len(counts)), order[:, 0]]
    second = counts[range(len(counts)), order[:, 1]]
    na = na.with_columns(total=pl.Series(total), second=pl.Series(second),
                         main=pl.Series([names[j] if f > 0 else None for j, f in zip(order[:, 0], first)]),
                         other=pl.Series([names[j] for j in order[:, 1]]))
    mixed = na.filter(((pl.col("second") >= cfg.mixed_language_min_letters)
                       & (pl.col("second") >= pl.col("total") * cfg.mixed_language_share))
                      | (pl.col("second") >= cfg.mixed_language_letters))
    out = [mixed.select("_i", language_reason=pl.format("turn {} ({}): mixed-language, {} {} letters of {}", "turn",
                                                        "role", "second", "other", "total"))]
    # An assistant in another script than its user (user turns without non-ASCII are Latin when they have letters).
    user_main = na.filter(pl.col("role") == "user").group_by("row").agg(pl.col("main").mode().first().alias("umain"))
    asst = na.filter((pl.col("role") == "assistant") & pl.col("main").is_not_null() & (pl.col("main") != "latin")
                     & (pl.col("total") >= cfg.mixed_language_min_letters))
    asst = asst.join(user_main, on="row", how="left").with_columns(pl.col("umain").fill_null("latin"))
    out.append(asst.filter(pl.col("main") != pl.col("umain")).select(
        "_i", language_reason=pl.format("turn {} (assistant): answers in {} script, the user writes {}", "turn",
                                        "main", "umain")))
    return pl.concat(out).unique("_i", keep="first", maintain_order=True)


# ---------------------------------------------------------------- the suites
EXPECTATIONS_DIR = Path(__file__).resolve().parents[3] / "expectations"
# Flattened table -> the suite that states its rules (files in the expectations folder).
RULE_SUITES = {"dialogs": "dialogs_rules.json", "turns": "dialog_turns.json", "calls": "dialog_calls.json",
               "arg_formats": "dialog_arg_formats.json"}
_UNIQUE_TYPES = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")


def suite_parameters(cfg: RuleConfig, mostly: float = 0.9) -> dict[str, Any]:
    """Values for the ``{"$PARAMETER": ...}`` thresholds of the rule suites."""
    return {"mostly_rules": mostly, "max_response_chars": cfg.max_response_chars,
            "runaway_distinct_ratio": cfg.runaway_distinct_ratio, "runaway_repeats": cfg.runaway_repeats}


def load_rule_suites(expectations: str | Path | None = None) -> dict[str, dict]:
    """Table name -> suite JSON of the rule layer (``expectations``: a folder, default the repository's)."""
    from toolkiln.gxsuite import load_suite_json

    folder = Path(expectations) if expectations else EXPECTATIONS_DIR
    return {t: load_suite_json(folder / f) for t, f in RULE_SUITES.items()}


def expectation_check(meta: dict) -> str:
    """The ``ok_<check>`` column an expectation counts towards (``meta.check``, else ``ok_<meta.name>``)."""
    return meta.get("check") or f"ok_{meta.get('name', 'custom')}"


def _where(table: str, t: pl.DataFrame, i: int) -> str:
    """Where in the dialog a flagged table row is, for the reason."""
    if table == "turns":
        turn = t["turn"][i]
        return "system prompt" if turn < 0 else f"turn {turn} ({t['role'][i]})"
    if table == "calls":
        return f"turn {t['turn'][i]}: {t['name'][i]}"
    if table == "arg_formats":
        return f"turn {t['turn'][i]}: {t['path'][i]}={short(t['value'][i])}"
    return ""


# ---------------------------------------------------------------- the layer
@dataclass
class RuleLayer:
    """The rule layer's verdict: ``checked`` (input + ``ok_<check>`` columns, ``rule_reasons``, ``ok_rules``),
    the GX results per suite (batch summaries, :meth:`toolkiln.gxsuite.RowResult.to_dict`), the flattened
    tables GX read, and seconds per phase."""

    checked: pl.DataFrame
    gx: dict[str, Any]
    tables: dict[str, pl.DataFrame]
    timings: dict[str, float]
    checks: tuple[str, ...]


def rule_checks(df: pl.DataFrame, cfg: RuleConfig, caches: RuleCaches | None = None,
                timings: dict[str, float] | None = None, *, expectations: str | Path | None = None) -> pl.DataFrame:
    """``df`` plus one ``ok_<check>`` column per rule, ``rule_reasons`` (list[str]) and ``ok_rules``."""
    layer = rule_layer(df, cfg, caches, expectations=expectations)
    if timings is not None:
        timings.update(layer.timings)
    return layer.checked


def rule_layer(df: pl.DataFrame, cfg: RuleConfig, caches: RuleCaches | None = None, *,
               expectations: str | Path | dict[str, dict] | None = None, mostly: float = 0.9,
               data_docs_dir: str | Path | None = None, batch: Any = None) -> RuleLayer:
    """Flatten ``df`` into the tables the rule suites read, run GX over them, and map its unexpected rows back.

    A row fails check ``c`` when any expectation whose ``meta.check`` is ``c`` lists one of its table rows;
    the reason is the expectation's name and notes with the place (or, for a computed column, the detailed
    reasons the structural pass recorded). Timings: ``structural`` (the Python pass), ``text`` (polars
    features), ``gx`` (GX validation, data docs included when asked), ``assemble`` (reasons, columns).
    """
    # The pass allocates millions of small, acyclic objects (parsed JSON, reasons, compiled closures); the
    # cyclic GC would rescan the growing heap again and again for nothing (a quarter of the time). They are
    # freed by reference counting as usual; only the collector pauses until the temporaries are gone.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _rule_layer(df, cfg, caches, expectations, mostly, data_docs_dir, batch)
    finally:
        if gc_was_enabled:
            gc.enable()


def flatten(df: pl.DataFrame, cfg: RuleConfig, caches: RuleCaches | None = None, batch: Any = None
            ) -> tuple[dict[str, pl.DataFrame], list[list[tuple[str, str]]]]:
    """The flattened tables (``dialogs``, ``turns``, ``calls``, ``arg_formats``; each row carries its dialog's
    position as ``row``) and the computed problems per dialog. ``batch`` (one label per row, default 0)
    scopes the uniqueness rules: frames stacked under different labels do not duplicate each other."""
    missing = [c for c in DIALOG_SCHEMA if c not in df.columns]
    if missing:
        raise ValueError(f"dialogs: missing columns {missing}; expected the toolkiln.schema.DIALOG_SCHEMA columns")
    caches = caches or RuleCaches()
    n = df.height
    per_row: list[list[tuple[str, str]]] = []
    out = _Tables()
    cols = [pl.int_range(n, eager=True).to_list()] + [df[c].to_list() for c in _COLUMN_NAMES]
    for row in zip(*cols):
        r = _Row()
        try:
            _check_row(r, row, caches, out)
        except Exception as exc:  # noqa: BLE001 - a malformed row is a finding, never a crash mid-run
            r.bad("ok_fields", f"malformed row ({type(exc).__name__}: {exc})")
            while out.dialogs and out.dialogs[-1][0] == row[0]:
                out.dialogs.pop()
            out.dialogs.append((row[0], None, None, None, None, None, None, None, None, None))
        per_row.append(r.probs)
    derived = pl.DataFrame(out.dialogs, schema=DIALOG_DERIVED, orient="row")
    computed = {c: np.ones(n, dtype=bool) for c in COMPUTED_CHECKS}
    for i, probs in enumerate(per_row):
        for c, _ in probs:
            if c in computed:
                computed[c][i] = False
    dialogs = pl.concat([
        df.select("id", "type", "target_turn", "target", "n_candidates", "n_calls", "n_turns",
                  apis=pl.col("apis").list.unique().list.sort().list.join("\x1f"),
                  batch=pl.lit(0, pl.Int64) if batch is None else pl.Series(batch, dtype=pl.Int64)),
        derived, pl.DataFrame(computed)], how="horizontal")
    tables = {
        "dialogs": dialogs,
        "turns": pl.DataFrame(out.turns, schema=TURN_COLUMNS, orient="row"),
        "calls": pl.DataFrame(out.calls, schema=CALL_COLUMNS, orient="row"),
        "arg_formats": pl.DataFrame(out.arg_formats, schema=ARG_FORMAT_COLUMNS, orient="row"),
    }
    return tables, per_row


# Checks the structural pass computes in Python (compiled per-API schemas, walks over a turn sequence, parsing);
# the dialog table carries them as boolean columns and dialogs_rules.json asserts those columns.
COMPUTED_CHECKS = ("ok_fields", "ok_api_clarity", "ok_required_args", "ok_unknown_args", "ok_arg_types",
                   "ok_arg_enum", "ok_arg_range", "ok_arg_pattern", "ok_tool_responses", "ok_dependency", "ok_format")


def _rule_layer(df: pl.DataFrame, cfg: RuleConfig, caches: RuleCaches | None,
                expectations: str | Path | dict[str, dict] | None, mostly: float,
                data_docs_dir: str | Path | None, batch: Any) -> RuleLayer:
    from toolkiln.gxsuite import validate_rows

    t0 = time.perf_counter()
    suites = expectations if isinstance(expectations, dict) else load_rule_suites(expectations)
    tables, per_row = flatten(df, cfg, caches, batch)
    t1 = time.perf_counter()
    tables["turns"] = _text_features(tables["turns"], cfg)
    for row_i, reason in zip(*tables["turns"].filter(~pl.col("ok_language")).select("row", "language_reason")):
        per_row[row_i].append(("ok_language", reason))
    t2 = time.perf_counter()
    results = validate_rows({t: (tables[t], suites[t]) for t in suites}, parameters=suite_parameters(cfg, mostly),
                            data_docs_dir=data_docs_dir)
    t3 = time.perf_counter()

    n = df.height
    ids = df["id"].to_list()
    checks = list(RULE_CHECKS)
    fails: dict[str, np.ndarray] = {}
    reasons: list[list[str]] = [[] for _ in range(n)]
    for table, res in results.items():
        t = tables[table]
        row_of = t["row"].to_numpy()
        for e in res.expectations:
            if not e.unexpected_index:
                continue
            check = expectation_check(e.meta)
            if check not in checks:
                checks.append(check)
            bad = fails.setdefault(check, np.zeros(n, dtype=bool))
            positions = _later_copies(e, t) if e.type in _UNIQUE_TYPES else [(i, None) for i in e.unexpected_index]
            computed_col = e.kwargs.get("column") if e.meta.get("computed") else None
            done: set[int] = set()
            for i, first in positions:
                d = int(row_of[i])
                bad[d] = True
                if computed_col is not None:  # the structural pass recorded what exactly failed
                    if d not in done:
                        done.add(d)
                        got = [f"{c}: {m}" for c, m in per_row[d] if c == computed_col]
                        reasons[d].extend(got or [f"{check}: {e.meta.get('name')}: {e.meta.get('notes', '')}"])
                    continue
                where = _where(table, t, i)
                dup = f" (same as dialog {ids[int(row_of[first])]})" if first is not None else ""
                reasons[d].append(f"{check}: {e.meta.get('name', e.type)}{' at ' + where if where else ''}{dup}: "
                                  f"{e.meta.get('notes', '')}")
    ok_cols = [pl.Series(c, ~fails[c] if c in fails else np.ones(n, dtype=bool)) for c in checks]
    checked = df.with_columns(*ok_cols, pl.Series("rule_reasons", reasons, dtype=pl.List(pl.Utf8))).with_columns(
        ok_rules=pl.all_horizontal(checks) if checks else pl.lit(True))
    t4 = time.perf_counter()
    timings = {"structural": t1 - t0, "text": t2 - t1, "gx": t3 - t2, "assemble": t4 - t3}
    return RuleLayer(checked=checked, gx={v.suite: v.to_dict() for v in results.values()}, tables=tables,
                     timings=timings, checks=tuple(checks))


def _later_copies(e: Any, t: pl.DataFrame) -> list[tuple[int, int]]:
    """A uniqueness expectation lists every copy; the first keeps its place, later ones are (copy, first)."""
    cols = [e.kwargs["column"]] if "column" in e.kwargs else list(e.kwargs["column_list"])
    keys = list(zip(*(t[c].to_list() for c in cols)))
    first: dict[tuple, int] = {}
    out = []
    for i in sorted(e.unexpected_index):
        k = keys[i]
        if k in first:
            out.append((i, first[k]))
        else:
            first[k] = i
    return out
