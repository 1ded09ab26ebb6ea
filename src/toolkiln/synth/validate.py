"""API definition clarity — the first of ToolACE's rule-layer checks (ToolACE §3.3).

Each API is checked by one pass over its parameter schema, producing a named
reason per failing check. :func:`api_checks_frame` turns a pool table into
``ok_<check>`` boolean columns plus a ``reasons`` list, which the GX suite
``expectations/api_pool.json`` then asserts and the stage uses to drop rows.

We accept a deliberate subset of JSON Schema — the one function-calling models
are trained on (OpenAI / BFCL tool docs): ``type`` in {string, integer, number,
boolean, array, object, null}, ``enum``/``default``/``description`` everywhere,
string ``pattern``/``format``/length, numeric ranges, array ``items`` and sizes,
object ``properties``/``required``/``additionalProperties``. Anything else is a
reason, so a downstream executability check never meets a keyword it can't check.
A property without ``type`` means "any" (valid JSON Schema; BFCL's ``any``).
"""

from __future__ import annotations

import json
import keyword
import re
from typing import Any

import polars as pl

from toolkiln.saferegex import BadPattern, compile_guarded

JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")
FORMATS = ("date", "date-time", "time", "email", "uri", "url", "uuid", "ipv4", "ipv6", "hostname", "duration",
           "phone", "currency", "country-code", "language-code", "color")
COMMON_KEYS = {"type", "description", "enum", "default", "examples", "title", "nullable", "const"}
TYPE_KEYS = {
    "string": {"pattern", "format", "minLength", "maxLength"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "format"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "format"},
    "boolean": set(),
    "null": set(),
    "array": {"items", "minItems", "maxItems", "uniqueItems"},
    "object": {"properties", "required", "additionalProperties"},
}
ANY_KEYS = set().union(*TYPE_KEYS.values())
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
CHECKS = ("ok_name", "ok_description", "ok_parameters", "ok_param_descriptions", "ok_required",
          "ok_enum_default", "ok_constraints", "ok_returns")


def value_has_type(v: Any, t: str | None) -> bool:
    """Does a JSON value have JSON-Schema type ``t`` (``None`` = any)?"""
    if t is None:
        return True
    if t == "string":
        return isinstance(v, str)
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "array":
        return isinstance(v, list)
    if t == "object":
        return isinstance(v, dict)
    if t == "null":
        return v is None
    return False


def valid_name(name: Any) -> bool:
    return isinstance(name, str) and bool(NAME_RE.match(name)) and not any(keyword.iskeyword(p) for p in name.split("."))


class _Walker:
    """Walk one schema, collecting (check, reason) pairs with the JSON path of the problem."""

    def __init__(self, describe_properties: bool = True) -> None:
        # Parameters must be documented for the model to fill them; return fields need not be.
        self.describe_properties = describe_properties
        self.problems: list[tuple[str, str]] = []

    def bad(self, check: str, path: str, msg: str) -> None:
        self.problems.append((check, f"{path}: {msg}"))

    def schema(self, s: Any, path: str, *, need_description: bool) -> None:
        if not isinstance(s, dict):
            self.bad("ok_parameters", path, f"schema must be an object, got {type(s).__name__}")
            return
        t = s.get("type")
        if t is not None and (not isinstance(t, str) or t not in JSON_TYPES):
            self.bad("ok_parameters", path, f"type {t!r} is not one of {list(JSON_TYPES)}")
            return
        allowed = COMMON_KEYS | (TYPE_KEYS[t] if t else ANY_KEYS)
        unknown = [k for k in s if k not in allowed and not k.startswith("x-")]
        if unknown:
            self.bad("ok_parameters", path, f"keywords {unknown} not allowed for type {t or 'any'}")
        desc = s.get("description")
        if need_description and (not isinstance(desc, str) or not desc.strip()):
            self.bad("ok_param_descriptions", path, "missing description")
        if "enum" in s:
            enum = s["enum"]
            if not isinstance(enum, list) or not enum:
                self.bad("ok_enum_default", path, "enum must be a non-empty list")
            else:
                wrong = [v for v in enum if not value_has_type(v, t)]
                if wrong:
                    self.bad("ok_enum_default", path, f"enum values {wrong[:3]} are not of type {t}")
                if len({json.dumps(v, sort_keys=True) for v in enum}) != len(enum):
                    self.bad("ok_enum_default", path, "enum has duplicate values")
        if "default" in s and s["default"] is not None:
            d = s["default"]
            if not value_has_type(d, t):
                self.bad("ok_enum_default", path, f"default {d!r} is not of type {t}")
            elif isinstance(s.get("enum"), list) and d not in s["enum"]:
                self.bad("ok_enum_default", path, f"default {d!r} is not in enum")
        self.constraints(s, t, path)
        if t == "array" or (t is None and "items" in s):
            if "items" in s:
                self.schema(s["items"], f"{path}.items", need_description=False)
            elif t == "array":
                self.bad("ok_parameters", path, "array without items")
        if t == "object" or (t is None and "properties" in s):
            self.object_body(s, path)

    def object_body(self, s: dict, path: str) -> None:
        props = s.get("properties", {})
        if not isinstance(props, dict):
            self.bad("ok_parameters", path, "properties must be an object")
            return
        for name, sub in props.items():
            if not isinstance(name, str) or not name or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) or keyword.iskeyword(name):
                self.bad("ok_parameters", f"{path}.{name}", "property name is not a valid identifier")
            self.schema(sub, f"{path}.{name}", need_description=self.describe_properties)
        req = s.get("required", [])
        if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
            self.bad("ok_required", path, f"required must be a list of names, got {req!r}")
        else:
            extra = [r for r in req if r not in props]
            if extra:
                self.bad("ok_required", path, f"required {extra} not in properties")
            if len(set(req)) != len(req):
                self.bad("ok_required", path, "required has duplicates")

    def constraints(self, s: dict, t: str | None, path: str) -> None:
        num = lambda k: isinstance(s.get(k), (int, float)) and not isinstance(s.get(k), bool)  # noqa: E731
        for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
            if k in s and not num(k):
                self.bad("ok_constraints", path, f"{k} must be a number, got {s[k]!r}")
        if num("minimum") and num("maximum") and s["minimum"] > s["maximum"]:
            self.bad("ok_constraints", path, f"minimum {s['minimum']} > maximum {s['maximum']}")
        if num("multipleOf") and s["multipleOf"] <= 0:
            self.bad("ok_constraints", path, "multipleOf must be > 0")
        for lo, hi in (("minLength", "maxLength"), ("minItems", "maxItems")):
            for k in (lo, hi):
                if k in s and not (isinstance(s[k], int) and not isinstance(s[k], bool) and s[k] >= 0):
                    self.bad("ok_constraints", path, f"{k} must be a non-negative integer, got {s[k]!r}")
            if isinstance(s.get(lo), int) and isinstance(s.get(hi), int) and s[lo] > s[hi]:
                self.bad("ok_constraints", path, f"{lo} {s[lo]} > {hi} {s[hi]}")
        if "pattern" in s:
            p = s["pattern"]
            try:
                compile_guarded(p)  # the same engine and guard the argument checks match with
            except BadPattern as exc:
                self.bad("ok_constraints", path, str(exc))
        # JSON Schema treats unknown formats as annotations; only a non-string format is an error.
        if "format" in s and not isinstance(s["format"], str):
            self.bad("ok_constraints", path, f"format must be a string, got {s['format']!r}")


