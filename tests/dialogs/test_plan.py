"""The dialog planner's table of per-type planners and its one paraphrase-distance rule."""

import random

import pytest

from toolkiln.dialogs.config import DialogsConfig
from toolkiln.dialogs.plan import PLANNERS, PlanError, paraphrase_distance, plan_dialog
from toolkiln.schema import DIALOG_TYPES


def test_every_dialog_type_has_a_planner_and_nothing_else_does():
    assert set(PLANNERS) == set(DIALOG_TYPES)


def test_unknown_type_is_a_plan_error(pool):
    with pytest.raises(PlanError, match="unknown dialog type 'chitchat'"):
        plan_dialog(pool, DialogsConfig(), "chitchat", seed=0)


@pytest.mark.parametrize("type_", sorted(DIALOG_TYPES))
def test_each_planner_plans_its_type_deterministically(pool, type_):
    cfg = DialogsConfig()
    plans = [plan_dialog(pool, cfg, type_, seed=s, level=3) for s in range(5)]
    again = [plan_dialog(pool, cfg, type_, seed=s, level=3) for s in range(5)]
    assert plans == again and all(p.type == type_ and p.level == 3 for p in plans)
    last = [p.exchanges[-1] for p in plans]
    kinds = {"non_tool": {"non_tool"}, "clarification": {"clarify"}}.get(type_, {"tool"})
    assert {e.kind for e in last} == kinds
    if type_ == "dependent":
        assert all(len(e.stages) == 2 and e.stages[1][0].link is not None for e in last)
    if type_ == "parallel":
        assert all(len(e.stages[0]) >= 2 for e in last)


def test_history_share_from_the_own_category_is_a_param(pool):
    # all history APIs from the gold API's own category vs none of them: the plans differ
    base = DialogsConfig(multi_turn=1.0, max_history=2)
    same = [
        plan_dialog(pool, base.model_copy(update={"history_same_category": 1.0}), "single", s, level=4)
        for s in range(30)
    ]
    other = [
        plan_dialog(pool, base.model_copy(update={"history_same_category": 0.0}), "single", s, level=4)
        for s in range(30)
    ]
    cat = {a.idx: a.category for a in pool.apis}

    def share(plans):
        pairs = [
            (cat[c.api], cat[p.exchanges[-1].stages[0][0].api])
            for p in plans
            for e in p.exchanges[:-1]
            for st in e.stages
            for c in st
        ]
        return sum(a == b for a, b in pairs) / max(1, len(pairs))

    assert share(same) > share(other)


def test_paraphrase_distance_grows_with_level():
    rng = random.Random(0)
    assert {paraphrase_distance(lv, rng) for lv in (0, 1) for _ in range(50)} == {0}
    assert {paraphrase_distance(2, rng) for _ in range(50)} == {0, 1}
    assert paraphrase_distance(3, rng) == 1 and paraphrase_distance(4, rng) == 2
