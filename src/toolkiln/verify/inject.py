"""Error injection: labelled corruptions of clean dialogs (after ToolACE §3.3).

ToolACE reports its verifier's pass rates but not what it catches. Here every
error kind is a function that takes one clean dialog row and returns a corrupted
copy (or None when the kind does not apply to that dialog, e.g. ``bad_enum`` on
a call whose API has no enum parameter). Each corruption changes exactly the
thing it names: derived columns (``calls``, ``apis``, ``target``, counts) are
re-derived from the corrupted messages unless the kind is about them, so a
wrong-function call is not also caught for a stale ``calls`` column.

``KINDS`` maps each kind to the layer expected to catch it: ``rule`` kinds are
violations the rule layer can decide exactly (the ≥ 99 % recall bar applies);
``model`` kinds are schema-valid and need judgement (hallucinated values,
wrong-intent calls, implausible tool results) and are reported as measured.
"""

from __future__ import annotations

import copy
import json
import random
import re
from typing import Any, Callable

import polars as pl

from toolkiln.calls import format_calls
from toolkiln.saferegex import BadPattern, PatternTimeout, compile_guarded
from toolkiln.schema import DIALOG_SCHEMA, dialogs_frame
from toolkiln.argcheck import compile_parameters, json_type
from toolkiln.verify.model import Context, grounded

Row = dict[str, Any]

KINDS: dict[str, str] = {
    "wrong_function": "rule", "invented_function": "rule", "missing_required": "rule", "unknown_argument": "rule",
    "wrong_type": "rule", "bad_enum": "rule", "out_of_range": "rule", "bad_pattern": "rule", "bad_format": "rule",
    "role_order_break": "rule", "orphan_tool_response": "rule", "tool_name_mismatch": "rule", "duplicate": "rule",
    "empty_response": "rule", "runaway_response": "rule", "invalid_characters": "rule", "mixed_language": "rule",
    "format_break": "rule", "field_inconsistency": "rule", "type_mismatch": "rule", "broken_dependency": "rule",
    "hallucinated_value": "model", "wrong_intent": "model", "bad_tool_response": "model",
}

_BAD_FORMATS = {"date": ["2025-02-30", "31/12/2025", "next friday"], "date-time": ["2025-13-01T10:00:00", "tomorrow 9am"],
                "time": ["25:61", "noon"], "email": ["john.doe(at)mail", "not an email"], "uri": ["www example com", "notaurl"],
                "url": ["www example com", "notaurl"], "ipv4": ["256.1.1.1", "10.0.0"], "ipv6": ["2001::db8::1"],
                "uuid": ["1234-not-a-uuid"], "hostname": ["bad host!.com", "-lead.example"]}
_FAKE = ["Reykjavik", "Montevideo", "Quartz Lane 12", "Zanzibar", "Baltimore", "Nakuru", "Tromso", "Valparaiso",
         "Kazimierz Tower", "Orinoco Delta"]
_CJK = "我们明天早上九点在车站见面，请不要迟到。"


# ---------------------------------------------------------------- helpers
def _load(row: Row) -> tuple[list[dict], dict[str, dict]]:
    msgs = json.loads(row["messages"])
    tools = {t["name"]: t for t in json.loads(row["tools"])}
    return msgs, tools


def _resync(row: Row, msgs: list[dict], *, target_turn: int | None = None, keep_target: bool = False) -> Row:
    """Re-derive the columns that follow from messages, so only the injected error remains."""
    out = dict(row)
    tt = row["target_turn"] if target_turn is None else target_turn
    calls = [{"turn": i, "name": c["name"], "arguments": c.get("arguments", {})}
             for i, m in enumerate(msgs) for c in (m.get("tool_calls") or [])]
    out["messages"] = json.dumps(msgs, ensure_ascii=False)
    out["calls"] = json.dumps(calls, ensure_ascii=False)
    out["apis"] = sorted({c["name"] for c in calls})
    out["n_calls"], out["n_turns"], out["target_turn"] = len(calls), len(msgs), tt
    if not keep_target and 0 <= tt < len(msgs):
        tcs = msgs[tt].get("tool_calls")
        out["target"] = format_calls(tcs) if tcs else ""
    return out


def _target_call(msgs: list[dict], row: Row, rng: random.Random) -> tuple[int, dict] | None:
    tt = row["target_turn"]
    if 0 <= tt < len(msgs) and msgs[tt].get("tool_calls"):
        return tt, rng.choice(msgs[tt]["tool_calls"])
    turns = [i for i, m in enumerate(msgs) if m.get("tool_calls")]
    if not turns:
        return None
    t = rng.choice(turns)
    return t, rng.choice(msgs[t]["tool_calls"])


