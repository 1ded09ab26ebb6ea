"""The pool stage as a function: dedup, accounting of every candidate, determinism, LLM path over HTTP."""

import itertools
import json
import random

import numpy as np
import polars as pl
import pytest

from toolkiln.synth.config import SynthConfig
from toolkiln.synth.dedup import api_tokens, embedding_pairs, greedy_keep, minhash_minilm_pairs, minhash_pairs
from toolkiln.synth.pool import synthesize_pool
from toolkiln.synth.synthesizer import LLMSynthesizer, SimulatorSynthesizer, build_prompt
from toolkiln.synth.validate import check_api


def test_minhash_finds_every_pair_above_threshold():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(60)]
    sets = []
    for _ in range(120):
        base = set(rng.sample(vocab, 12))
        sets.append(base)
        if rng.random() < 0.4:  # a near copy: one token swapped (Jaccard 11/13 = 0.846)
            near = set(base)
            near.remove(next(iter(sorted(near))))
            near.add(rng.choice([v for v in vocab if v not in base]))
            sets.append(near)
    brute = {
        (i, j)
        for i, j in itertools.combinations(range(len(sets)), 2)
        if len(sets[i] & sets[j]) / len(sets[i] | sets[j]) >= 0.8
    }
    found = {(i, j) for i, j, _ in minhash_pairs(sets, 0.8, num_perm=64)}
    assert brute and found == brute


def test_embedding_pairs_stay_within_group():
    e = np.eye(4, dtype=np.float32)
    e[1] = e[0]
    e[3] = e[0]
    pairs = embedding_pairs(e, ["a", "a", "b", "b"], 0.99)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]


def test_greedy_keep_keeps_earliest():
    dropped = greedy_keep(4, [(0, 1, 0.95), (1, 2, 0.95), (0, 3, 0.9)])
    assert set(dropped) == {1, 3}  # 2 stays: its only near-duplicate (1) was itself dropped


def small_cfg(**kw):
    # MinHash alone: these tests are about accounting and determinism, not the detector (tested below)
    kw.setdefault("dedup", {"method": "minhash", "embed_sample": 0, "threshold": 0.9})
    return SynthConfig(n_apis=150, batch_size=40, seed_examples=1, **kw)


def test_pool_accounts_for_every_candidate_and_is_deterministic(tiny_tree):
    cfg = small_cfg()
    r1 = synthesize_pool(tiny_tree, cfg, SimulatorSynthesizer(), seed=3, progress=False)
    r2 = synthesize_pool(tiny_tree, cfg, SimulatorSynthesizer(), seed=3, progress=False)
    assert r1.pool.equals(r2.pool)
    m = r1.metrics
    assert m["candidates"] == r1.pool.height + r1.rejects.height
    assert r1.pool["name"].n_unique() == r1.pool.height
    assert all(
        check_api({**row, "parameters": json.loads(row["parameters"]), "returns": json.loads(row["returns"])}) == []
        for row in r1.pool.iter_rows(named=True)
    )
    assert all(len(rs) > 0 for rs in r1.rejects["reasons"])
    assert set(m["per_domain"]) == {"weather", "finance"}
    assert r1.checks.filter("ok").height == r1.pool.height
    r3 = synthesize_pool(tiny_tree, cfg, SimulatorSynthesizer(), seed=4, progress=False)
    assert not r3.pool.equals(r1.pool)


def test_stricter_dedup_threshold_removes_more(tiny_tree):
    loose = synthesize_pool(tiny_tree, small_cfg(), SimulatorSynthesizer(), seed=0, progress=False)
    strict = synthesize_pool(
        tiny_tree,
        small_cfg().model_copy(update={"dedup": small_cfg().dedup.model_copy(update={"threshold": 0.5})}),
        SimulatorSynthesizer(),
        seed=0,
        progress=False,
    )
    assert strict.pool.height < loose.pool.height
    near = strict.rejects.filter(pl.col("stage") == "dedup")
    assert near.height and all("near_duplicate_of" in r[0] for r in near["reasons"])


