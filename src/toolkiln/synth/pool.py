"""The ``synthesize_apis`` stage as a pure function (ToolACE §3.1).

speciation (the context tree, loaded by the caller) -> adaptation (specs) ->
evolution + realisation (a synthesiser) -> definition-clarity checks -> exact and
near-duplicate removal -> the pool, a rejects table with reasons, and diversity
metrics. Every candidate ends either in the pool or in the rejects table.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from tqdm import tqdm

from toolkiln.schema import API_SCHEMA, api_from_dict
from toolkiln.synth.config import SynthConfig
from toolkiln.synth.dedup import api_text, api_tokens, embedding_pairs, greedy_keep, minhash_pairs
from toolkiln.synth.evolve import ExampleBuffer, sample_spec
from toolkiln.synth.synthesizer import APISynthesizer, SimulatorSynthesizer
from toolkiln.synth.tree import ContextTree
from toolkiln.synth.validate import api_checks_frame

log = logging.getLogger(__name__)

REJECT_SCHEMA = {
    "uid": pl.Int64,
    "name": pl.Utf8,
    "domain": pl.Utf8,
    "stage": pl.Utf8,
    "reasons": pl.List(pl.Utf8),
    "api": pl.Utf8,
}


@dataclass
class PoolResult:
    pool: pl.DataFrame
    rejects: pl.DataFrame
    checks: pl.DataFrame  # every realised candidate with its ok_<check> columns (for the GX suite)
    metrics: dict = field(default_factory=dict)
    # the pool's MiniLM embeddings, row for row (name, text, embedding); empty when the dedup method embeds nothing
    embeddings: pl.DataFrame = field(default_factory=lambda: empty_embeddings())


EMBEDDING_DIM = 384


def empty_embeddings() -> pl.DataFrame:
    return pl.DataFrame(schema={"name": pl.String, "text": pl.String, "embedding": pl.Array(pl.Float32, EMBEDDING_DIM)})


def embeddings_frame(names: list[str], texts: list[str], emb: np.ndarray) -> pl.DataFrame:
    """The pool's embeddings as a frame; the verifier looks them up by ``text``."""
    if not names:
        return empty_embeddings()
    return pl.DataFrame(
        {
            "name": names,
            "text": texts,
            "embedding": pl.Series(np.asarray(emb, dtype=np.float32)).cast(pl.Array(pl.Float32, EMBEDDING_DIM)),
        }
    )


def generate_candidates(
    tree: ContextTree, cfg: SynthConfig, synth: APISynthesizer, seed: int, n: int, progress: bool = True, uid0: int = 0
) -> tuple[list[dict], list[dict], dict]:
    """Adaptation + evolution for ``n`` specs, in batches; accepted APIs feed the example buffer.

    ``uid0``: the first candidate's uid (a shard's offset, so uids stay unique after the merge).
    """
    rng = random.Random(seed)
    buffer = ExampleBuffer(cfg.buffer_size)
    rows, rejects = [], []
    timings = {"generate_s": 0.0}
    # Seed the buffer so the first APIs of each domain already have an example (ToolACE seeds it with real APIs).
    if cfg.seed_source == "simulator":
        # seed_examples per domain, each domain in turn, so that every domain's first request shows an example
        seeder: APISynthesizer = SimulatorSynthesizer()
        seeds = [
            sample_spec(tree.only([d.slug]), cfg, rng, -1 - i, None)
            for i, d in enumerate(d for d in tree.domains for _ in range(cfg.seed_examples))
        ]
    else:
        seeder = synth
        seeds = [sample_spec(tree, cfg, rng, -1 - i, None) for i in range(cfg.seed_examples * len(tree.domains))]
    for out in seeder.realise(seeds):
        if out.api is not None:
            buffer.add(out.spec.domain, out.api)
    bar = tqdm(total=n, desc=f"synthesize_apis ({synth.name})", unit="api", disable=not progress, mininterval=2)
    uid = uid0
    while uid < uid0 + n:
        specs = []
        for _ in range(min(cfg.batch_size, uid0 + n - uid)):
            specs.append(sample_spec(tree, cfg, rng, uid, buffer))
            uid += 1
        t0 = time.perf_counter()
        outcomes = synth.realise(specs)
        timings["generate_s"] += time.perf_counter() - t0
        for out in outcomes:
            s = out.spec
            prov = {
                "generator": synth.name,
                "seed": s.seed,
                "level": s.level,
                "ops": out.trace.get("ops", list(s.ops)),
                "example": (s.example or {}).get("name"),
                **{k: v for k, v in out.trace.items() if k != "ops"},
            }
            if out.api is None:
                rejects.append(
                    {
                        "uid": s.uid,
                        "name": None,
                        "domain": s.domain,
                        "stage": "synthesis",
                        "reasons": [out.reason or "unknown"],
                        "api": json.dumps(prov),
                    }
                )
                continue
            row = api_from_dict(out.api, diversity_level=s.level, provenance={**prov, **out.api.get("provenance", {})})
            row["uid"] = s.uid
            rows.append(row)
            buffer.add(s.domain, out.api)
        bar.update(len(specs))
    bar.close()
    return rows, rejects, timings