def _props(tools: dict, name: str) -> tuple[dict, list]:
    p = (tools.get(name) or {}).get("parameters") or {}
    return p.get("properties") or {}, p.get("required") or []


def _rename_results(msgs: list[dict], turn: int, old: str, new: str) -> None:
    """The tool agent answers the function that was actually called."""
    for m in msgs[turn + 1:]:
        if m.get("role") != "tool":
            break
        if m.get("name") == old:
            m["name"] = new
            return


def _executable(tools: dict, name: str, args: dict) -> bool:
    api = tools.get(name)
    return api is not None and not compile_parameters(name, api.get("parameters"))(args)


def _example_value(schema: Any) -> Any:
    """A small value valid for a returns schema, so a swapped call gets a plausible result of its own."""
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    t = json_type(schema)
    if t == "object":
        return {k: _example_value(v) for k, v in (schema.get("properties") or {}).items()}
    if t == "array":
        return [_example_value(schema.get("items"))] * max(1, int(schema.get("minItems") or 1))
    if t in ("integer", "number"):
        lo = schema.get("minimum", 1)
        return int(lo) if t == "integer" else float(lo)
    if t == "boolean":
        return True
    if t == "string":
        return {"date": "2025-01-01", "date-time": "2025-01-01T00:00:00Z", "email": "a@example.com",
                "uri": "https://example.com"}.get(schema.get("format"), "ok")
    return None


def _last_text_turn(msgs: list[dict], roles=("assistant",)) -> int | None:
    idx = [i for i, m in enumerate(msgs) if m.get("role") in roles and not m.get("tool_calls") and m.get("content")]
    return idx[-1] if idx else None


# ---------------------------------------------------------------- executability kinds
def wrong_function(row: Row, rng: random.Random) -> Row | None:
    msgs, tools = _load(row)
    hit = _target_call(msgs, row, rng)
    if hit is None:
        return None
    t, call = hit
    args = call.get("arguments") or {}
    # "Wrong for these arguments": another candidate whose schema does not accept the call as made.
    others = [n for n in tools if n != call["name"] and not _executable(tools, n, args)]
    if not others:
        return None
    new = rng.choice(others)
    _rename_results(msgs, t, call["name"], new)
    call["name"] = new
    return _resync(row, msgs)


def invented_function(row: Row, rng: random.Random) -> Row | None:
    msgs, tools = _load(row)
    hit = _target_call(msgs, row, rng)
    if hit is None:
        return None
    t, call = hit
    old = call["name"]
    head, _, tail = old.rpartition(".")
    variants = [f"{old}_v2", (f"{head}." if head else "") + re.sub(r"^(get|search|list|find)_", "fetch_", tail),
                (f"{head}." if head else "") + tail.replace("_", ""), f"{tail}_api"]
    new = next((v for v in rng.sample(variants, len(variants)) if v not in tools and v != old), None)
    if new is None:
        return None
    _rename_results(msgs, t, old, new)
    call["name"] = new
    return _resync(row, msgs)


def missing_required(row: Row, rng: random.Random) -> Row | None:
    msgs, tools = _load(row)
    hit = _target_call(msgs, row, rng)
    if hit is None:
        return None
    _, call = hit
    _, req = _props(tools, call["name"])
    present = [r for r in req if r in (call.get("arguments") or {})]
    if not present:
        return None
    del call["arguments"][rng.choice(present)]
    return _resync(row, msgs)


def unknown_argument(row: Row, rng: random.Random) -> Row | None:
    msgs, tools = _load(row)
    hit = _target_call(msgs, row, rng)
    if hit is None:
        return None
    _, call = hit
    props, _ = _props(tools, call["name"])
    name = rng.choice(["verbose", "lang", "max_items", "include_details", "session_token", "priority"])
    if name in props:
        name += "_extra"
    call.setdefault("arguments", {})[name] = rng.choice([True, "high", 10, "en"])
    return _resync(row, msgs)


