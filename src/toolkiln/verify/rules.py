"""The rule layer of ToolACE's dual-layer verification (ToolACE §3.3, DESIGN.md §2.3).

A chain of named filters over dialog rows (``toolkiln.schema`` format): each
adds a boolean ``ok_<check>`` column, and every failure leaves a reason
``"ok_<check>: <what, where>"`` in the ``rule_reasons`` list column. The four
rule families of the paper:

* API definition clarity — ``ok_api_clarity`` (every offered tool passes
  :func:`toolkiln.synth.validate.check_api`);
* call executability — ``ok_call_name`` (no invented functions),
  ``ok_required_args``, ``ok_unknown_args``, ``ok_arg_types``, ``ok_arg_enum``,
  ``ok_arg_range``, ``ok_arg_pattern``, ``ok_arg_format`` (compiled checkers,
  :mod:`toolkiln.verify.argcheck`, one per API);
* dialog correctness — ``ok_fields`` (every column present, parseable and
  self-consistent), ``ok_nonempty``, ``ok_length`` (runaway: too long or
  degenerate repetition), ``ok_charset`` (control characters, U+FFFD,
  private-use), ``ok_language`` (mixed-language turns, or an assistant answering
  in another script than the user writes);
* consistency — ``ok_role_order``, ``ok_tool_responses`` (each tool turn follows
  a call and names a called API, each executed call gets its response),
  ``ok_dependency`` (dependent references resolve: every argument the formalised
  thinking cites from a tool result is that result's field, every quoted user
  text is in the cited turn; without thoughts, a dependent call must use a value
  from an earlier result),
  ``ok_format`` (the target is the call-list format the system prompt asks for
  and renders the target turn's calls), ``ok_dialog_type`` (the structure
  matches the declared type), ``ok_unique`` (no duplicate samples).

Structural checks need the parsed JSON and run in one Python pass with caches
(:class:`RuleCaches`): each distinct API text in the candidate lists is parsed,
clarity-checked and compiled once (pool APIs can be trusted for clarity, since
``synthesize_apis`` already gated them); text checks (length, repetition,
characters, scripts) are polars expressions over an exploded turn table;
duplicates are a polars ``is_first_distinct``. A row whose JSON cannot be parsed
fails ``ok_fields`` and is not evaluated further (its other checks read True).
"""

from __future__ import annotations

import gc
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from toolkiln.calls import format_calls
from toolkiln.evaluate.parse import parse_calls
from toolkiln.schema import DIALOG_SCHEMA, DIALOG_TYPES
from toolkiln.synth.validate import check_api
from toolkiln.verify.argcheck import CheckerCache, short
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


# One dialog = exchanges ``u (c t+)* (a | c$)``: a user turn answered by text, or by calls each followed by
# their tool results, optionally ending on an unanswered call (the supervised target of a call dialog).
ROLE_ORDER_RE = re.compile(r"(?:u(?:ct+)*(?:a|c$))+")
# C0/C1 controls other than tab/newline/CR, DEL, U+FFFD (a decoding failure), private use, noncharacters, BOM.
INVALID_CHARS = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\x{FFFD}\x{E000}-\x{F8FF}\x{FFFE}\x{FFFF}\x{FEFF}]"
_INVALID_PY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff\ufffe\uffff\ufeff]")
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

    checkers: CheckerCache = field(default_factory=CheckerCache)
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
    """Collects (check, reason) problems for one dialog."""

    __slots__ = ("probs",)

    def __init__(self) -> None:
        self.probs: list[tuple[str, str]] = []

    def bad(self, check: str, reason: str) -> None:
        self.probs.append((check, reason))


