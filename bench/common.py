"""Helpers for benchmarks: a results table and a JSON record (timings as ratios to an in-run baseline)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "loadavg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "date": time.strftime("%Y-%m-%d")}


def table(rows: list[dict], cols: list[str]) -> str:
    w = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
    line = " | ".join(c.ljust(w[c]) for c in cols)
    out = [line, "-+-".join("-" * w[c] for c in cols)]
    out += [" | ".join(_fmt(r.get(c)).ljust(w[c]) for c in cols) for r in rows]
    return "\n".join(out)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return "" if v is None else str(v)


def portable(value, root: Path = ROOT):
    """``value`` with every path inside ``root`` (a string or a Path, at any depth) written relative to it.

    Results are committed: an absolute checkout path would name one machine and mean nothing on another.
    """
    if isinstance(value, dict):
        return {k: portable(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v, root) for v in value]
    if isinstance(value, (str, Path)):
        text, prefix = str(value), str(root).rstrip("/") + "/"
        return text[len(prefix) :] if text.startswith(prefix) else (text if isinstance(value, Path) else value)
    return value


def record(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    p = RESULTS / f"{name}.json"
    p.write_text(json.dumps({"machine": machine(), **portable(payload)}, indent=2, default=str) + "\n")
    return p
