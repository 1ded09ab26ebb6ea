"""Strings that match an API parameter's ``pattern`` (ToolACE arXiv 2409.00920 §3.2: argument values must be executable).

Synthesised APIs constrain identifiers with simple regular expressions
(``^[A-Z0-9-]{6,20}$``, ``^CVE-\\d{4}-\\d{4,}$``, ``^[A-Z]{2}(-[A-Z0-9]{1,3})?$``).
:func:`sample_pattern` walks the pattern's parse tree (the stdlib ``re`` parser)
and draws one character per node; unbounded repeats are kept short, as real
identifiers are. Lookarounds and backreferences are not generated: the result is
always re-checked with ``re.search`` and ``None`` means "could not satisfy it".
"""

from __future__ import annotations

import random
import re
import string
from functools import lru_cache

try:  # Python 3.11+
    import re._constants as _c
    import re._parser as _p
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

from toolkiln.saferegex import BadPattern, PatternTimeout, compile_guarded

_DIGITS = string.digits
_UPPER = string.ascii_uppercase
_LOWER = string.ascii_lowercase
_WORD = _UPPER + _LOWER + _DIGITS + "_"
_PRINT = _UPPER + _LOWER + _DIGITS + "-_."
_SPACE = " "
_CATEGORY = {
    _c.CATEGORY_DIGIT: _DIGITS,
    _c.CATEGORY_NOT_DIGIT: _UPPER + _LOWER,
    _c.CATEGORY_WORD: _WORD,
    _c.CATEGORY_NOT_WORD: "-.",
    _c.CATEGORY_SPACE: _SPACE,
    _c.CATEGORY_NOT_SPACE: _UPPER + _LOWER + _DIGITS,
}
_UNBOUNDED_EXTRA = 6  # x+ / x* draw at most min + 6 repeats


class _Unsupported(Exception):
    pass


def _class_chars(items: list) -> str:
    negate = False
    chars: list[str] = []
    for op, av in items:
        if op is _c.NEGATE:
            negate = True
        elif op is _c.LITERAL:
            chars.append(chr(av))
        elif op is _c.RANGE:
            lo, hi = av
            chars.extend(chr(x) for x in range(lo, min(hi, lo + 400) + 1))
        elif op is _c.CATEGORY:
            chars.extend(_CATEGORY.get(av, ""))
        else:
            raise _Unsupported(str(op))
    if negate:
        banned = set(chars)
        return "".join(ch for ch in _PRINT if ch not in banned)
    return "".join(dict.fromkeys(chars))


def _emit(tree, rng: random.Random, out: list[str], groups: dict[int, str]) -> None:
    for op, av in tree:
        if op is _c.LITERAL:
            out.append(chr(av))
        elif op is _c.NOT_LITERAL:
            out.append(rng.choice([ch for ch in _PRINT if ch != chr(av)]))
        elif op is _c.ANY:
            out.append(rng.choice(_UPPER + _LOWER + _DIGITS))
        elif op is _c.IN:
            chars = _class_chars(av)
            if not chars:
                raise _Unsupported("empty character class")
            out.append(rng.choice(chars))
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            if hi is _c.MAXREPEAT or hi > lo + _UNBOUNDED_EXTRA:
                hi = lo + (_UNBOUNDED_EXTRA if lo == 0 else max(2, _UNBOUNDED_EXTRA - lo // 2))
                hi = max(hi, lo + (1 if lo == 0 else 0))
            for _ in range(rng.randint(lo, hi)):
                _emit(sub, rng, out, groups)
        elif op is _c.SUBPATTERN:
            gid, _add, _del, sub = av
            start = len(out)
            _emit(sub, rng, out, groups)
            if gid is not None:
                groups[gid] = "".join(out[start:])
        elif op is _c.BRANCH:
            _emit(rng.choice(av[1]), rng, out, groups)
        elif op is _c.AT:
            continue
        elif op is _c.GROUPREF:
            out.append(groups.get(av, ""))
        elif op is getattr(_c, "ATOMIC_GROUP", None):
            _emit(av, rng, out, groups)
        else:
            raise _Unsupported(str(op))


@lru_cache(maxsize=4096)
def _compile(pattern: str):
    try:
        return compile_guarded(pattern), _p.parse(pattern)
    except (BadPattern, re.error, RecursionError, OverflowError):
        return None, None


def sample_pattern(pattern: str, rng: random.Random, tries: int = 8) -> str | None:
    """A string ``s`` with ``re.search(pattern, s)``, or None if the pattern is beyond this generator."""
    rx, tree = _compile(pattern)
    if rx is None:
        return None
    for _ in range(tries):
        out: list[str] = []
        try:
            _emit(tree, rng, out, {})
        except _Unsupported:
            return None
        s = "".join(out)
        try:
            if rx.search(s):  # model-written patterns are matched under a time guard
                return s
        except PatternTimeout:
            return None
    return None
