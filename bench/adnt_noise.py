"""Does ARCE tolerate noisy pseudo-labels better than CE? ADNT under injected symmetric pseudo-label noise.

At the default confidence threshold (0.97) the kept pseudo-labels are >= 80% right, which leaves a noise-robust
loss little to correct. This stresses the part ARCE is for: at every refresh a share (``--rates``) of the kept
pseudo-labels is replaced by a uniformly drawn wrong class (``adnt.method.pseudo_noise``), and ADNT is trained
with its three pseudo-label losses, everything else at the defaults:

* ``adnt``: ARCE, ``alpha * CE + beta * RCE`` with the adaptive weight;
* ``adnt_ce``: plain CE (unbounded: a wrong label can cost without limit);
* ``adnt_rce``: RCE alone (bounded, a scaled MAE).

Each (rate, loss, target, seed) is one run of the ``adnt_train`` code path (``run_protocol`` with ``targets``),
so the numbers are comparable with the ADNT table. Target labels are used for the reported test accuracy only.

    python -m bench.adnt_noise [--domains data/adnt/domains] [--rates 0,0.2,0.4,0.6] [--targets syndigits,mnistm]
"""

from __future__ import annotations

import argparse
import time

from bench.common import record, table


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", default="data/adnt/domains", help="the adnt_data stage's folder")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--rates", default="0,0.2,0.4,0.6")
    ap.add_argument("--targets", default="syndigits,mnistm", help="the hard targets: pseudo-labels are noisiest")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default="adnt,adnt_ce,adnt_rce")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)

    import polars as pl

    from toolkiln.adapt.experiment import load_domains, run_protocol
    from toolkiln.adapt.report import pseudo_label_columns
    from toolkiln.config import load_params

    cfg = load_params(args.params).adnt
    domains = load_domains(args.domains, cfg.data.domains)
    targets, seeds, methods = args.targets.split(","), [int(s) for s in args.seeds.split(",")], args.methods.split(",")
    protocol = cfg.protocol.model_copy(update={"seeds": seeds, "methods": methods})
    parts = []
    for rate in [float(r) for r in args.rates.split(",")]:
        run_cfg = cfg.model_copy(
            update={"protocol": protocol, "method": cfg.method.model_copy(update={"pseudo_noise": rate})}
        )
        t0 = time.perf_counter()
        res = run_protocol(domains, run_cfg, workers=args.workers, targets=targets, progress=False)
        print(f"noise {rate:.1f}: {res.height} runs in {time.perf_counter() - t0:.0f}s")
        parts.append(res.with_columns(pl.lit(rate).alias("noise")))
    res = pl.concat(parts)
    # the kept pseudo-labels' precision at the last refresh (after the injected noise): what the loss trained on
    res = res.with_columns(pseudo_label_columns()[1])
    per_seed = res.group_by("noise", "method", "seed").agg(
        pl.col("acc").mean().alias("acc"), pl.col("pseudo_precision_last").mean().alias("precision")
    )
    summary = (
        per_seed.group_by("noise", "method")
        .agg(
            (100 * pl.col("acc").mean()).alias("avg_acc"),
            (100 * pl.col("acc").std()).alias("std"),
            (100 * pl.col("precision").mean()).alias("pseudo_precision"),
        )
        .sort("noise", "method")
    )
    rows = summary.to_dicts()
    print(f"targets {targets}, seeds {seeds}: accuracy averaged over targets, mean +- std over seeds")
    print(table(rows, ["noise", "method", "avg_acc", "std", "pseudo_precision"]))
    payload = {
        "targets": targets,
        "seeds": seeds,
        "rows": rows,
        "runs": res.drop("history").to_dicts(),
    }
    print(f"-> {record('adnt_noise', payload)}")
    return payload


if __name__ == "__main__":
    main()
