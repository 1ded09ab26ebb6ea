"""Model output -> tool calls, by ``ast`` and literal reading only.

A core module (docs/architecture.md#modules): dialog generation, verification and evaluation all read
calls through it.

BFCL (and ToolACE arXiv 2409.00920 §2.2, which trains the same target) asks a
model for a Python-call list, ``[f(a=1), pkg.g(b="x")]``. BFCL's own decoder
parses that text with ``ast`` but then ``eval``\\ s arithmetic and lambdas found
in argument positions; this module never evaluates anything. An argument value
must be a literal — strings, numbers (a leading ``-``/``+`` included), ``True``
/ ``False`` / ``None`` and lists, tuples and dicts of literals — and every other
node (a call such as ``__import__('os').getpid()``, arithmetic, a lambda,
attribute access, a comprehension, a variable name, an f-string) is refused with
a reason that names the node kind.

Strictness:

* ``strict=True`` follows BFCL's decoding rules for prompt-based models: the
  whole output is the call list, tolerating only surrounding backticks,
  newlines and spaces and missing outer brackets. An empty output or ``[]``
  parses to no calls.
* ``strict=False`` additionally finds the calls inside ``<TOOLCALL>`` /
  ``<tool_call>`` tags, Markdown code fences and surrounding prose, and reads
  the JSON tool-call formats (``{"name", "arguments"}``, OpenAI's
  ``{"function": {"name", "arguments": "<json>"}}``, BFCL's
  ``{"function", "parameters"}``, optionally under ``"tool_calls"``).

:func:`parse_calls` returns ``ParseResult(calls, error)``: ``calls`` is a list of
``{"name", "arguments"}`` (possibly empty: the output says "no call"), or
``None`` with ``error`` saying why nothing usable was found.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["ParseResult", "parse_calls", "literal_value", "is_text_reply"]

MAX_TEXT_CHARS = 200_000  # a runaway generation is refused, not parsed
MAX_DEPTH = 64  # nesting of literal containers; deeper is refused (the walk is recursive)
_MAX_CANDIDATES = 64  # bounds the prose scan on long, paren-heavy outputs

_NODE_KINDS = {
    "Call": "a function call",
    "BinOp": "arithmetic",
    "BoolOp": "a boolean operation",
    "Compare": "a comparison",
    "UnaryOp": "a unary operation on a non-number",
    "Lambda": "a lambda",
    "Attribute": "attribute access",
    "Subscript": "a subscript",
    "Name": "a variable name",
    "ListComp": "a comprehension",
    "SetComp": "a comprehension",
    "DictComp": "a comprehension",
    "GeneratorExp": "a generator expression",
    "JoinedStr": "an f-string",
    "IfExp": "a conditional expression",
    "Starred": "star-unpacking",
    "Set": "a set (not JSON-representable)",
    "NamedExpr": "an assignment expression",
    "Await": "an await",
    "Yield": "a yield",
    "YieldFrom": "a yield",
    "Slice": "a slice",
    "List": "a list without calls",
    "Tuple": "a tuple without calls",
    "Dict": "a dict",
}


@dataclass(frozen=True)
class ParseResult:
    calls: list[dict] | None  # [{"name": str, "arguments": dict}], [] = explicitly no call, None = unparsable
    error: str | None = None
    refused: bool = False  # the output is call-shaped but something in it may not be read (see error)

    @property
    def ok(self) -> bool:
        return self.calls is not None

    @property
    def has_call(self) -> bool:
        return bool(self.calls)


class _Refused(ValueError):
    """The text is call-shaped but something in it may not be read (the message says what and where)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []  # filled in on the way out, so a success never formats a location

    def located(self, where: str) -> "_Refused":
        return _Refused(f"{where}{''.join(self.path)}: {self.reason}")


