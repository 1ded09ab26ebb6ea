"""How many distinct APIs the simulator can give at a near-duplicate threshold: pool size after MiniLM dedup
against the number of candidates generated, for several cosine thresholds, plus example pairs per similarity band.

This is what chose ``synth.dedup.threshold`` and ``synth.oversample``: at cosine 0.9 the pool saturates
below the 27,000-API target however many candidates are generated (the context tree's functionalities bound
how many different things the APIs can do), at 0.95 a modest oversample reaches it. The example pairs show
what each band removes. One generation at the largest oversample is embedded once (bfloat16, as the stage
does); each smaller candidate count is its first ``n`` candidates.

    python -m bench.dedup_saturation [--n 27000] [--max-oversample 1.6]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from bench.common import record, table

THRESHOLDS = (0.9, 0.93, 0.95, 0.97)
OVERSAMPLES = (1.08, 1.2, 1.3, 1.4, 1.5, 1.6)
BANDS = ((0.88, 0.9), (0.9, 0.93), (0.93, 0.95), (0.95, 0.97), (0.97, 1.01))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=27000, help="target pool size (synth.n_apis)")
    ap.add_argument("--max-oversample", type=float, default=1.6)
    ap.add_argument("--examples", type=int, default=3, help="example pairs per similarity band")
    ap.add_argument("--tree", default=str(Path(__file__).resolve().parents[1] / "data" / "api_context_tree"))
    args = ap.parse_args(argv)

    import numpy as np
    import polars as pl

    from toolkiln.embed import api_text, embed_texts
    from toolkiln.schema import API_SCHEMA
    from toolkiln.synth.config import SynthConfig
    from toolkiln.synth.dedup import embedding_pairs, greedy_keep
    from toolkiln.synth.pool import generate_candidates
    from toolkiln.synth.synthesizer import SimulatorSynthesizer
    from toolkiln.synth.tree import load_tree
    from toolkiln.synth.validate import api_checks_frame

    cfg = SynthConfig(n_apis=args.n)
    n_max = int(round(args.n * args.max_oversample))
    rows, _, _ = generate_candidates(load_tree(args.tree), cfg, SimulatorSynthesizer(), 0, n_max, progress=False)
    valid = api_checks_frame(pl.DataFrame(rows, schema={**API_SCHEMA, "uid": pl.Int64})).filter("ok").sort("uid")
    texts = [
        api_text(n, d, list(json.loads(p).get("properties", {})))
        for n, d, p in zip(valid["name"], valid["description"], valid["parameters"])
    ]
    t0 = time.perf_counter()
    emb = embed_texts(texts, dtype=cfg.dedup.embed_dtype)
    embed_s = time.perf_counter() - t0

    out_rows = []
    for over in (o for o in OVERSAMPLES if o <= args.max_oversample + 1e-9):
        m = int(round(args.n * over))
        sub = valid.head(m)
        keep = np.flatnonzero(sub["name"].is_first_distinct().to_numpy())  # exact names first, as the stage does
        doms = sub["domain"].to_numpy()[keep].tolist()
        row = {"oversample": over, "candidates": m, "distinct_names": len(keep)}
        for th in THRESHOLDS:
            pairs = embedding_pairs(emb[keep], doms, th)
            row[f"kept@{th}"] = len(keep) - len(greedy_keep(len(keep), pairs))
        out_rows.append(row)

    # what each similarity band looks like (within a domain, on the default's candidate count)
    m = int(round(args.n * cfg.oversample))
    doms = valid["domain"].to_list()[:m]
    pairs = embedding_pairs(emb[:m], doms, BANDS[0][0])
    rng = random.Random(0)
    examples = {}
    for lo, hi in BANDS:
        band = [p for p in pairs if lo <= p[2] < hi]
        picks = rng.sample(band, min(args.examples, len(band)))
        examples[f"{lo}-{min(hi, 1.0)}"] = {
            "pairs": len(band),
            "examples": [{"cosine": round(s, 3), "a": texts[i], "b": texts[j]} for i, j, s in picks],
        }

    cols = ["oversample", "candidates", "distinct_names"] + [f"kept@{th}" for th in THRESHOLDS]
    print(f"{len(valid)} valid candidates embedded in {embed_s:.0f} s ({cfg.dedup.embed_dtype}); target {args.n}")
    print(table(out_rows, cols))
    for band, ex in examples.items():
        print(f"\ncosine {band}: {ex['pairs']} pairs at the default oversample {cfg.oversample}")
        for e in ex["examples"]:
            print(f"  {e['cosine']:.3f}  {e['a'][:110]}\n         {e['b'][:110]}")
    payload = {"target": args.n, "embed_s": embed_s, "rows": out_rows, "bands": examples}
    path = record("dedup_saturation", payload)
    print(f"-> {path}")
    return payload


if __name__ == "__main__":
    main()
