"""Tool calls as data and as the Python-call-list target string (docs/architecture.md#dialogs).

BFCL and ToolACE train the assistant's tool turn as ``[f(a=1, b="s"), g(c=[1, 2])]``.
:func:`format_calls` renders structured calls (``{"name", "arguments"}``) to that
string using Python literal syntax only, so the evaluator's ``ast``-based parser
(never ``eval``) reads it back to the same values.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping


def format_value(v: Any) -> str:
    if v is None:
        return "None"
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise ValueError(f"non-finite float {v!r} has no literal form")
        return repr(v)
    if isinstance(v, str):
        # JSON string syntax is valid Python string-literal syntax (double quotes, \\uXXXX escapes).
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {format_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot render {type(v).__name__} as a literal")


def format_call(name: str, arguments: Mapping[str, Any]) -> str:
    args = ", ".join(f"{k}={format_value(v)}" for k, v in arguments.items())
    return f"{name}({args})"


def format_calls(calls: Iterable[Mapping[str, Any]]) -> str:
    """``[{"name": "f", "arguments": {"a": 1}}] -> '[f(a=1)]'``."""
    return "[" + ", ".join(format_call(c["name"], c.get("arguments", {})) for c in calls) + "]"
