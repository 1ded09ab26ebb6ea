"""Where the verify stage's model layer spends its time: MiniLM encoding vs everything else, on the default data.

The embedded judge (``verify.model.judge: embedded``) starts from the pool's API embeddings
(``data/api_embeddings.parquet``, made by ``synthesize_apis``) and embeds only the dialogs' open requests. This
times, in one process:

* encoding every distinct request with the stage's encoder settings (bfloat16, batch 128): texts per second;
* the rest of the layer (``sharded_model_checks`` with every vector already cached: parsing, value grounding,
  the request/API ranking, the returns-schema check) as a share of the whole;

and prints the projected model-layer time on this machine next to the ``verify`` stage's own record.

    python -m bench.verify_model_layer [--dialogs data/dialogs.parquet] [--api-embeddings data/api_embeddings.parquet]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.common import record, table


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dialogs", default="data/dialogs.parquet")
    ap.add_argument("--api-embeddings", default="data/api_embeddings.parquet")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--stage-metrics", default="reports/verify/metrics.json")
    args = ap.parse_args(argv)
    if not Path(args.dialogs).exists() or not Path(args.api_embeddings).exists():
        print(f"skipped: {args.dialogs} / {args.api_embeddings} missing (dvc repro verify makes them)")
        return {}

    import numpy as np
    import polars as pl
    import torch

    from toolkiln.config import load_params
    from toolkiln.embed import embed_texts
    from toolkiln.verify.model import EmbeddedJudge, parse_views, sharded_model_checks

    torch.set_num_threads(2)
    m = load_params(args.params).verify.model
    df = pl.read_parquet(args.dialogs)
    views, _ = parse_views(df)
    requests = sorted({r for v in views if v is not None for r, _ in v.requests})
    embed_texts(["warm up the encoder"] * 8, dtype=m.embed_dtype)
    t0 = time.perf_counter()
    vectors = embed_texts(requests, batch_size=m.batch_size, dtype=m.embed_dtype)
    encode_s = time.perf_counter() - t0

    judge = EmbeddedJudge(intent_margin=m.intent_margin, batch_size=m.batch_size, embed_dtype=m.embed_dtype)
    api = pl.read_parquet(args.api_embeddings)
    judge.preload(api["text"].to_list(), np.stack(api["embedding"].to_list()))
    judge.preload(requests, vectors)
    t0 = time.perf_counter()
    sharded_model_checks(df, judge, shard_size=load_params(args.params).runtime.shard_size)
    rest_s = time.perf_counter() - t0

    rows = [
        {
            "part": "MiniLM encoding of the requests",
            "texts": len(requests),
            "seconds": encode_s,
            "texts_per_s": len(requests) / encode_s,
            "share": encode_s / (encode_s + rest_s),
        },
        {
            "part": "parse, grounding, ranking, returns",
            "texts": None,
            "seconds": rest_s,
            "texts_per_s": None,
            "share": rest_s / (encode_s + rest_s),
        },
    ]
    stage = None
    if Path(args.stage_metrics).exists():
        stage = json.loads(Path(args.stage_metrics).read_text()).get("timings")
    print(f"{df.height} dialogs, {len(requests)} distinct requests, {api.height} pool API vectors preloaded")
    print(table(rows, ["part", "texts", "seconds", "texts_per_s", "share"]))
    if stage:
        print(f"verify stage record: model layer {stage.get('model')} s, total {stage.get('total')} s")
    payload = {"dialogs": df.height, "requests": len(requests), "rows": rows, "stage_timings": stage}
    print(f"-> {record('verify_model_layer', payload)}")
    return payload


if __name__ == "__main__":
    main()