def _check_row(r: _Row, row: tuple, caches: RuleCaches, turns_out: list) -> str | None:
    """Structural checks of one row; appends (turn, role, content) for the text checks. Returns the dedup key."""
    (idx, id_, type_, domain, system, tools_s, msgs_s, tt, target, calls_s, apis, n_cand, n_calls, n_turns) = row
    nulls = [k for k, v in zip(("id", "type", "domain", "system", "tools", "messages", "target_turn", "target",
                                "calls", "apis", "n_candidates", "n_calls", "n_turns"), row[1:]) if v is None] \
        if None in row else None
    if nulls:
        r.bad("ok_fields", f"null fields {nulls}")
        return None
    if not id_:
        r.bad("ok_fields", "empty id")
    if type_ not in DIALOG_TYPES:
        r.bad("ok_fields", f"type {type_!r} not in {list(DIALOG_TYPES)}")
    try:
        msgs = _loads(msgs_s)
        calls_col = _loads(calls_s)
    except Exception as exc:  # noqa: BLE001
        r.bad("ok_fields", f"messages/calls: invalid JSON ({exc})")
        return None
    if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
        r.bad("ok_fields", "messages: must be a non-empty JSON list of turn objects")
        return None
    ts = parse_tools(tools_s, caches)
    if ts.error:
        r.bad("ok_fields", ts.error)
        return None
    for p in ts.clarity:
        r.bad("ok_api_clarity", p)
    turns_out.append((idx, -1, "system", system))

    roles = []
    derived_calls = []
    call_turns: list[int] = []
    tool_text_before: list[tuple[int, str]] = []  # tool contents seen so far (dependent references resolve against these)
    users = []
    for i, m in enumerate(msgs):
        role = m.get("role")
        content = m.get("content")
        if content is None:
            content = ""
        if not isinstance(content, str):
            r.bad("ok_fields", f"turn {i}: content must be a string")
            content = str(content)
        tcs = m.get("tool_calls")
        if role == "user":
            roles.append("u")
            users.append(content)
            if not content.strip():
                r.bad("ok_nonempty", f"turn {i} (user): empty")
        elif role == "assistant":
            if tcs:
                roles.append("c")
                if not isinstance(tcs, list):
                    r.bad("ok_fields", f"turn {i}: tool_calls must be a list")
                    tcs = []
                call_turns.append(i)
                for c in tcs:
                    if not isinstance(c, dict) or not isinstance(c.get("name"), str):
                        r.bad("ok_fields", f"turn {i}: a tool call needs a string 'name'")
                        continue
                    name, args = c["name"], c.get("arguments", {})
                    derived_calls.append({"turn": i, "name": name, "arguments": args})
                    api = ts.by_name.get(name)
                    if api is None:
                        r.bad("ok_call_name", f"turn {i}: {name!r} is not in the candidate list {sorted(ts.names)}")
                        continue
                    for check, reason in caches.checkers.get(name, api.get("parameters"))(args):
                        r.bad(check, f"turn {i}: {reason}")
                if NO_OTHER_TEXT_RE.search(system) and content.strip():
                    r.bad("ok_format", f"turn {i}: the system prompt allows no text beside the calls, got {short(content)}")
            else:
                roles.append("a")
                if not content.strip():
                    r.bad("ok_nonempty", f"turn {i} (assistant): neither text nor tool calls")
        elif role == "tool":
            roles.append("t")
            tool_text_before.append((i, content))
            if not content.strip():
                r.bad("ok_nonempty", f"turn {i} (tool): empty result")
            if not isinstance(m.get("name"), str) or not m.get("name"):
                r.bad("ok_tool_responses", f"turn {i}: tool response does not name the API it comes from")
        else:
            roles.append("?")
            r.bad("ok_role_order", f"turn {i}: unknown role {role!r}")
        turns_out.append((idx, i, role if role in ("user", "assistant", "tool") else "other", content))

    role_str = "".join(roles)
    if ROLE_ORDER_RE.fullmatch(role_str) is None:
        r.bad("ok_role_order", f"roles {role_str!r} (u=user, c=assistant call, a=assistant text, t=tool) do not "
                               "follow user -> (call -> tool results)* -> answer")
    _check_tool_responses(r, msgs, roles)

    # fields: the derived columns agree with the messages
    if not isinstance(tt, int) or not 0 <= tt < len(msgs):
        r.bad("ok_fields", f"target_turn {tt} outside [0, {len(msgs)})")
        target_msg = None
    else:
        target_msg = msgs[tt]
        if target_msg.get("role") != "assistant":
            r.bad("ok_fields", f"target_turn {tt} is a {target_msg.get('role')!r} turn, not an assistant turn")
    if calls_col != derived_calls:
        r.bad("ok_fields", f"calls column ({len(calls_col) if isinstance(calls_col, list) else '?'} calls) does not "
                           f"match the tool_calls in messages ({len(derived_calls)})")
    if set(apis) != {c["name"] for c in derived_calls}:
        r.bad("ok_fields", f"apis {sorted(apis)} != called APIs {sorted({c['name'] for c in derived_calls})}")
    if n_cand != len(ts.names) or n_calls != len(derived_calls) or n_turns != len(msgs):
        r.bad("ok_fields", f"counts (n_candidates, n_calls, n_turns)=({n_cand}, {n_calls}, {n_turns}) != "
                           f"({len(ts.names)}, {len(derived_calls)}, {len(msgs)})")

    target_calls = (target_msg.get("tool_calls") or []) if isinstance(target_msg, dict) else []
    _check_format(r, target, target_calls)
    _check_type(r, type_, tt, target, target_calls, call_turns)
    tool_sourced = _check_references(r, msgs, call_turns)
    if type_ == "dependent" and target_calls and isinstance(tt, int) and not tool_sourced:
        # No formalised thinking to follow: some value of the dependent call must come from an earlier result.
        earlier = " ".join(c for i, c in tool_text_before if i < tt)
        values = [v for c in target_calls if isinstance(c, dict) for v in _flat_values(c.get("arguments", {}))]
        if not any(_in_text(v, earlier) for v in values):
            r.bad("ok_dependency", f"turn {tt}: no argument value of the dependent call appears in an earlier tool "
                                   f"result (values {short(values, 60)})")
    # Dedup key: what a sample teaches — the user's words and the supervised answer.
    return " ".join(" ".join(u.lower().split()) for u in users) + "\x1f" + (target or "")


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