def test_llm_synthesizer_over_http_records_every_bad_reply(tiny_tree):
    """A scripted chat-completions server returns good, prose-wrapped, broken and invalid APIs."""
    from toolkiln.llm.http import OpenAIBackend
    from toolkiln.testing.chatserver import ChatTestServer, FaultPlan

    def responder(body):
        prompt = body["messages"][-1]["content"]
        leaf = prompt.split("- ", 1)[1].split("\n")[0]
        k = sum(map(ord, leaf)) % 5
        slug = "_".join(leaf.split()[:4]).replace("-", "_")
        api = {
            "name": slug,
            "description": leaf.capitalize() + ".",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City."}},
                "required": ["city"],
            },
            "returns": {"type": "object", "properties": {"value": {"type": "number"}}},
        }
        if k == 0:
            return "Sure! Here is the API:\n```json\n" + json.dumps(api) + "\n```\nHope it helps."
        if k == 1:
            return "I cannot help with that."
        if k == 2:
            api["parameters"]["required"] = ["country"]  # invalid: required not in properties
        if k == 3:
            api["parameters"]["properties"]["city"]["type"] = "banana"
        return json.dumps(api)

    cfg = small_cfg().model_copy(update={"n_apis": 30, "oversample": 1.0})
    with ChatTestServer(responder=responder, faults=FaultPlan(p_500=0.2, seed=1)) as srv:
        backend = OpenAIBackend(
            base_url=srv.base_url,
            model="m",
            api_key_env="TOOLKILN_TEST_KEY",
            concurrency=4,
            timeout_s=5,
            max_retries=4,
            backoff_s=0.01,
            max_backoff_s=0.05,
            cache_dir=None,
        )
        res = synthesize_pool(tiny_tree, cfg, LLMSynthesizer(backend, model="m"), seed=0, progress=False)
    m = res.metrics
    assert m["candidates"] == 30 == res.pool.height + res.rejects.height
    reasons = " ".join(r for rs in res.rejects["reasons"] for r in rs)
    assert "unparsable" in reasons
    assert "malformed_api" in reasons and "banana" in reasons
    assert "ok_required" in reasons
    assert res.pool.height > 0
    assert (res.pool["provenance"].str.contains('"generator": "llm"')).all()


def test_prompt_carries_the_spec(tiny_tree):
    from toolkiln.synth.evolve import sample_spec

    spec = sample_spec(tiny_tree, SynthConfig(n_apis=1), random.Random(1), 0, None)
    text = build_prompt(spec)[1]["content"]
    assert all(leaf in text for leaf in spec.leaves) and f"Diversity level: {spec.level}" in text


def test_dead_endpoint_becomes_recorded_rejections(tiny_tree):
    """Nothing listens on the port: every candidate is a rejection with the connection error, no crash."""
    import socket

    from toolkiln.llm.http import OpenAIBackend

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # the port is now closed: connections are refused
    backend = OpenAIBackend(
        base_url=f"http://127.0.0.1:{port}/v1",
        model="m",
        api_key_env="TOOLKILN_TEST_KEY",
        concurrency=2,
        timeout_s=1,
        max_retries=1,
        backoff_s=0.01,
        max_backoff_s=0.02,
        cache_dir=None,
    )
    cfg = small_cfg().model_copy(update={"n_apis": 6, "oversample": 1.0, "seed_examples": 0})
    res = synthesize_pool(tiny_tree, cfg, LLMSynthesizer(backend, model="m"), seed=0, progress=False)
    assert res.pool.height == 0 and res.rejects.height == 6
    assert all(r[0].startswith("llm_error:") for r in res.rejects["reasons"])
    assert res.metrics["target_met"] is False


