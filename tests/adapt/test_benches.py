"""The ADNT studies in bench/: the scaling grid (cells, margins, resume) and the hard benchmark, on tiny settings."""

from __future__ import annotations

import json

import pytest
import yaml

import bench.common
from bench import adnt_hard, adnt_scaling
from toolkiln.adapt.config import ADNTConfig
from toolkiln.adapt.experiment import save_domains
from toolkiln.config import deep_merge, read_yaml_mapping

from .conftest import synthetic_domain

TINY = {
    "model": {"conv_channels": [4, 8], "feature_dim": 16},
    "train": {"steps": 6, "batch_size": 8, "eval_batch": 64},
    "method": {"refresh_every": 3, "pseudo_start": 0.25, "pseudo_threshold": 0.2},
    "skada": {"max_epochs": 1, "batch_size": 16},
    "data": {"gap_steps": 3, "n_train": 20, "n_test": 20, "fonts": ["DejaVuSans.ttf"], "photos": ["sklearn:china.jpg"]},
}


def tiny_params(tmp_path, **data) -> str:
    params = deep_merge(read_yaml_mapping(bench.common.ROOT / "params.yaml"), {"adnt": TINY})
    params["adnt"]["data"].update(data)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return str(path)


@pytest.fixture
def results(tmp_path, monkeypatch):
    out = tmp_path / "results"
    monkeypatch.setattr(bench.common, "RESULTS", out)
    return out


def test_cells_parse_and_scale_compute_equally():
    assert adnt_scaling.parse_cells("1x1, 16x0.25") == [(1, 1.0), (16, 0.25)]
    for bad in ("4", "0x1", "1x2", "1x0", "ax1"):
        with pytest.raises(ValueError, match="--cells"):
            adnt_scaling.parse_cells(bad)
    cfg = ADNTConfig()
    c = adnt_scaling.cell_config(cfg, 4, 0.25, ["adnt", "source_only"], [0])
    assert c.train.steps == 4 * cfg.train.steps
    # skada walks the (4x smaller) data per epoch: 16x the epochs gives 4x the source images
    assert c.skada.max_epochs == 16 * cfg.skada.max_epochs
    assert c.protocol.methods == ["adnt", "source_only"] and cfg.train.steps == 400


def test_margins_are_paired_per_seed():
    runs = [
        {"cell": "1x1", "steps_mult": 1, "examples_mult": 1.0, "method": m, "target": t, "seed": s, "acc": a}
        for m, t, s, a in [
            ("source_only", "a", 0, 0.5),
            ("source_only", "b", 0, 0.7),
            ("source_only", "a", 1, 0.3),
            ("source_only", "b", 1, 0.5),
            ("adnt", "a", 0, 0.6),
            ("adnt", "b", 0, 0.8),
            ("adnt", "a", 1, 0.4),
            ("adnt", "b", 1, 0.6),
        ]
    ]
    rows = {r["method"]: r for r in adnt_scaling.margins(runs)}
    # per seed: source-only 60 / 40, adnt 70 / 50 -> accuracy std 10, but the paired margin is exactly +10
    assert rows["adnt"]["avg_acc"] == pytest.approx(60) and rows["adnt"]["std"] == pytest.approx(10)
    assert rows["adnt"]["margin"] == pytest.approx(10) and rows["adnt"]["margin_std"] == pytest.approx(0)
    assert rows["source_only"]["margin"] == 0


def test_scaling_runs_cells_and_resumes(tmp_path, results, monkeypatch):
    names = ["mnist", "optdigits", "syndigits"]
    domains = {n: synthetic_domain(n, 60, 30, i, (0.1 * i, 0.0, 0.2)) for i, n in enumerate(names)}
    save_domains(domains, tmp_path)
    params = tiny_params(tmp_path, domains=names)
    common = [
        "--domains",
        str(tmp_path),
        "--params",
        params,
        "--targets",
        "syndigits",
        "--seeds",
        "0",
        "--methods",
        "adnt,source_only",
        "--workers",
        "1",
    ]
    out = adnt_scaling.main([*common, "--cells", "1x1,2x0.5"])
    assert len(out["runs"]) == 4 and {r["cell"] for r in out["runs"]} == {"1x1", "2x0.5"}
    assert (results / "adnt_scaling.png").is_file()

    import toolkiln.adapt.experiment as experiment

    calls, real = [], experiment.run_protocol

    def counting(domains, cfg, **kw):
        calls.append((cfg.train.steps, len(next(iter(domains.values())).y_train)))
        return real(domains, cfg, **kw)

    monkeypatch.setattr(experiment, "run_protocol", counting)
    again = adnt_scaling.main([*common, "--cells", "1x1,2x0.5,3x0.5", "--resume"])
    assert calls == [(18, 30)]  # only the new cell trained: 3 x 6 steps on half of the 60 images
    assert json.dumps(again["runs"][:4]) == json.dumps(out["runs"]) and len(again["runs"]) == 6  # NaN-safe
    by_method = {r["method"]: r for r in again["runs"]}
    assert by_method["adnt"]["pseudo_coverage_last"] is not None  # ADNT's refreshes are summarised
    assert by_method["source_only"]["pseudo_coverage_last"] is None
    calls.clear()
    redone = adnt_scaling.main([*common, "--cells", "1x1,2x0.5,3x0.5", "--resume", "--redo", "1x1"])
    assert calls == [(6, 60)] and len(redone["runs"]) == 6  # 1x1 trained again, nothing else
    saved = json.loads((results / "adnt_scaling.json").read_text())
    assert {r["cell"] for r in saved["rows"]} == {"1x1", "2x0.5", "3x0.5"}
    with pytest.raises(ValueError, match="other targets"):
        adnt_scaling.main([*common, "--targets", "mnist", "--cells", "1x1", "--resume"])


@pytest.mark.slow
def test_hard_benchmark_builds_selects_and_ablates(tmp_path, results, monkeypatch):
    params = tiny_params(tmp_path)
    args = [
        "--params",
        params,
        "--domains",
        "mnist,optdigits,strokes",
        "--targets",
        "strokes",
        "--seeds",
        "0",
        "--workers",
        "1",
        "--cache",
        str(tmp_path / "cache"),
    ]
    out = adnt_hard.main(args)
    methods = {r["method"] for r in out["table"]}
    assert methods == {"adnt", "source_only", "dann", "m3sda", "skada_deepcoral", *adnt_hard.ABLATIONS}
    assert len(out["runs"]) == len(methods) and {r["target"] for r in out["runs"]} == {"strokes"}
    assert set(out["gap"]) == {"mnist", "optdigits", "strokes"}
    assert (results / "adnt_hard" / "strokes.png").is_file() and (results / "adnt_hard" / "gap_matrix.png").is_file()
    # every selection run held out a source, never the target
    assert {r["held_out"] for r in out["validation"]} == {"mnist", "optdigits"}

    import toolkiln.adapt.experiment as experiment

    def no_rebuild(*a, **k):
        raise AssertionError("the cached domains should have been reused")

    monkeypatch.setattr(experiment, "build_benchmark", no_rebuild)
    assert adnt_hard.main([*args, "--gap-only"])["gap"] == out["gap"]
