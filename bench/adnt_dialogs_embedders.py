"""Which dialog embedding lets a verification classifier transfer to an unseen API domain? Hashing vs MiniLM.

The ``adnt_dialogs`` stage's experiment (:func:`toolkiln.adapt.dialogs.run_dialog_adaptation`: half of each
domain's dialogs corrupted by the error-injection generator, sources = every other API domain, the target's
labels hidden) run twice on the same labelled rows, targets and seeds, once per ``adnt.dialogs.embedder``:

* ``hashing``: char 2-4-gram TF-IDF of the dialog text + structure tokens, each reduced by SVD;
* ``minilm``: the offline MiniLM sentence embedding of the text, with the same structure view appended.

Prints target accuracy (mean +- std over seeds, averaged over targets) per method and embedder next to the
majority-class accuracy of the target test splits: a classifier that does not beat the majority class has
learned nothing that transfers.

    python -m bench.adnt_dialogs_embedders [--dialogs data/dialogs.parquet] [--params params.yaml]
"""

from __future__ import annotations

import argparse
import time

from bench.common import record, table


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dialogs", default="data/dialogs.parquet", help="clean dialogs (the generate_dialogs output)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--embedders", default="hashing,minilm")
    args = ap.parse_args(argv)

    import polars as pl

    from toolkiln.adapt.dialogs import run_dialog_adaptation
    from toolkiln.adapt.experiment import summarise
    from toolkiln.adapt.report import summary_dict
    from toolkiln.config import load_params

    cfg = load_params(args.params).adnt
    clean = pl.read_parquet(args.dialogs)
    rows, per_target, payload = [], {}, {"embedders": {}}
    for kind in args.embedders.split(","):
        run_cfg = cfg.model_copy(update={"dialogs": cfg.dialogs.model_copy(update={"embedder": kind})})
        t0 = time.perf_counter()
        results, _ = run_dialog_adaptation(clean, run_cfg, progress=False)
        secs = time.perf_counter() - t0
        s = summary_dict(summarise(results))
        majority = results.group_by("target").agg(pl.col("target_majority").first())
        maj = float(majority["target_majority"].mean())
        for m, v in s.items():
            rows.append(
                {
                    "embedder": kind,
                    "method": m,
                    "avg_acc": 100 * v["avg"]["mean"],
                    "std": 100 * v["avg"]["std"],
                    "minus_majority": 100 * (v["avg"]["mean"] - maj),
                }
            )
        rows.append({"embedder": kind, "method": "majority class", "avg_acc": 100 * maj})
        per_target[kind] = {m: {t: 100 * x["mean"] for t, x in v.items() if t != "avg"} for m, v in s.items()}
        payload["embedders"][kind] = {
            "summary": s,
            "majority": maj,
            "seconds": secs,
            "targets": sorted(majority["target"].to_list()),
        }
        print(f"{kind}: {results.height} runs in {secs:.0f}s")
    print(table(rows, ["embedder", "method", "avg_acc", "std", "minus_majority"]))
    payload["rows"] = rows
    payload["per_target"] = per_target
    print(f"-> {record('adnt_dialogs_embedders', payload)}")
    return payload


if __name__ == "__main__":
    main()
