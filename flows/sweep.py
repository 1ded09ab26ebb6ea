"""Prefect flow ``toolkiln-sweep``: the ablations as DVC experiments, compared in one table, one plot and one
MLflow experiment (docs/architecture.md#tracking).

Every variant is the base ``params.yaml`` plus its own overrides, never another variant's: each runs as
``dvc exp run --temp -S key=value ...`` in a temporary copy of the workspace, so variants cannot compound and
the workspace's ``params.yaml`` is never left modified (the flow also checks its bytes after every variant and
writes them back if anything changed them, on errors too). Stages a variant does not change come from DVC's
cache. The experiments' stages log to the *main* MLflow store (its absolute URI and the sweep's experiment
are passed in the environment, ``toolkiln.tracking.TRACKING_URI_ENV``), grouped per variant by the pipeline
id ``sweep-<sweep id>-<variant>``; one run per variant then holds the compared metrics side by side.

    python -m flows.sweep                                   # every variant in VARIANTS
    python -m flows.sweep --only baseline no_verification   # some of them
    python -m flows.sweep --variant my_try sft.learning_rate=0.001 --target eval_warmup

Outputs (``--out``, default ``reports/sweep/``): ``comparison.md``, ``comparison.csv``, ``comparison.png``.

"No preference rounds" is not a variant: every run evaluates the warm-up (``eval_warmup``) and round 1
(``eval_round@1``) side by side, and the table has both columns; ``dpo`` swaps round 1's SimPO loss for DPO.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from prefect import flow, get_run_logger, task

from flows.dag import dvc_env, stage_order
from flows.run import REPO
from toolkiln.tracking import log_client_run, numeric_metrics


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: tuple[str, ...]
    question: str


# The ablations the papers' claims rest on, each one switch away from the base params.
VARIANTS: tuple[Variant, ...] = (
    Variant("baseline", (), "the pipeline as params.yaml says"),
    Variant("no_verification", ("verify.enabled=false",), "ToolACE §3.3: train on unverified dialogs"),
    Variant("random_order_sft", ("sft.order=random",), "iTool §3.1: warm-up without the easy-to-hard order"),
    Variant("dpo", ("itool.preference.algorithm=dpo",), "iTool §3.2: DPO instead of SimPO for the round's update"),
    Variant("adnt_no_attention", ("adnt.method.attention=none",), "ADNT §3.2: no domain fusion"),
    Variant(
        "adnt_ordinary_attention", ("adnt.method.attention=ordinary",), "ADNT §3.2: ordinary, not contrary, attention"
    ),
    Variant("adnt_ce_loss", ("adnt.method.loss=ce",), "ADNT §3.3: plain CE on pseudo-labels instead of ARCE"),
    Variant("adnt_fixed_weight", ("adnt.method.weight_schedule=fixed",), "ADNT §3.3: fixed pseudo-label weight"),
)

# The compared metrics: (column, stage, key path in the stage's metrics file). Columns whose stage is not
# part of a sweep's targets are left out of its table.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("pool size", "synthesize_apis", "n_apis"),
    ("dialogs", "generate_dialogs", "n_dialogs"),
    ("verified", "verify", "n_verified"),
    ("verify pass rate", "verify", "pass_rate.final"),
    ("train dialogs", "split", "n_train"),
    ("warm-up accuracy", "eval_warmup", "synthetic.accuracy"),
    ("single", "eval_warmup", "synthetic.by_group.single.accuracy"),
    ("parallel", "eval_warmup", "synthetic.by_group.parallel.accuracy"),
    ("dependent", "eval_warmup", "synthetic.by_group.dependent.accuracy"),
    ("non-tool", "eval_warmup", "synthetic.by_group.non_tool.accuracy"),
    ("clarification", "eval_warmup", "synthetic.by_group.clarification.accuracy"),
    ("BFCL mean", "eval_warmup", "bfcl.category_mean_accuracy"),
    ("round 1 accuracy", "eval_round@1", "synthetic.accuracy"),
    ("round 1 parallel", "eval_round@1", "synthetic.by_group.parallel.accuracy"),
    ("round 1 dependent", "eval_round@1", "synthetic.by_group.dependent.accuracy"),
    ("round 1 BFCL mean", "eval_round@1", "bfcl.category_mean_accuracy"),
    ("ADNT digits avg", "adnt_report", "summary.adnt.avg.mean"),
    ("ADNT dialogs avg", "adnt_dialogs", "summary.adnt.avg.mean"),
)


# --- overrides: checked against the real params before any compute ---------------------------------


def parse_override(text: str) -> tuple[list[str], object]:
    """``a.b=value`` -> (["a", "b"], value), the value read as YAML the way ``dvc exp run -S`` reads it."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override {text!r}: expected key=value")
    return key.strip().split("."), yaml.safe_load(raw)