def test_minhash_minilm_confirms_candidates_by_cosine_and_embeds_only_them():
    # 6 APIs: 0~1 share most tokens (a candidate), 2~3 too, 4 and 5 share nothing with anyone
    sets = [
        {"get", "weather", "city", "forecast"},
        {"get", "weather", "city", "forecast", "daily"},
        {"book", "hotel", "room", "night"},
        {"book", "hotel", "room", "nights"},
        {"x1", "x2"},
        {"y1", "y2"},
    ]
    texts = [f"t{i}" for i in range(6)]
    vec = {"t0": [1, 0], "t1": [1, 0], "t2": [1, 0], "t3": [0, 1]}  # 0~1 same meaning, 2~3 orthogonal
    seen = []

    def embed(batch):
        seen.extend(batch)
        return np.array([vec[t] for t in batch], dtype=np.float32)

    pairs, stats = minhash_minilm_pairs(sets, texts, ["d"] * 6, 0.9, 0.5, num_perm=64, embed=embed)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]
    assert stats == {"candidates": 2, "embedded": 4} and sorted(seen) == ["t0", "t1", "t2", "t3"]
    # a candidate across groups (domains) is not one
    pairs, stats = minhash_minilm_pairs(sets, texts, ["a", "b", "c", "c", "e", "f"], 0.9, 0.5, embed=embed)
    assert pairs == [] and stats["candidates"] == 1


@pytest.mark.slow
def test_minhash_minilm_pairs_are_minilm_pairs(tiny_tree):
    from toolkiln.embed import embed_texts
    from toolkiln.synth.dedup import api_text

    res = synthesize_pool(
        tiny_tree,
        small_cfg(dedup={"method": "minhash", "threshold": 1.0, "embed_sample": 0}),
        SimulatorSynthesizer(),
        seed=0,
        progress=False,
    )
    df = res.pool
    pn = [list(json.loads(p)["properties"]) for p in df["parameters"]]
    sets = [api_tokens(n, d, p) for n, d, p in zip(df["name"], df["description"], pn)]
    texts = [api_text(n, d, p) for n, d, p in zip(df["name"], df["description"], pn)]
    groups = df["domain"].to_list()
    emb = embed_texts(texts)
    got, stats = minhash_minilm_pairs(sets, texts, groups, 0.85, 0.3)
    assert got and stats["candidates"] >= len(got)
    # every confirmed pair is a MiniLM pair: same cosine as with every API embedded (up to batch padding noise)
    assert all(groups[i] == groups[j] and float(emb[i] @ emb[j]) >= 0.85 - 1e-4 for i, j, _ in got)


def test_minilm_dedup_keeps_the_pool_embeddings_and_compares_the_detectors(tiny_tree):
    from toolkiln.embed import api_text

    cfg = small_cfg(
        dedup={"method": "minilm", "threshold": 0.9, "embed_sample": 20, "embed_dtype": "float32", "compare": True}
    )
    res = synthesize_pool(tiny_tree, cfg, SimulatorSynthesizer(), seed=0, progress=False)
    emb = res.embeddings
    # row for row with the pool, under the verifier's text of each API, unit length
    assert emb["name"].to_list() == res.pool["name"].to_list()
    assert emb["text"].to_list() == [
        api_text(n, d, list(json.loads(p)["properties"]))
        for n, d, p in zip(res.pool["name"], res.pool["description"], res.pool["parameters"])
    ]
    vec = emb["embedding"].to_numpy()
    assert vec.shape == (res.pool.height, 384) and np.allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-4)
    # every near-duplicate rejection names a kept API at cosine >= the threshold; no kept pair is that close
    near = res.rejects.filter(pl.col("reasons").list.first().str.starts_with("near_duplicate_of"))
    assert near.height > 0
    sims = [float(r.split("similarity ")[1].split(",")[0]) for rs in near["reasons"] for r in rs]
    assert min(sims) >= 0.9
    same_domain = res.pool["domain"].to_numpy()[:, None] == res.pool["domain"].to_numpy()[None, :]
    cos = np.where(same_domain & ~np.eye(res.pool.height, dtype=bool), vec @ vec.T, 0)
    assert cos.max() < 0.9 + 1e-4
    methods = res.metrics["dedup_methods"]
    assert (
        methods["minilm"]["recall_vs_minilm"] == 1.0
        and methods["minilm"]["pairs"] == res.metrics["near_duplicate_pairs"]
    )
    assert (
        0 <= methods["minhash_minilm"]["recall_vs_minilm"] <= 1
        and methods["minhash_minilm"]["precision_vs_minilm"] == 1.0
    )
    assert "embed_s" in res.metrics["timings"] and res.metrics["embedding_spread"]["sample"] == 20
    # MinHash alone embeds nothing: no embeddings to hand on, no comparison
    plain = synthesize_pool(tiny_tree, small_cfg(), SimulatorSynthesizer(), seed=0, progress=False)
    assert plain.embeddings.height == 0 and "dedup_methods" not in plain.metrics


