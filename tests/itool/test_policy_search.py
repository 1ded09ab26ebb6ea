"""The real step policy (a tiny HF checkpoint): cached batched sampling equals naive sampling; deficiencies; a search."""

import polars as pl
import pytest

from toolkiln.itool.config import DeficiencyConfig, IToolConfig, MCTSConfig
from toolkiln.itool.deficiency import budget, find_deficiencies, render_prompts
from toolkiln.itool.mcts import HFStepPolicy, Piece, SearchJob, search, search_many
from toolkiln.itool.rounds import load_checkpoint, mcts_pairs


@pytest.fixture(scope="module")
def loaded(tiny_policy):
    folder, cfg = tiny_policy
    model, tok, device = load_checkpoint(folder, cfg)
    return model, tok, cfg


def test_cached_batched_siblings_equal_naive_generation_and_cost_fewer_forwards(loaded, train_dialogs):
    import torch

    model, tok, cfg = loaded
    prompts, _ = render_prompts(train_dialogs.head(3).to_dicts(), tok, cfg.render)
    fast = HFStepPolicy(model, tok, temperature=1.0, top_k=1, max_new_tokens=12)  # top-1: sampling is greedy
    slow = HFStepPolicy(model, tok, temperature=1.0, top_k=1, max_new_tokens=12, batched=False, prefix_cache=False)
    try:
        for p in prompts:
            torch.manual_seed(0)
            a = fast.sample(p.text, [], 3)
            prefix = a[0][:2]
            b = fast.sample(p.text, prefix, 3)
            c = slow.sample(p.text, [], 3)
            d = slow.sample(p.text, prefix, 3)
            assert [[x.token for x in r] for r in a] == [[x.token for x in r] for r in c]
            assert [[x.token for x in r] for r in b] == [[x.token for x in r] for r in d]
            for r1, r2 in zip(b, d):  # the prior is the same model's log-prob with and without the cache
                assert all(abs(x.logprob - y.logprob) < 1e-4 for x, y in zip(r1, r2))
            assert all(len(r) <= 12 and all(isinstance(x, Piece) and x.logprob <= 0 for x in r) for r in a)
        assert fast.forward_passes * 2 < slow.forward_passes
    finally:
        fast.close()
        slow.close()


def test_one_batch_over_several_prompts_equals_each_prompt_alone(loaded, train_dialogs):
    """Rows of prompts of different lengths, each from its own left-padded cache, with prefixes of different
    lengths (and one that already closed the call list) decode as each request alone does."""
    import torch

    model, tok, cfg = loaded
    prompts, _ = render_prompts(train_dialogs.head(4).to_dicts(), tok, cfg.render)
    assert len({len(tok(p.text)["input_ids"]) for p in prompts}) > 1  # the padding is exercised
    policy = HFStepPolicy(model, tok, temperature=1.0, top_k=1, max_new_tokens=12)  # top-1: greedy
    try:
        torch.manual_seed(0)
        firsts = [policy.sample(p.text, [], 1)[0] for p in prompts]
        closed = [Piece(t, i) for t, i in zip(["[", "]"], tok("[]", add_special_tokens=False)["input_ids"])]
        requests = [(p.text, f[: k % 3], 1 + k % 2) for k, (p, f) in enumerate(zip(prompts, firsts))]
        requests.append((prompts[0].text, closed, 2))
        alone = [policy.sample(*r) for r in requests]
        before = policy.forward_passes
        together = policy.sample_many(requests)
        spent = policy.forward_passes - before
        assert [[[x.token for x in row] for row in rows] for rows in together] == [
            [[x.token for x in row] for row in rows] for rows in alone
        ]
        for rows_a, rows_b in zip(together, alone):
            for r1, r2 in zip(rows_a, rows_b):
                assert all(abs(x.logprob - y.logprob) < 1e-4 for x, y in zip(r1, r2))
        assert together[-1] == [[], []]  # a closed call list has nothing left to write
        assert spent <= 13  # one generate: at most max_new_tokens + 1 forwards for every row at once
    finally:
        policy.close()


