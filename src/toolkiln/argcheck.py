"""Call executability: arguments against an API's parameter schema (ToolACE §3.3 rule layer).

A core module (docs/architecture.md#modules): synthesis, dialog values, verification and error injection
share one compiled checker.

Validating every call with a generic JSON-Schema validator re-interprets the
schema per value; GX's JSON-schema expectation is slower still. Instead each
API's ``parameters`` schema is compiled ONCE into a tree of small closures
(:func:`compile_parameters`) and cached by API name + schema, so checking one
call is a handful of ``isinstance``/set/regex operations.

A checker returns a list of ``(check, reason)`` problems, empty when the call is
executable; ``check`` names the rule-layer column it fails
(``ok_required_args``, ``ok_unknown_args``, ``ok_arg_types``, ``ok_arg_enum``,
``ok_arg_range``, ``ok_arg_pattern``, ``ok_arg_format``).

Semantics follow function calling rather than bare JSON Schema where they differ:
an ``integer`` must be a Python ``int`` (``2.0`` is not, since the call-list
target renders it as a float literal and BFCL's checker rejects it), ``number``
accepts ints, booleans are never numbers, and top-level arguments outside
``properties`` are always errors (BFCL: "no parameter outside the function
doc"). Nested objects reject unknown keys only under ``additionalProperties:
false``. The keyword subset matches :mod:`toolkiln.synth.validate`; ToolACE's
Python type names (``int``, ``float``, ``dict``, ...) are read as their JSON
types so foreign tool lists can still be checked.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import re
import uuid
from typing import Any, Callable

from toolkiln.saferegex import BadPattern, PatternTimeout, compile_guarded

Problem = tuple[str, str]
# With ``defer_formats`` a checker does not judge ``format``: it reports each string value under a format as
# ``(FORMAT_VALUE, (format, path, value))`` instead, so the rule layer can hand those values to the format
# regexes of its expectation suite (expectations/dialog_arg_formats.json).
FORMAT_VALUE = "format_value"
ValueCheck = Callable[[Any, str, list], None]  # (value, path, problems) -> None; appends on failure

TYPE_ALIASES = {"int": "integer", "float": "number", "double": "number", "str": "string", "dict": "object",
                "list": "array", "tuple": "array", "bool": "boolean", "any": None, "none": "null"}

_PY_TYPE = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "array": "list",
            "object": "dict", "null": "None"}

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# RFC 3339 §5.6 date-time, what JSON Schema's "date-time" means: seconds and a UTC offset are required.
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#]+[^\s]*$")
_HOST_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_DURATION_RE = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
_PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()./-]{5,20}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_COUNTRY_RE = re.compile(r"^[A-Za-z]{2}$")
_LANG_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z]{2,4})?$")
_COLOR_RE = re.compile(r"^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$")


def _is_date(v: str) -> bool:
    if not _DATE_RE.match(v):
        return False
    try:
        _dt.date.fromisoformat(v)
        return True
    except ValueError:
        return False


def _is_datetime(v: str) -> bool:
    if not _DATETIME_RE.match(v):
        return False
    try:
        _dt.datetime.fromisoformat(v.upper())  # RFC 3339 allows "t"/"z"; Python 3.11 only reads upper case
        return True
    except ValueError:
        return False


def _is_ip(v: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(v).version == version
    except ValueError:
        return False


def _is_uuid(v: str) -> bool:
    try:
        uuid.UUID(v)
        return True
    except ValueError:
        return False


FORMAT_CHECKS: dict[str, Callable[[str], bool]] = {
    "date": _is_date,
    "date-time": _is_datetime,
    "time": lambda v: bool(_TIME_RE.match(v)),
    "email": lambda v: bool(_EMAIL_RE.match(v)),
    "uri": lambda v: bool(_URI_RE.match(v)),
    "url": lambda v: bool(_URI_RE.match(v)),
    "uuid": _is_uuid,
    "ipv4": lambda v: _is_ip(v, 4),
    "ipv6": lambda v: _is_ip(v, 6),
    "hostname": lambda v: bool(_HOST_RE.match(v)),
    "duration": lambda v: bool(_DURATION_RE.match(v)),
    "phone": lambda v: bool(_PHONE_RE.match(v)),
    "currency": lambda v: bool(_CURRENCY_RE.match(v)),
    "country-code": lambda v: bool(_COUNTRY_RE.match(v)),
    "language-code": lambda v: bool(_LANG_RE.match(v)),
    "color": lambda v: bool(_COLOR_RE.match(v)),
}


def short(v: Any, limit: int = 40) -> str:
    """A value as it reads in a reason: JSON, clipped."""
    try:
        text = json.dumps(v, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_type(schema: dict) -> str | None:
    t = schema.get("type")
    if isinstance(t, str):
        return TYPE_ALIASES.get(t, t)
    return None


def _type_test(t: str | None) -> Callable[[Any], bool] | None:
    if t is None:
        return None
    if t == "string":
        return lambda v: v.__class__ is str or isinstance(v, str)
    if t == "integer":
        return lambda v: isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "boolean":
        return lambda v: isinstance(v, bool)
    if t == "array":
        return lambda v: isinstance(v, list)
    if t == "object":
        return lambda v: isinstance(v, dict)
    if t == "null":
        return lambda v: v is None
    return lambda v: False  # an unknown type name accepts nothing; definition clarity reports the schema


def _enum_key(v: Any) -> Any:
    # bool is an int subclass: True == 1 would let 1 pass an enum of [True] (and vice versa).
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, (list, dict)):
        return ("json", json.dumps(v, sort_keys=True))
    return v


_ANNOTATIONS = frozenset({"type", "description", "default", "title", "examples"})


def _plain_check(t: str | None) -> ValueCheck:
    type_ok = _type_test(t)
    type_name = _PY_TYPE.get(t, str(t))

    def check(v, path, out):
        if type_ok is not None and not type_ok(v):
            out.append(("ok_arg_types", f"{path}: expected {type_name}, got {type(v).__name__} {short(v)}"))
    return check


# Most parameters are a bare type plus annotations: they share one checker per type, compiled once.
_PLAIN: dict[str | None, ValueCheck] = {t: _plain_check(t) for t in (None, *_PY_TYPE)}


def compile_value(schema: Any, defer_formats: bool = False) -> ValueCheck:
    """One value-level checker for a (sub)schema (``defer_formats``: see :data:`FORMAT_VALUE`)."""
    if not isinstance(schema, dict):
        return _PLAIN[None]
    t = json_type(schema)
    if t in _PLAIN and all(k in _ANNOTATIONS or k.startswith("x-") for k in schema):
        return _PLAIN[t]
    type_ok = _type_test(t)
    nullable = bool(schema.get("nullable"))
    steps: list[ValueCheck] = []

    enum = schema.get("enum")
    if "const" in schema and enum is None:
        enum = [schema["const"]]
    if isinstance(enum, list) and enum:
        allowed = {_enum_key(e) for e in enum}
        shown = short(enum, 80)

        def check_enum(v, path, out, allowed=allowed, shown=shown):
            if _enum_key(v) not in allowed:
                out.append(("ok_arg_enum", f"{path}: {short(v)} not in enum {shown}"))
        steps.append(check_enum)

    num = lambda k: isinstance(schema.get(k), (int, float)) and not isinstance(schema.get(k), bool)  # noqa: E731
    if t in (None, "integer", "number") and any(num(k) for k in ("minimum", "maximum", "exclusiveMinimum",
                                                                   "exclusiveMaximum", "multipleOf")):
        lo, hi = schema.get("minimum") if num("minimum") else None, schema.get("maximum") if num("maximum") else None
        xlo = schema.get("exclusiveMinimum") if num("exclusiveMinimum") else None
        xhi = schema.get("exclusiveMaximum") if num("exclusiveMaximum") else None
        mult = schema.get("multipleOf") if num("multipleOf") and schema["multipleOf"] > 0 else None

        def check_num(v, path, out, lo=lo, hi=hi, xlo=xlo, xhi=xhi, mult=mult):
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                return
            if (lo is not None and v < lo) or (hi is not None and v > hi) or (xlo is not None and v <= xlo) \
                    or (xhi is not None and v >= xhi):
                rng = f"[{lo if lo is not None else xlo}, {hi if hi is not None else xhi}]"
                out.append(("ok_arg_range", f"{path}: {short(v)} outside {rng}"))
            elif mult is not None and abs(v / mult - round(v / mult)) > 1e-9:
                out.append(("ok_arg_range", f"{path}: {short(v)} is not a multiple of {mult}"))
        steps.append(check_num)

    if t in (None, "string"):
        min_len, max_len = schema.get("minLength"), schema.get("maxLength")
        if isinstance(min_len, int) or isinstance(max_len, int):
            def check_len(v, path, out, lo=min_len, hi=max_len):
                if isinstance(v, str) and ((isinstance(lo, int) and len(v) < lo) or (isinstance(hi, int) and len(v) > hi)):
                    out.append(("ok_arg_range", f"{path}: length {len(v)} outside [{lo}, {hi}]"))
            steps.append(check_len)
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                rx = compile_guarded(pattern)  # model-written: matched under a time and size guard
            except BadPattern:
                rx = None  # an uncompilable pattern is a definition-clarity failure, reported there
            if rx is not None:
                def check_pattern(v, path, out, rx=rx, pattern=pattern):
                    if not isinstance(v, str):
                        return
                    try:
                        if not rx.search(v):
                            out.append(("ok_arg_pattern", f"{path}: {short(v)} does not match {pattern!r}"))
                    except PatternTimeout as exc:
                        out.append(("ok_arg_pattern", f"{path}: pattern too expensive to check: {exc}"))
                steps.append(check_pattern)
        fmt = schema.get("format")
        fmt_ok = FORMAT_CHECKS.get(fmt) if isinstance(fmt, str) else None
        if defer_formats and isinstance(fmt, str):
            def defer_format(v, path, out, fmt=fmt):
                if isinstance(v, str):
                    out.append((FORMAT_VALUE, (fmt, path, v)))
            steps.append(defer_format)
        elif fmt_ok is not None:
            def check_format(v, path, out, fmt_ok=fmt_ok, fmt=fmt):
                if isinstance(v, str) and not fmt_ok(v):
                    out.append(("ok_arg_format", f"{path}: {short(v)} is not a valid {fmt}"))
            steps.append(check_format)

    if t in (None, "array"):
        min_items, max_items = schema.get("minItems"), schema.get("maxItems")
        unique = bool(schema.get("uniqueItems"))
        if isinstance(min_items, int) or isinstance(max_items, int) or unique:
            def check_items_size(v, path, out, lo=min_items, hi=max_items, unique=unique):
                if not isinstance(v, list):
                    return
                if (isinstance(lo, int) and len(v) < lo) or (isinstance(hi, int) and len(v) > hi):
                    out.append(("ok_arg_range", f"{path}: {len(v)} items outside [{lo}, {hi}]"))
                if unique and len({json.dumps(x, sort_keys=True) for x in v}) != len(v):
                    out.append(("ok_arg_range", f"{path}: items are not unique"))
            steps.append(check_items_size)
        if isinstance(schema.get("items"), dict):
            item_check = compile_value(schema["items"], defer_formats)

            def check_items(v, path, out, item_check=item_check):
                if isinstance(v, list):
                    for i, x in enumerate(v):
                        item_check(x, f"{path}[{i}]", out)
            steps.append(check_items)

    if t in (None, "object") and isinstance(schema.get("properties"), dict):
        obj_check = _compile_object(schema, strict_unknown=schema.get("additionalProperties") is False,
                                    defer_formats=defer_formats)

        def check_obj(v, path, out, obj_check=obj_check):
            if isinstance(v, dict):
                obj_check(v, path, out)
        steps.append(check_obj)

    steps_t = tuple(steps)
    type_name = _PY_TYPE.get(t, str(schema.get("type")))

    def check(v, path, out):
        if type_ok is not None and not type_ok(v):
            if v is None and nullable:
                return
            out.append(("ok_arg_types", f"{path}: expected {type_name}, got {type(v).__name__} {short(v)}"))
            return  # constraints of the wrong type say nothing new
        for step in steps_t:
            step(v, path, out)
    return check


def _compile_object(schema: dict, *, strict_unknown: bool, base: str | None = None,
                    defer_formats: bool = False) -> ValueCheck:
    """``base``: the object's path when it is fixed (a call's arguments), so member paths are built once."""
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = tuple(r for r in schema.get("required") or () if isinstance(r, str)) \
        if isinstance(schema.get("required"), list) else ()
    prop_checks = {k: (compile_value(s, defer_formats), f"{base}.{k}" if base is not None else None)
                   for k, s in props.items()}
    known = frozenset(props)

    def check(v: dict, path: str, out: list) -> None:
        for r in required:
            if r not in v:
                out.append(("ok_required_args", f"{path}: missing required argument {r!r}"))
        for k, x in v.items():
            c = prop_checks.get(k)
            if c is None:
                if strict_unknown:
                    out.append(("ok_unknown_args", f"{path}: unknown argument {k!r} (known: {sorted(known)})"))
            else:
                c[0](x, c[1] or f"{path}.{k}", out)
    return check


def compile_parameters(name: str, parameters: Any, *, defer_formats: bool = False) -> Callable[[Any], list[Problem]]:
    """The executability checker for one API: ``checker(arguments) -> [(check, reason), ...]``."""
    params = parameters if isinstance(parameters, dict) else {}
    obj = _compile_object(params, strict_unknown=True, base=name, defer_formats=defer_formats)

    def checker(arguments: Any) -> list[Problem]:
        out: list[Problem] = []
        if not isinstance(arguments, dict):
            out.append(("ok_arg_types", f"{name}: arguments must be an object, got {type(arguments).__name__}"))
            return out
        obj(arguments, name, out)
        return out
    return checker


class CheckerCache:
    """Compiled checkers keyed by API name, recompiled only when that name's schema differs."""

    def __init__(self, *, defer_formats: bool = False) -> None:
        self._by_name: dict[str, tuple[Any, Callable[[Any], list[Problem]]]] = {}
        self.compiled = 0
        self.defer_formats = defer_formats

    def get(self, name: str, parameters: Any) -> Callable[[Any], list[Problem]]:
        hit = self._by_name.get(name)
        # Dict equality is cheap next to compiling; one name with two schemas (a foreign import,
        # an injected edit) keeps the latest, which is correct and rare.
        if hit is not None and (hit[0] is parameters or hit[0] == parameters):
            return hit[1]
        checker = compile_parameters(name, parameters, defer_formats=self.defer_formats)
        self._by_name[name] = (parameters, checker)
        self.compiled += 1
        return checker
