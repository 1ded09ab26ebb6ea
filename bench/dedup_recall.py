"""Near-duplicate API detection: recall against MiniLM-only, and time, for MinHash, MiniLM and the default
(MinHash-LSH candidates confirmed by MiniLM).

The reference is what MiniLM alone finds: pairs of validated candidates in one domain with cosine >= the
threshold, every API embedded. On a sample of the default run's candidates (same texts for every method):

* MinHash alone at Jaccard 0.9 (the former default) and 0.6;
* MinHash candidates at Jaccard ``c`` confirmed by MiniLM cosine, for several ``c``: recall, pairs, APIs
  embedded and time (MinHash + embedding only the candidates' APIs, at the per-text embedding cost measured in
  this run; the chosen default is also timed for real);
* on the full candidate set (``--n`` APIs), how many APIs each ``c`` would embed, against all of them.

    python -m bench.dedup_recall [--n 27000] [--sample 4000]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from bench.common import record, table

CANDIDATE_JACCARDS = (0.3, 0.4, 0.5, 0.6)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=27000)
    ap.add_argument("--sample", type=int, default=4000, help="APIs embedded for the MiniLM-only reference")
    ap.add_argument("--threshold", type=float, default=0.9, help="MiniLM cosine of a near-duplicate")
    ap.add_argument("--tree", default=str(Path(__file__).resolve().parents[1] / "data" / "api_context_tree"))
    args = ap.parse_args(argv)

    import numpy as np
    import polars as pl

    from toolkiln.embed import embed_texts
    from toolkiln.schema import API_SCHEMA
    from toolkiln.synth.config import SynthConfig
    from toolkiln.synth.dedup import api_text, api_tokens, embedding_pairs, minhash_minilm_pairs, minhash_pairs
    from toolkiln.synth.pool import generate_candidates
    from toolkiln.synth.synthesizer import SimulatorSynthesizer
    from toolkiln.synth.tree import load_tree
    from toolkiln.synth.validate import api_checks_frame

    cfg = SynthConfig(n_apis=args.n)
    n_cand = int(round(cfg.n_apis * cfg.oversample))
    rows, _, _ = generate_candidates(load_tree(args.tree), cfg, SimulatorSynthesizer(), 0, n_cand, progress=False)
    valid = api_checks_frame(pl.DataFrame(rows, schema={**API_SCHEMA, "uid": pl.Int64})).filter(pl.col("ok"))
    valid = valid.filter(pl.col("name").is_first_distinct())  # what near-dup search sees after exact names

    def views(df):
        pn = [list(json.loads(p).get("properties", {})) for p in df["parameters"]]
        return (
            [api_tokens(n, d, p) for n, d, p in zip(df["name"], df["description"], pn)],
            [api_text(n, d, p) for n, d, p in zip(df["name"], df["description"], pn)],
            df["domain"].to_list(),
        )

    # full candidate set: how many APIs each candidate Jaccard would send to MiniLM
    full_sets, _, full_groups = views(valid)
    full = {}
    for c in CANDIDATE_JACCARDS:
        t0 = time.perf_counter()
        cands = [
            (i, j) for i, j, _ in minhash_pairs(full_sets, c, cfg.dedup.num_perm, 0) if full_groups[i] == full_groups[j]
        ]
        full[c] = {
            "candidates": len(cands),
            "embedded": len({i for p in cands for i in p}),
            "minhash_s": time.perf_counter() - t0,
        }

    idx = sorted(random.Random(0).sample(range(valid.height), min(args.sample, valid.height)))
    sets, texts, groups = views(valid[idx])
    t0 = time.perf_counter()
    emb = embed_texts(texts)
    embed_s = time.perf_counter() - t0
    per_text = embed_s / len(texts)
    t0 = time.perf_counter()
    ref = {(i, j) for i, j, _ in embedding_pairs(emb, groups, args.threshold)}
    minilm_s = embed_s + time.perf_counter() - t0

    def lookup(batch):  # the sample's own embeddings: recall is measured against exactly these vectors
        pos = {t: k for k, t in enumerate(texts)}
        return np.stack([emb[pos[t]] for t in batch]) if batch else np.zeros((0, emb.shape[1]), np.float32)

    out_rows = [
        {
            "method": f"MiniLM only (cos >= {args.threshold})",
            "pairs": len(ref),
            "recall": 1.0,
            "embedded": len(texts),
            "seconds": minilm_s,
            "full_pool_embedded": valid.height,
            "full_pool_embed_s": valid.height * per_text,
        }
    ]
    for j in (0.9, 0.6):
        t0 = time.perf_counter()
        mh = {(a, b) for a, b, _ in minhash_pairs(sets, j, cfg.dedup.num_perm, 0) if groups[a] == groups[b]}
        out_rows.append(
            {
                "method": f"MinHash only (Jaccard >= {j})",
                "pairs": len(mh),
                "recall": len(mh & ref) / max(len(ref), 1),
                "embedded": 0,
                "seconds": time.perf_counter() - t0,
                "full_pool_embedded": 0,
                "full_pool_embed_s": 0.0,
            }
        )
    for c in CANDIDATE_JACCARDS:
        t0 = time.perf_counter()
        pairs, st = minhash_minilm_pairs(sets, texts, groups, args.threshold, c, cfg.dedup.num_perm, 0, embed=lookup)
        mh_s = time.perf_counter() - t0
        got = {(a, b) for a, b, _ in pairs}
        out_rows.append(
            {
                "method": f"MinHash (Jaccard >= {c}) + MiniLM",
                "pairs": len(got),
                "recall": len(got & ref) / max(len(ref), 1),
                "embedded": st["embedded"],
                "seconds": mh_s + st["embedded"] * per_text,
                "full_pool_embedded": full[c]["embedded"],
                "full_pool_embed_s": full[c]["embedded"] * per_text + full[c]["minhash_s"],
            }
        )

    default_c = SynthConfig().dedup.candidate_jaccard
    t0 = time.perf_counter()
    pairs, st = minhash_minilm_pairs(sets, texts, groups, args.threshold, default_c, cfg.dedup.num_perm, 0)
    real_s = time.perf_counter() - t0
    got = {(a, b) for a, b, _ in pairs}
    timed = {
        "candidate_jaccard": default_c,
        "seconds": real_s,
        "embedded": st["embedded"],
        "recall": len(got & ref) / max(len(ref), 1),
        "speedup_vs_minilm_only": minilm_s / real_s,
    }

    cols = ["method", "pairs", "recall", "embedded", "seconds", "full_pool_embedded", "full_pool_embed_s"]
    print(f"sample: {len(texts)} of {valid.height} validated candidates; MiniLM {per_text * 1000:.1f} ms/API")
    print(table(out_rows, cols))
    print("default, timed for real:", json.dumps(timed))
    payload = {
        "sample": len(texts),
        "candidates": valid.height,
        "threshold": args.threshold,
        "embed_ms_per_api": per_text * 1000,
        "rows": out_rows,
        "default_timed": timed,
    }
    path = record("dedup_recall", payload)
    print(f"-> {path}")
    return payload


if __name__ == "__main__":
    main()
