"""The verifier's intent ranking with either encoder: MiniLM vs the static table distilled from it.

The embedded judge's consistency check (ToolACE §3.3, model layer) ranks the offered APIs by cosine to the
request; ``verify.model.encoder`` picks what makes the vectors: ``minilm`` (a transformer pass per text) or
``static`` (``toolkiln.embed.distill_static``: word-piece vectors looked up and averaged). Their cosines are on
different scales, so each gets its own ``intent_margin``. On a seeded sample of the default data's clean
dialogs plus ``wrong_intent`` corruptions of them (``toolkiln.verify.inject``), for each encoder and margin:

* clean rejected: share of the clean dialogs the consistency check fails (false rejects);
* wrong-intent caught: share of the corrupted dialogs it fails (recall);
* seconds to encode the texts the check reads, in the same run (MiniLM reuses the pool's vectors from
  ``data/api_embeddings.parquet`` as the stage does, so it encodes only the requests).

``--ablation`` adds the static table's construction choices (``toolkiln.embed.static_table``: centring, the
top principal directions removed, rank weighting), each from the same word-piece vectors.

    python -m bench.verify_encoders [--n 3000] [--per-kind 400] [--margins 0.05 0.08 0.1 0.12 0.15] [--ablation]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.common import record, table


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dialogs", default="data/dialogs.parquet")
    ap.add_argument("--api-embeddings", default="data/api_embeddings.parquet")
    ap.add_argument("--static-encoder", default="checkpoints/static_encoder")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--n", type=int, default=3000, help="clean dialogs sampled")
    ap.add_argument("--per-kind", type=int, default=400, help="wrong_intent corruptions")
    ap.add_argument("--margins", type=float, nargs="+", default=[0.05, 0.08, 0.1, 0.12, 0.15])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ablation", action="store_true", help="also the static table's construction choices")
    args = ap.parse_args(argv)
    for path in (args.dialogs, args.api_embeddings, Path(args.static_encoder) / "static_encoder.npz"):
        if not Path(path).exists():
            print(f"skipped: {path} missing (dvc repro verify makes it)")
            return {}

    import numpy as np
    import polars as pl
    import torch

    from toolkiln.config import load_params
    from toolkiln.embed import StaticEncoder, embed_texts, load_static, static_table, word_piece_vectors
    from toolkiln.verify.inject import inject
    from toolkiln.verify.model import EmbeddedJudge, model_checks, parse_views

    torch.set_num_threads(2)
    m = load_params(args.params).verify.model
    clean = pl.read_parquet(args.dialogs).sample(n=args.n, seed=args.seed)
    bad, _ = inject(clean, per_kind=args.per_kind, seed=args.seed, kinds=("wrong_intent",))
    frame = pl.concat([clean, bad.select(clean.columns)])
    parsed = parse_views(frame)
    views = [v for v in parsed[0] if v is not None]
    texts = sorted(set(EmbeddedJudge().texts(views)))
    api = pl.read_parquet(args.api_embeddings)
    pool = dict(zip(api["text"].to_list(), api["embedding"].to_list()))

    embed_texts(["warm up the encoder"] * 8, dtype=m.embed_dtype)
    static = load_static(args.static_encoder)
    static.encode(["warm up the encoder"])
    vectors, seconds = {}, {}
    todo = [t for t in texts if t not in pool]  # what the stage's MiniLM judge encodes: the pool's are reused
    t0 = time.perf_counter()
    encoded = dict(zip(todo, embed_texts(todo, batch_size=m.batch_size, dtype=m.embed_dtype)))
    seconds["minilm"] = time.perf_counter() - t0
    vectors["minilm"] = np.stack([encoded[t] if t in encoded else np.asarray(pool[t], np.float32) for t in texts])
    t0 = time.perf_counter()
    vectors["static"] = static.encode(texts)
    seconds["static"] = time.perf_counter() - t0
    if args.ablation:
        raw = word_piece_vectors()
        for name, (center, drop, weighting) in {
            "static: plain mean of raw vectors": (False, 0, "uniform"),
            "static: centred": (True, 0, "uniform"),
            "static: centred, rank-weighted": (True, 0, "log_rank"),
            "static: centred, top 8 dropped": (True, 8, "uniform"),
            "static: centred, top 8 dropped, rank-weighted (default)": (True, 8, "log_rank"),
        }.items():
            table_, weights, _ = static_table(raw, center=center, drop=drop, weighting=weighting)
            vectors[name] = StaticEncoder(table_, weights).encode(texts)

    rows = []
    n = clean.height
    for encoder in vectors:
        kind = "minilm" if encoder == "minilm" else "static"
        for margin in args.margins:
            judge = EmbeddedJudge(intent_margin=margin, encoder=kind, static_encoder=args.static_encoder)
            judge.preload(texts, vectors[encoder], encoder=kind)
            ok = model_checks(frame, judge, parsed=parsed)["ok_model_consistency"].to_numpy()
            rows.append(
                {
                    "encoder": encoder,
                    "margin": margin,
                    "clean_rejected": float(1 - ok[:n].mean()),
                    "wrong_intent_caught": float(1 - ok[n:].mean()),
                    "encode_s": seconds.get(encoder),
                    "encoded": len(todo) if encoder == "minilm" else len(texts),
                }
            )
    print(
        f"{n} clean dialogs + {bad.height} wrong_intent corruptions; {len(texts)} texts "
        f"(MiniLM encodes {len(todo)}, the rest are the pool's); static encodes "
        f"{seconds['minilm'] / seconds['static']:.0f}x faster"
    )
    shown = [{**r, **{k: f"{100 * r[k]:.2f}%" for k in ("clean_rejected", "wrong_intent_caught")}} for r in rows]
    print(table(shown, ["encoder", "margin", "clean_rejected", "wrong_intent_caught", "encode_s", "encoded"]))
    payload = {
        "n_clean": n,
        "n_wrong_intent": bad.height,
        "texts": len(texts),
        "embed_dtype": m.embed_dtype,
        "speedup_static": seconds["minilm"] / seconds["static"],
        "rows": rows,
    }
    print(f"-> {record('verify_encoders_ablation' if args.ablation else 'verify_encoders', payload)}")
    return payload


if __name__ == "__main__":
    main()