def candidate_shards(tree: ContextTree, shards: int, n: int, seed: int) -> list[tuple[ContextTree, int, int, int]]:
    """(sub-tree, candidates, first uid, seed) per shard: the domains dealt round-robin over ``shards``
    (at most one shard per domain), each shard's quota proportional to its domains (largest remainder,
    adding up to ``n``), so the expected per-domain spread is that of one draw over the whole tree."""
    k = max(1, min(shards, len(tree.domains)))
    groups = [tree.domains[i::k] for i in range(k)]
    raw = [n * len(g) / len(tree.domains) for g in groups]
    quota = [int(x) for x in raw]
    for i in sorted(range(k), key=lambda i: (quota[i] - raw[i], i))[: n - sum(quota)]:
        quota[i] += 1
    out, uid0 = [], 0
    for i, (g, q) in enumerate(zip(groups, quota)):
        out.append((ContextTree(domains=tuple(g)), q, uid0, seed + 1_000_003 * i))  # one shard: the unsharded seed
        uid0 += q
    return out


def _candidate_shard(job: tuple) -> tuple[list[dict], list[dict], dict]:
    """One shard (module level: a Dask worker unpickles it by name): its domains, example buffers and seed."""
    sub, cfg, synth, shard_seed, n, uid0, progress = job
    return generate_candidates(sub, cfg, synth, shard_seed, n, progress, uid0=uid0)


def generate_candidate_shards(
    tree: ContextTree, cfg: SynthConfig, synth: APISynthesizer, seed: int, n: int, progress: bool = True, runtime=None
) -> tuple[list[dict], list[dict], dict]:
    """:func:`generate_candidates` over ``cfg.shards`` groups of domains (:func:`candidate_shards`), merged in
    shard order; ``runtime`` (the ``runtime:`` section) runs them here or as Prefect tasks on Dask, with the
    same candidates. The seeded simulator gets a fresh copy per shard (its taken names start from the given
    synthesiser's); an LLM synthesiser runs its shards here, one after another (its backend holds open
    connections and already sends a batch's requests concurrently). Validation and dedup stay global."""
    from toolkiln.scaleout import map_shards

    simulator = isinstance(synth, SimulatorSynthesizer)
    plan = candidate_shards(tree, cfg.shards, n, seed)
    jobs = [
        (
            sub,
            cfg,
            SimulatorSynthesizer(set(synth.taken)) if simulator else synth,
            s,
            q,
            uid0,
            progress and len(plan) == 1,
        )
        for sub, q, uid0, s in plan
    ]
    rows, rejects, timings = [], [], {"generate_s": 0.0}
    for r, rej, t in map_shards(
        _candidate_shard, jobs, runtime if simulator else None, name="synthesize-apis", task_name="api-shard"
    ):
        rows += r
        rejects += rej
        timings["generate_s"] += t["generate_s"]
    timings["shards"] = len(plan)
    return rows, rejects, timings


def _nesting_depth(schema: dict, depth: int = 0) -> int:
    best = depth
    for sub in (schema.get("properties") or {}).values():
        if isinstance(sub, dict):
            best = max(best, _nesting_depth(sub, depth + 1))
    items = schema.get("items")
    if isinstance(items, dict):
        best = max(best, _nesting_depth(items, depth + 1))
    return best


