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

__all__ = ["BracketScanner", "extract_json", "json_prefix"]

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


class BracketScanner:
    """Incremental bracket depth of JSON text, strings respected: :meth:`feed` returns the index just past the
    bracket that closes the first one opened, or None while it is still open. The same scan serves
    :func:`extract_json` (a whole reply) and a local backend's stop rule (one token's text at a time)."""

    __slots__ = ("depth", "in_str", "esc", "closed")

    def __init__(self) -> None:
        self.depth, self.in_str, self.esc, self.closed = 0, False, False, False

    def feed(self, text: str) -> int | None:
        if self.closed:
            return 0
        for k, ch in enumerate(text):
            if self.in_str:
                if self.esc:
                    self.esc = False
                elif ch == "\\":
                    self.esc = True
                elif ch == '"':
                    self.in_str = False
            elif ch == '"':
                self.in_str = True
            elif ch in "{[":
                self.depth += 1
            elif ch in "}]":
                self.depth -= 1
                if self.depth <= 0:
                    self.closed = True
                    return k + 1
        return None


def _span_end(text: str, i: int) -> int | None:
    """Index just past the bracket that closes ``text[i]`` (JSON strings respected), or None if it never closes."""
    end = BracketScanner().feed(text[i:])
    return None if end is None else i + end


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


def json_prefix(text: str) -> str:
    """``text`` up to the bracket that closes its first JSON object or array (all of it when none closes): what a
    stop rule keeps when the closing bracket came inside a longer token (``"}\\n"``, ``"}}"``)."""
    start = next((i for i, ch in enumerate(text) if ch in "{["), None)
    if start is None:
        return text
    end = _span_end(text, start)
    return text if end is None else text[:end]
