"""A one-page picture of the API pool's diversity (per-domain counts, parameter types, nesting)."""

from __future__ import annotations

from pathlib import Path

from toolkiln import plots


def plot_diversity(metrics: dict, path: str | Path) -> Path:
    fig, axes = plots.subplots(1, 3, figsize=(17, 6), gridspec_kw={"width_ratios": [2.2, 1, 1]})
    dom = metrics["per_domain"]
    axes[0].barh(list(dom), list(dom.values()), color="#4C72B0")
    axes[0].invert_yaxis()
    axes[0].set_title(f"APIs per domain (total {metrics['n_apis']:,})")
    axes[0].tick_params(axis="y", labelsize=7)
    types = metrics["param_types"]
    axes[1].bar(list(types), list(types.values()), color="#55A868")
    axes[1].set_title("parameter types (all nesting levels)")
    axes[1].tick_params(axis="x", rotation=45)
    depth = metrics["nesting_depth_hist"]
    axes[2].bar(range(len(depth)), list(depth.values()), color="#C44E52")
    axes[2].set_xticks(range(len(depth)), [f"{k}" for k in depth])
    axes[2].set_title("schema nesting depth")
    axes[2].set_xlabel("depth (1 = flat parameters)")
    return plots.save(fig, path)
