"""The three ADNT stage scripts, end to end on tiny real domains, with real MLflow tracking."""

import json

import polars as pl
import pytest
import yaml

from toolkiln.config import read_yaml_mapping


@pytest.mark.slow
def test_adnt_stages_end_to_end(tmp_path, repo_root, monkeypatch):
    import stages.adnt_data as data_stage
    import stages.adnt_report as report_stage
    import stages.adnt_train as train_stage

    params = read_yaml_mapping(repo_root / "params.yaml")
    params["tracking"] = {"enabled": True, "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                          "artifact_dir": str(tmp_path / "art"), "experiment": "t"}
    params["adnt"].update({
        "data": {**params["adnt"]["data"], "domains": ["mnist", "optdigits", "mnistm"], "n_train": 30,
                 "n_test": 20, "gap_steps": 3},
        "model": {"conv_channels": [4, 8], "feature_dim": 16, "dropout": 0.0},
        "train": {**params["adnt"]["train"], "steps": 4, "batch_size": 8},
        "method": {**params["adnt"]["method"], "refresh_every": 2},
        "skada": {"max_epochs": 1, "batch_size": 16, "reg": 0.5},
        "protocol": {"seeds": [0], "methods": ["adnt", "source_only", "skada_dann"]},
    })
    params["runtime"] = {**params.get("runtime", {}), "workers": 1}
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("TOOLKILN_PIPELINE_ID", "adnt-test")
    d = tmp_path
    data_stage.main(["--params", str(p), "--out", f"{d}/domains", "--sheets", f"{d}/sheets",
                     "--gap-plot", f"{d}/gap.png", "--metrics", f"{d}/data.json"])
    assert sorted(x.name for x in (d / "domains").iterdir()) == ["manifest.json", "mnist.npz", "mnistm.npz",
                                                                "optdigits.npz"]
    assert len(list((d / "sheets").glob("*.png"))) == 3 and (d / "gap.png").stat().st_size > 1000
    gap = json.loads((d / "data.json").read_text())["gap"]
    assert set(gap) == {"mnist", "optdigits", "mnistm"} and "gap" in gap["mnist"]

    train_stage.main(["--params", str(p), "--domains", f"{d}/domains", "--out", f"{d}/results.parquet",
                      "--metrics", f"{d}/train.json"])
    res = pl.read_parquet(d / "results.parquet")
    assert res.height == 3 * 3 and json.loads((d / "train.json").read_text())["n_runs"] == 9

    report_stage.main(["--params", str(p), "--results", f"{d}/results.parquet", "--table", f"{d}/table.md",
                       "--bars", f"{d}/bars.png", "--pseudo-plot", f"{d}/pl.png", "--avg-plot", f"{d}/avg.csv",
                       "--metrics", f"{d}/report.json"])
    assert "→ optdigits" in (d / "table.md").read_text()
    assert set(pl.read_csv(d / "avg.csv")["method"]) == {"adnt", "source_only", "skada_dann"}
    rep = json.loads((d / "report.json").read_text())
    assert set(rep["verdicts"]["margin_over"]) == {"source_only", "skada_dann"}

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["t"])
    runs = runs[runs["tags.toolkiln.kind"] == "method"]
    assert sorted(runs["tags.toolkiln.method"]) == ["adnt", "skada_dann", "source_only"]
    assert "metrics.acc.avg.mean" in runs.columns
    stage = mlflow.search_runs(experiment_names=["t"], filter_string="tags.`toolkiln.stage` = 'adnt_train'")
    assert set(runs["tags.mlflow.parentRunId"]) == {stage["run_id"][0]}
