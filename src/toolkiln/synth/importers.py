"""Importers for foreign API formats -> the canonical format (docs/architecture.md#api-pool).

Real tool documentation is messy. ToolACE's lists use names with spaces
("Market Trends API") and Python type names (``int``, ``float``, ``dict``); BFCL
uses ``"type": "dict"`` and ``float``/``tuple``/``any``; OpenAI wraps functions in
``{"type": "function", "function": {...}}``. :func:`normalize_api` maps all of them
onto the canonical JSON-Schema form without guessing content: names become valid
identifiers (the original is kept in ``provenance.original_name``), types are
translated, and a missing return schema becomes an explicitly marked generic one.
Quality problems (missing descriptions, bad enums) are left for the validator.
"""

from __future__ import annotations

import json
import keyword
import re
from typing import Any, Iterable

TYPE_MAP = {
    "dict": "object", "object": "object", "map": "object", "hashmap": "object",
    "int": "integer", "integer": "integer", "long": "integer",
    "float": "number", "double": "number", "number": "number", "decimal": "number",
    "str": "string", "string": "string", "char": "string", "text": "string",
    "bool": "boolean", "boolean": "boolean",
    "list": "array", "array": "array", "tuple": "array", "set": "array",
    "null": "null", "none": "null",
    "any": None,  # JSON Schema: no "type" means any value
    # BFCL's simple_java / simple_javascript docs use the host language's type names
    "arraylist": "array", "linkedlist": "array", "hashset": "array", "queue": "array", "stack": "array",
    "treemap": "object", "concurrenthashmap": "object",
    "short": "integer", "byte": "integer", "bigint": "integer", "biginteger": "integer", "character": "string",
    "bigdecimal": "number", "function": None, "class": None, "void": "null",
}
GENERIC_RETURNS = {"type": "object", "description": "Result object (the source documented no return schema).",
                   "x-inferred": True}


