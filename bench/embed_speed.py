"""MiniLM encoder precision for the embedded verifier: float32 vs bfloat16 vs int8, speed and agreement in one run.

The embedded judge of the verification model layer (docs/architecture.md#verification) embeds every candidate
API and every request of every dialog with all-MiniLM-L6-v2; on 2 cores that is nearly all of the ``verify``
stage's time, and it is compute-bound in the encoder's matrix products. This measures, on the same texts:

* texts per second of the float32, bfloat16 and dynamically quantised int8 encoders (ratio, not seconds, is
  the result; which wins depends on the CPU: AMX makes bfloat16 fast, without it int8's VNNI kernels win);
* cosine between the float32 embedding of each text and the others';
* agreement of the model layer's verdicts (hallucination, consistency, tool response) with float32's over
  ``--dialogs`` dialogs judged once with each precision.

    python -m bench.embed_speed [--dialogs 1500] [--source data/dialogs.parquet]

Without the DVC output the package's example dialogs are used.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.common import record, table


def _dialogs(n: int, source: str):
    import polars as pl

    from toolkiln.testing.examples import example_dialogs

    if Path(source).exists():
        return pl.read_parquet(source).head(n), source
    return example_dialogs(n, seed=0), "toolkiln.testing.examples"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dialogs", type=int, default=1500)
    ap.add_argument("--source", default="data/dialogs.parquet")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from toolkiln.embed import embed_texts
    from toolkiln.verify.model import EmbeddedJudge, model_checks

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    df, source = _dialogs(args.dialogs, args.source)
    cols = df.select("id", "type", "system", "tools", "messages")
    rows, embs, checks = [], {}, {}
    # (dtype, batch): float32 at the former batch of 128 is the baseline; sorted-by-length batches of 32 pad less
    for dtype, batch in (("float32", 128), ("bfloat16", 128), ("bfloat16", 32), ("int8", 128)):
        embed_texts(["warm up the encoder"] * 8, dtype=dtype)
        judge = EmbeddedJudge(embed_dtype=dtype, batch_size=batch)
        t0 = time.perf_counter()
        key = f"{dtype}/{batch}"
        checks[key] = model_checks(cols, judge)
        secs = time.perf_counter() - t0
        texts = sorted(judge._emb)
        embs[key] = np.stack([judge._emb[t] for t in texts])
        rows.append(
            {
                "encoder": key,
                "dialogs": df.height,
                "texts": len(texts),
                "seconds": round(secs, 2),
                "texts_per_s": round(len(texts) / secs, 1),
            }
        )
    base = rows[0]["texts_per_s"]
    for r in rows:
        r["speedup"] = round(r["texts_per_s"] / base, 2)
    ref = "float32/128"  # the baseline; each precision at the default batch (verify.model.batch_size 128)
    quality = {}
    for new in ("bfloat16/128", "int8/128"):
        cos = (embs[ref] * embs[new]).sum(axis=1)
        agree = {
            c: float((checks[ref][c] == checks[new][c]).mean()) for c in checks[ref].columns if c.startswith("ok_model")
        }
        flips = int((checks[ref]["ok_model"] != checks[new]["ok_model"]).sum())
        quality[new] = {
            "cosine": {"min": float(cos.min()), "mean": float(cos.mean()), "p01": float(np.quantile(cos, 0.01))},
            "verdict_agreement": agree,
            "ok_model_flips": flips,
        }
    print(table(rows, ["encoder", "dialogs", "texts", "seconds", "texts_per_s", "speedup"]))
    for new, q in quality.items():
        print(
            f"cosine {ref} vs {new}: min {q['cosine']['min']:.4f}, mean {q['cosine']['mean']:.5f}; "
            f"verdict agreement {q['verdict_agreement']}; ok_model flips {q['ok_model_flips']} of {df.height}"
        )
    amx = "amx_bf16" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else None
    payload = {"source": source, "table": rows, "quality_vs_float32": quality, "amx": amx}
    # which precision wins is a property of the CPU: one result file per kind of machine
    record("embed_speed" if amx else "embed_speed_no_amx", payload)
    return payload


if __name__ == "__main__":
    main()