def apply_overrides(params: dict, overrides: tuple[str, ...] | list[str]) -> dict:
    """A copy of ``params`` with ``overrides`` set; a key that does not exist is an error (no invented params)."""
    import copy

    out = copy.deepcopy(params)
    for o in overrides:
        path, value = parse_override(o)
        node = out
        for i, k in enumerate(path):
            if not isinstance(node, dict) or k not in node:
                raise ValueError(f"override {o!r}: params has no key {'.'.join(path[: i + 1])!r}")
            if i == len(path) - 1:
                node[k] = value
            else:
                node = node[k]
    return out


def check_variants(variants: list[Variant], params_path: Path) -> None:
    """Every variant's params validate (unknown keys, wrong types) before the first experiment starts."""
    from toolkiln.config import params_from_dict, read_yaml_mapping

    base = read_yaml_mapping(params_path)
    for v in variants:
        params_from_dict(apply_overrides(base, v.overrides), source=f"variant {v.name}")


# --- MLflow: the main store, whichever workspace a stage runs in ------------------------------------


def absolute_tracking_uri(uri: str, repo_dir: Path) -> str:
    """A store URI that means the same from any working directory (relative SQLite and folder stores
    are resolved against the repository; server URIs are returned unchanged)."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{(repo_dir / uri.removeprefix('sqlite:///')).resolve()}"
    if "://" not in uri:
        return (repo_dir / uri).resolve().as_uri()
    return uri


def ensure_experiment(uri: str, name: str, artifact_dir: Path) -> str:
    """The sweep's experiment in the main store, created with the main artifact folder: a stage in a
    temporary workspace would otherwise create it with the throw-away copy's folder."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    artifact_dir.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(name, artifact_location=artifact_dir.resolve().as_uri())


# --- running one variant ----------------------------------------------------------------------------


class VariantFailed(RuntimeError):
    pass


def _exp_rev(repo_dir: Path, exp_name: str) -> str | None:
    refs = subprocess.run(
        ["git", "for-each-ref", "refs/exps", "--format=%(objectname) %(refname)"],
        cwd=repo_dir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    hits = [line.split()[0] for line in refs if line.endswith(f"/{exp_name}")]
    return hits[-1] if hits else None


def run_experiment(variant: Variant, exp_name: str, repo_dir: Path, targets: list[str], env: dict, on_line) -> str:
    """``dvc exp run --temp`` one variant; returns the experiment's commit. ``params.yaml`` is byte-identical
    afterwards whatever happens (DVC edits it briefly while it stashes the experiment)."""
    params = repo_dir / "params.yaml"
    before = params.read_bytes()
    cmd = [str(Path(sys.executable).parent / "dvc"), "exp", "run", "--temp", "--name", exp_name]
    for o in variant.overrides:
        cmd += ["-S", o]
    cmd += targets
    try:
        with subprocess.Popen(
            cmd,
            cwd=repo_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            errors="replace",
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                on_line(line.rstrip("\n"))
    finally:
        if params.read_bytes() != before:
            params.write_bytes(before)
    if proc.returncode != 0:
        raise VariantFailed(f"variant {variant.name}: dvc exp run exited {proc.returncode}")
    rev = _exp_rev(repo_dir, exp_name)
    if rev is None:
        raise VariantFailed(f"variant {variant.name}: no experiment ref {exp_name!r} after the run")
    return rev


def metrics_at(repo_dir: Path, rev: str, stages: list[str]) -> dict[str, dict]:
    """``{stage: metrics}`` as the experiment's commit holds them (DVC commits uncached metrics files)."""
    from toolkiln.dvcfile import metrics_files, resolved_stages

    dvc = resolved_stages(repo_dir)
    out: dict[str, dict] = {}
    for stage in stages:
        for path in metrics_files(dvc.get(stage, {})):
            shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=repo_dir, capture_output=True, text=True)
            if shown.returncode == 0:
                try:
                    out.setdefault(stage, {}).update(json.loads(shown.stdout))
                except ValueError:
                    continue
    return out


def _get(d: dict, dotted: str):
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d if isinstance(d, (int, float)) and not isinstance(d, bool) else None


# --- the comparison: table, plot, MLflow ------------------------------------------------------------


def comparison_rows(results: list[dict], stages: list[str]) -> tuple[list[str], list[dict]]:
    """One row per variant: name, overrides, status, then every column whose stage the sweep ran."""
    cols = [c for c in COLUMNS if c[1] in stages]
    rows = []
    for r in results:
        row = {"variant": r["name"], "overrides": " ".join(r["overrides"]) or "(none)", "status": r["status"]}
        for label, stage, key in cols:
            row[label] = _get(r.get("metrics", {}).get(stage, {}), key)
        rows.append(row)
    cols = [c for c in cols if any(row[c[0]] is not None for row in rows)]
    header = ["variant", "overrides", "status"] + [c[0] for c in cols]
    return header, [{k: row[k] for k in header} for row in rows]


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.4f}"
    return str(int(v)) if isinstance(v, float) else str(v)