def test_lockstep_search_keeps_every_tree_separate(loaded, train_dialogs):
    import torch

    model, tok, cfg = loaded
    prompts, _ = render_prompts(train_dialogs.head(3).to_dicts(), tok, cfg.render)
    policy = HFStepPolicy(model, tok, temperature=1.5, top_k=50, max_new_tokens=16)
    mcfg = MCTSConfig(iterations=3, width=3, depth=2)
    try:
        torch.manual_seed(1)
        results = search_many(policy, [SearchJob(p.text, p.gold_calls) for p in prompts], mcfg)
        spent = policy.forward_passes
        torch.manual_seed(1)
        alone = [search(policy, p.text, p.gold_calls, mcfg) for p in prompts]
    finally:
        policy.close()
    assert len(results) == 3
    for res in results:
        assert res.root.visits >= res.rollouts >= 3 and all(-1.0 <= n.value <= 1.0 for n in res.root.walk())
        assert all(len(n.children) <= 3 for n in res.root.walk())
    # the trees share their forward passes: fewer than the same searches one prompt at a time
    assert results[0].forward_passes == spent < sum(r.forward_passes for r in alone)


def test_search_on_a_real_policy_backs_up_every_rollout(loaded, train_dialogs):
    import torch

    model, tok, cfg = loaded
    (p,) = render_prompts(train_dialogs.head(1).to_dicts(), tok, cfg.render)[0]
    policy = HFStepPolicy(model, tok, temperature=1.5, top_k=50, max_new_tokens=16)
    torch.manual_seed(1)
    res = search(policy, p.text, p.gold_calls, MCTSConfig(iterations=3, width=3, depth=2))
    policy.close()
    # an expansion backs up `width` rollouts; revisiting a finished answer backs up its known score
    assert res.root.visits >= res.rollouts >= 3 and res.forward_passes > 0
    assert all(-1.0 <= n.value <= 1.0 for n in res.root.walk())
    assert all(len(n.children) <= 3 for n in res.root.walk())


