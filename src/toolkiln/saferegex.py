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

The timeout itself is not free: ``regex`` then polls a clock and releases the GIL, which made a
timed search ~100x slower than an untimed one (0.7 ms vs 3 us per argument in the verify stage's rule
layer, about a fifth of its wall time). So a pattern whose backtracking is provably small is matched
without it: when the pattern is a sequence of literals, character classes and repeats of single
characters (groups and alternations allowed, but no repeat of a group that itself repeats or
alternates, no backreferences or lookarounds), the number of paths the matcher can try on an
``n``-character subject is at most ``n * n * prod(widths)`` (a repeat ``{a,b}`` has width ``b - a + 1``,
an unbounded one ``n + 1``). Up to :data:`UNTIMED_STEPS` of those, the match takes well under a
millisecond and runs untimed; anything else keeps the timeout.
"""

from __future__ import annotations

from functools import lru_cache

import re._constants as _sc
import re._parser as _sp

import regex

MAX_PATTERN = 1000  # characters
MAX_SUBJECT = 10_000  # characters
TIMEOUT_S = 0.5
UNTIMED_STEPS = 1_000_000  # bound on backtracking paths under which a match runs without the timeout


class PatternTimeout(Exception):
    """Matching a model-written pattern exceeded the time or size guard."""


class GuardedPattern:
    """A compiled pattern whose :meth:`search` cannot hang."""

    __slots__ = ("pattern", "_rx", "_shape")

    def __init__(self, pattern: str, rx) -> None:
        self.pattern, self._rx = pattern, rx
        self._shape = pattern_shape(pattern)

    def search(self, s: str) -> bool:
        """True when the pattern matches somewhere in ``s`` (JSON Schema ``pattern`` semantics)."""
        n = len(s)
        if n > MAX_SUBJECT:
            raise PatternTimeout(f"value of {n} characters exceeds the {MAX_SUBJECT}-character guard")
        if self._shape is not None:
            fixed, unbounded = self._shape
            if n * n * fixed * (n + 1) ** unbounded <= UNTIMED_STEPS:
                return self._rx.search(s) is not None
        try:
            return self._rx.search(s, timeout=TIMEOUT_S) is not None
        except TimeoutError:
            raise PatternTimeout(
                f"pattern {self.pattern[:80]!r} took over {TIMEOUT_S:g}s on a "
                f"{len(s)}-character value (catastrophic backtracking)"
            ) from None


_SINGLE = {_sc.LITERAL, _sc.NOT_LITERAL, _sc.IN, _sc.ANY, _sc.CATEGORY}


def pattern_shape(pattern: str) -> tuple[int, int] | None:
    """``(product of bounded repeat widths, number of unbounded repeats)`` for a pattern whose backtracking
    that bound covers (see the module docstring), else None (match it under the timeout)."""
    try:
        tree = _sp.parse(pattern)
    except Exception:  # noqa: BLE001 - syntax only `regex` knows, or anything odd: keep the timeout
        return None
    shape = [1, 0]

    def seq(items) -> bool:
        for op, av in items:
            if op in _SINGLE or op is _sc.AT:
                continue
            if op is _sc.SUBPATTERN:
                if not seq(av[3]):
                    return False
            elif op is _sc.BRANCH:
                for alt in av[1]:
                    if not seq(alt):
                        return False
                shape[0] *= len(av[1])
            elif op in (_sc.MAX_REPEAT, _sc.MIN_REPEAT, _sc.POSSESSIVE_REPEAT):
                lo, hi, body = av
                if hi is _sc.MAXREPEAT:
                    if not single(body):
                        return False
                    shape[1] += 1
                elif hi <= 1:  # an optional part: tried at most twice, its body may be any simple sequence
                    if not seq(body):
                        return False
                    shape[0] *= 2
                else:
                    if not single(body):
                        return False
                    shape[0] *= hi - lo + 1
            else:  # backreferences, lookarounds, conditionals, atomic groups: no bound claimed
                return False
        return True

    def single(body) -> bool:
        items = list(body)
        while len(items) == 1 and items[0][0] is _sc.SUBPATTERN:
            items = list(items[0][1][3])
        return len(items) == 1 and items[0][0] in _SINGLE

    return (shape[0], shape[1]) if seq(tree) else None


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