def _check_type(r: _Row, type_: str, tt: Any, target: str, target_calls: list, call_turns: list[int]) -> None:
    n = len(target_calls)
    if type_ == "single" and n != 1:
        r.bad("ok_dialog_type", f"single dialog whose target turn makes {n} calls")
    elif type_ == "parallel" and n < 2:
        r.bad("ok_dialog_type", f"parallel dialog whose target turn makes {n} call(s)")
    elif type_ == "dependent" and (n < 1 or not call_turns or not isinstance(tt, int) or call_turns[0] >= tt):
        r.bad("ok_dialog_type", "dependent dialog whose target call does not follow an earlier call's result")
    elif type_ in ("non_tool", "clarification") and (n or target):
        r.bad("ok_dialog_type", f"{type_} dialog whose target turn makes {n} call(s) (expected a text answer)")


def _text_checks(turns: pl.DataFrame, cfg: RuleConfig) -> pl.DataFrame:
    """Per-turn text findings as (row, check, reason); the vectorised half of the rule layer."""
    content = pl.col("content")
    prose = pl.col("role").is_in(["user", "assistant"])
    findings = []
    # Runaway: too long, or a long turn made of few distinct tokens (generation that did not stop).
    long_ = turns.filter(prose & (content.str.len_chars() > cfg.max_response_chars))
    findings.append(long_.select("row", pl.lit("ok_length").alias("check"),
                                 pl.format("turn {} ({}): {} characters > {}", "turn", "role",
                                           content.str.len_chars(), pl.lit(cfg.max_response_chars)).alias("reason")))
    cand = turns.filter(prose & (content.str.len_chars() >= 2 * cfg.runaway_min_tokens)).with_columns(
        toks=content.str.split(" ").list.eval(pl.element().filter(pl.element() != "")))
    cand = cand.with_columns(n=pl.col("toks").list.len(), u=pl.col("toks").list.n_unique())
    rep = cand.filter((pl.col("n") >= cfg.runaway_min_tokens) & (pl.col("u") < pl.col("n") * cfg.runaway_distinct_ratio))
    findings.append(rep.select("row", pl.lit("ok_length").alias("check"),
                               pl.format("turn {} ({}): runaway repetition, {} distinct of {} tokens", "turn", "role",
                                         "u", "n").alias("reason")))
    # A generation stuck in a loop repeats a sentence; a prose turn practically never says one sentence 5 times.
    sent = turns.filter(prose & (content.str.len_chars() >= 8 * cfg.runaway_repeats)).with_columns(
        top=content.str.extract_all(SENTENCE).list.eval(
            pl.element().str.strip_chars().filter(pl.element().str.contains(r"\p{L}")).unique_counts().max()
        ).list.first())
    loops = sent.filter(pl.col("top") >= cfg.runaway_repeats)
    findings.append(loops.select("row", pl.lit("ok_length").alias("check"),
                                 pl.format("turn {} ({}): runaway repetition, one sentence {} times", "turn", "role",
                                           "top").alias("reason")))
    bad = turns.filter(content.str.contains(INVALID_CHARS))
    if bad.height:
        first = [f"U+{ord(_INVALID_PY.search(c).group()):04X}" for c in bad["content"]]
        findings.append(bad.select("row", pl.lit("ok_charset").alias("check"),
                                   pl.format("turn {} ({}): invalid character {}", "turn", "role",
                                             pl.Series(first)).alias("reason")))
    findings.append(_language(turns.filter(prose), cfg))
    return pl.concat([f.select("row", "check", "reason") for f in findings])