def _type_histogram(params: list[dict]) -> Counter:
    c: Counter = Counter()

    def walk(s: dict) -> None:
        for sub in (s.get("properties") or {}).values():
            if isinstance(sub, dict):
                c[sub.get("type", "any")] += 1
                walk(sub)
                if isinstance(sub.get("items"), dict):
                    walk(sub["items"])

    for p in params:
        walk(p)
    return c


def diversity_metrics(pool: pl.DataFrame, embed_sample: int, seed: int, emb: np.ndarray | None = None) -> dict:
    """Counts and histograms of the pool; the embedding spread over ``embed_sample`` APIs (``emb``: the pool's
    embeddings row for row, when made already)."""
    params = [json.loads(p) for p in pool["parameters"]]
    per_domain = dict(pool.group_by("domain").len().sort("domain").iter_rows())
    depth = [_nesting_depth(p) for p in params]
    n_params = [len(p.get("properties", {})) for p in params]
    n_constrained = sum(
        1
        for p in params
        for s in p.get("properties", {}).values()
        if isinstance(s, dict)
        and set(s)
        & {"enum", "pattern", "format", "minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength"}
    )
    out = {
        "n_apis": pool.height,
        "n_domains": len(per_domain),
        "n_categories": pool.select(pl.struct("domain", "category").n_unique()).item(),
        "n_functionalities_covered": pool.explode("functionalities")["functionalities"].n_unique(),
        "per_domain": per_domain,
        "param_types": dict(_type_histogram(params).most_common()),
        "params_per_api_mean": float(np.mean(n_params)) if n_params else 0.0,
        "nesting_depth_hist": dict(sorted(Counter(depth).items())),
        "nesting_depth_mean": float(np.mean(depth)) if depth else 0.0,
        "constrained_param_fraction": n_constrained / max(sum(n_params), 1),
        "diversity_levels": dict(sorted(Counter(pool["diversity_level"].to_list()).items())),
        "dotted_name_fraction": float(pool["name"].str.contains(r"\.").mean() or 0.0),
    }
    if embed_sample and pool.height > 1:
        rng = np.random.default_rng(seed)
        idx = rng.choice(pool.height, size=min(embed_sample, pool.height), replace=False)
        if emb is None:
            from toolkiln.embed import embed_texts

            sub = pool[idx.tolist()]
            texts = [
                api_text(n, d, list(json.loads(p).get("properties", {})))
                for n, d, p in zip(sub["name"], sub["description"], sub["parameters"])
            ]
            e = embed_texts(texts)
        else:
            e = emb[idx]
        sims = e @ e.T
        iu = np.triu_indices(len(e), 1)
        centroid = e.mean(0)
        out["embedding_spread"] = {
            "mean_pairwise_cosine_distance": float(1 - sims[iu].mean()),
            "mean_distance_to_centroid": float(np.linalg.norm(e - centroid, axis=1).mean()),
            "sample": int(len(e)),
        }
    return out


def _near_duplicate_pairs(
    cfg: SynthConfig,
    texts: list[str],
    names: list[str],
    descriptions: list[str],
    pnames: list[list[str]],
    domains: list[str],
    emb: np.ndarray | None,
    seed: int,
) -> tuple[list[tuple[int, int, float]], dict]:
    """The configured detector's pairs; with embeddings and ``dedup.compare``, also every detector's pairs,
    seconds and recall/precision against MiniLM alone (the reference: it compares every pair in a domain)."""
    d = cfg.dedup

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t

    sets = None
    if d.method != "minilm" or (emb is not None and d.compare):
        sets = [api_tokens(n, desc, p) for n, desc, p in zip(names, descriptions, pnames)]
    if emb is None:  # minhash alone: Jaccard over the token sets, nothing embedded
        return minhash_pairs(sets, d.threshold, d.num_perm, seed), {}
    runs: dict[str, tuple[list, float]] = {}
    runs["minilm"] = timed(lambda: embedding_pairs(emb, domains, d.threshold))
    if d.method == "minhash_minilm" or d.compare:
        # one MinHash-LSH search at the candidate Jaccard serves both MinHash detectors
        cands, mh_s = timed(
            lambda: [
                (i, j, s)
                for i, j, s in minhash_pairs(sets, d.candidate_jaccard, d.num_perm, seed)
                if domains[i] == domains[j]
            ]
        )
        confirmed, conf_s = timed(
            lambda: [(i, j, c) for i, j, _ in cands if (c := float(emb[i] @ emb[j])) >= d.threshold]
        )
        runs["minhash_minilm"] = (confirmed, mh_s + conf_s)
        runs["minhash"] = (cands, mh_s)
    ref = {(i, j) for i, j, _ in runs["minilm"][0]}
    methods = {}
    if d.compare:
        for name, (pairs, secs) in sorted(runs.items()):
            found = {(i, j) for i, j, _ in pairs}
            methods[name] = {
                "pairs": len(pairs),
                "seconds": round(secs, 3),
                "recall_vs_minilm": len(found & ref) / len(ref) if ref else 1.0,
                "precision_vs_minilm": len(found & ref) / len(found) if found else 1.0,
            }
        methods["minhash"]["jaccard"] = d.candidate_jaccard
    return runs[d.method][0], methods