def _wrong_value(t: str | None, v: Any, rng: random.Random) -> Any:
    if t == "string":
        return rng.choice([42, True, [str(v)], {"value": v}])
    if t in ("integer", "number"):
        return rng.choice([str(v), f"{v} units", True, [v]]) if t == "number" else rng.choice([str(v), float(v) + 0.5, True])
    if t == "boolean":
        return rng.choice(["yes", 1, "true"])
    if t == "array":
        return rng.choice([",".join(map(str, v)) if isinstance(v, list) else "a,b", 3])
    if t == "object":
        return rng.choice([json.dumps(v), [v]])
    return None


def wrong_type(row: Row, rng: random.Random) -> Row | None:
    msgs, tools = _load(row)
    hit = _target_call(msgs, row, rng)
    if hit is None:
        return None
    _, call = hit
    props, _ = _props(tools, call["name"])
    typed = [k for k in (call.get("arguments") or {}) if json_type(props.get(k) or {}) is not None]
    if not typed:
        return None
    k = rng.choice(typed)
    call["arguments"][k] = _wrong_value(json_type(props[k]), call["arguments"][k], rng)
    return _resync(row, msgs)


def _pick_param(row: Row, rng: random.Random, want: Callable[[dict], bool]):
    msgs, tools = _load(row)
    hit = _target_call(msgs, row, rng)
    if hit is None:
        return None
    _, call = hit
    props, _ = _props(tools, call["name"])
    keys = [k for k, s in props.items() if isinstance(s, dict) and want(s)]
    if not keys:
        return None
    return msgs, call, rng.choice(keys), props


def bad_enum(row: Row, rng: random.Random) -> Row | None:
    got = _pick_param(row, rng, lambda s: isinstance(s.get("enum"), list) and s.get("enum")
                      and all(isinstance(e, str) for e in s["enum"]))
    if got is None:
        return None
    msgs, call, k, props = got
    enum = props[k]["enum"]
    value = rng.choice(["unknown", "other", "all", "default", "any"])
    if value in enum:
        value = value + "_x"
    call.setdefault("arguments", {})[k] = value if rng.random() < 0.5 else str(rng.choice(enum)).upper() + "S"
    if call["arguments"][k] in enum:
        call["arguments"][k] = value
    return _resync(row, msgs)


def out_of_range(row: Row, rng: random.Random) -> Row | None:
    def bounded(s):
        return any(isinstance(s.get(b), (int, float)) and not isinstance(s.get(b), bool)
                   for b in ("minimum", "maximum", "maxLength", "maxItems"))
    got = _pick_param(row, rng, bounded)
    if got is None:
        return None
    msgs, call, k, props = got
    s = props[k]
    t = json_type(s)
    if t in ("integer", "number") and isinstance(s.get("maximum"), (int, float)) and (rng.random() < 0.5 or "minimum" not in s):
        v = s["maximum"] + rng.choice([1, 10, 1000])
    elif t in ("integer", "number") and isinstance(s.get("minimum"), (int, float)):
        v = s["minimum"] - rng.choice([1, 5, 100])
    elif t == "string" and isinstance(s.get("maxLength"), int):
        v = "x" * (s["maxLength"] + rng.randint(1, 20))
    elif t == "array" and isinstance(s.get("maxItems"), int):
        v = ["a"] * (s["maxItems"] + 1)
    else:
        return None
    call.setdefault("arguments", {})[k] = int(v) if t == "integer" else v
    return _resync(row, msgs)


def bad_pattern(row: Row, rng: random.Random) -> Row | None:
    got = _pick_param(row, rng, lambda s: isinstance(s.get("pattern"), str))
    if got is None:
        return None
    msgs, call, k, props = got
    try:
        pattern = compile_guarded(props[k]["pattern"])
    except BadPattern:
        return None
    base = str((call.get("arguments") or {}).get(k, "value"))
    for cand in (base.lower() + "!", " " + base + " #", base[::-1] + "??", "@@" + base, "--"):
        try:
            if not pattern.search(cand):
                call.setdefault("arguments", {})[k] = cand
                return _resync(row, msgs)
        except PatternTimeout:
            return None
    return None


def bad_format(row: Row, rng: random.Random) -> Row | None:
    got = _pick_param(row, rng, lambda s: s.get("format") in _BAD_FORMATS)
    if got is None:
        return None
    msgs, call, k, props = got
    call.setdefault("arguments", {})[k] = rng.choice(_BAD_FORMATS[props[k]["format"]])
    return _resync(row, msgs)