def _describe(node: ast.AST) -> str:
    kind = type(node).__name__
    what = _NODE_KINDS.get(kind, "an expression")
    if isinstance(node, ast.Name):
        return f"{what} ({kind} {node.id!r})"
    if isinstance(node, ast.Constant):
        return f"a {type(node.value).__name__} constant ({kind})"
    return f"{what} ({kind})"


_SCALARS = (str, int, float, bool, type(None))


def _lit(node: ast.AST, depth: int) -> Any:
    t = type(node)
    if t is ast.Constant:
        if type(node.value) in _SCALARS:
            return node.value
        raise _Refused(f"{_describe(node)} is not accepted; expected str, int, float, bool or None")
    if depth > MAX_DEPTH:
        raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
    if t is ast.List or t is ast.Tuple:
        out = []
        for i, e in enumerate(node.elts):
            try:
                out.append(_lit(e, depth + 1))
            except _Refused as exc:
                exc.path.insert(0, f"[{i}]")
                raise
        return out if t is ast.List else tuple(out)
    if t is ast.Dict:
        d = {}
        for k, v in zip(node.keys, node.values):
            if k is None:
                raise _Refused("'**' unpacking inside a dict is not a literal")
            key = _lit(k, depth + 1)
            if type(key) in (list, tuple):
                raise _Refused(f"dict key {key!r} is not a string, number, bool or None")
            try:
                d[key] = _lit(v, depth + 1)
            except _Refused as exc:
                exc.path.insert(0, f"[{key!r}]")
                raise
        return d
    if t is ast.UnaryOp and type(node.op) in (ast.USub, ast.UAdd):
        operand = node.operand
        # Only a sign directly on a number: "-5" is a literal, "-x" or "--5" are expressions.
        if type(operand) is ast.Constant and type(operand.value) in (int, float):
            return -operand.value if type(node.op) is ast.USub else operand.value
        raise _Refused(f"a sign applied to {_describe(operand)} is not a literal; nothing is evaluated")
    raise _Refused(f"{_describe(node)} is not a literal; only literals are accepted and nothing is evaluated")


def literal_value(node: ast.AST, where: str = "value") -> Any:
    """The Python value of a literal node; raises ``ValueError`` naming any other node kind and where it is."""
    try:
        return _lit(node, 0)
    except _Refused as exc:
        raise exc.located(where) from None


def _call_name(func: ast.AST) -> str:
    if type(func) is ast.Name:
        return func.id
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        raise _Refused(f"function name: {_describe(func)} cannot name a function; expected a dotted name like pkg.f")
    parts.append(func.id)
    return ".".join(reversed(parts))


def _read_call(node: ast.Call, index: int) -> dict:
    name = _call_name(node.func)
    if node.args:
        raise _Refused(f"call {index} ({name}): positional argument {_describe(node.args[0])} at column "
                       f"{node.args[0].col_offset}; expected keyword arguments only (name=value)")
    args = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise _Refused(f"call {index} ({name}): '**' argument unpacking is not accepted")
        try:
            args[kw.arg] = _lit(kw.value, 0)
        except _Refused as exc:
            raise exc.located(f"call {index} ({name}) argument {kw.arg!r}") from None
    return {"name": name, "arguments": args}


def _calls_from_tree(body: ast.AST) -> list[dict] | None:
    """Calls of a parsed expression; None when it is not call-shaped at all (prose, a number ...)."""
    if isinstance(body, ast.Call):
        return [_read_call(body, 0)]
    if isinstance(body, (ast.List, ast.Tuple)):
        elts = body.elts
        if all(type(e) is ast.Call for e in elts):
            return [_read_call(e, i) for i, e in enumerate(elts)]
        if not any(type(e) is ast.Call for e in elts):
            return None
        i, e = next((i, e) for i, e in enumerate(elts) if type(e) is not ast.Call)
        raise _Refused(f"list element {i}: {_describe(e)} is not a function call")
    return None