def test_candidate_shards_split_domains_and_quota_and_one_shard_is_the_unsharded_draw(tiny_tree):
    from toolkiln.synth.pool import candidate_shards, generate_candidate_shards, generate_candidates

    plan = candidate_shards(tiny_tree, 8, 100, seed=3)
    assert len(plan) == min(8, len(tiny_tree.domains)) >= 2  # never more shards than domains
    slugs = [d.slug for sub, _, _, _ in plan for d in sub.domains]
    assert sorted(slugs) == sorted(d.slug for d in tiny_tree.domains)
    assert sum(q for _, q, _, _ in plan) == 100 and [u for _, _, u, _ in plan][0] == 0
    assert len({s for *_, s in plan}) == len(plan)  # a seed per shard

    cfg = small_cfg(shards=len(plan))
    rows, rejects, t = generate_candidate_shards(tiny_tree, cfg, SimulatorSynthesizer(), 3, 100, progress=False)
    assert t["shards"] == len(plan) and len(rows) + len(rejects) == 100
    assert sorted(r["uid"] for r in rows) == sorted({r["uid"] for r in rows})  # unique after the merge
    for sub, q, uid0, _ in plan:
        mine = [r for r in rows if uid0 <= r["uid"] < uid0 + q]
        assert {r["domain"] for r in mine} <= {d.slug for d in sub.domains}
    # one shard: exactly the unsharded generation of the same seed
    one, _, _ = generate_candidate_shards(
        tiny_tree, small_cfg(shards=1), SimulatorSynthesizer(), 3, 100, progress=False
    )
    ref, _, _ = generate_candidates(tiny_tree, small_cfg(), SimulatorSynthesizer(), 3, 100, progress=False)
    assert one == ref


def test_simulator_seeds_cost_no_requests_and_show_an_example(repo_root):
    """seed_source: simulator fills the example buffer without asking the LLM; JSON mode goes on the wire."""
    from toolkiln.llm.http import OpenAIBackend
    from toolkiln.testing.chatserver import ChatTestServer

    from toolkiln.synth.tree import load_tree

    tree = load_tree(repo_root / "data" / "api_context_tree")
    tree = tree.only([d.slug for d in tree.domains[:6]])
    bodies = []

    def responder(body):
        bodies.append(body)
        return "{}"  # every candidate is a recorded rejection; what matters here is what was asked

    for source, extra in (("synthesizer", len(tree.domains)), ("simulator", 0)):
        bodies.clear()
        cfg = small_cfg().model_copy(
            update={"n_apis": 6, "oversample": 1.0, "seed_examples": 1, "seed_source": source, "shards": 1}
        )
        with ChatTestServer(responder=responder) as srv:
            backend = OpenAIBackend(
                base_url=srv.base_url,
                model="m",
                api_key_env="TOOLKILN_TEST_KEY",
                concurrency=2,
                timeout_s=5,
                max_retries=0,
                cache_dir=None,
            )
            res = synthesize_pool(tree, cfg, LLMSynthesizer(backend, model="m"), seed=0, progress=False)
        assert len(bodies) == 6 + extra and res.rejects.height == 6
        assert all(b["response_format"]["json_schema"]["schema"]["required"][0] == "name" for b in bodies)
        if source == "simulator":  # one seed per domain: every request, whatever its domain, shows an example
            assert all("as an example of the expected style" in b["messages"][-1]["content"] for b in bodies)
