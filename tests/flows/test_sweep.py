"""The ablation sweep (flows/sweep.py) for real: DVC experiments in temporary workspaces on the smoke profile.

A copy of the repository with the smoke params (its MLflow store left *relative*, as in params.yaml, so a
stage in a temporary workspace would miss it without the absolute URI the sweep passes) runs the baseline
and two cheap variants that touch verification and ADNT only. Then: params.yaml is byte-identical, the
variants did not compound (each differs from the baseline in its own stage only), and the main store holds
the stage runs and one run per variant in the sweep's experiment.
"""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.sweep import Variant, apply_overrides, check_variants, comparison_rows
from toolkiln.config import ParamsError, deep_merge, read_yaml_mapping

REPO = Path(__file__).resolve().parents[2]


def test_overrides_must_name_existing_params(tmp_path):
    base = {"verify": {"enabled": True}, "sft": {"order": "easy_to_hard"}}
    assert apply_overrides(base, ["verify.enabled=false"])["verify"]["enabled"] is False
    assert base["verify"]["enabled"] is True  # the base is never modified: variants cannot compound
    with pytest.raises(ValueError, match="no key 'sft.rounds'"):
        apply_overrides(base, ["sft.rounds=0"])
    with pytest.raises(ParamsError, match="sft.order"):
        check_variants([Variant("bad", ("sft.order=sideways",), "")], REPO / "params.yaml")


def test_comparison_rows_keep_only_columns_of_the_swept_stages():
    results = [
        {"name": "baseline", "overrides": [], "status": "ok", "metrics": {"verify": {"n_verified": 10}}},
        {"name": "v", "overrides": ["verify.enabled=false"], "status": "ok", "metrics": {"verify": {"n_verified": 12}}},
    ]
    header, rows = comparison_rows(results, ["verify"])
    assert header == ["variant", "overrides", "status", "verified"]
    assert [r["verified"] for r in rows] == [10, 12] and rows[0]["overrides"] == "(none)"


