"""Complexity guidance with a stub scorer (the policy's target NLL is wired in through the same hook later)."""

import json

import pytest

from toolkiln.dialogs.complexity import ComplexityGuide, make_scorer, structural_score
from toolkiln.dialogs.config import ComplexityConfig, DialogsConfig
from toolkiln.dialogs.generate import generate_dialogs


def stub_nll(rows):
    """Stands in for the policy's mean target NLL: harder with more candidates and more target calls."""
    out = []
    for r in rows:
        target = [c for c in json.loads(r["calls"]) if c["turn"] == r["target_turn"]]
        out.append(0.4 * r["n_candidates"] + 1.0 * len(target))
    return out


def _in_band(res, band):
    scores = stub_nll(res.dialogs.to_dicts())
    return sum(band[0] <= s <= band[1] for s in scores) / len(scores)


def test_guidance_steers_dialogs_into_the_band(pool):
    band = [3.6, 4.4]  # "hard enough": about 5-6 candidates for one call
    base = DialogsConfig(n_dialogs=120, type_mix={"single": 1.0}, levels=[0.5, 0.5, 0.0, 0.0, 0.0], distractors=[1, 6])
    guided_cfg = base.model_copy(update={"complexity": ComplexityConfig(enabled=True, scorer="structural", band=band,
                                                                        max_rounds=4)})
    plain = generate_dialogs(pool, base, seed=2, progress=False)
    guided = generate_dialogs(pool, guided_cfg, seed=2, scorer=stub_nll, progress=False)
    assert _in_band(guided, band) > _in_band(plain, band) + 0.2
    m = guided.metrics["complexity"]
    assert m["regenerated"] > 0 and m["band"] == band
    moved = 0
    for p in guided.dialogs["provenance"]:
        c = json.loads(p)["complexity"]
        levels = [h["level"] for h in c["history"]]
        if len(levels) > 1:
            moved += 1
            assert levels[-1] > levels[0]  # too easy -> harder: more distractors
        assert c["final"] in ("in_band", "too_easy", "too_hard")
    assert moved > 0


def test_too_hard_dialogs_get_simpler(pool):
    cfg = DialogsConfig(n_dialogs=60, type_mix={"single": 1.0}, levels=[0.0, 0.0, 0.0, 0.5, 0.5], distractors=[1, 6],
                        complexity=ComplexityConfig(enabled=True, scorer="structural", band=[0.0, 2.6], max_rounds=4))
    res = generate_dialogs(pool, cfg, seed=3, scorer=stub_nll, progress=False)
    hist = [json.loads(p)["complexity"]["history"] for p in res.dialogs["provenance"]]
    assert any(h[-1]["level"] < h[0]["level"] for h in hist)
    assert all(h[-1]["score"] <= h[0]["score"] for h in hist)


def test_band_is_calibrated_on_the_prior_set():
    guide = ComplexityGuide(stub_nll, ComplexityConfig(enabled=True, scorer="structural", calibrate_quantiles=[0.25, 0.75]))
    assert guide.calibrate([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 4.0)
    assert [guide.direction(s) for s in (1.0, 3.0, 5.0)] == [1, 0, -1]


def test_scorer_config():
    assert make_scorer(ComplexityConfig()) is None
    assert make_scorer(ComplexityConfig(enabled=True, scorer="structural")) is structural_score
    with pytest.raises(ValueError, match="scorer is 'none'"):
        ComplexityConfig(enabled=True)
    with pytest.raises(ValueError, match="band"):
        ComplexityConfig(band=[2.0, 1.0])
