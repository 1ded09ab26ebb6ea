"""Human-readable views of evaluation metrics: an error-type table and an accuracy plot (docs/architecture.md (#evaluation, #tracking))."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from toolkiln.evaluate.harness import ALL_ERROR_TYPES


def _groups(metrics: dict):
    for part in ("synthetic", "bfcl"):
        for group, m in (metrics.get(part) or {}).get("by_group", {}).items():
            yield part, group, m


def error_table(metrics: dict) -> str:
    """CSV: one row per (part, group) with n, accuracy and a count per error type."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["part", "group", "n", "accuracy", *ALL_ERROR_TYPES])
    for part, group, m in _groups(metrics):
        w.writerow([part, group, m["n"], f"{m['accuracy']:.4f}", *(m["error_types"].get(e, 0) for e in ALL_ERROR_TYPES)])
    return buf.getvalue()


def plot_accuracy(metrics: dict, path: str | Path, title: str = "evaluate") -> Path:
    """Bars: accuracy per dialog type and BFCL category, with the error-type mix stacked beside it."""
    from toolkiln import plots

    rows = list(_groups(metrics))
    labels = [f"{g}\n({'syn' if p == 'synthetic' else 'bfcl'})" for p, g, _ in rows]
    fig, (a1, a2) = plots.subplots(1, 2, figsize=(max(8, 1.3 * len(rows) + 4), 4.5))
    a1.bar(range(len(rows)), [m["accuracy"] for _, _, m in rows], color="#4C72B0")
    a1.set_xticks(range(len(rows)), labels, fontsize=7)
    a1.set_ylim(0, 1)
    a1.set_ylabel("accuracy (BFCL AST match)")
    a1.set_title(title)
    bottom = [0.0] * len(rows)
    for e in ALL_ERROR_TYPES:
        vals = [m["error_types"].get(e, 0) / m["n"] if m["n"] else 0.0 for _, _, m in rows]
        if any(vals):
            a2.bar(range(len(rows)), vals, bottom=bottom, label=e)
            bottom = [b + v for b, v in zip(bottom, vals)]
    a2.set_xticks(range(len(rows)), labels, fontsize=7)
    a2.set_ylim(0, 1)
    a2.set_ylabel("share of samples")
    a2.set_title("error types")
    if any(bottom):
        a2.legend(fontsize=7)
    return plots.save(fig, path)