# ---------------------------------------------------------------- dialog kinds
def role_order_break(row: Row, rng: random.Random) -> Row | None:
    msgs, _ = _load(row)
    tt = row["target_turn"]
    how = rng.choice(["swap", "drop_user", "double_assistant"])
    if how == "swap" and len(msgs) >= 2 and msgs[0].get("role") == "user":
        msgs[0], msgs[1] = msgs[1], msgs[0]
        tt = {0: 1, 1: 0}.get(tt, tt)
    elif how == "drop_user" and msgs[0].get("role") == "user" and tt > 0:
        del msgs[0]
        tt -= 1
    else:
        last = _last_text_turn(msgs)
        if last is None:
            return None
        msgs.insert(last + 1, {"role": "assistant", "content": msgs[last]["content"]})
    return _resync(row, msgs, target_turn=tt)


def orphan_tool_response(row: Row, rng: random.Random) -> Row | None:
    msgs, tools = _load(row)
    tool_turns = [m for m in msgs if m.get("role") == "tool"]
    orphan = copy.deepcopy(rng.choice(tool_turns)) if tool_turns else {
        "role": "tool", "name": rng.choice(sorted(tools)), "content": json.dumps({"status": "ok"})}
    # Right after a user turn or an assistant text turn: no call precedes it.
    spots = [i + 1 for i, m in enumerate(msgs) if m.get("role") == "user" or
             (m.get("role") == "assistant" and not m.get("tool_calls"))]
    at = rng.choice(spots)
    msgs.insert(at, orphan)
    tt = row["target_turn"] + (1 if at <= row["target_turn"] else 0)
    return _resync(row, msgs, target_turn=tt)


def tool_name_mismatch(row: Row, rng: random.Random) -> Row | None:
    msgs, tools = _load(row)
    idx = [i for i, m in enumerate(msgs) if m.get("role") == "tool"]
    if not idx:
        return None
    i = rng.choice(idx)
    others = [n for n in tools if n != msgs[i].get("name")]
    msgs[i]["name"] = rng.choice(others) if others else msgs[i]["name"] + "_other"
    return _resync(row, msgs)


def empty_response(row: Row, rng: random.Random) -> Row | None:
    msgs, _ = _load(row)
    i = _last_text_turn(msgs, ("assistant", "user"))
    if i is None:
        return None
    msgs[i]["content"] = rng.choice(["", "   ", "\n"])
    return _resync(row, msgs)


def runaway_response(row: Row, rng: random.Random) -> Row | None:
    msgs, _ = _load(row)
    i = _last_text_turn(msgs)
    if i is None:
        return None
    text = msgs[i]["content"]
    if rng.random() < 0.5:
        msgs[i]["content"] = text + " " + " ".join([text.split(".")[0].strip() + "."] * rng.randint(40, 120))
    else:
        msgs[i]["content"] = text + " " + "the " * rng.randint(1200, 3000)
    return _resync(row, msgs)


def invalid_characters(row: Row, rng: random.Random) -> Row | None:
    msgs, _ = _load(row)
    i = _last_text_turn(msgs, ("assistant", "user"))
    if i is None:
        return None
    text = msgs[i]["content"]
    at = rng.randrange(len(text) + 1)
    msgs[i]["content"] = text[:at] + rng.choice(["\x00", "\ufffd", "\x1b[0m", "\x07", "\ue000", "\ufeff"]) + text[at:]
    return _resync(row, msgs)


def mixed_language(row: Row, rng: random.Random) -> Row | None:
    msgs, _ = _load(row)
    i = _last_text_turn(msgs)
    if i is None:
        return None
    text = msgs[i]["content"]
    msgs[i]["content"] = (text + " " + _CJK) if rng.random() < 0.5 else (_CJK + text)
    return _resync(row, msgs)


def format_break(row: Row, rng: random.Random) -> Row | None:
    if not row["target"]:
        return None
    msgs, _ = _load(row)
    calls = msgs[row["target_turn"]]["tool_calls"]
    how = rng.choice(["json", "unclosed", "positional", "no_list"])
    out = dict(row)
    if how == "json":
        out["target"] = json.dumps([{"name": c["name"], "arguments": c.get("arguments", {})} for c in calls])
    elif how == "unclosed":
        out["target"] = row["target"][:-2]
    elif how == "positional" and any(c.get("arguments") for c in calls):
        out["target"] = "[" + ", ".join(f"{c['name']}({', '.join(repr(v) for v in c.get('arguments', {}).values())})"
                                        for c in calls) + "]"
    else:
        out["target"] = row["target"][1:-1] + " # done"
    return out


