"""API definition clarity — the first of ToolACE's rule-layer checks (ToolACE §3.3; README "API pool").

:func:`check_api` checks one API by one pass over its parameter schema, producing
a named reason per failing check (the dialog rule layer uses it for offered
tools). For the pool, the rules are the GX suite ``expectations/api_pool.json``:
:func:`api_tables` flattens candidates into an ``apis`` table (one row per API)
and an ``api_params`` table (one row per parameter property, at any depth), the
suite states what GX can over them (name and property-name regexes, keywords,
description lengths, parameter types, not-null) and asserts computed
``ok_<check>`` columns for the rest of the schema walk (keywords per type,
``required``, enums and defaults, constraints, returns). :func:`api_checks_frame`
runs it and turns GX's unexpected rows into ``ok_<check>`` columns and reasons,
from which the stage drops rows.

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
from pathlib import Path
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

    def __init__(self, describe_properties: bool = True, native: bool = False) -> None:
        # Parameters must be documented for the model to fill them; return fields need not be.
        self.describe_properties = describe_properties
        # native: leave out what the api_pool suite states over the api_params table (types, property names,
        # descriptions of parameter properties), so each rule has one owner there.
        self.native = native
        self.problems: list[tuple[str, str]] = []

    def bad(self, check: str, path: str, msg: str) -> None:
        self.problems.append((check, f"{path}: {msg}"))

    def schema(self, s: Any, path: str, *, need_description: bool) -> None:
        if not isinstance(s, dict):
            self.bad("ok_parameters", path, f"schema must be an object, got {type(s).__name__}")
            return
        t = s.get("type")
        if t is not None and (not isinstance(t, str) or t not in JSON_TYPES):
            if not (self.native and self.describe_properties and isinstance(t, str)):
                self.bad("ok_parameters", path, f"type {t!r} is not one of {list(JSON_TYPES)}")
            return
        allowed = COMMON_KEYS | (TYPE_KEYS[t] if t else ANY_KEYS)
        unknown = [k for k in s if k not in allowed and not k.startswith("x-")]
        if unknown:
            self.bad("ok_parameters", path, f"keywords {unknown} not allowed for type {t or 'any'}")
        desc = s.get("description")
        if need_description and not self.native and (not isinstance(desc, str) or not desc.strip()):
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
            if (not isinstance(name, str) or not name or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name)
                    or keyword.iskeyword(name)) and not (self.native and self.describe_properties):
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


def check_api(api: dict[str, Any], *, native: bool = False) -> list[tuple[str, str]]:
    """All definition-clarity problems of one API dict (parsed ``parameters``/``returns``).

    ``native``: only the problems the api_pool suite does not state itself over the flattened tables.
    """
    w = _Walker(native=native)
    if not native and not valid_name(api.get("name")):
        w.bad("ok_name", "name", f"{api.get('name')!r} is not a valid (dotted) Python identifier")
    desc = api.get("description")
    if not native and (not isinstance(desc, str) or len(desc.strip()) < 10):
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


# Checks the schema walk computes (the api_pool suite asserts them as boolean columns of the apis table).
COMPUTED_CHECKS = ("ok_parameters", "ok_required", "ok_enum_default", "ok_constraints", "ok_returns")
SUITE = Path(__file__).resolve().parents[3] / "expectations" / "api_pool.json"


def _params_rows(schema: Any, path: str, row: int, depth: int, out: list) -> None:
    """One row per property of an object schema (recursing into object properties and array items)."""
    if not isinstance(schema, dict):
        return
    props = schema.get("properties")
    if isinstance(props, dict):
        for name, sub in props.items():
            sub_d = sub if isinstance(sub, dict) else {}
            t, desc = sub_d.get("type"), sub_d.get("description")
            out.append((row, f"{path}.{name}", "property", name if isinstance(name, str) else repr(name),
                        t if isinstance(t, str) else (None if t is None else repr(t)),
                        desc if isinstance(desc, str) else None, depth))
            _params_rows(sub_d, f"{path}.{name}", row, depth + 1, out)
    items = schema.get("items")
    if isinstance(items, dict):
        t = items.get("type")
        out.append((row, f"{path}.items", "items", None, t if isinstance(t, str) else (None if t is None else repr(t)),
                    None, depth))
        _params_rows(items, f"{path}.items", row, depth, out)


def api_tables(df: pl.DataFrame) -> tuple[dict[str, pl.DataFrame], list[list[tuple[str, str]]]]:
    """The ``apis`` and ``api_params`` tables of the api_pool suite, and the computed problems per API."""
    computed: dict[str, list[bool]] = {c: [] for c in COMPUTED_CHECKS}
    problems_per_row: list[list[tuple[str, str]]] = []
    params_rows: list[tuple] = []
    for i, (name, desc, p_text, r_text) in enumerate(zip(df["name"], df["description"], df["parameters"],
                                                         df["returns"])):
        params, perr = _parse(p_text, "parameters")
        rets, rerr = _parse(r_text, "returns")
        problems = check_api({"name": name, "description": desc, "parameters": params if perr is None else None,
                              "returns": rets if rerr is None else None}, native=True)
        if perr:
            problems = [p for p in problems if p[0] != "ok_parameters"] + [("ok_parameters", perr)]
        if rerr:
            problems = [p for p in problems if p[0] != "ok_returns"] + [("ok_returns", rerr)]
        failed = {c for c, _ in problems}
        for c in COMPUTED_CHECKS:
            computed[c].append(c not in failed)
        problems_per_row.append(problems)
        if perr is None:
            _params_rows(params, "parameters", i, 0, params_rows)
    extra = [c for c in ("ok_unique_name", "ok_not_near_duplicate") if c in df.columns]
    apis = df.select("name", "description", *extra).with_columns(
        pl.int_range(df.height, dtype=pl.Int64).alias("row"),
        *[pl.Series(c, v, dtype=pl.Boolean) for c, v in computed.items()])
    params_t = pl.DataFrame(params_rows, schema={"row": pl.Int64, "path": pl.Utf8, "kind": pl.Utf8, "name": pl.Utf8,
                                                 "type": pl.Utf8, "description": pl.Utf8, "depth": pl.Int64},
                            orient="row")
    return {"apis": apis, "api_params": params_t}, problems_per_row


def _split_suite(suite: dict, tables: dict[str, pl.DataFrame]) -> dict[str, dict]:
    """One GX suite per table from the file's expectations (``meta.table``, default ``apis``); expectations
    on columns a frame does not have yet (the dedup columns, before dedup) are left out."""
    from toolkiln.gxsuite import ok_columns_required

    out: dict[str, dict] = {}
    for e in suite["expectations"]:
        table = (e.get("meta") or {}).get("table", "apis")
        part = out.setdefault(table, {"name": f"{suite['name']}_{table}" if table != "apis" else suite["name"],
                                      "meta": suite.get("meta", {}), "expectations": []})
        if all(c in tables[table].columns for c in ok_columns_required({"expectations": [e]})):
            part["expectations"].append(e)
    return out


def api_checks_frame(df: pl.DataFrame, suite: str | Path | None = None, *,
                     data_docs_dir: str | Path | None = None) -> pl.DataFrame:
    """``df`` plus ``ok_<check>`` columns, a ``reasons`` list and ``ok``, from the api_pool suite's GX run."""
    return api_rule_layer(df, suite, data_docs_dir=data_docs_dir)[0]