def check_api(api: dict[str, Any]) -> list[tuple[str, str]]:
    """All definition-clarity problems of one API dict (parsed ``parameters``/``returns``)."""
    w = _Walker()
    if not valid_name(api.get("name")):
        w.bad("ok_name", "name", f"{api.get('name')!r} is not a valid (dotted) Python identifier")
    desc = api.get("description")
    if not isinstance(desc, str) or len(desc.strip()) < 10:
        w.bad("ok_description", "description", "missing or shorter than 10 characters")
    params = api.get("parameters")
    if not isinstance(params, dict) or params.get("type") != "object":
        w.bad("ok_parameters", "parameters", "must be a JSON Schema with type 'object'")
    else:
        unknown = [k for k in params if k not in ("type", "properties", "required", "description", "additionalProperties")]
        if unknown:
            w.bad("ok_parameters", "parameters", f"unexpected top-level keys {unknown}")
        w.object_body(params, "parameters")
    rets = api.get("returns")
    if not isinstance(rets, dict) or not rets:
        w.bad("ok_returns", "returns", "must be a non-empty JSON Schema object")
    else:
        rw = _Walker(describe_properties=False)
        rw.schema(rets, "returns", need_description=False)
        w.problems += [("ok_returns", msg) for _, msg in rw.problems]
    return w.problems


def _parse(text: Any, what: str) -> tuple[Any, str | None]:
    if not isinstance(text, str):
        return None, f"{what}: not a JSON string"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"{what}: invalid JSON ({exc.msg} at char {exc.pos})"


def api_checks_frame(df: pl.DataFrame) -> pl.DataFrame:
    """Add ``ok_<check>`` columns and a ``reasons`` list column to a pool table."""
    oks: dict[str, list[bool]] = {c: [] for c in CHECKS}
    reasons: list[list[str]] = []
    for name, desc, p_text, r_text in zip(df["name"], df["description"], df["parameters"], df["returns"]):
        params, perr = _parse(p_text, "parameters")
        rets, rerr = _parse(r_text, "returns")
        problems = check_api({"name": name, "description": desc, "parameters": params if perr is None else None,
                              "returns": rets if rerr is None else None})
        if perr:
            problems = [p for p in problems if p[0] != "ok_parameters"] + [("ok_parameters", perr)]
        if rerr:
            problems = [p for p in problems if p[0] != "ok_returns"] + [("ok_returns", rerr)]
        failed = {c for c, _ in problems}
        for c in CHECKS:
            oks[c].append(c not in failed)
        reasons.append([f"{c}: {m}" for c, m in problems])
    return df.with_columns(
        *[pl.Series(c, v, dtype=pl.Boolean) for c, v in oks.items()],
        pl.Series("reasons", reasons, dtype=pl.List(pl.Utf8)),
    ).with_columns(ok=pl.all_horizontal(list(CHECKS)))
