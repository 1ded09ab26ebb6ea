"""ADNT on a harder benchmark: the four default digit domains plus two renderings under stronger shifts.

``housenum`` (SVHN-like: the label digit between cut-off neighbours over a tinted photo, either polarity) and
``strokes`` (grey glyphs drawn extremely heavy or hollow, crossed by lines and dots, inverted half of the time) are
built by :mod:`toolkiln.adapt.digits` from the packaged fonts and photos. This bench

1. builds the six domains with the ``adnt_data`` code path (``build_benchmark``) into a cache folder, with contact
   sheets and the single-source domain-gap matrix (``bench/results/adnt_hard/``);
2. runs the fair protocol of ``bench.adnt_selection`` (:mod:`toolkiln.adapt.selection`: each method's knob chosen
   per target by leave-one-source-out validation, the target's data never read) for the hard targets;
3. trains, with ADNT's chosen setting, each ADNT ablation and skada's DeepCoral (the best skada baseline of the main
   table; its defaults) on the same tasks and seeds, so every component's cost is measured where ADNT was selected.

Prints the gap matrix, the choices and one table (target accuracy, mean +- std over seeds, target average), and
ADNT's margin over every other row against one seed-std (the issue's bar for a reproduced claim).

    python -m bench.adnt_hard [--targets housenum,strokes] [--workers 2] [--cache .toolkiln/bench/adnt_hard]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench import common
from bench.common import record, table

ABLATIONS = ["adnt_no_attention", "adnt_ordinary_attention", "adnt_ce", "adnt_rce", "adnt_fixed_weight"]


def build_or_load(cfg, cache: Path, progress: bool = True):
    """The benchmark's domains and gap matrix, built once per data config (a fingerprint names the folder)."""
    import hashlib

    import numpy as np

    from toolkiln.adapt.experiment import build_benchmark, load_domains, save_domains, write_contact_sheets
    from toolkiln.adapt.report import gap_plot

    key = hashlib.sha256(cfg.data.model_dump_json().encode() + cfg.model.model_dump_json().encode()).hexdigest()[:12]
    folder = cache / f"domains-{key}"
    gap_file = folder / "gap.npy"
    if gap_file.is_file():
        return folder, load_domains(folder, cfg.data.domains), np.load(gap_file)
    t0 = time.perf_counter()
    bench = build_benchmark(cfg, progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    save_domains(bench.domains, folder)
    np.save(gap_file, bench.gap_matrix)
    out = common.RESULTS / "adnt_hard"
    out.mkdir(parents=True, exist_ok=True)
    write_contact_sheets({n: d for n, d in bench.domains.items() if n in ("housenum", "strokes")}, out)
    gap_plot(list(bench.domains), bench.gap_matrix, out / "gap_matrix.png")
    print(f"built {len(bench.domains)} domains + gap matrix in {time.perf_counter() - t0:.0f}s -> {folder}")
    return folder, bench.domains, bench.gap_matrix


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--domains", default="mnist,optdigits,syndigits,mnistm,housenum,strokes")
    ap.add_argument("--targets", default="housenum,strokes")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--cache", default=".toolkiln/bench/adnt_hard", help="built domains (rebuilt when data params change)"
    )
    ap.add_argument("--gap-only", action="store_true", help="build the domains and the gap matrix, train nothing else")
    args = ap.parse_args(argv)

    import polars as pl

    from toolkiln.adapt.experiment import gap_table, run_protocol, summarise
    from toolkiln.adapt.report import margins_one_std, summary_dict, text_rows
    from toolkiln.adapt.selection import run_selection, with_overrides
    from toolkiln.config import load_params

    base = load_params(args.params).adnt
    names, targets = args.domains.split(","), args.targets.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    cfg = with_overrides(base, {"data": {"domains": names}, "protocol": {"seeds": seeds}})  # validated
    folder, domains, G = build_or_load(cfg, Path(args.cache))
    gap = gap_table(names, G)
    gap_rows = [{"trained on": s, **{t: 100 * gap[s][t] for t in names}, "gap": 100 * gap[s]["gap"]} for s in names]
    print("single-source domain-gap matrix (accuracy %, row = trained on, column = tested on):")
    print(table(gap_rows, ["trained on", *names, "gap"]))
    payload: dict = {"domains": names, "targets": targets, "seeds": seeds, "gap": gap}
    if args.gap_only:
        print(f"-> {record('adnt_hard', payload)}")
        return payload

    t0 = time.perf_counter()
    sel = run_selection(str(folder), names, cfg, targets=targets, workers=args.workers)
    print(
        f"selection: {sel.validation.height} validation + {sel.runs.height} final runs in {time.perf_counter() - t0:.0f}s"
    )
    choices = {(r["method"], r["target"]): json.loads(r["overrides"]) for r in sel.choices.iter_rows(named=True)}
    # the ablations and skada under ADNT's choice per target (skada's knobs are its own defaults)
    parts = [sel.runs.select("method", "target", "seed", "acc")]
    t1 = time.perf_counter()
    for t in targets:
        run_cfg = with_overrides(
            cfg, {**choices[("adnt", t)], "protocol": {"methods": [*ABLATIONS, "skada_deepcoral"]}}
        )
        res = run_protocol(domains, run_cfg, workers=args.workers, targets=[t], progress=False)
        parts.append(res.select("method", "target", "seed", "acc"))
    print(f"ablations + skada: {sum(p.height for p in parts[1:])} runs in {time.perf_counter() - t1:.0f}s")
    runs = pl.concat(parts)
    s = summary_dict(summarise(runs))
    margins = margins_one_std(s)
    rows = [
        {**r, "adnt_margin": g["margin"], "beyond_1_std": g["beyond_one_std"]} if (g := margins.get(r["method"])) else r
        for r in text_rows(s, targets)
    ]
    print(table(rows, ["method", *targets, "avg", "adnt_margin", "beyond_1_std"]))
    payload.update(
        {
            "choices": [{"method": m, "target": t, "overrides": o} for (m, t), o in sorted(choices.items())],
            "validation": sel.validation.to_dicts(),
            "table": rows,
            "summary": s,
            "runs": runs.to_dicts(),
            "seconds": time.perf_counter() - t0,
        }
    )
    print(f"-> {record('adnt_hard', payload)}")
    return payload


if __name__ == "__main__":
    main()
