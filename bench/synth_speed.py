"""Benchmark of the API pool stage: APIs/s for generation, validation and dedup separately.

Baselines measured in the same run:
* validation vs a naive loop of ``jsonschema`` meta-schema checks (Draft 2020-12 ``check_schema``) per API;
* MinHash dedup vs MiniLM-embedding dedup (time, and how far their near-duplicate pairs agree).

    python -m bench.synth_speed [--n 27000] [--embed-sample 4000]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from bench.common import record, table


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=27000)
    ap.add_argument("--embed-sample", type=int, default=4000, help="APIs for the MinHash-vs-MiniLM agreement study")
    ap.add_argument("--tree", default=str(Path(__file__).resolve().parents[1] / "data" / "api_context_tree"))
    args = ap.parse_args(argv)

    import polars as pl
    from jsonschema import Draft202012Validator

    from toolkiln.embed import embed_texts
    from toolkiln.schema import API_SCHEMA
    from toolkiln.synth.config import SynthConfig
    from toolkiln.synth.dedup import api_text, api_tokens, embedding_pairs, minhash_pairs
    from toolkiln.synth.pool import generate_candidates, synthesize_pool
    from toolkiln.synth.synthesizer import SimulatorSynthesizer
    from toolkiln.synth.tree import load_tree
    from toolkiln.synth.validate import api_checks_frame

    tree = load_tree(args.tree)
    cfg = SynthConfig(n_apis=args.n, dedup={"embed_sample": 0})
    t0 = time.perf_counter()
    res = synthesize_pool(tree, cfg, SimulatorSynthesizer(), seed=0, progress=False)
    stage_s = time.perf_counter() - t0
    tm = res.metrics["timings"]
    n_cand = res.metrics["realised"]

    # validation baseline: jsonschema meta-schema check of parameters + returns, one API at a time
    rows, _, _ = generate_candidates(tree, cfg.model_copy(update={"n_apis": 3000, "oversample": 1.0}),
                                     SimulatorSynthesizer(), 1, 3000, progress=False)
    df = pl.DataFrame(rows, schema={**API_SCHEMA, "uid": pl.Int64})
    t0 = time.perf_counter()
    api_checks_frame(df)
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p, r in zip(df["parameters"], df["returns"]):
        Draft202012Validator.check_schema(json.loads(p))
        Draft202012Validator.check_schema(json.loads(r))
    naive_s = time.perf_counter() - t0

    # dedup: minhash vs MiniLM on a sample (same texts), pair agreement at each method's threshold
    rng = random.Random(0)
    idx = sorted(rng.sample(range(res.pool.height), min(args.embed_sample, res.pool.height)))
    sub = res.pool[idx]
    pn = [list(json.loads(p)["properties"]) for p in sub["parameters"]]
    sets = [api_tokens(n, d, p) for n, d, p in zip(sub["name"], sub["description"], pn)]
    t0 = time.perf_counter()
    mh = {(i, j) for i, j, _ in minhash_pairs(sets, 0.6, 64)}
    mh_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb = embed_texts([api_text(n, d, p) for n, d, p in zip(sub["name"], sub["description"], pn)])
    em = {(i, j) for i, j, _ in embedding_pairs(emb, ["all"] * len(sets), 0.9)}
    em_s = time.perf_counter() - t0
    both = mh & em
    agreement = {"minhash_pairs_j>=0.6": len(mh), "minilm_pairs_cos>=0.9": len(em), "both": len(both),
                 "minilm_pairs_found_by_minhash": len(both) / max(len(em), 1),
                 "minhash_pairs_found_by_minilm": len(both) / max(len(mh), 1)}

    rows = [
        {"step": "generate (simulator)", "items": n_cand, "seconds": tm["generate_s"], "apis_per_s": n_cand / tm["generate_s"]},
        {"step": "validate (ours, vectorised checks)", "items": n_cand, "seconds": tm["validate_s"], "apis_per_s": n_cand / tm["validate_s"]},
        {"step": f"dedup (exact + {cfg.dedup.method})", "items": n_cand, "seconds": tm["dedup_s"], "apis_per_s": n_cand / tm["dedup_s"]},
        {"step": "whole stage function", "items": res.pool.height, "seconds": stage_s, "apis_per_s": res.pool.height / stage_s},
        {"step": "validate 3k: ours", "items": 3000, "seconds": ours_s, "apis_per_s": 3000 / ours_s},
        {"step": "validate 3k: naive jsonschema loop", "items": 3000, "seconds": naive_s, "apis_per_s": 3000 / naive_s},
        {"step": f"near-dup {len(sets)}: MinHash", "items": len(sets), "seconds": mh_s, "apis_per_s": len(sets) / mh_s},
        {"step": f"near-dup {len(sets)}: MiniLM embed+cosine", "items": len(sets), "seconds": em_s, "apis_per_s": len(sets) / em_s},
    ]
    print(table(rows, ["step", "items", "seconds", "apis_per_s"]))
    ratios = {"validate_speedup_vs_jsonschema": naive_s / ours_s, "minhash_speedup_vs_minilm": em_s / mh_s}
    print("ratios:", json.dumps(ratios), "\nagreement:", json.dumps(agreement))
    out = {"pool_size": res.pool.height, "target": args.n, "rows": rows, "ratios": ratios, "dedup_agreement": agreement,
           "tree": tree.stats()}
    record("synth_speed", out)
    return out


if __name__ == "__main__":
    main()
