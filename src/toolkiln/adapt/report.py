"""Tables, plots and verdicts of the ADNT benchmark (ADNT arXiv 2208.02947 §4).

The verdicts are the issue's targets, computed rather than eyeballed: ADNT's
average target accuracy against every baseline, and what each ablation costs.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from toolkiln.adapt.config import ABLATIONS, METHODS

BASELINES = ("source_only", "dann", "m3sda", "skada_source_only", "skada_dann", "skada_mdd", "skada_deepcoral")
LABELS = {
    "adnt": "ADNT",
    "source_only": "Source-only (combined)",
    "dann": "DANN",
    "m3sda": "M3SDA (moments)",
    "adnt_no_attention": "ADNT − attention",
    "adnt_ordinary_attention": "ADNT, ordinary attention",
    "adnt_ce": "ADNT, CE instead of ARCE",
    "adnt_rce": "ADNT, RCE only",
    "adnt_fixed_weight": "ADNT, fixed weight",
    "skada_source_only": "skada SourceOnly",
    "skada_dann": "skada DANN",
    "skada_mdd": "skada MDD",
    "skada_deepcoral": "skada DeepCoral",
}


def _ordered(methods) -> list[str]:
    return [m for m in METHODS if m in set(methods)]


def summary_dict(summary: pl.DataFrame) -> dict:
    """``{method: {target: {"mean", "std"}}}`` including ``avg``."""
    out: dict = {}
    for r in summary.iter_rows(named=True):
        out.setdefault(r["method"], {})[r["target"]] = {"mean": r["mean"], "std": r["std"]}
    return out


def text_rows(s: dict, targets: list[str]) -> list[dict]:
    """One printable row per method of a :func:`summary_dict`: ``mean ± std`` (%) per target and the average."""
    cell = lambda v: f"{100 * v['mean']:.1f} ± {100 * v['std']:.1f}"
    return [{"method": m, **{t: cell(v[t]) for t in targets}, "avg": cell(v["avg"])} for m, v in s.items()]


def margins_one_std(s: dict, method: str = "adnt") -> dict:
    """``method``'s average margin (points) over every other method of a :func:`summary_dict`, against one
    seed-std (the larger of the two): ``{other: {"margin", "seed_std", "beyond_one_std"}}``."""
    if method not in s:
        return {}
    a = s[method]["avg"]
    out = {}
    for m, v in s.items():
        if m != method:
            gap, std = 100 * (a["mean"] - v["avg"]["mean"]), 100 * max(a["std"], v["avg"]["std"])
            out[m] = {"margin": gap, "seed_std": std, "beyond_one_std": gap > std}
    return out


def pseudo_label_columns() -> list[pl.Expr]:
    """From a run's ``history`` (ADNT's pseudo-label refreshes; empty for the baselines): the precision of the kept
    pseudo-labels at the first and last refresh and the share of target images kept at the last."""

    def at(index: int, key: str) -> pl.Expr:
        return (
            pl.col("history")
            .map_elements(lambda h: (json.loads(h) or [{}])[index].get(key), return_dtype=pl.Float64)
            .alias(f"pseudo_{key}_{'first' if index == 0 else 'last'}")
        )

    return [at(0, "precision"), at(-1, "precision"), at(-1, "coverage")]


def verdicts(summary: pl.DataFrame) -> dict:
    """ADNT's average margin over each baseline present and each ablation's cost (positive = ablation hurts)."""
    s = summary_dict(summary)
    if "adnt" not in s:
        return {}
    a, sa = s["adnt"]["avg"]["mean"], s["adnt"]["avg"]["std"] or 0.0

    def z(m):  # margin in units of the two seed-stds combined: < 1 is within seed noise
        d = a - s[m]["avg"]["mean"]
        return d / max((sa**2 + (s[m]["avg"]["std"] or 0.0) ** 2) ** 0.5, 1e-9)

    margins = {b: a - s[b]["avg"]["mean"] for b in BASELINES if b in s}
    costs = {ab: a - s[ab]["avg"]["mean"] for ab in ABLATIONS if ab in s}
    return {
        "adnt_avg": a,
        "margin_over": margins,
        "margin_over_in_std": {b: z(b) for b in margins},
        "ablation_cost": costs,
        "ablation_cost_in_std": {ab: z(ab) for ab in costs},
        "beats_every_baseline": bool(margins) and all(v > 0 for v in margins.values()),
        "beats_every_baseline_beyond_noise": bool(margins) and all(z(b) > 1 for b in margins),
        "every_ablation_costs": bool(costs) and all(v > 0 for v in costs.values()),
        "every_ablation_costs_beyond_noise": bool(costs) and all(z(ab) > 1 for ab in costs),
    }


def markdown_table(summary: pl.DataFrame, targets: list[str]) -> str:
    """Methods x (targets + avg), cells ``mean ± std`` in % accuracy on the held-out target test split."""
    s = summary_dict(summary)
    cols = list(targets) + ["avg"]
    lines = [
        "| method | " + " | ".join(f"→ {t}" if t != "avg" else "**avg**" for t in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    best = {c: max(s[m][c]["mean"] for m in s if c in s[m]) for c in cols}
    for m in _ordered(s):
        cells = []
        for c in cols:
            v = s[m].get(c)
            if v is None:
                cells.append("–")
                continue
            txt = f"{100 * v['mean']:.1f} ± {100 * (v['std'] or 0):.1f}"
            cells.append(f"**{txt}**" if abs(v["mean"] - best[c]) < 1e-12 else txt)
        lines.append(f"| {LABELS.get(m, m)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def bar_plot(summary: pl.DataFrame, targets: list[str], path: str | Path) -> Path:
    """Grouped bars: one group per target (+ avg), one bar per method, std as error bars."""
    import matplotlib
    import numpy as np

    from toolkiln import plots

    s = summary_dict(summary)
    methods = _ordered(s)
    cols = list(targets) + ["avg"]
    x = np.arange(len(cols))
    width = 0.85 / max(len(methods), 1)
    fig, ax = plots.subplots(figsize=(max(8, 1.6 * len(cols) + 0.25 * len(methods)), 4.5))
    cmap = matplotlib.colormaps["tab20"]
    for i, m in enumerate(methods):
        means = [100 * s[m].get(c, {"mean": np.nan})["mean"] for c in cols]
        stds = [100 * (s[m].get(c, {"std": 0})["std"] or 0) for c in cols]
        ax.bar(
            x + (i - (len(methods) - 1) / 2) * width,
            means,
            width,
            yerr=stds,
            capsize=1.5,
            label=LABELS.get(m, m),
            color=cmap(i),
            edgecolor="black" if m == "adnt" else None,
        )
    ax.set_xticks(x, [f"→ {c}" if c != "avg" else "average" for c in cols])
    ax.set_ylabel("target test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(ncol=3, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    ax.set_title("Leave-one-domain-out digits: mean ± std over seeds")
    return plots.save(fig, path)


def pseudo_label_plot(results: pl.DataFrame, path: str | Path, method: str = "adnt") -> bool:
    """Pseudo-label coverage and precision over training for ``method``, one line per target (seed-mean)."""
    import numpy as np

    from toolkiln import plots

    rows = results.filter(pl.col("method") == method)
    fig, axes = plots.subplots(1, 2, figsize=(9, 3.5), sharex=True)
    if rows.is_empty():
        axes[0].text(0.5, 0.5, f"no {method} runs", ha="center", transform=axes[0].transAxes)
    for target in sorted(set(rows["target"])):
        hist = [json.loads(h) for h in rows.filter(pl.col("target") == target)["history"]]
        hist = [h for h in hist if h]
        if not hist:
            continue
        n = min(len(h) for h in hist)
        steps = [h["step"] for h in hist[0][:n]]
        for ax, key in zip(axes, ("coverage", "precision")):
            ax.plot(steps, np.nanmean([[e[key] for e in h[:n]] for h in hist], axis=0), marker="o", label=target)
    for ax, key in zip(axes, ("coverage", "precision")):
        ax.set_title(f"{method}: pseudo-label {key}")
        ax.set_xlabel("step")
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=8)
    plots.save(fig, path)
    return not rows.is_empty()


def gap_plot(names: list[str], G, path: str | Path) -> Path:
    from toolkiln import plots

    fig, ax = plots.subplots(figsize=(4.8, 4))
    im = ax.imshow(100 * G, vmin=0, vmax=100, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=30)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{100 * G[i, j]:.0f}", ha="center", va="center", color="w" if G[i, j] < 0.6 else "k")
    fig.colorbar(im, ax=ax, label="accuracy (%)")
    ax.set_title("single-source domain gap")
    return plots.save(fig, path)