def field_inconsistency(row: Row, rng: random.Random) -> Row | None:
    out = dict(row)
    how = rng.choice(["n_calls", "apis", "target_turn", "n_turns", "calls"])
    if how == "n_calls":
        out["n_calls"] = row["n_calls"] + 1
    elif how == "apis":
        out["apis"] = sorted(set(row["apis"]) | {"unrelated.api"})
    elif how == "target_turn":
        out["target_turn"] = 0  # a user turn
    elif how == "n_turns":
        out["n_turns"] = row["n_turns"] - 1
    else:
        calls = json.loads(row["calls"])
        if not calls:
            out["n_candidates"] = row["n_candidates"] + 2
        else:
            calls.pop()
            out["calls"] = json.dumps(calls)
    return out


def type_mismatch(row: Row, rng: random.Random) -> Row | None:
    wrong = {"single": ["parallel", "non_tool"], "parallel": ["single", "clarification"], "dependent": ["non_tool"],
             "non_tool": ["single", "parallel"], "clarification": ["single", "dependent"]}.get(row["type"])
    if not wrong:
        return None
    return {**row, "type": rng.choice(wrong)}


def broken_dependency(row: Row, rng: random.Random) -> Row | None:
    if row["type"] != "dependent":
        return None
    msgs, tools = _load(row)
    tt = row["target_turn"]
    earlier = " ".join(m.get("content", "") for m in msgs[:tt] if m.get("role") == "tool")
    changed = False
    for c in msgs[tt].get("tool_calls") or []:
        props, _ = _props(tools, c["name"])
        for k, v in list((c.get("arguments") or {}).items()):
            s = props.get(k) or {}
            if isinstance(v, (int, float)) and not isinstance(v, bool) and str(v) in earlier:
                c["arguments"][k] = int(v) + 7919 if isinstance(v, int) else v + 7919.5
                changed = True
            elif isinstance(v, str) and v and v in earlier and "enum" not in s:
                c["arguments"][k] = v[::-1] if v[::-1] != v else v + "x"
                changed = True
    return _resync(row, msgs) if changed else None


# ---------------------------------------------------------------- model-layer kinds
def hallucinated_value(row: Row, rng: random.Random) -> Row | None:
    msgs, tools = _load(row)
    hit = _target_call(msgs, row, rng)
    if hit is None:
        return None
    t, call = hit
    props, _ = _props(tools, call["name"])
    ctx = Context.of([row["system"] or ""] + [m.get("content", "") for m in msgs[:t] if m.get("role") in ("user", "tool")])
    keys = list((call.get("arguments") or {}))
    rng.shuffle(keys)
    for k in keys:
        s = props.get(k) or {}
        if "enum" in s:
            continue
        v = call["arguments"][k]
        cands: list = []
        if isinstance(v, str) and not s.get("format") and not s.get("pattern"):
            cands = rng.sample(_FAKE, len(_FAKE))
        elif isinstance(v, int) and not isinstance(v, bool):
            lo, hi = s.get("minimum", 1), s.get("maximum", max(v * 3, 97))
            cands = [rng.randint(int(lo), int(hi)) for _ in range(20)]
        elif isinstance(v, float):
            cands = [round(rng.uniform(s.get("minimum", 0.5), s.get("maximum", v * 3 + 9)), 2) for _ in range(20)]
        for c in cands:
            trial = {**call["arguments"], k: c}
            if c != v and not grounded(c, ctx, s) and _executable(tools, call["name"], trial):
                call["arguments"][k] = c
                return _resync(row, msgs)
    return None


def wrong_intent(row: Row, rng: random.Random) -> Row | None:
    """A schema-valid call to another candidate, built from the user's own values (so only the intent is wrong)."""
    msgs, tools = _load(row)
    tt = row["target_turn"]
    if not (0 <= tt < len(msgs)) or len(msgs[tt].get("tool_calls") or []) != 1:
        return None
    call = msgs[tt]["tool_calls"][0]
    values = list((call.get("arguments") or {}).values())
    others = [n for n in tools if n != call["name"] and n not in row["apis"]]
    rng.shuffle(others)
    for n in others:
        props, req = _props(tools, n)
        args, pool = {}, list(values)
        for p in req:
            s = props.get(p) or {}
            fits = compile_parameters(n, {"type": "object", "properties": {p: s}})
            pick = next((v for v in pool if not fits({p: v})), None)
            if pick is None:
                break
            args[p] = pick
            pool.remove(pick)
        else:
            if _executable(tools, n, args):
                for m in msgs[tt + 1:]:
                    if m.get("role") != "tool":
                        break
                    if m.get("name") == call["name"]:
                        m["name"] = n
                        m["content"] = json.dumps(_example_value(tools[n].get("returns")))
                        break
                call["name"], call["arguments"] = n, args
                return _resync(row, msgs)
    return None