@pytest.mark.parametrize("mode", ["perplexity", "verifiable", "both"])
def test_deficiencies_keep_the_ratio_per_group_and_the_budget(loaded, train_dialogs, mode):
    model, tok, cfg = loaded
    dcfg = DeficiencyConfig(mode=mode, ratio=0.3, n_samples=2, max_new_tokens=8, max_scored=20, max_prompts=5)
    res = find_deficiencies(train_dialogs, model, tok, cfg.render, dcfg, seed=0)
    t = res.table
    assert t.height == res.metrics["scored"] <= 20 and set(t["group"]) == {"tool", "text"}
    assert t.filter(pl.col("selected")).height == res.metrics["selected"] <= 5
    assert t.filter(pl.col("selected") & ~pl.col("deficient")).height == 0
    assert all(r for r in t["reason"])
    if mode == "perplexity":
        for g in ("tool", "text"):  # ceil(0.3 n) of each group, and they are that group's highest-NLL rows
            part = t.filter(pl.col("group") == g)
            flagged = part.filter(pl.col("deficient"))
            assert flagged.height == -(-3 * part.height // 10)
            assert flagged["nll"].min() >= part.filter(~pl.col("deficient"))["nll"].max()
        assert t["fail_rate"].null_count() == t.height
    else:
        assert t["fail_rate"].null_count() == 0  # a random policy fails nearly everything
        assert "verifiable" in " ".join(t["reason"])


def test_budget_keeps_group_shares_and_the_most_deficient():
    import numpy as np

    groups = ["tool"] * 6 + ["text"] * 4
    prio = np.array([0.1, 0.9, 0.5, 0.7, 0.2, 0.3, 0.8, 0.1, 0.6, 0.4])
    keep = budget(groups, prio, np.ones(10, dtype=bool), 5)
    assert keep.sum() == 5 and set(np.flatnonzero(keep)) == {1, 3, 2, 6, 8}
    assert budget(groups, prio, np.zeros(10, dtype=bool), 5).sum() == 0


def test_mcts_pairs_stage_function_writes_provenance(tiny_policy, train_dialogs):
    folder, cfg = tiny_policy
    ids = train_dialogs["id"].head(2).to_list()
    defs = pl.DataFrame({"id": ids, "selected": [True, True]})
    itool = IToolConfig(mcts=MCTSConfig(iterations=2, width=2, depth=2, max_new_tokens=10))
    res = mcts_pairs(train_dialogs, defs, folder, cfg, itool, seed=0, round_=1)
    m = res.metrics
    assert m["prompts_searched"] == 2 and m["rollouts"] >= 4 and m["forward_passes"] > 0
    if res.pairs.height:
        assert set(res.pairs["dialog_id"]) <= set(ids) and set(res.pairs["round"]) == {1}
        assert (res.pairs["gap"] >= 0.1).all()
    with pytest.raises(ValueError, match="not in the training table"):
        mcts_pairs(
            train_dialogs, pl.DataFrame({"id": ["nope"], "selected": [True]}), folder, cfg, itool, seed=0, round_=1
        )


def test_forced_openings_score_like_a_plain_forward_and_enter_the_search(loaded, train_dialogs, tiny_policy):
    import json

    import torch

    from toolkiln.policy.render import CallStyle, call_openings

    model, tok, cfg = loaded
    (p,) = render_prompts(train_dialogs.head(1).to_dicts(), tok, cfg.render)[0]
    openings = [t for _, t in call_openings(json.loads(p.example["tools"]), CallStyle.from_render(cfg.render))]
    assert len(openings) >= 2 and all(t.startswith("[") and t.endswith("(") for t in openings)
    policy = HFStepPolicy(model, tok, temperature=1.5, top_k=50, max_new_tokens=16)
    try:
        forced = policy.force(p.text, [], openings)
        assert ["".join(x.text for x in f) for f in forced] == openings
        # the cached, right-padded batch gives each text the log-probs of an uncached forward over prompt + text
        ids = policy.prompt_ids(p.text)
        for f in forced:
            seq = ids + [x.token for x in f]
            with torch.no_grad():
                lp = model(input_ids=torch.tensor([seq])).logits.float().log_softmax(-1)[0]
            want = [float(lp[len(ids) + j - 1, x.token]) for j, x in enumerate(f)]
            assert all(abs(a.logprob - b) < 1e-4 for a, b in zip(f, want))
        torch.manual_seed(0)
        res = search(
            policy, p.text, p.gold_calls, MCTSConfig(iterations=2, width=2, depth=2, root_openings=2), openings=openings
        )
    finally:
        policy.close()
    ranked = sorted(forced, key=lambda f: -sum(x.logprob for x in f) / len(f))
    kids = {c.text for c in res.root.children}
    assert {"".join(x.text for x in f) for f in ranked[:2]} <= kids  # the policy's top-2 openings are siblings
    assert res.root.visits >= res.rollouts >= 2 + 2  # (a revisited finished answer backs up without a rollout)


def test_mcts_pairs_passes_each_prompts_openings(tiny_policy, train_dialogs):
    folder, cfg = tiny_policy
    ids = train_dialogs["id"].head(2).to_list()
    defs = pl.DataFrame({"id": ids, "selected": [True, True]})
    base = MCTSConfig(iterations=1, width=2, depth=1, max_new_tokens=8)
    plain = mcts_pairs(train_dialogs, defs, folder, cfg, IToolConfig(mcts=base), seed=0, round_=1)
    wide = IToolConfig(mcts=base.model_copy(update={"root_openings": 3}))
    res = mcts_pairs(train_dialogs, defs, folder, cfg, wide, seed=0, round_=1)
    # one iteration expands the root once: width samples, plus one rollout per opening (up to 3 tools offered)
    assert plain.metrics["rollouts"] == 2 * 2
    assert 2 * 2 + 2 * 2 <= res.metrics["rollouts"] <= 2 * (2 + 3)
