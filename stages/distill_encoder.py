"""DVC stage ``distill_encoder``: the packaged MiniLM -> a static word-piece encoder for the verifier.

Thin wrapper: paths from argv, one call to :func:`toolkiln.embed.distill_static` (every word piece of
MiniLM's vocabulary embedded once; Model2Vec's idea), the folder written atomically. The ``verify`` stage
reads it when ``verify.model.encoder`` is ``static``; it does not depend on any param.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", required=True, help="output folder (checkpoints/static_encoder)")
    ap.add_argument("--metrics", required=True, help="metrics JSON (DVC metrics)")
    args = ap.parse_args(argv)

    import time

    from toolkiln.embed import distill_static, save_static
    from toolkiln.io import atomic_dir, atomic_write_json
    from toolkiln.stage import stage_context

    with stage_context("distill_encoder", args.params) as ctx:
        t0 = time.perf_counter()
        table, weights, meta = distill_static(progress=True)
        with atomic_dir(args.out) as tmp:
            save_static(tmp, table, weights, meta)
        info = {**meta, "seconds": round(time.perf_counter() - t0, 1)}
        atomic_write_json(args.metrics, info)
        ctx.run.log_metrics({"vocab": info["vocab"], "seconds": info["seconds"]})
        ctx.log.info("static encoder: %d word pieces x %d in %.1fs", info["vocab"], info["dim"], info["seconds"])


if __name__ == "__main__":
    main()
