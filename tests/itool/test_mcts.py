"""The step-level search on a scripted policy whose right and wrong fragments are known: the search must find them."""

import math

import pytest

from toolkiln.itool.config import MCTSConfig, PairsConfig
from toolkiln.itool.mcts import (
    Piece,
    ScriptedPolicy,
    SearchJob,
    call_reward,
    first_fragment,
    search,
    search_many,
    split_fragments,
)
from toolkiln.itool.pairs import overlap, sibling_pairs

GOLD = [{"name": "weather.get_forecast", "arguments": {"city": "Paris", "days": 3}}]
RIGHT = '[weather.get_forecast(city="Paris", days=3)]'
WRONG_CITY = '[weather.get_forecast(city="Rome", days=3)]'
WRONG_TOOL = '[hotel.search(city="Paris")]'


def test_fragments_split_at_the_delimiters():
    assert split_fragments(RIGHT) == ["[weather.get_forecast(", "city=", '"Paris", ', "days=", "3)]"]
    assert split_fragments("Which city? I need it. Thanks") == ["Which city? I need it. ", "Thanks"]
    assert split_fragments("(a") == ["(a"]  # a delimiter inside the first min_chars characters is no step
    # token-aligned: the fragment ends with the token that completes the delimiter
    pieces = [Piece("[f"), Piece("(a"), Piece("=1"), Piece(")]")]
    assert first_fragment(pieces) == 2 and first_fragment(pieces[2:]) == 2


def test_reward_is_partial_credit_on_a_minus_one_to_one_scale():
    assert call_reward(RIGHT, GOLD) == 1.0
    assert call_reward(WRONG_TOOL, GOLD) == -1.0
    assert call_reward("not a call at all (", GOLD) == -1.0
    # name right, argument names right, half the values right: (1 + 1 + 0.5) / 3 -> 2 * 0.833 - 1
    assert math.isclose(call_reward(WRONG_CITY, GOLD), 2 * (2.5 / 3) - 1)
    assert call_reward("For which city?", []) == 1.0 and call_reward(RIGHT, []) == -1.0
    assert call_reward("[]", []) == 1.0  # an explicitly empty call list is a decision not to call
    # a broken call list is a call attempt, not an abstention: it never becomes the chosen side of a text target
    assert call_reward('[# Get the forecast\nweather.get_forecast(city="Par', []) == -1.0
    assert call_reward("[get(x=__import__('os'))]", []) == -1.0  # refused: still a call


def test_search_finds_the_known_pairs_of_a_scripted_policy():
    policy = ScriptedPolicy({"p": [(RIGHT, 0.4), (WRONG_CITY, 0.35), (WRONG_TOOL, 0.25)]})
    res = search(policy, "p", GOLD, MCTSConfig(width=3, depth=3, iterations=5))
    pairs = sibling_pairs(res.root, PairsConfig())
    found = {(p["prefix"], p["chosen"], p["rejected"]) for p in pairs}
    # the wrong tool is rejected at the first step, the wrong city where the city value is written
    assert ("", "[weather.get_forecast(", "[hotel.search(") in found
    assert ("[weather.get_forecast(city=", '"Paris", ', '"Rome", ') in found
    assert len(found) == 2
    by = {(p["chosen"], p["rejected"]): p for p in pairs}
    step1 = by[("[weather.get_forecast(", "[hotel.search(")]
    assert step1["depth"] == 1 and step1["rejected_value"] == -1.0 and step1["gap"] >= 0.1
    step3 = by[('"Paris", ', '"Rome", ')]
    assert step3["depth"] == 3 and step3["chosen_value"] == 1.0 and step3["chosen_rollout"] == RIGHT
    assert step3["rejected_rollout"] == WRONG_CITY
    # visits: every rollout is backed up to the root; 5 iterations x up to 3 samples
    assert res.root.visits == res.rollouts and res.rollouts <= 5 * 3
    assert res.forward_passes == len(policy.calls) <= 5  # one batched call per iteration
    # the city step's gap is 1 - 0.667: a stricter gap filter drops it and keeps the wrong-tool pair
    strict = sibling_pairs(res.root, PairsConfig(min_gap=0.5))
    assert [(p["chosen"], p["rejected"]) for p in strict] == [("[weather.get_forecast(", "[hotel.search(")]