def api_rule_layer(df: pl.DataFrame, suite: str | Path | None = None, *, data_docs_dir: str | Path | None = None,
                   ) -> tuple[pl.DataFrame, dict[str, Any]]:
    """GX over the flattened API tables: (``df`` + ``ok_<check>``/``reasons``/``ok``, the suite results)."""
    from toolkiln.gxsuite import load_suite_json, validate_rows

    suite_json = load_suite_json(suite or SUITE)
    tables, problems = api_tables(df)
    suites = _split_suite(suite_json, tables)
    results = validate_rows({t: (tables[t], s) for t, s in suites.items()}, data_docs_dir=data_docs_dir)
    checks = list(CHECKS)
    fails: dict[str, set[int]] = {}
    reasons: list[list[str]] = [[] for _ in range(df.height)]
    for table, res in results.items():
        t = tables[table]
        rows = t["row"].to_list()
        for e in res.expectations:
            if not e.unexpected_index:
                continue
            check = e.meta.get("check") or f"ok_{e.meta.get('name', 'custom')}"
            if check not in checks:
                checks.append(check)
            bad = fails.setdefault(check, set())
            computed = e.kwargs.get("column") if e.meta.get("computed") else None
            first: dict[Any, int] = {}
            for i in sorted(e.unexpected_index):
                if e.type == "expect_column_values_to_be_unique":  # the first copy keeps its place
                    key = t[e.kwargs["column"]][i]
                    if key not in first:
                        first[key] = i
                        continue
                d = rows[i]
                if computed is not None:
                    if d not in bad:
                        reasons[d] += [f"{c}: {m}" for c, m in problems[d] if c == computed] or [
                            f"{check}: {e.meta.get('name')}: {e.meta.get('notes', '')}"]
                else:
                    where = f" at {t['path'][i]}" if table == "api_params" else ""
                    reasons[d].append(f"{check}: {e.meta.get('name', e.type)}{where}: {e.meta.get('notes', '')}")
                bad.add(d)
    out = df.with_columns(*[pl.Series(c, [i not in fails.get(c, ()) for i in range(df.height)], dtype=pl.Boolean)
                            for c in checks if c not in ("ok_unique_name", "ok_not_near_duplicate")
                            or c not in df.columns],
                          pl.Series("reasons", reasons, dtype=pl.List(pl.Utf8)))
    out = out.with_columns(ok=pl.all_horizontal([c for c in checks if c in out.columns]))
    return out, {k: v.to_dict() for k, v in results.items()}


def validate_pool_frames(frames: dict[str, pl.DataFrame], suite: str | Path | None = None, *,
                         data_docs_dir: str | Path | None = None) -> dict[str, dict]:
    """The suite's batch verdict per frame (e.g. ``candidates``, ``pool``): ``{name: {"success", "unexpected"}}``,
    ``unexpected`` counting rows per expectation name. Data docs (when asked) are those of the last frame."""
    out = {}
    for i, (name, frame) in enumerate(frames.items()):
        docs = data_docs_dir if i == len(frames) - 1 else None
        _, res = api_rule_layer(frame, suite, data_docs_dir=docs)
        out[name] = {"success": all(r["success"] for r in res.values()),
                     "unexpected": {e["meta"].get("name", e["column"]): e["unexpected_count"]
                                    for r in res.values() for e in r["expectations"]}}
    return out