def _parse_python(src: str, json_literals: bool = True) -> tuple[list[dict] | None, str | None, bool]:
    """(calls, error, call_shaped) for one candidate source string."""
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except SyntaxError as exc:
        return None, f"not a Python call list: {exc.msg} (line {exc.lineno}, column {exc.offset})", False
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        return None, f"not a Python call list: {type(exc).__name__}", False
    try:
        calls = _calls_from_tree(tree.body)
    except _Refused as exc:
        return None, f"refused: {exc}", True
    if calls is not None:
        return calls, None, True
    if not json_literals:
        return None, f"not a call list: the output is {_describe(tree.body)}", False
    # A Python literal that is a JSON-style tool call (single-quoted dicts) is still a call.
    try:
        value = literal_value(tree.body)
    except _Refused:
        return None, f"not a call list: the output is {_describe(tree.body)}", False
    calls, err = _calls_from_json(value)
    if calls is not None:
        return calls, None, True
    if err is not None and err.startswith("refused"):
        return None, err, True
    return None, f"not a call list: the output is {_describe(tree.body)}", False


def _bfcl_normalise(text: str) -> str:
    # BFCL's prompting decoder: strip backticks/newlines/spaces, then add missing outer brackets.
    s = text.strip("`\n ")
    if not s.startswith("["):
        s = "[" + s
    if not s.endswith("]"):
        s = s + "]"
    return s


# -- JSON tool-call formats -----------------------------------------------------------------------------------------

def _json_call(item: Any, i: int) -> dict:
    if not isinstance(item, dict):
        raise _Refused(f"tool call {i}: got {type(item).__name__}; expected an object")
    fn = item.get("function")
    if isinstance(fn, dict):  # OpenAI: {"type": "function", "function": {"name", "arguments"}}
        item = fn
    if isinstance(item.get("name"), str):
        name = item["name"]
        args = next((item[k] for k in ("arguments", "parameters", "args") if k in item), {})
    elif isinstance(fn, str):  # BFCL's JSON return format: {"function": "f", "parameters": {...}}
        name = fn
        args = item.get("parameters", item.get("arguments", {}))
    else:
        raise _Refused(f"tool call {i}: no function name (expected a 'name' or 'function' key)")
    if isinstance(args, str):  # OpenAI sends arguments as a JSON string
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as exc:
            raise _Refused(f"tool call {i} ({name}): arguments string is not JSON ({exc.msg})") from None
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise _Refused(f"tool call {i} ({name}): arguments: got {type(args).__name__}; expected an object")
    if not re.fullmatch(r"[A-Za-z_][\w.\-]*", name):
        raise _Refused(f"tool call {i}: {name!r} is not a function name")
    return {"name": name, "arguments": dict(args)}


def _calls_from_json(value: Any) -> tuple[list[dict] | None, str | None]:
    """Calls from a decoded JSON value, or (None, reason); reason starts with 'refused' when it was call-shaped."""
    if isinstance(value, dict):
        for key in ("tool_calls", "function_calls", "calls"):
            if isinstance(value.get(key), list):
                value = value[key]
                break
        else:
            if isinstance(value.get("function_call"), dict):
                value = [value["function_call"]]
            elif "name" in value or "function" in value:
                value = [value]
            else:
                return None, "JSON object without a tool call"
    if not isinstance(value, list):
        return None, f"JSON {type(value).__name__} is not a tool call"
    if not value:
        return [], None
    if not all(isinstance(v, dict) and ("name" in v or "function" in v) for v in value):
        return None, "JSON list is not a list of tool calls"
    try:
        return [_json_call(v, i) for i, v in enumerate(value)], None
    except _Refused as exc:
        return None, f"refused: {exc}"


# -- candidate search (non-strict) ----------------------------------------------------------------------------------