def _language(prose: pl.DataFrame, cfg: RuleConfig) -> pl.DataFrame:
    # Pure-ASCII turns are Latin or letterless: only the (rare) non-ASCII ones pay for script counting.
    na = prose.filter(pl.col("content").str.contains(r"[^\x00-\x7F]"))
    empty = pl.DataFrame(schema={"row": pl.Int64, "check": pl.Utf8, "reason": pl.Utf8})
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
    out = [mixed.select("row", pl.lit("ok_language").alias("check"),
                        pl.format("turn {} ({}): mixed-language, {} {} letters of {}", "turn", "role", "second",
                                  "other", "total").alias("reason"))]
    # An assistant in another script than its user (user turns without non-ASCII are Latin when they have letters).
    user_main = na.filter(pl.col("role") == "user").group_by("row").agg(pl.col("main").mode().first().alias("umain"))
    asst = na.filter((pl.col("role") == "assistant") & pl.col("main").is_not_null() & (pl.col("main") != "latin")
                     & (pl.col("total") >= cfg.mixed_language_min_letters))
    asst = asst.join(user_main, on="row", how="left").with_columns(pl.col("umain").fill_null("latin"))
    out.append(asst.filter(pl.col("main") != pl.col("umain")).select(
        "row", pl.lit("ok_language").alias("check"),
        pl.format("turn {} (assistant): answers in {} script, the user writes {}", "turn", "main", "umain").alias("reason")))
    return pl.concat(out)


def rule_checks(df: pl.DataFrame, cfg: RuleConfig, caches: RuleCaches | None = None,
                timings: dict[str, float] | None = None) -> pl.DataFrame:
    """``df`` plus one ``ok_<check>`` column per rule, ``rule_reasons`` (list[str]) and ``ok_rules``.

    ``timings`` (optional) receives seconds per phase: ``structural`` (the Python pass), ``text``
    (polars text checks) and ``assemble`` (duplicates, columns).
    """
    # The pass allocates millions of small, acyclic objects (parsed JSON, reasons, compiled closures); the
    # cyclic GC would rescan the growing heap again and again for nothing (a quarter of the time). They are
    # freed by reference counting as usual; only the collector pauses until the temporaries are gone.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _rule_checks(df, cfg, caches, timings)
    finally:
        if gc_was_enabled:
            gc.enable()