def _copy_repo(dst: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for f in files:
        if not f or not (REPO / f).is_file():
            continue
        if f.startswith(("data/", "reports/", "checkpoints/")) and not f.startswith("data/api_context_tree/"):
            continue  # generated artifacts are rebuilt by the run
        if f == "dvc.lock":
            continue
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, dst / f)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_sweep_on_smoke_profile(tmp_path):
    r = tmp_path / "repo"
    _copy_repo(r)
    params = read_yaml_mapping(REPO / "params.yaml")
    for prof in sorted((REPO / "profiles").glob("smoke*.yaml")):
        params = deep_merge(params, read_yaml_mapping(prof))
    assert params["tracking"]["tracking_uri"] == "sqlite:///mlflow.db"  # relative on purpose (see docstring)
    # smaller than the smoke profile where only run time changes: the sweep's mechanics are the point
    params = deep_merge(
        params,
        {
            "synth": {"n_apis": 600},
            "dialogs": {"n_dialogs": 150},
            "verify": {"injection": {"per_kind": 5, "clean_sample": 100}},
            "adnt": {"protocol": {"methods": ["adnt", "source_only"]}},
        },
    )
    (r / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": f"{REPO / 'src'}:{REPO}",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",
        "OMP_NUM_THREADS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
    }
    env.pop("TOOLKILN_TRACKING_URI", None)
    env.pop("TOOLKILN_MLFLOW_EXPERIMENT", None)
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q", "-f"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "base"],
    ):
        p = subprocess.run(cmd, cwd=r, env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    before = (r / "params.yaml").read_bytes()
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.sweep",
            "--repo",
            str(r),
            "--out",
            str(out),
            "--only",
            "baseline",
            "--variant",
            "no_verification",
            "verify.enabled=false",
            "--variant",
            "adnt_no_attention",
            "adnt.method.attention=none",
            "--target",
            "verify",
            "--target",
            "adnt_report",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=2300,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    assert (r / "params.yaml").read_bytes() == before

    rows = {row["variant"]: row for row in csv.DictReader((out / "comparison.csv").open())}
    assert set(rows) == {"baseline", "no_verification", "adnt_no_attention"}
    assert all(row["status"] == "ok" for row in rows.values())
    base, nover, noatt = rows["baseline"], rows["no_verification"], rows["adnt_no_attention"]
    # each variant moves its own stage's metrics and nothing else: no compounding
    assert noatt["ADNT digits avg"] != base["ADNT digits avg"]
    assert nover["ADNT digits avg"] == base["ADNT digits avg"]
    assert nover["verified"] == nover["dialogs"]  # the unverified arm keeps every row
    assert noatt["verified"] == base["verified"] and noatt["verify pass rate"] == base["verify pass rate"]
    assert (out / "comparison.md").read_text().count("\n| ") >= 3
    assert (out / "comparison.png").stat().st_size > 1000

    from mlflow.tracking import MlflowClient

    assert not list(r.glob(".dvc/tmp/exps/**/mlflow.db"))
    client = MlflowClient(tracking_uri=f"sqlite:///{r / 'mlflow.db'}")
    exp = client.get_experiment_by_name("toolkiln-sweep")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], max_results=500)
    kinds = {}
    for run in runs:
        kinds.setdefault(run.data.tags.get("toolkiln.kind"), []).append(run)
    variants = {run.data.tags["toolkiln.variant"]: run for run in kinds["variant"]}
    assert set(variants) == set(rows)
    assert variants["no_verification"].data.params["verify.enabled"] == "false"
    assert (
        variants["adnt_no_attention"].data.metrics["ADNT_digits_avg"]
        != variants["baseline"].data.metrics["ADNT_digits_avg"]
    )
    # the stages themselves logged into the main store, grouped per variant
    stage_runs = {(run.data.tags["toolkiln.pipeline_id"], run.data.tags["toolkiln.stage"]) for run in kinds["stage"]}
    pids = {run.data.tags["toolkiln.pipeline_id"] for run in kinds["variant"]}
    assert all((pid, "adnt_train") in stage_runs or (pid, "verify") in stage_runs for pid in pids)
    assert any(pid.endswith("-no_verification") and (pid, "verify") in stage_runs for pid in pids)
    assert len(kinds["sweep"]) == 1


def test_log_sweep_files_a_parent_and_one_child_per_variant(tmp_path):
    from mlflow.tracking import MlflowClient

    from flows.sweep import log_sweep

    results = [
        {"name": "baseline", "overrides": [], "status": "ok", "metrics": {"verify": {"n_verified": 10, "ok": True}}},
        {"name": "v", "overrides": ["verify.enabled=false"], "status": "failed", "metrics": {}},
    ]
    header, rows = comparison_rows(results, ["verify"])
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("sweep", artifact_location=(tmp_path / "art").as_uri())
    table = tmp_path / "table.csv"
    table.write_text("variant\n")
    parent = log_sweep(uri, exp, "s1", results, header, rows, [table])
    runs = {r.info.run_name: r for r in client.search_runs([exp])}
    assert set(runs) == {"sweep s1", "baseline", "v"} and runs["sweep s1"].info.run_id == parent
    assert [a.path for a in client.list_artifacts(parent)] == ["table.csv"]
    base, v = runs["baseline"], runs["v"]
    assert base.data.tags["mlflow.parentRunId"] == parent and base.data.tags["toolkiln.variant"] == "baseline"
    # the compared column and every stage metric (booleans as 0/1) under MLflow-safe names
    assert base.data.metrics == {"verified": 10.0, "verify/n_verified": 10.0, "verify/ok": 1.0}
    assert v.data.params == {"overrides": "verify.enabled=false", "verify.enabled": "false"}
    assert base.info.status == "FINISHED" and v.info.status == "FAILED"