def test_lockstep_trees_are_the_single_prompt_trees():
    """Searching prompts in step changes how samples are batched, never a tree: with a deterministic policy each
    lockstep tree has exactly the visits, values and pairs of its prompt searched alone."""
    answers = {
        "p": [(RIGHT, 0.4), (WRONG_CITY, 0.35), (WRONG_TOOL, 0.25)],
        "q": [(RIGHT, 0.9), (WRONG_TOOL, 0.1)],
        "r": [("Which city?", 0.5), (RIGHT, 0.5)],  # a text target: the question is the right answer
    }
    golds = {"p": GOLD, "q": GOLD, "r": []}
    cfg = MCTSConfig(width=3, depth=3, iterations=5)
    together = search_many(ScriptedPolicy(answers), [SearchJob(k, golds[k]) for k in answers], cfg)
    alone = [search(ScriptedPolicy(answers), k, golds[k], cfg) for k in answers]

    def shape(node):
        return (node.text, node.visits, round(node.value, 6), [shape(c) for c in node.children])

    for a, b in zip(together, alone):
        assert shape(a.root) == shape(b.root) and a.rollouts == b.rollouts
        assert sibling_pairs(a.root, PairsConfig()) == sibling_pairs(b.root, PairsConfig())
    assert sibling_pairs(together[2].root, PairsConfig())  # each tree keeps its own gold: r prefers the question


def test_priors_guide_selection_and_filters_drop_weak_pairs():
    policy = ScriptedPolicy({"p": [(RIGHT, 0.9), (WRONG_TOOL, 0.1)]})
    res = search(policy, "p", GOLD, MCTSConfig(width=2, depth=1, iterations=3))
    right, wrong = sorted(res.root.children, key=lambda c: -c.value)
    assert right.prior > wrong.prior and math.isclose(right.prior + wrong.prior, 1.0)
    # depth limit 1: later iterations roll out from the selected child again instead of expanding it
    assert not right.expanded and right.visits >= 2
    assert len(sibling_pairs(res.root, PairsConfig(min_gap=2.0))) == 1  # the gap is exactly 2: kept (>=)
    assert sibling_pairs(res.root, PairsConfig(max_overlap=0.0)) == []
    assert overlap("abc", "abc") == 1.0


@pytest.mark.parametrize("answers", [[("[]", 1.0)], [("Sure. I can help", 1.0)]])
def test_single_answer_yields_no_pairs(answers):
    res = search(ScriptedPolicy({"p": answers}), "p", [], MCTSConfig(iterations=4))
    assert sibling_pairs(res.root, PairsConfig()) == []
    assert res.root.visits >= 3


class ModePolicy(ScriptedPolicy):
    """Samples only its most probable answer from the empty prefix (a confident, wrong warm-up); below a given
    prefix it continues as the scripted policy does."""

    def sample(self, prompt, prefix, n):
        if prefix:
            return super().sample(prompt, prefix, n)
        self.forward_passes += 1
        top, prob = max(self.answers[prompt], key=lambda a: a[1])
        return [[Piece(ch, None, math.log(prob) / len(top)) for ch in top] for _ in range(n)]


def test_tool_choice_openings_put_a_tool_the_policy_never_samples_into_the_tree():
    answers = {"p": [(WRONG_TOOL, 0.9), (RIGHT, 0.1)]}
    cfg = MCTSConfig(width=3, depth=2, iterations=3)
    plain = search(ModePolicy(answers), "p", GOLD, cfg)
    # every sampled sibling is the same wrong tool: one child, no pair
    assert [c.text for c in plain.root.children] == ["[hotel.search("]
    assert sibling_pairs(plain.root, PairsConfig()) == []
    openings = ["[weather.get_history(", "[hotel.search(", "[weather.get_forecast("]
    res = search(ModePolicy(answers), "p", GOLD, cfg.model_copy(update={"root_openings": 2}), openings=openings)
    kids = {c.text: c for c in res.root.children}
    # the two openings the policy ranks highest (get_history starts no answer: floor log-prob) became children,
    # and the sampled wrong-tool fragment merged into its opening instead of making a duplicate sibling
    assert set(kids) == {"[hotel.search(", "[weather.get_forecast("}
    right, wrong = kids["[weather.get_forecast("], kids["[hotel.search("]
    assert right.best_rollout == RIGHT and right.value == 1.0 and wrong.value == -1.0
    assert wrong.prior > right.prior  # the prior is the policy's own ranking of the openings
    pairs = sibling_pairs(res.root, PairsConfig())
    assert ("", "[weather.get_forecast(", "[hotel.search(") in {
        (p["prefix"], p["chosen"], p["rejected"]) for p in pairs
    }
    assert res.root.visits == res.rollouts
    # root_openings 0 (the default): the same openings are ignored
    off = search(ModePolicy(answers), "p", GOLD, cfg, openings=openings)
    assert [c.text for c in off.root.children] == ["[hotel.search("]
