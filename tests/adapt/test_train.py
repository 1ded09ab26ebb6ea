import json

import numpy as np
import polars as pl
import pytest
import torch

from toolkiln.adapt.config import METHODS
from toolkiln.adapt.experiment import gap_table, run_protocol, summarise
from toolkiln.adapt.report import markdown_table, verdicts
from toolkiln.adapt.train import make_task, run_method, single_source_gap, train_adnt


def test_make_task_leaves_the_target_out(tiny_domains):
    task = make_task(tiny_domains, "b")
    assert task.sources == ["a", "c"] and len(task.Xs) == 2
    assert task.Xt.shape == (60, 3, 28, 28) and task.Xt_test.shape == (30, 3, 28, 28)
    with pytest.raises(ValueError, match="not in"):
        make_task(tiny_domains, "z")


def test_source_only_learns_the_easy_synthetic_task(tiny_domains, tiny_cfg):
    cfg = tiny_cfg.model_copy(update={"train": tiny_cfg.train.model_copy(update={"steps": 60, "lr": 0.003})})
    r = run_method("source_only", make_task(tiny_domains, "b"), cfg, seed=0)
    assert r.acc > 0.5  # chance is 0.1


@pytest.mark.parametrize("method", [m for m in METHODS if not m.startswith("skada_")])
def test_every_own_method_runs_and_is_seeded(method, tiny_domains, tiny_cfg):
    task = make_task(tiny_domains, "c")
    r1 = run_method(method, task, tiny_cfg, seed=5)
    r2 = run_method(method, task, tiny_cfg, seed=5)
    assert 0.0 <= r1.acc <= 1.0 and r1.method == method and r1.target == "c"
    assert r1.acc == r2.acc  # same seed, same result


def test_adnt_records_pseudo_label_history(tiny_domains, tiny_cfg):
    _, hist = train_adnt(make_task(tiny_domains, "a"), tiny_cfg, seed=0)
    steps = [h["step"] for h in hist]
    assert steps[0] == 3 and steps == sorted(steps)  # first at pseudo_start (0.25 * 12), then refreshed
    assert all(0 <= h["coverage"] <= 1 for h in hist)
    assert hist[0]["weight"] == 0.0 and hist[-1]["weight"] > 0  # adaptive ramp


def test_pseudo_noise_lowers_the_used_labels_precision_and_zero_changes_nothing(tiny_domains, tiny_cfg):
    task = make_task(tiny_domains, "a")
    cfg = tiny_cfg.model_copy(
        update={
            "train": tiny_cfg.train.model_copy(update={"steps": 60, "lr": 0.003}),
            "method": tiny_cfg.method.model_copy(update={"refresh_every": 10}),
        }
    )
    _, clean = train_adnt(task, cfg, seed=0)
    _, zero = train_adnt(
        task, cfg.model_copy(update={"method": cfg.method.model_copy(update={"pseudo_noise": 0.0})}), seed=0
    )
    assert json.dumps(zero) == json.dumps(clean)  # (precision is NaN while nothing is kept)
    _, noisy = train_adnt(
        task, cfg.model_copy(update={"method": cfg.method.model_copy(update={"pseudo_noise": 0.6})}), seed=0
    )
    # until labels are first kept the runs are the same; that refresh keeps the same labels, 60% of them flipped
    i = next(k for k, h in enumerate(clean) if h["coverage"] > 0)
    assert noisy[i]["coverage"] == clean[i]["coverage"]
    assert noisy[i]["precision"] < 0.7 * clean[i]["precision"]  # expected 0.4 p + 0.6 (1 - p) / 9


def test_ablations_change_the_trained_model(tiny_domains, tiny_cfg):
    task = make_task(tiny_domains, "a")
    outs = {}
    for name, over in {"adnt": {}, "none": {"attention": "none"}, "ordinary": {"attention": "ordinary"}}.items():
        model, _ = train_adnt(task, tiny_cfg, seed=0, overrides=over)
        outs[name] = model(task.Xt_test[:8]).detach()
    assert not torch.allclose(outs["adnt"], outs["none"]) and not torch.allclose(outs["adnt"], outs["ordinary"])


def test_unknown_method(tiny_domains, tiny_cfg):
    with pytest.raises(ValueError, match="unknown method"):
        run_method("fixmatch", make_task(tiny_domains, "a"), tiny_cfg, 0)


def test_gap_matrix(tiny_domains, tiny_cfg):
    G = single_source_gap(tiny_domains, tiny_cfg, seed=0)
    assert G.shape == (3, 3) and ((G >= 0) & (G <= 1)).all()
    t = gap_table(list(tiny_domains), G)
    assert t["a"]["gap"] == pytest.approx(G[0, 0] - (G[0, 1] + G[0, 2]) / 2)