def write_table(header: list[str], rows: list[dict], out_dir: Path) -> tuple[Path, Path]:
    from toolkiln.io import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    w.writerows([{k: ("" if r[k] is None else r[k]) for k in header} for r in rows])
    md = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i < 3 else "---:" for i in range(len(header))) + "|",
    ]
    md += ["| " + " | ".join(_fmt(r[k]) for k in header) + " |" for r in rows]
    return (
        atomic_write_text(out_dir / "comparison.csv", buf.getvalue()),
        atomic_write_text(out_dir / "comparison.md", "\n".join(md) + "\n"),
    )


def plot_comparison(header: list[str], rows: list[dict], path: Path) -> Path:
    """One panel per compared metric, one bar per variant (counts and rates keep their own scales)."""
    from toolkiln.plots import message, save, subplots

    metrics = header[3:]
    if not metrics or not rows:
        return message("no metrics to compare", path)
    ncol = min(3, len(metrics))
    nrow = math.ceil(len(metrics) / ncol)
    fig, axes = subplots(nrow, ncol, figsize=(4.2 * ncol, 0.5 + (0.35 * len(rows) + 0.9) * nrow), squeeze=False)
    names = [r["variant"] for r in rows]
    for ax, m in zip(axes.flat, metrics):
        vals = [r[m] if r[m] is not None else 0.0 for r in rows]
        ax.barh(range(len(rows)), vals, color=["#4c72b0" if i == 0 else "#dd8452" for i in range(len(rows))])
        for i, r in enumerate(rows):  # the value on each bar: near-equal bars are the usual, interesting case
            ax.text(
                0, i, f" {_fmt(r[m]) or 'n/a'}", va="center", ha="left", fontsize=7, color="white" if r[m] else "black"
            )
        ax.set_yticks(range(len(rows)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(m, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle("toolkiln sweep: each variant = base params + its own overrides", fontsize=10)
    return save(fig, path)


def log_sweep(
    uri: str,
    experiment_id: str,
    sweep_id: str,
    results: list[dict],
    header: list[str],
    rows: list[dict],
    files: list[Path],
) -> str:
    """One parent run for the sweep (table + plot as artifacts) and one child per variant whose metrics
    are the compared columns plus every stage metric, so MLflow's compare view puts the variants side by side."""
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    client = MlflowClient(tracking_uri=uri)
    parent = log_client_run(
        client,
        experiment_id,
        f"sweep {sweep_id}",
        tags={"toolkiln.kind": "sweep", "toolkiln.sweep": sweep_id},
        artifacts=files,
    )
    for r, row in zip(results, rows):
        values = {k: float(row[k]) for k in header[3:] if row[k] is not None}
        for stage, m in r.get("metrics", {}).items():
            values.update({f"{stage}/{k}": v for k, v in numeric_metrics(m, bools=True).items() if math.isfinite(v)})
        params = {"overrides": row["overrides"]}
        for o in r["overrides"]:
            k, _, v = o.partition("=")
            params[k] = v
        log_client_run(
            client,
            experiment_id,
            r["name"],
            tags={
                MLFLOW_PARENT_RUN_ID: parent,
                "toolkiln.kind": "variant",
                "toolkiln.sweep": sweep_id,
                "toolkiln.variant": r["name"],
                "toolkiln.question": r.get("question", ""),
                "toolkiln.pipeline_id": r.get("pipeline_id", ""),
                "dvc.experiment": r.get("exp", ""),
                "dvc.rev": r.get("rev") or "",
            },
            params=params,
            metrics=values,
            status="FINISHED" if r["status"] == "ok" else "FAILED",
        )
    return parent


# --- the flow -----------------------------------------------------------------------------------------


@task(task_run_name="exp-{variant.name}")
def run_variant(
    variant: Variant, repo_dir: str, targets: list[str], sweep_id: str, uri: str, experiment: str, stages: list[str]
) -> dict:
    log = get_run_logger()
    repo = Path(repo_dir)
    pid = f"sweep-{sweep_id}-{variant.name}"
    env = {**dvc_env(), "PYTHONUNBUFFERED": "1", "TOOLKILN_PIPELINE_ID": pid}
    from toolkiln.tracking import EXPERIMENT_ENV, TRACKING_URI_ENV

    env[TRACKING_URI_ENV], env[EXPERIMENT_ENV] = uri, experiment
    exp_name = f"{variant.name}-{sweep_id}"
    result = {
        "name": variant.name,
        "overrides": list(variant.overrides),
        "question": variant.question,
        "exp": exp_name,
        "pipeline_id": pid,
        "rev": None,
        "status": "ok",
        "metrics": {},
    }
    try:
        result["rev"] = run_experiment(variant, exp_name, repo, targets, env, log.info)
        result["metrics"] = metrics_at(repo, result["rev"], stages)
    except VariantFailed as exc:
        log.error("%s", exc)
        result["status"] = "failed"
    return result


@flow(name="toolkiln-sweep", log_prints=True)
def sweep(
    repo_dir: str = str(REPO),
    only: list[str] | None = None,
    extra: dict[str, list[str]] | None = None,
    targets: list[str] | None = None,
    out_dir: str | None = None,
    experiment: str = "toolkiln-sweep",
) -> dict:
    """Run the variants one after another (they share the machine's cores); returns the comparison."""
    from toolkiln.config import load_params

    log = get_run_logger()
    repo = Path(repo_dir).resolve()
    variants = [v for v in VARIANTS if not only or v.name in only]
    if only and (unknown := sorted(set(only) - {v.name for v in VARIANTS})):
        raise ValueError(f"unknown variants {unknown}; have {[v.name for v in VARIANTS]}")
    variants += [Variant(n, tuple(ov), "user-defined") for n, ov in (extra or {}).items()]
    check_variants(variants, repo / "params.yaml")
    stages = [s for gen in stage_order(repo, targets) for s in gen]
    tracking = load_params(repo / "params.yaml").tracking
    uri = absolute_tracking_uri(tracking.tracking_uri, repo)
    exp_id = ensure_experiment(uri, experiment, repo / tracking.artifact_dir)
    sweep_id = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    log.info("sweep %s: %d variants, stages %s, MLflow %s / %s", sweep_id, len(variants), stages, uri, experiment)
    results = [run_variant(v, str(repo), list(targets or []), sweep_id, uri, experiment, stages) for v in variants]
    header, rows = comparison_rows(results, stages)
    out = Path(out_dir) if out_dir else repo / "reports" / "sweep"
    csv_path, md_path = write_table(header, rows, out)
    png = plot_comparison(header, rows, out / "comparison.png")
    parent = log_sweep(uri, exp_id, sweep_id, results, header, rows, [md_path, csv_path, png])
    log.info("comparison:\n%s", md_path.read_text())
    failed = [r["name"] for r in results if r["status"] != "ok"]
    if failed:
        raise VariantFailed(f"variants failed: {failed}; the table marks them")
    return {
        "sweep_id": sweep_id,
        "header": header,
        "rows": rows,
        "mlflow_parent_run": parent,
        "files": [str(md_path), str(csv_path), str(png)],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=str(REPO))
    ap.add_argument("--only", nargs="+", metavar="NAME", help=f"variants from the table: {[v.name for v in VARIANTS]}")
    ap.add_argument(
        "--variant",
        nargs="+",
        action="append",
        metavar=("NAME", "KEY=VALUE"),
        help="an extra variant: its name, then params overrides",
    )
    ap.add_argument("--target", action="append", help="stop at these stages (dvc exp run targets); default all")
    ap.add_argument("--out", help="folder for comparison.{md,csv,png} (default reports/sweep/)")
    ap.add_argument("--experiment", default="toolkiln-sweep", help="MLflow experiment of the sweep")
    args = ap.parse_args(argv)
    extra = {v[0]: v[1:] for v in args.variant} if args.variant else None
    res = sweep(args.repo, args.only, extra, args.target, args.out, args.experiment)
    print(Path(res["files"][0]).read_text())


if __name__ == "__main__":
    main()
