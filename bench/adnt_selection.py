"""The ADNT table under a fair protocol: every method's knob chosen by leave-one-source-out validation.

:mod:`toolkiln.adapt.selection`: for each target, each method's candidate settings (its default first) are trained
with one source held out as the unlabelled "target" and scored on that source's test split; the best mean over the
held-out sources is the method's choice (the target's data is never read), which is then trained on the real task
for every protocol seed. Prints the choices and the resulting table (target accuracy, mean +- std over seeds, the
average over targets as in ``adnt_report``) and ADNT's margin over each method against one seed-std.

    python -m bench.adnt_selection [--domains data/adnt/domains] [--workers 2] [--targets mnist,optdigits,...]
"""

from __future__ import annotations

import argparse
import json
import time

from bench.common import record, table


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", default="data/adnt/domains", help="the adnt_data stage's folder")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--targets", default="", help="comma-separated; default every domain")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)

    from toolkiln.adapt.experiment import summarise
    from toolkiln.adapt.report import margins_one_std, summary_dict, text_rows
    from toolkiln.adapt.selection import DEFAULT_GRID, run_selection
    from toolkiln.config import load_params

    cfg = load_params(args.params).adnt
    names = list(cfg.data.domains)
    t0 = time.perf_counter()
    sel = run_selection(
        args.domains, names, cfg, targets=args.targets.split(",") if args.targets else None, workers=args.workers
    )
    secs = time.perf_counter() - t0
    print(f"{sel.validation.height} validation runs + {sel.runs.height} final runs in {secs:.0f}s")
    choice_rows = [
        {
            "method": r["method"],
            "target": r["target"],
            "chosen": r["overrides"] if r["candidate"] else "default",
            "val_acc": 100 * r["val_acc"],
            "default_val_acc": 100 * r["default_val_acc"],
        }
        for r in sel.choices.iter_rows(named=True)
    ]
    print(table(choice_rows, ["method", "target", "chosen", "val_acc", "default_val_acc"]))
    s = summary_dict(summarise(sel.runs))
    targets = [t for t in names if t in set(sel.runs["target"])]
    print(table(text_rows(s, targets), ["method", *targets, "avg"]))
    margins = margins_one_std(s)
    for m, g in margins.items():
        print(
            f"ADNT - {m}: {g['margin']:+.1f} points (one seed-std {g['seed_std']:.1f}): "
            f"{'beyond' if g['beyond_one_std'] else 'within'}"
        )
    payload = {
        "grid": DEFAULT_GRID,
        "seconds": secs,
        "choices": sel.choices.to_dicts(),
        "validation": sel.validation.to_dicts(),
        "runs": sel.runs.to_dicts(),
        "summary": s,
        "margins": margins,
    }
    print(f"-> {record('adnt_selection', json.loads(json.dumps(payload, default=str)))}")
    return payload


if __name__ == "__main__":
    main()
