"""ADNT on dialog embeddings, on a tiny synthetic fixture: the verification engineer's example dialogs and error injection."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from toolkiln.adapt.config import ADNTConfig
from toolkiln.adapt.dialogs import (choose_targets, dialog_skeleton, dialog_task, dialog_text, embed,
                                    run_dialog_adaptation, verification_rows)
from toolkiln.testing.examples import example_dialogs


@pytest.fixture(scope="module")
def clean():
    return example_dialogs(120, seed=0)


def test_dialog_text_and_skeleton(clean):
    row = clean.row(0, named=True)
    text = dialog_text(row)
    assert text.startswith("user: ") and "call " in text
    sk = dialog_skeleton(row).split()
    assert "role_user" in sk and "seq_start_user" in sk and any(t.startswith("arg_") for t in sk)
    assert dialog_text({"messages": "{not json"}).startswith("<unparsable")
    assert dialog_skeleton({"messages": "[", "tools": "[]"}) == "unparsable"


def test_verification_rows_labels_and_no_dialog_in_both_classes(clean):
    rows = verification_rows(clean, seed=0)
    assert set(rows["label"]) == {0, 1}
    clean_ids = set(rows.filter(pl.col("label") == 0)["id"])
    bad_sources = {i.split("~")[0] for i in rows.filter(pl.col("label") == 1)["id"]}
    assert not clean_ids & bad_sources
    assert (rows.filter(pl.col("label") == 1)["kind"] != "clean").all()
    with pytest.raises(ValueError, match="missing columns"):
        verification_rows(clean.drop("messages"), seed=0)


def test_embed_shapes_and_errors(clean):
    rows = verification_rows(clean, seed=0)
    Z = embed(rows["text"].to_list(), rows["skeleton"].to_list(), dim=32)
    assert Z.shape == (rows.height, 32) and Z.dtype == np.float32
    assert np.allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)
    assert embed(["a b", "c d", "e"], dim=16).shape == (3, 16)  # tiny corpora are padded
    with pytest.raises(ValueError, match="embedder"):
        embed(["x"], kind="bert")


def test_targets_and_task(clean):
    rows = verification_rows(clean, seed=0)
    targets = choose_targets(rows, "", 2, 10)
    assert len(targets) == 2
    n = rows.group_by("domain").len()
    assert targets[0] == n.sort("len", descending=True)["domain"][0]
    with pytest.raises(ValueError, match="target_domain"):
        choose_targets(rows, "astrology", 2, 10)
    Z = embed(rows["text"].to_list(), dim=16)
    task = dialog_task(rows, Z, targets[0], hidden=8, seed=0)
    n_t = int((rows["domain"] == targets[0]).sum())
    assert len(task.Xt) + len(task.Xt_test) == n_t and targets[0] not in task.sources
    F, C = task.backbone()
    assert C(F(task.Xt[:3])).shape == (3, 2)


def test_run_dialog_adaptation(clean):
    cfg = ADNTConfig.model_validate({"dialogs": {"dim": 16, "hidden": 8, "steps": 6, "batch_size": 4,
                                                 "min_domain_rows": 10, "max_tasks": 2},
                                     "method": {"refresh_every": 2}, "protocol": {"seeds": [0, 1]}})
    res, counts = run_dialog_adaptation(clean, cfg, progress=False)
    assert res.height == 2 * 2 * 3 and set(res["method"]) == {"source_only", "adnt", "dann"}
    rows = verification_rows(clean, seed=0)
    assert counts["rows"].sum() == rows.height and counts["corrupted"].sum() == rows["label"].sum()
    for r in res.iter_rows(named=True):
        # an accuracy over the target's held-out half: a whole number of its rows, and the majority-class
        # rate of exactly those rows
        n_t = int(counts.filter(pl.col("domain") == r["target"])["rows"][0])
        n_test = n_t - n_t // 2
        assert abs(r["acc"] * n_test - round(r["acc"] * n_test)) < 1e-6
        y = dialog_task(rows, np.zeros((rows.height, 1), np.float32), r["target"], 2, r["seed"]).yt_test.float()
        assert r["target_majority"] == pytest.approx(max(y.mean().item(), 1 - y.mean().item()))
    again, _ = run_dialog_adaptation(clean, cfg, progress=False)
    assert again["acc"].to_list() == res["acc"].to_list()  # seeded end to end


def test_dialogs_stage(tmp_path, clean):
    import stages.adnt_dialogs as stage
    import yaml

    from toolkiln.config import read_yaml_mapping

    params = read_yaml_mapping(Path(__file__).resolve().parents[2] / "params.yaml")
    params["tracking"]["enabled"] = False
    params["adnt"]["dialogs"].update({"dim": 16, "hidden": 8, "steps": 4, "min_domain_rows": 10, "max_tasks": 1,
                                      "methods": ["source_only", "adnt"]})
    params["adnt"]["protocol"]["seeds"] = [0]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    clean.write_parquet(tmp_path / "dialogs.parquet")
    stage.main(["--params", str(tmp_path / "p.yaml"), "--dialogs", str(tmp_path / "dialogs.parquet"),
                "--out", str(tmp_path / "r.parquet"), "--table", str(tmp_path / "t.md"),
                "--metrics", str(tmp_path / "m.json")])
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["adnt_minus_source_only"] is not None and "Majority-class" in (tmp_path / "t.md").read_text()


def test_dialogs_stage_records_a_skip_when_no_domain_is_big_enough(tmp_path, clean):
    import stages.adnt_dialogs as stage
    import yaml

    from toolkiln.config import read_yaml_mapping

    params = read_yaml_mapping(Path(__file__).resolve().parents[2] / "params.yaml")
    params["tracking"]["enabled"] = False
    params["adnt"]["dialogs"]["min_domain_rows"] = 10_000
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    clean.write_parquet(tmp_path / "dialogs.parquet")
    stage.main(["--params", str(tmp_path / "p.yaml"), "--dialogs", str(tmp_path / "dialogs.parquet"),
                "--out", str(tmp_path / "r.parquet"), "--table", str(tmp_path / "t.md"),
                "--metrics", str(tmp_path / "m.json")])
    assert "10000" in json.loads((tmp_path / "m.json").read_text())["skipped"]
    assert pl.read_parquet(tmp_path / "r.parquet").height == 0
