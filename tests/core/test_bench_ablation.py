"""The curriculum ablation's summary: runs from per-order result files merge into mean ± std and a delta."""

from __future__ import annotations

import json

import pytest

import bench.common
from bench import curriculum_ablation


def _runs(order: str, accs: list[float], nll: list[float]) -> dict:
    return {"seeds": [0, 1, 2], "runs": [{"order": order, "seed": s, "accuracy": a, "test_target_nll": n,
                                          "by_type": {"single": a / 2, "non_tool": a * 2}}
                                         for s, (a, n) in enumerate(zip(accs, nll))]}


def test_combine_reports_mean_std_and_delta(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench.common, "RESULTS", tmp_path)
    (tmp_path / "r.json").write_text(json.dumps(_runs("random", [0.1, 0.2, 0.3], [2.0, 2.0, 2.0])))
    (tmp_path / "e.json").write_text(json.dumps(_runs("easy_to_hard", [0.3, 0.3, 0.3], [1.5, 1.7, 1.9])))
    out = curriculum_ablation.main(["--combine", "r", "e", "--name", "both"])
    s = out["summary"]
    assert s["random"]["overall"] == pytest.approx((0.2, 0.1))
    assert s["easy_to_hard"]["overall"] == pytest.approx((0.3, 0.0))
    assert s["easy_to_hard"]["test_target_nll"] == pytest.approx((1.7, 0.2))
    assert s["delta_easy_to_hard_minus_random"]["overall"] == pytest.approx(0.1)
    assert s["delta_easy_to_hard_minus_random"]["single"] == pytest.approx(0.05)
    assert len(json.loads((tmp_path / "both.json").read_text())["runs"]) == 6
    assert "easy_to_hard - random" in capsys.readouterr().out


def test_recorded_results_name_no_checkout_path(tmp_path, monkeypatch):
    """A committed result names files relative to the repository, never by this machine's absolute path."""
    monkeypatch.setattr(bench.common, "RESULTS", tmp_path)
    root = bench.common.ROOT
    path = bench.common.record(
        "r", {"train": str(root / "data" / "train.parquet"), "runs": [{"ckpt": root / "checkpoints" / "x"}],
              "outside": "/elsewhere/y", "n": 3}
    )
    saved = json.loads(path.read_text())
    assert saved["train"] == "data/train.parquet" and saved["runs"] == [{"ckpt": "checkpoints/x"}]
    assert saved["outside"] == "/elsewhere/y" and saved["n"] == 3
    assert str(root) not in path.read_text()