_TAGS = (re.compile(r"<TOOLCALL>(.*?)</TOOLCALL>", re.DOTALL), re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL))
_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_+-]*[ \t]*\r?\n?(.*?)```", re.DOTALL)
_CALL_START = re.compile(r"\[\s*[A-Za-z_][\w.]*\s*\(|(?<![\w.])[A-Za-z_][\w.]*\(")


def _balanced_end(text: str, start: int) -> int | None:
    """Index after the bracket group opening at ``start``, skipping string literals; None if unclosed."""
    depth, i, quote = 0, start, None
    pairs = {"(": ")", "[": "]", "{": "}"}
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
        elif c in "\"'":
            quote = text[i:i + 3] if text[i:i + 3] in ('"""', "'''") else c
            i += len(quote)
            continue
        elif c in pairs:
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _prose_candidates(text: str) -> list[str]:
    out = []
    for m in _CALL_START.finditer(text):
        start = m.start()
        opener = start if text[start] == "[" else text.index("(", start)
        end = _balanced_end(text, opener)
        if end is not None:
            out.append(text[start:end])
        if len(out) >= _MAX_CANDIDATES:
            break
    return out


def _try_text(src: str) -> tuple[list[dict] | None, str | None, bool]:
    """Python call list first, then JSON tool calls."""
    calls, err, shaped = _parse_python(src)
    if calls is not None or shaped:
        return calls, err, shaped
    try:
        value = json.loads(src)
    except (json.JSONDecodeError, RecursionError):
        return None, err, False
    jcalls, jerr = _calls_from_json(value)
    if jcalls is not None:
        return jcalls, None, True
    return None, jerr, bool(jerr and jerr.startswith("refused"))


def is_text_reply(text: str | None) -> bool:
    """True for a plain-language reply: no call list, JSON, code fence, tag or ``name(`` anywhere in it.

    Evaluation uses it to tell a model that *answered in text* where a call was due (an abstention or a
    clarifying question, error ``no_call``) from one that tried to write calls and broke them (``unparsable``).
    """
    if not isinstance(text, str) or not text.strip():
        return False
    return text.strip()[0] not in "[{`<" and _CALL_START.search(text) is None


def parse_calls(text: str | None, strict: bool = False) -> ParseResult:
    """Read the tool calls in a model output without evaluating any of it (see module docstring)."""
    if text is None:
        return ParseResult(None, "no output")
    if not isinstance(text, str):
        return ParseResult(None, f"expected text, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        return ParseResult(None, f"output of {len(text)} chars exceeds the {MAX_TEXT_CHARS}-char limit")
    if strict:
        calls, err, shaped = _parse_python(_bfcl_normalise(text), json_literals=False)
        return ParseResult(calls, err, refused=calls is None and shaped)
    if not text.strip():
        return ParseResult([], None)
    first_err = None
    candidates: list[str] = []
    for tag in _TAGS:
        candidates += [m.group(1).strip() for m in tag.finditer(text)]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    candidates.append(text.strip())
    for src in candidates:
        for variant in (src, _bfcl_normalise(src)):
            calls, err, shaped = _try_text(variant)
            if calls is not None:
                return ParseResult(calls, None)
            if shaped:  # the model did write calls; what was refused is the verdict, not a reason to search on
                return ParseResult(None, err, refused=True)
            first_err = first_err or err
    from toolkiln.llm.parse import extract_json  # JSON embedded in prose

    value, _ = extract_json(text)
    if value is not None:
        calls, err = _calls_from_json(value)
        if calls is not None:
            return ParseResult(calls, None)
        if err and err.startswith("refused"):
            return ParseResult(None, err, refused=True)
    for src in _prose_candidates(text):
        calls, err, shaped = _parse_python(src)
        if calls:
            return ParseResult(calls, None)
        # A bracketed call list in prose is an attempt; a bare "word(...)" may just be prose.
        if shaped and calls is None and src.startswith("["):
            return ParseResult(None, err, refused=True)
    return ParseResult(None, f"no function call found ({first_err})" if first_err else "no function call found")
