"""Human-facing outputs of verification: per-check table, plots, MLflow metrics.

The pass rates per layer sit beside ToolACE's published ones (rule 67.9 %,
model 91.1 %, final 61.8 %, with formalised thinking); recall per injected
error kind shows what each layer actually catches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from toolkiln.verify.rules import CHECK_FAMILY


def check_table(metrics: dict[str, Any]) -> pl.DataFrame:
    """One row per check: family/layer and pass rate (the DVC ``plots:`` CSV)."""
    rows = [{"check": c, "family": CHECK_FAMILY.get(c) or ("model" if c.startswith("ok_model") else "other"), "pass_rate": r}
            for c, r in metrics["checks"].items() if r is not None]
    return pl.DataFrame(rows, schema={"check": pl.Utf8, "family": pl.Utf8, "pass_rate": pl.Float64})


def plot_pass_rates(metrics: dict[str, Any], path: str | Path) -> Path:
    from toolkiln import plots

    table = check_table(metrics)
    fig, (ax1, ax2) = plots.subplots(1, 2, figsize=(12, max(4, 0.28 * table.height)),
                                   gridspec_kw={"width_ratios": [1, 2]})
    layers = ["rules", "model", "final"]
    ours = [metrics["pass_rate"].get(k) or 0 for k in layers]
    ref = [metrics["toolace_pass_rate"][k] for k in layers]
    x = range(len(layers))
    ax1.bar([i - 0.2 for i in x], ours, 0.4, label="toolkiln")
    ax1.bar([i + 0.2 for i in x], ref, 0.4, label="ToolACE (paper)")
    ax1.set_xticks(list(x), layers)
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("pass rate")
    ax1.legend(loc="lower right")
    ax1.set_title("pass rate per layer")
    ax2.barh(table["check"].to_list()[::-1], table["pass_rate"].to_list()[::-1])
    ax2.set_xlim(0, 1.0)
    ax2.set_title("pass rate per check")
    return plots.save(fig, path)


def plot_recall(injection: dict[str, Any] | None, path: str | Path) -> Path:
    from toolkiln import plots

    if injection is None:  # verify.injection.enabled: false; keep the DVC output, say why it is empty
        return plots.message("error injection disabled (verify.injection.enabled: false)", path)
    kinds = [(k, v) for k, v in injection["kinds"].items() if v.get("n")]
    fig, ax = plots.subplots(figsize=(12, 0.3 * len(kinds) + 1.5))
    names = [f"{k} ({v['layer']})" for k, v in kinds][::-1]
    y = range(len(names))
    ax.barh([i + 0.2 for i in y], [v["recall_rules"] for _, v in kinds][::-1], 0.4, label="rule layer")
    ax.barh([i - 0.2 for i in y], [v["recall_model"] for _, v in kinds][::-1], 0.4, label="model layer")
    ax.set_yticks(list(y), names)
    ax.set_xlim(0, 1.0)
    ax.axvline(0.99, color="grey", lw=0.8, ls="--")
    fr = injection["false_reject"]
    ax.set_title(f"recall per injected error kind (false rejects on clean data: rules {fr['rules']:.3f}, "
                 f"model {fr['model']:.3f})")
    ax.legend(loc="lower right")
    return plots.save(fig, path)


def summary_metrics(metrics: dict[str, Any], injection: dict[str, Any] | None, gx: dict[str, Any]) -> dict[str, Any]:
    """The DVC/MLflow metrics: pass rates, per-check rates, recall per kind and the GX verdicts."""
    out = dict(metrics)
    out["gx"] = {name: {"success": r["success"],
                        "failed_expectations": [(e.get("meta") or {}).get("name") or e["column"]
                                                for e in r["expectations"] if not e["success"]],
                        "unexpected_rows": {(e.get("meta") or {}).get("name") or e["column"]: e["unexpected_count"]
                                            for e in r["expectations"] if e.get("unexpected_count")}}
                 for name, r in gx.items()}
    if injection is not None:
        out["injection"] = {
            "false_reject": injection["false_reject"], "bars": injection["bars"], "n_clean": injection["n_clean"],
            "recall": {k: {"layer": v["layer"], "n": v["n"], "rules": v.get("recall_rules"),
                           "model": v.get("recall_model"), "any": v.get("recall_any")}
                       for k, v in injection["kinds"].items()},
        }
    return out


def mlflow_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The subset of the stage metrics logged to MLflow: counts, pass rates, seconds per phase, recall."""
    out = {k: metrics[k] for k in ("n_dialogs", "n_verified", "n_rejected", "pass_rate", "checks", "families",
                                   "timings") if k in metrics}
    inj = metrics.get("injection")
    if inj is not None:
        out["injection"] = {"false_reject": inj["false_reject"],
                            "recall_rules": {k: v.get("rules") for k, v in inj["recall"].items()},
                            "recall_model": {k: v.get("model") for k, v in inj["recall"].items()}}
    return out