def synthesize_pool(
    tree: ContextTree, cfg: SynthConfig, synth: APISynthesizer, seed: int, progress: bool = True, runtime=None
) -> PoolResult:
    t_all = time.perf_counter()
    n_candidates = int(round(cfg.n_apis * cfg.oversample))
    rows, rejects, timings = generate_candidate_shards(tree, cfg, synth, seed, n_candidates, progress, runtime)
    cand = pl.DataFrame(rows, schema={**API_SCHEMA, "uid": pl.Int64})

    t0 = time.perf_counter()
    checks = api_checks_frame(cand)
    timings["validate_s"] = time.perf_counter() - t0

    def reject_rows(df: pl.DataFrame, stage: str, reasons: list[list[str]]) -> None:
        for r, why in zip(df.iter_rows(named=True), reasons):
            api = {k: r[k] for k in ("name", "description", "parameters", "returns", "category", "provenance")}
            rejects.append(
                {
                    "uid": r["uid"],
                    "name": r["name"],
                    "domain": r["domain"],
                    "stage": stage,
                    "reasons": why,
                    "api": json.dumps(api, ensure_ascii=False),
                }
            )

    bad = checks.filter(~pl.col("ok"))
    reject_rows(bad, "validation", bad["reasons"].to_list())
    valid = checks.filter(pl.col("ok"))

    t0 = time.perf_counter()
    # exact names: the first one stays
    dup_name = valid.select(pl.col("name").is_duplicated() & ~pl.col("name").is_first_distinct()).to_series()
    dups = valid.filter(dup_name)
    reject_rows(dups, "dedup", [[f"duplicate_name: {n}"] for n in dups["name"]])
    valid = valid.filter(~dup_name)
    # near duplicates
    pnames = [list(json.loads(p).get("properties", {})) for p in valid["parameters"]]
    names, domains = valid["name"].to_list(), valid["domain"].to_list()
    texts = [api_text(n, d, p) for n, d, p in zip(names, valid["description"], pnames)]
    metrics_dedup: dict = {}
    emb = None
    if cfg.dedup.method != "minhash":
        from toolkiln.embed import embed_texts

        t_emb = time.perf_counter()
        emb = embed_texts(texts, dtype=cfg.dedup.embed_dtype, show_progress=progress)
        timings["embed_s"] = time.perf_counter() - t_emb
    t_pairs = time.perf_counter()
    pairs, methods = _near_duplicate_pairs(
        cfg, texts, names, valid["description"].to_list(), pnames, domains, emb, seed
    )
    if methods:
        metrics_dedup["dedup_methods"] = methods
    dropped = greedy_keep(valid.height, pairs)
    mask = np.zeros(valid.height, dtype=bool)
    mask[list(dropped)] = True
    near = valid.filter(pl.Series(mask))
    reject_rows(
        near,
        "dedup",
        [
            [f"near_duplicate_of: {names[dropped[i][0]]} (similarity {dropped[i][1]:.3f}, {cfg.dedup.method})"]
            for i in sorted(dropped)
        ],
    )
    pool_full = valid.filter(~pl.Series(mask))
    pool = pool_full.select(list(API_SCHEMA))
    keep = np.flatnonzero(~mask)
    pool_emb = None if emb is None else emb[keep]
    embeddings = (
        empty_embeddings()
        if pool_emb is None
        else embeddings_frame(pool["name"].to_list(), [texts[i] for i in keep], pool_emb)
    )
    timings["dedup_s"] = time.perf_counter() - t0 - timings.get("embed_s", 0.0)
    timings["near_pairs_s"] = time.perf_counter() - t_pairs
    dup_uids, near_uids = set(dups["uid"].to_list()), set(near["uid"].to_list())
    checks = checks.with_columns(
        ok_unique_name=~pl.col("uid").is_in(list(dup_uids)),
        ok_not_near_duplicate=~pl.col("uid").is_in(list(near_uids)),
    ).with_columns(ok=pl.col("ok") & pl.col("ok_unique_name") & pl.col("ok_not_near_duplicate"))

    t0 = time.perf_counter()
    metrics = diversity_metrics(pool, cfg.dedup.embed_sample, seed, emb=pool_emb)
    timings["metrics_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_all
    rej = pl.DataFrame(rejects, schema=REJECT_SCHEMA)
    reasons = Counter(r.split(":")[0] for rs in rej["reasons"] for r in rs)
    metrics.update(
        {
            "candidates": n_candidates,
            "realised": cand.height,
            "rejected": rej.height,
            "rejected_by_stage": dict(Counter(rej["stage"].to_list())),
            "reject_reasons": dict(reasons.most_common()),
            "near_duplicate_pairs": len(pairs),
            **metrics_dedup,
            "target_met": pool.height >= cfg.n_apis,
            "timings": timings,
            "apis_per_s": {
                "generate": cand.height / max(timings["generate_s"], 1e-9),
                "validate": cand.height / max(timings["validate_s"], 1e-9),
                "dedup": valid.height / max(timings["dedup_s"], 1e-9),
            },
        }
    )
    if not metrics["target_met"]:
        log.warning("pool has %d APIs, below the target %d: raise synth.oversample", pool.height, cfg.n_apis)
    return PoolResult(pool=pool, rejects=rej, checks=checks.drop("reasons"), metrics=metrics, embeddings=embeddings)


class PoolSuiteError(RuntimeError):
    """The filtered pool fails its GX suite: a check and its expectation disagree (a bug, not bad data)."""


def run_synthesis(
    tree_dir,
    cfg: SynthConfig,
    llm_cfg,
    *,
    seed: int,
    suite,
    data_docs_dir,
    trace_path=None,
    progress: bool = True,
    runtime=None,
    max_failure_rate: float | None = None,
    shards_runtime=None,
) -> PoolResult:
    """The ``synthesize_apis`` stage as one call: load the context tree, pick the synthesiser ``llm_cfg`` names
    (the simulator when no backend is set), synthesise, and assert the GX suite on every candidate (a report)
    and on the pool (must pass). ``metrics`` gains the tree's stats and the suite's unexpected counts.
    ``runtime``: how LLM requests are sent (``params.runtime.llm``); with ``max_failure_rate`` an endpoint outage
    above that share of requests raises :class:`toolkiln.llm.EndpointOutage` after synthesis.
    ``shards_runtime``: the whole ``runtime:`` section, where the candidate shards run (same output)."""
    from toolkiln.llm import check_outage, make_backend
    from toolkiln.synth.synthesizer import LLMSynthesizer
    from toolkiln.synth.tree import load_tree
    from toolkiln.synth.validate import validate_pool_frames

    tree = load_tree(tree_dir).only(cfg.domains)
    log.info("context tree: %s", tree.stats())
    backend = make_backend(llm_cfg, runtime, trace_path=trace_path)
    synth = (
        SimulatorSynthesizer()
        if backend is None
        else LLMSynthesizer(
            backend, model=llm_cfg.model, temperature=llm_cfg.temperature, max_tokens=llm_cfg.max_tokens
        )
    )
    result = synthesize_pool(tree, cfg, synth, seed=seed, progress=progress, runtime=shards_runtime)
    if max_failure_rate is not None:
        check_outage(backend, max_failure_rate, "synthesize_apis")
    gx = validate_pool_frames(
        {"candidates": result.checks, "pool": result.checks.filter("ok")}, suite, data_docs_dir=data_docs_dir
    )
    if not gx["pool"]["success"]:
        raise PoolSuiteError(f"GX suite {suite} fails on the filtered pool: {gx['pool']}")
    result.metrics = {"tree": tree.stats(), **result.metrics, "gx": {k: v["unexpected"] for k, v in gx.items()}}
    return result