def _rule_checks(df: pl.DataFrame, cfg: RuleConfig, caches: RuleCaches | None,
                 timings: dict[str, float] | None) -> pl.DataFrame:
    t0 = time.perf_counter()
    missing = [c for c in DIALOG_SCHEMA if c not in df.columns]
    if missing:
        raise ValueError(f"dialogs: missing columns {missing}; expected the toolkiln.schema.DIALOG_SCHEMA columns")
    caches = caches or RuleCaches()
    n = df.height
    per_row: list[list[tuple[str, str]]] = []
    keys: list[str | None] = []
    turns: list[tuple] = []
    cols = [pl.int_range(n, eager=True).to_list()] + [df[c].to_list() for c in (
        "id", "type", "domain", "system", "tools", "messages", "target_turn", "target", "calls", "apis",
        "n_candidates", "n_calls", "n_turns")]
    for row in zip(*cols):
        r = _Row()
        try:
            keys.append(_check_row(r, row, caches, turns))
        except Exception as exc:  # noqa: BLE001 - a malformed row is a finding, never a crash mid-run
            r.bad("ok_fields", f"malformed row ({type(exc).__name__}: {exc})")
            keys.append(None)
        per_row.append(r.probs)

    t1 = time.perf_counter()
    turn_df = pl.DataFrame(turns, schema={"row": pl.Int64, "turn": pl.Int64, "role": pl.Utf8, "content": pl.Utf8},
                           orient="row")
    text = _text_checks(turn_df, cfg) if turn_df.height else pl.DataFrame(
        schema={"row": pl.Int64, "check": pl.Utf8, "reason": pl.Utf8})
    for row_i, check, reason in text.iter_rows():
        per_row[row_i].append((check, reason))

    t2 = time.perf_counter()
    dup = pl.DataFrame({"k": pl.Series(keys, dtype=pl.Utf8), "id": df["id"]}).with_row_index("row").with_columns(
        first_k=pl.col("k").is_first_distinct() | pl.col("k").is_null(),
        first_id=pl.col("id").is_first_distinct() | pl.col("id").is_null(),
        orig=pl.col("id").first().over("k")).filter(~pl.col("first_k") | ~pl.col("first_id"))
    for i, fk, orig, id_ in zip(dup["row"], dup["first_k"], dup["orig"], dup["id"]):
        per_row[i].append(("ok_unique", f"duplicate of dialog {orig} (same user turns and target)" if not fk
                           else f"id {id_} already used by an earlier row"))

    # Most rows pass everything: build the columns from the (row, check) failures only.
    ok = np.ones((len(RULE_CHECKS), n), dtype=bool)
    flat_rows, flat_reasons = [], []
    for i, probs in enumerate(per_row):
        for c, m in probs:
            ok[CHECK_INDEX[c], i] = False
            flat_rows.append(i)
            flat_reasons.append(f"{c}: {m}")
    grouped = pl.DataFrame({"row": pl.Series(flat_rows, dtype=pl.UInt32), "r": pl.Series(flat_reasons, dtype=pl.Utf8)}
                           ).group_by("row", maintain_order=True).agg(pl.col("r").alias("rule_reasons"))
    reasons = pl.DataFrame({"row": pl.int_range(n, eager=True, dtype=pl.UInt32)}).join(
        grouped, on="row", how="left", maintain_order="left")["rule_reasons"].fill_null(pl.lit([], dtype=pl.List(pl.Utf8)))
    out = [pl.Series(c, ok[j]) for j, c in enumerate(RULE_CHECKS)]
    result = df.with_columns(*out, reasons).with_columns(ok_rules=pl.all_horizontal(list(RULE_CHECKS)))
    if timings is not None:
        timings.update(structural=t1 - t0, text=t2 - t1, assemble=time.perf_counter() - t2)
    return result
