"""Loss curves of a training run as a DVC-plots CSV and a PNG (iTool arXiv 2501.09766 §3.1 warm-up)."""

from __future__ import annotations

import csv
import io
from typing import Sequence

COLUMNS = ("step", "train_loss", "eval_loss", "train_token_accuracy", "eval_token_accuracy", "learning_rate", "progress")


def curves_csv(curves: Sequence[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in curves:
        w.writerow({k: row.get(k, "") for k in COLUMNS})
    return buf.getvalue()


def plot_loss(curves: Sequence[dict], path, title: str = "loss") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("train_loss", "train (assistant tokens)"), ("eval_loss", "validation")):
        pts = [(r["step"], r[key]) for r in curves if key in r]
        if pts:
            ax.plot(*zip(*pts), marker="o" if key == "eval_loss" else None, ms=3, label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
