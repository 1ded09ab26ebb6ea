"""Stage adnt_dialogs: ADNT vs source-only for a dialog-verification classifier moved to a new API domain
(ADNT arXiv 2208.02947 on the error-injection labels of verification; docs/architecture.md#domain-adaptation)."""

from __future__ import annotations

import argparse

import polars as pl

from toolkiln.adapt.dialogs import NoEligibleTarget, run_dialog_adaptation
from toolkiln.adapt.experiment import summarise
from toolkiln.adapt.report import markdown_table, summary_dict
from toolkiln.io import atomic_write_json, atomic_write_parquet, atomic_write_text
from toolkiln.stage import stage_context


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--dialogs", required=True, help="clean dialogs parquet (toolkiln.schema DIALOG_SCHEMA)")
    ap.add_argument("--out", required=True, help="results parquet: one row per (method, target domain, seed)")
    ap.add_argument("--table", required=True, help="markdown table out")
    ap.add_argument("--metrics", required=True, help="metrics JSON out")
    args = ap.parse_args(argv)

    with stage_context("adnt_dialogs", args.params, sections=("adnt",)) as ctx:
        cfg = ctx.params.adnt
        clean = pl.read_parquet(args.dialogs)
        try:
            results, counts = run_dialog_adaptation(clean, cfg)
        except NoEligibleTarget as exc:
            # too few dialogs per domain (e.g. a smoke run): record why, keep the DAG going
            ctx.log.warning("%s", exc)
            atomic_write_parquet(args.out, pl.DataFrame(schema={"method": pl.Utf8, "target": pl.Utf8, "seed": pl.Int64,
                                                                "acc": pl.Float64}))
            atomic_write_text(args.table, f"No dialog adaptation task: {exc}\n")
            atomic_write_json(args.metrics, {"skipped": str(exc)})
            return
        atomic_write_parquet(args.out, results)
        summary = summarise(results)
        targets = list(dict.fromkeys(results["target"].to_list()))
        majority = results.group_by("target").agg(pl.col("target_majority").first())
        table = markdown_table(summary, targets) + "\nMajority-class accuracy per target: " + ", ".join(
            f"{r['target']} {100 * r['target_majority']:.1f}" for r in majority.sort("target").iter_rows(named=True)) + "\n"
        atomic_write_text(args.table, table)
        s = summary_dict(summary)
        margin = (s["adnt"]["avg"]["mean"] - s["source_only"]["avg"]["mean"]
                  if "adnt" in s and "source_only" in s else None)
        metrics = {"summary": s, "adnt_minus_source_only": margin, "n_rows": int(counts["rows"].sum()),
                   "domains": {r["domain"]: {"rows": r["rows"], "corrupted": r["corrupted"]}
                               for r in counts.iter_rows(named=True)}}
        atomic_write_json(args.metrics, metrics)
        ctx.run.log_metrics({"avg_acc": {m: v["avg"]["mean"] for m, v in s.items()},
                             "adnt_minus_source_only": margin or 0.0})
        ctx.run.log_artifact(args.table)
        ctx.log.info("dialog adaptation over %s: %s", targets, {m: round(v["avg"]["mean"], 3) for m, v in s.items()})


if __name__ == "__main__":
    main()
