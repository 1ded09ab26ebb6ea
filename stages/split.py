"""DVC stage ``split``: verified dialogs -> train/test split by API + exports (docs/architecture.md#dialogs).

Thin wrapper: paths from argv, params from ``params.yaml`` (section ``split``), one call to
:func:`toolkiln.dialogs.split.split_by_api`, then the ShareGPT/ToolACE, OpenAI-messages and
BFCL exports of both splits (:func:`toolkiln.dialogs.export.write_exports`), atomic writes.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--verified", required=True, help="input: verified dialogs (data/verified.parquet)")
    ap.add_argument("--train", required=True, help="output: train dialogs")
    ap.add_argument("--test", required=True, help="output: test dialogs (no train API among their key APIs)")
    ap.add_argument("--exports", required=True, help="output folder: <split>/{sharegpt.json, openai.jsonl, bfcl_*.jsonl}")
    ap.add_argument("--metrics", required=True, help="DVC metrics JSON")
    args = ap.parse_args(argv)

    import polars as pl

    from toolkiln.dialogs.export import write_exports
    from toolkiln.dialogs.split import split_by_api
    from toolkiln.io import atomic_dir, atomic_write_json, atomic_write_parquet
    from toolkiln.stage import stage_context

    with stage_context("split", args.params, sections=("split",)) as ctx:
        df = pl.read_parquet(args.verified)
        result = split_by_api(df, ctx.params.split, seed=ctx.params.seed)
        with atomic_dir(args.exports) as tmp:
            files = write_exports({"train": result.train, "test": result.test}, tmp, ctx.params.split.exports)
        metrics = {**result.metrics, "exports": files}
        atomic_write_parquet(args.train, result.train)
        atomic_write_parquet(args.test, result.test)
        atomic_write_json(args.metrics, metrics)
        ctx.run.log_metrics({k: v for k, v in metrics.items() if k not in ("exports",)})
        ctx.run.log_artifact(args.metrics)
        ctx.require(result.train.height > 0 and result.test.height > 0,
                    f"split {df.height} verified dialogs into {result.train.height} train / {result.test.height} test; "
                    "both must be non-empty (too few verified dialogs or APIs for split.test_fraction)")
        ctx.log.info("split: %d train / %d test dialogs, %d test APIs -> %s, %s, %s", result.train.height,
                     result.test.height, len(result.test_apis), args.train, args.test, args.exports)


if __name__ == "__main__":
    main()