def bad_tool_response(row: Row, rng: random.Random) -> Row | None:
    msgs, tools = _load(row)
    idx = [i for i, m in enumerate(msgs) if m.get("role") == "tool"
           and isinstance((tools.get(m.get("name")) or {}).get("returns"), dict)
           and (tools[m["name"]]["returns"].get("required") or tools[m["name"]]["returns"].get("properties"))]
    if not idx:
        return None
    i = rng.choice(idx)
    rets = tools[msgs[i]["name"]]["returns"]
    try:
        value = json.loads(msgs[i]["content"])
    except json.JSONDecodeError:
        return None
    how = rng.choice(["drop_required", "wrong_type", "not_json"])
    req = [k for k in rets.get("required") or [] if isinstance(value, dict) and k in value]
    if how == "drop_required" and req:
        del value[rng.choice(req)]
        msgs[i]["content"] = json.dumps(value)
    elif how == "wrong_type" and isinstance(value, dict) and value:
        k = rng.choice(list(value))
        value[k] = _wrong_value(json_type((rets.get("properties") or {}).get(k) or {}) or "string", value[k], rng)
        msgs[i]["content"] = json.dumps(value)
    else:
        msgs[i]["content"] = "Sorry, the service returned an unexpected page: <html>503</html>"
    return _resync(row, msgs)


CORRUPTORS: dict[str, Callable[[Row, random.Random], Row | None]] = {
    "wrong_function": wrong_function, "invented_function": invented_function, "missing_required": missing_required,
    "unknown_argument": unknown_argument, "wrong_type": wrong_type, "bad_enum": bad_enum, "out_of_range": out_of_range,
    "bad_pattern": bad_pattern, "bad_format": bad_format, "role_order_break": role_order_break,
    "orphan_tool_response": orphan_tool_response, "tool_name_mismatch": tool_name_mismatch,
    "empty_response": empty_response, "runaway_response": runaway_response, "invalid_characters": invalid_characters,
    "mixed_language": mixed_language, "format_break": format_break, "field_inconsistency": field_inconsistency,
    "type_mismatch": type_mismatch, "broken_dependency": broken_dependency, "hallucinated_value": hallucinated_value,
    "wrong_intent": wrong_intent, "bad_tool_response": bad_tool_response,
}
assert set(CORRUPTORS) | {"duplicate"} == set(KINDS)


def inject(clean: pl.DataFrame, *, per_kind: int, seed: int, kinds: tuple[str, ...] | None = None
           ) -> tuple[pl.DataFrame, set[str]]:
    """Corrupted dialogs (columns of DIALOG_SCHEMA plus ``kind`` and ``source_id``) and the ids they replace.

    Each kind draws up to ``per_kind`` distinct clean rows it applies to (independently of the other kinds,
    so evaluate one kind per frame: two corruptions of one row may look alike). ``duplicate`` copies rows
    that stay in the clean set, so the copy is the later occurrence.
    """
    kinds = tuple(kinds or KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"inject: unknown error kinds {unknown}; expected some of {list(KINDS)}")
    rows = clean.select(list(DIALOG_SCHEMA)).to_dicts()
    out: list[Row] = []
    replaced: set[str] = set()
    for kind in kinds:
        rng = random.Random(f"{seed}:{kind}")
        order = list(range(len(rows)))
        rng.shuffle(order)
        got = 0
        for i in order:
            if got >= per_kind:
                break
            if kind == "duplicate":
                bad = dict(rows[i])
            else:
                bad = CORRUPTORS[kind](copy.deepcopy(rows[i]), rng)
                if bad is None:
                    continue
                replaced.add(rows[i]["id"])
            out.append({**bad, "id": f"{rows[i]['id']}~{kind}", "kind": kind, "source_id": rows[i]["id"]})
            got += 1
    frame = dialogs_frame([{k: r[k] for k in DIALOG_SCHEMA} for r in out])
    return frame.with_columns(pl.Series("kind", [r["kind"] for r in out], dtype=pl.Utf8),
                              pl.Series("source_id", [r["source_id"] for r in out], dtype=pl.Utf8)), replaced
