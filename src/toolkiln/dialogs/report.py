"""One picture of a dialog set: type mix, rejection reasons, structure (ToolACE arXiv 2409.00920 §3.2)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from toolkiln import plots


def type_table(metrics: dict) -> pl.DataFrame:
    """Dialogs per type (for DVC's ``plots:``)."""
    counts = metrics["type_counts"]
    return pl.DataFrame({"type": list(counts), "dialogs": list(counts.values()),
                         "share": [metrics["type_mix"][t] for t in counts]})


def plot_dialogs(metrics: dict, path: str | Path) -> Path:
    fig, axes = plots.subplots(1, 3, figsize=(16, 4.8))
    counts = metrics["type_counts"]
    axes[0].bar(list(counts), list(counts.values()), color="#4C72B0")
    axes[0].set_title(f"dialogs per type (total {metrics['n_dialogs']:,})")
    axes[0].tick_params(axis="x", rotation=20)
    rej = metrics["reject_reasons"] or {"(none)": 0}
    axes[1].barh(list(rej), list(rej.values()), color="#C44E52")
    axes[1].set_title(f"rejections ({metrics['n_rejected']:,} of {metrics['n_attempts']:,} attempts)")
    levels = metrics["levels"]
    axes[2].bar([f"level {k}" for k in levels], list(levels.values()), color="#55A868")
    axes[2].set_title("complexity level")
    return plots.save(fig, path)


def mlflow_metrics(metrics: dict) -> dict:
    """The numeric metrics under names MLflow accepts (no ':' and the like)."""
    def clean(d: dict) -> dict:
        out = {}
        for k, v in d.items():
            k2 = re.sub(r"[^\w./ -]", "_", str(k))
            if isinstance(v, dict):
                out[k2] = clean(v)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k2] = v
        return out
    return clean(metrics)