@pytest.mark.parametrize("method", ["skada_source_only", "skada_dann", "skada_mdd", "skada_deepcoral"])
def test_skada_reference_methods_run(method, tiny_domains, tiny_cfg):
    r = run_method(method, make_task(tiny_domains, "b"), tiny_cfg, seed=0)
    assert 0.0 <= r.acc <= 1.0


def test_protocol_summary_and_report(tiny_domains, tiny_cfg):
    cfg = tiny_cfg.model_copy(
        update={
            "protocol": tiny_cfg.protocol.model_copy(
                update={"methods": ["adnt", "source_only", "adnt_ce"], "seeds": [0, 1]}
            )
        }
    )
    res = run_protocol(tiny_domains, cfg, progress=False)
    assert res.height == 3 * 3 * 2 and set(res["method"]) == {"adnt", "source_only", "adnt_ce"}
    assert json.loads(res.filter(pl.col("method") == "adnt")["history"][0])
    s = summarise(res)
    row = s.filter((pl.col("method") == "adnt") & (pl.col("target") == "a")).row(0, named=True)
    accs = res.filter((pl.col("method") == "adnt") & (pl.col("target") == "a"))["acc"].to_numpy()
    assert row["mean"] == pytest.approx(accs.mean()) and row["std"] == pytest.approx(accs.std())
    avg = s.filter((pl.col("method") == "adnt") & (pl.col("target") == "avg")).row(0, named=True)
    assert avg["mean"] == pytest.approx(res.filter(pl.col("method") == "adnt")["acc"].mean())
    table = markdown_table(s, ["a", "b", "c"])
    assert table.count("\n") == 2 + 3 and "| ADNT |" in table and "± " in table
    v = verdicts(s)
    assert set(v["margin_over"]) == {"source_only"} and set(v["ablation_cost"]) == {"adnt_ce"}
    assert v["beats_every_baseline"] == (v["margin_over"]["source_only"] > 0)


def test_verdicts_on_a_hand_made_summary():
    s = pl.DataFrame(
        {
            "method": ["adnt", "source_only", "adnt_ce"],
            "target": ["avg"] * 3,
            "mean": [0.8, 0.7, 0.82],
            "std": [0.01, 0.02, 0.01],
            "n": [3, 3, 3],
        }
    )
    v = verdicts(s)
    assert v["beats_every_baseline"] and not v["every_ablation_costs"]
    assert v["margin_over_in_std"]["source_only"] == pytest.approx(0.1 / (0.01**2 + 0.02**2) ** 0.5)
    assert v["beats_every_baseline_beyond_noise"] and not v["every_ablation_costs_beyond_noise"]
    assert v["ablation_cost"]["adnt_ce"] == pytest.approx(-0.02)
    assert np.isclose(v["margin_over"]["source_only"], 0.1)


def test_leave_one_source_out_selection_never_reads_the_target(tmp_path, tiny_domains, tiny_cfg):
    from toolkiln.adapt.experiment import save_domains
    from toolkiln.adapt.selection import run_selection, with_overrides

    save_domains(tiny_domains, tmp_path)
    grid = {"source_only": [{}], "dann": [{}, {"dann": {"weight": 0.1}}]}
    sel = run_selection(str(tmp_path), ["a", "b", "c"], tiny_cfg, grid=grid, targets=["a"], progress=False)
    # 2 held-out sources x 3 candidates; the target is neither a held-out nor (by make_task) a source
    assert sel.validation.height == 6 and set(sel.validation["held_out"]) == {"b", "c"}
    assert set(sel.validation["target"]) == {"a"}
    for r in sel.choices.iter_rows(named=True):  # the best validation mean, the default on ties
        g = sel.validation.filter(pl.col("method") == r["method"])
        means = g.group_by("candidate").agg(pl.col("acc").mean()).sort("candidate")["acc"].to_list()
        assert r["val_acc"] == max(means) and r["candidate"] == means.index(max(means))
    # the default setting's final run is exactly the adnt_train run of the same (method, target, seed)
    protocol = run_protocol(
        tiny_domains,
        tiny_cfg.model_copy(update={"protocol": tiny_cfg.protocol.model_copy(update={"methods": ["source_only"]})}),
        targets=["a"],
        progress=False,
    )
    assert sel.runs.filter(pl.col("method") == "source_only")["acc"].to_list() == protocol["acc"].to_list()
    with pytest.raises(ValueError, match="unknown adnt section"):
        with_overrides(tiny_cfg, {"nope": {"x": 1}})
    with pytest.raises(ValueError, match="weight"):
        run_selection(str(tmp_path), ["a", "b", "c"], tiny_cfg, grid={"dann": [{"dann": {"weight": -1}}]})