def normalize_name(name: str) -> str:
    """``'Market Trends API' -> 'Market_Trends_API'``; dotted names are kept."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"API name must be a non-empty string, got {name!r}")
    parts = []
    for part in name.strip().split("."):
        p = re.sub(r"[^0-9A-Za-z_]+", "_", part).strip("_")
        p = re.sub(r"_+", "_", p) or "api"
        if p[0].isdigit():
            p = "_" + p
        if keyword.iskeyword(p):
            p += "_"
        parts.append(p)
    return ".".join(parts)


_STR_LITERALS = {"true": True, "false": False}


def _coerce_default(out: dict, t: str | None) -> None:
    """Foreign docs often stringify defaults ('false', '3', 'None', ''); restore the typed value.

    Only lossless readings are applied; anything else (e.g. BFCL's 'dontcare') stays for the
    validator to flag. The original is kept in ``x-original-default``.
    """
    d = out["default"]
    if t in (None, "string") or not isinstance(d, str):
        return
    val, ok = None, False
    low = d.strip().lower()
    if low in ("", "none", "null"):
        ok = True  # a placeholder meaning "no default"
    elif t == "boolean" and low in _STR_LITERALS:
        val, ok = _STR_LITERALS[low], True
    elif t == "integer" and re.fullmatch(r"[+-]?\d+", d.strip()):
        val, ok = int(d), True
    elif t == "number" and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", d.strip()):
        val, ok = float(d), True
    if ok:
        out["x-original-default"] = out.pop("default")
        if val is not None:
            out["default"] = val


def normalize_param_name(name: str) -> str:
    """``'include-lxx' -> 'include_lxx'``, ``'from' -> 'from_'`` (Python keyword)."""
    p = re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]+", "_", name)).strip("_") or "arg"
    if p[0].isdigit():
        p = "_" + p
    return p + "_" if keyword.iskeyword(p) else p


def normalize_schema(s: Any, path: str = "parameters", lenient: bool = False) -> Any:
    """Translate types recursively. ``lenient``: an unknown type name (BFCL's multi-turn docs use
    ``directory``/``file``/``business`` for structured values) becomes ``object`` with
    ``x-original-type``; otherwise it is an error (e.g. for LLM output)."""
    if not isinstance(s, dict):
        return s  # the validator reports non-object schemas with their path
    out = {}
    for k, v in s.items():
        if k == "type":
            if isinstance(v, str):
                t = v.strip().lower()
                if t == "" and lenient:
                    continue
                if t not in TYPE_MAP:
                    if not lenient:
                        raise ValueError(f"{path}: unknown type {v!r}")
                    out["type"], out["x-original-type"] = "object", v
                elif TYPE_MAP[t] is not None:
                    out["type"] = TYPE_MAP[t]
            elif isinstance(v, list):  # ["string", "null"] -> nullable string
                ts = [TYPE_MAP.get(str(x).lower(), "?") for x in v]
                non_null = [t for t in ts if t not in ("null", None)]
                if "?" in ts or len(non_null) > 1:
                    raise ValueError(f"{path}: unsupported union type {v!r}")
                if non_null:
                    out["type"] = non_null[0]
                if "null" in ts:
                    out["nullable"] = True
            else:
                raise ValueError(f"{path}: type must be a string, got {v!r}")
        elif k == "properties" and isinstance(v, dict):
            out[k] = {}
            for pk, pv in v.items():
                sub = normalize_schema(pv, f"{path}.{pk}", lenient)
                new = normalize_param_name(pk)
                if new != pk and isinstance(sub, dict):
                    # keyword arguments must be identifiers (``from=`` cannot be written as a call)
                    sub = {**sub, "x-original-name": pk}
                out[k][new] = sub
        elif k == "items":
            out[k] = normalize_schema(v, f"{path}.items", lenient)
        elif k == "required" and v is None:
            continue
        elif k == "required" and isinstance(v, list):
            out[k] = [normalize_param_name(r) if isinstance(r, str) else r for r in v]
        elif k == "optional":  # some tool lists mark optional params inline
            continue
        else:
            out[k] = v
    t = out.get("type")
    if lenient and "default" in out:
        _coerce_default(out, t)
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {}  # untyped elements: any value
    return out


def normalize_api(obj: dict, lenient: bool = False) -> dict:
    """Any supported foreign API dict -> canonical API dict (raises ValueError naming the problem)."""
    if not isinstance(obj, dict):
        raise ValueError(f"API must be a JSON object, got {type(obj).__name__}")
    if obj.get("type") == "function" and isinstance(obj.get("function"), dict):
        obj = obj["function"]
    if "name" not in obj:
        raise ValueError("API has no 'name'")
    name = normalize_name(obj["name"])
    params = obj.get("parameters")
    if params is None:
        params = {"type": "object", "properties": {}}
    if not isinstance(params, dict):
        raise ValueError(f"{name}: parameters must be an object, got {type(params).__name__}")
    params = normalize_schema(params, "parameters", lenient)
    params.setdefault("type", "object")
    params.setdefault("properties", {})
    params["required"] = [r for r in (params.get("required") or [])]
    rets = obj.get("returns") or obj.get("response") or obj.get("output")
    returns = normalize_schema(rets, "returns", lenient) if isinstance(rets, dict) and rets else dict(GENERIC_RETURNS)
    if "type" not in returns and "properties" in returns:
        returns["type"] = "object"
    api = {"name": name, "description": (obj.get("description") or "").strip(), "parameters": params,
           "returns": returns, "domain": obj.get("domain", ""), "category": obj.get("category", ""),
           "functionalities": list(obj.get("functionalities", []))}
    if name != obj["name"]:
        api["provenance"] = {"original_name": obj["name"]}
    return api


def toolace_tool_list(system: str) -> list[dict]:
    """The JSON tool list embedded in a ToolACE system prompt."""
    marker = "Here is a list of functions in JSON format that you can invoke:"
    start = system.find(marker)
    text = system[start + len(marker):] if start >= 0 else system
    i = text.find("[")
    if i < 0:
        raise ValueError("no JSON tool list in the system prompt")
    tools, _ = json.JSONDecoder().raw_decode(text[i:])
    if not isinstance(tools, list):
        raise ValueError("the tool list is not a JSON array")
    return tools


def import_toolace(records: Iterable[dict]) -> list[dict]:
    """All tools of ToolACE ShareGPT records (``system`` + ``tools``), normalised, first occurrence of each name."""
    seen, out = set(), []
    for rec in records:
        raw = toolace_tool_list(rec.get("system", ""))
        if rec.get("tools"):
            extra = json.loads(rec["tools"]) if isinstance(rec["tools"], str) else rec["tools"]
            raw += extra if isinstance(extra, list) else []
        for t in raw:
            api = normalize_api(t, lenient=True)
            if api["name"] not in seen:
                seen.add(api["name"])
                out.append(api)
    return out


def import_bfcl_functions(entries: Iterable[dict]) -> list[dict]:
    """Function docs of BFCL question entries (``{"id", "question", "function": [...]}``)."""
    seen, out = set(), []
    for e in entries:
        funcs = e.get("function", [])
        for f in funcs if isinstance(funcs, list) else [funcs]:
            api = normalize_api(f, lenient=True)
            if api["name"] not in seen:
                seen.add(api["name"])
                out.append(api)
    return out
