"""Tolerant extraction of a JSON value from an LLM reply (docs/architecture.md#backends).

ToolACE's agents (arXiv 2409.00920 §2.1-2.2) ask models for API definitions and
dialog turns as JSON, and models wrap it in prose, code fences or trailing
commentary. :func:`extract_json` finds the first JSON object or array in such
text with the standard JSON decoder only (nothing is ever evaluated) and, when
there is none, says why, so the caller can record a rejection instead of
crashing or silently dropping the row.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

__all__ = ["extract_json"]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()
# Bounds the scan of a long reply full of braces (prose with "{x}" placeholders) to linear-ish work.
_MAX_CANDIDATES = 256

Expect = Literal["any", "object", "array"]


def _wanted(obj: Any, expect: Expect) -> bool:
    if expect == "object":
        return isinstance(obj, dict)
    if expect == "array":
        return isinstance(obj, list)
    return isinstance(obj, (dict, list))


def _span_end(text: str, i: int) -> int | None:
    """Index just past the bracket that closes ``text[i]`` (JSON strings respected), or None if it never closes."""
    depth, in_str, esc = 0, False, False
    for k in range(i, len(text)):
        ch = text[k]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return k + 1
    return None


def _scan(text: str, expect: Expect) -> tuple[Any, str | None, bool]:
    """First decodable object/array starting at a bracket; (obj, best_error, found)."""
    openers = "{["  # both, even when one is expected, so the other kind is skipped whole
    best_err: tuple[int, str] | None = None  # (chars consumed before failing, message)
    tried = 0
    i = 0
    while i < len(text):
        if text[i] not in openers:
            i += 1
            continue
        tried += 1
        if tried > _MAX_CANDIDATES:
            break
        try:
            obj, end = _DECODER.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            # The candidate that got furthest is the one the model meant; report its error.
            progress = exc.pos - i
            if best_err is None or progress > best_err[0]:
                best_err = (progress, f"invalid JSON starting at char {i}: {exc.msg} (char {exc.pos})")
            # A value that looked like JSON and broke (truncated, a trailing comma, a comment) is refused
            # whole: the objects nested in it decode, but returning one would silently pass off a fragment
            # (a schema's "parameters") as the answer. Prose braces ("{like this}") fail at once and are
            # stepped over.
            i = i + 1 if progress <= 1 else (_span_end(text, i) or len(text))
            continue
        if _wanted(obj, expect):
            return obj, None, True
        i = end  # an unwanted value (an array when an object is expected) is skipped whole, not searched
    return None, best_err[1] if best_err else None, False


def extract_json(text: str | None, *, expect: Expect = "any") -> tuple[Any | None, str | None]:
    """Return ``(value, None)`` for the first JSON object/array in ``text``, else ``(None, reason)``.

    Fenced code blocks are tried first (the model's own marking of its answer),
    then the whole text, then every ``{``/``[`` in order. ``expect`` restricts the
    result to an object or an array (e.g. so a citation like ``[1]`` in prose is
    not taken for the answer).
    """
    if text is None:
        return None, "no text (the model returned nothing)"
    if not isinstance(text, str):
        return None, f"expected text, got {type(text).__name__}"
    if not text.strip():
        return None, "empty text"
    errors: list[str] = []
    for m in _FENCE.finditer(text):
        lang, block = m.group(1).lower(), m.group(2).strip()
        if lang not in ("", "json", "jsonc", "javascript", "js"):
            continue
        obj, err, found = _scan(block, expect)
        if found:
            return obj, None
        if err:
            errors.append(f"in ```{lang or ''} block: {err}")
    try:
        obj = json.loads(text)
        if _wanted(obj, expect):
            return obj, None
    except ValueError:
        pass
    obj, err, found = _scan(text, expect)
    if found:
        return obj, None
    if err:
        errors.append(err)
    if errors:
        return None, errors[-1] if len(errors) == 1 else "; ".join(errors)
    what = {"any": "JSON object or array", "object": "JSON object", "array": "JSON array"}[expect]
    snippet = text.strip()[:60]
    return None, f"no {what} found in text starting {snippet!r}"
