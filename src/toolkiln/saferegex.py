"""Matching regex patterns that a model wrote, under a time and size guard.

API definitions carry ``pattern`` constraints (ToolACE §3.1 constraint evolution), and
with an LLM synthesiser those patterns are model output: ``^(a|aa)+$`` against a 40-character
argument backtracks for longer than the universe has left. Python's ``re`` cannot be
interrupted (it holds the GIL), so every model-written pattern is compiled and matched with
the ``regex`` module (Python ``re`` syntax, version-0 semantics) and its ``timeout``:

* patterns longer than :data:`MAX_PATTERN` characters are refused (a definition defect);
* subjects longer than :data:`MAX_SUBJECT` characters are not matched at all;
* a match that runs longer than :data:`TIMEOUT_S` raises :class:`PatternTimeout`, which
  callers turn into a recorded finding ("pattern too expensive"), never a hang.

Ordinary patterns on ordinary arguments take microseconds, four to five orders of magnitude
below the timeout, so the guard does not make verdicts depend on machine speed.
"""

from __future__ import annotations

from functools import lru_cache

import regex

MAX_PATTERN = 1000  # characters
MAX_SUBJECT = 10_000  # characters
TIMEOUT_S = 0.5


class PatternTimeout(Exception):
    """Matching a model-written pattern exceeded the time or size guard."""


class GuardedPattern:
    """A compiled pattern whose :meth:`search` cannot hang."""

    __slots__ = ("pattern", "_rx")

    def __init__(self, pattern: str, rx) -> None:
        self.pattern, self._rx = pattern, rx

    def search(self, s: str) -> bool:
        """True when the pattern matches somewhere in ``s`` (JSON Schema ``pattern`` semantics)."""
        if len(s) > MAX_SUBJECT:
            raise PatternTimeout(f"value of {len(s)} characters exceeds the {MAX_SUBJECT}-character guard")
        try:
            return self._rx.search(s, timeout=TIMEOUT_S) is not None
        except TimeoutError:
            raise PatternTimeout(
                f"pattern {self.pattern[:80]!r} took over {TIMEOUT_S:g}s on a "
                f"{len(s)}-character value (catastrophic backtracking)"
            ) from None


class BadPattern(ValueError):
    """The pattern does not compile or is too long to be a sensible constraint."""


@lru_cache(maxsize=8192)
def compile_guarded(pattern: str) -> GuardedPattern:
    """Compile ``pattern`` for guarded matching; :class:`BadPattern` says why it cannot be used."""
    if not isinstance(pattern, str):
        raise BadPattern(f"pattern must be a string, got {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN:
        raise BadPattern(f"pattern of {len(pattern)} characters exceeds the {MAX_PATTERN}-character guard")
    try:
        return GuardedPattern(pattern, regex.compile(pattern, flags=regex.VERSION0))
    except (regex.error, RecursionError, OverflowError, ValueError, TypeError) as exc:
        raise BadPattern(f"pattern {pattern[:80]!r} does not compile: {exc}") from None
