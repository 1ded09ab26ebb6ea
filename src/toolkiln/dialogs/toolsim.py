"""The tool agent's simulated execution results (ToolACE arXiv 2409.00920 §3.2, "tool agent").

A result is drawn from the API's ``returns`` schema, so it conforms to it
(ToolACE's tool agent "simulates execution results consistent with the API"):
every declared property is filled (objects), arrays get one to three items,
values come from the same plausible-value vocabulary as arguments, and fields
named like an argument echo that argument (a forecast for ``city="Lisbon"``
says ``"city": "Lisbon"``). A *link* forces one field to a given value: that is
how a dependent dialog's second call finds the identifier it consumes in the
first call's result.
"""

from __future__ import annotations

import random
import re
from typing import Any

from toolkiln.dialogs.values import conforms, gen_value
from toolkiln.argcheck import json_type

_PATH_STEP = re.compile(r"([A-Za-z0-9_\-]+)(\[0\])?")


MISSING = object()  # "no such field" (None is a legitimate JSON value)


def _echo(name: str, schema: dict, arguments: dict) -> Any:
    if name in arguments and conforms(arguments[name], schema):
        return arguments[name]
    return MISSING


def _result(name: str, schema: Any, rng: random.Random, arguments: dict, depth: int) -> Any:
    if not isinstance(schema, dict):
        return None
    echo = _echo(name, schema, arguments) if name else MISSING
    if echo is not MISSING:
        return echo
    t = json_type(schema) or ("object" if "properties" in schema else "array" if "items" in schema else None)
    if t == "object":
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        if not props:
            return {"ok": True} if depth == 0 and schema.get("additionalProperties") is not False else {}
        return {k: _result(k, s, rng, arguments, depth + 1) for k, s in props.items()}
    if t == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {"type": "string"}
        lo = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 1
        hi = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else 3
        k = rng.randint(min(max(lo, 1), max(hi, 0)), max(min(hi, 3), min(max(lo, 1), max(hi, 0))))
        item_name = name[:-1] if name.endswith("s") else name
        return [_result(item_name, items, rng, {}, depth + 1) for _ in range(k)]
    if t is None:
        return gen_value(name or "value", {"type": "string"}, rng)
    if t == "boolean" and re.search(r"success|ok$|valid|available|sent|confirmed", name):
        return rng.random() < 0.92
    if t == "integer" and re.search(r"total|count|num|matches", name):
        return rng.randint(0, 250)
    if t == "number" and re.search(r"score|confidence|probability", name) and "minimum" not in schema:
        return round(rng.random(), 3)
    return gen_value(name or "value", schema, rng, optional_share=0.8)


def set_path(obj: Any, path: str, value: Any) -> bool:
    """Set ``results[0].id``-style ``path`` inside ``obj`` (creating the first array item if needed)."""
    steps = path.split(".")
    cur = obj
    for i, step in enumerate(steps):
        m = _PATH_STEP.fullmatch(step)
        if m is None or not isinstance(cur, dict):
            return False
        key, idx = m.group(1), m.group(2)
        last = i == len(steps) - 1
        if idx:
            lst = cur.get(key)
            if not isinstance(lst, list):
                return False
            if not lst:
                lst.append({})
            if last:
                lst[0] = value
                return True
            cur = lst[0]
        elif last:
            cur[key] = value
            return True
        else:
            cur = cur.setdefault(key, {})
    return False


def get_path(obj: Any, path: str) -> Any:
    cur = obj
    for step in path.split("."):
        m = _PATH_STEP.fullmatch(step)
        if m is None or not isinstance(cur, dict) or m.group(1) not in cur:
            return MISSING
        cur = cur[m.group(1)]
        if m.group(2):
            if not isinstance(cur, list) or not cur:
                return MISSING
            cur = cur[0]
    return cur


def simulate_result(api: dict, arguments: dict, rng: random.Random, links: list[tuple[str, Any]] = ()) -> Any:
    """A result for ``api(**arguments)`` conforming to ``api['returns']``; ``links`` are (path, value) to plant."""
    returns = api.get("returns") if isinstance(api.get("returns"), dict) else {}
    if not returns:
        returns = {"type": "object", "properties": {}}
    res = _result("", returns, rng, arguments if isinstance(arguments, dict) else {}, 0)
    for path, value in links:
        set_path(res, path, value)
    return res
