"""Does ADNT's margin over source-only appear with more compute? A steps x examples scaling study.

The ADNT table trains every method for 400 steps on 1,200 images per domain, where ADNT ties source-only. The paper
trains far longer, on noisier pseudo-labels. This bench re-runs the ``adnt_train`` code path (``run_protocol`` with
``targets``) on a grid of cells, each a (steps multiplier, examples multiplier):

* steps x1, x4, x16 (``adnt.train.steps`` times the multiplier; skada's ``max_epochs`` scaled to the same number of
  source images, so every method sees equal compute);
* examples x1 and x0.25 per domain: a class-stratified, seeded subset of every domain's training split (the target's
  unlabelled images included; test splits unchanged). The shipped data caps the benchmark near 1,200 training images
  per domain (optdigits has 1,797 images, mnist and mnistm 2,500 each), so the x4 ratio is taken downwards.

Methods: ADNT, source-only, M3SDA and skada's DeepCoral (the best skada baseline of the table), 3 seeds. The plot shows
each method's margin over source-only (target-average, paired per seed) against steps, one panel per examples level.

Resumable: the result file is rewritten after every cell and ``--resume`` skips the cells it already holds, so the
study can be extended cell by cell (``--cells 16x0.25``). Target labels are used for the test accuracy only.

    python -m bench.adnt_scaling [--cells 1x1,4x1,16x1,1x0.25,4x0.25,16x0.25] [--targets syndigits,mnistm] [--resume [--redo 1x1]]
"""

from __future__ import annotations

import argparse
import json
import time

from bench import common
from bench.common import record, table

NAME = "adnt_scaling"
DEFAULT_CELLS = "1x1,4x1,16x1,1x0.25,4x0.25,16x0.25"


def parse_cells(text: str) -> list[tuple[int, float]]:
    """``"1x1,4x0.25"`` -> [(1, 1.0), (4, 0.25)]: (steps multiplier, examples multiplier) per cell."""
    cells = []
    for part in text.split(","):
        steps, sep, examples = part.strip().partition("x")
        try:
            cell = (int(steps), float(examples))
        except ValueError:
            cell = None
        if not sep or cell is None or cell[0] < 1 or not 0 < cell[1] <= 1:
            raise ValueError(f"--cells: {part!r} is not '<steps multiplier >= 1>x<examples multiplier in (0, 1]>'")
        cells.append(cell)
    return cells


def cell_key(steps_mult: int, examples_mult: float) -> str:
    return f"{steps_mult}x{examples_mult:g}"


def cell_config(cfg, steps_mult: int, examples_mult: float, methods: list[str], seeds: list[int]):
    """``cfg`` (an ADNTConfig) for one cell: steps times ``steps_mult``; skada epochs so that skada sees as many
    source images as before times ``steps_mult`` (an epoch walks the now ``examples_mult`` times smaller data)."""
    from toolkiln.adapt.selection import with_overrides

    epochs = max(1, round(cfg.skada.max_epochs * steps_mult / examples_mult))
    return with_overrides(
        cfg,
        {
            "train": {"steps": cfg.train.steps * steps_mult},
            "skada": {"max_epochs": epochs},
            "protocol": {"methods": methods, "seeds": seeds},
        },
    )


def margins(runs: list[dict], baseline: str = "source_only") -> list[dict]:
    """Per cell and method: target-average accuracy (mean, std over seeds) and its margin over ``baseline``,
    paired per seed (the runs of a (target, seed) share the backbone initialisation)."""
    import polars as pl

    df = pl.from_dicts(runs, infer_schema_length=None)  # cells recorded before a column existed lack it
    extra = [c for c in ("pseudo_precision_first", "pseudo_precision_last", "pseudo_coverage_last") if c in df.columns]
    per_seed = df.group_by("cell", "steps_mult", "examples_mult", "method", "seed").agg(
        pl.col("acc").mean(), *(pl.col(c).mean() for c in extra)
    )
    base = per_seed.filter(pl.col("method") == baseline).select("cell", "seed", pl.col("acc").alias("base"))
    joined = per_seed.join(base, on=["cell", "seed"], how="left").with_columns(
        (pl.col("acc") - pl.col("base")).alias("d")
    )
    out = joined.group_by("cell", "steps_mult", "examples_mult", "method").agg(
        (100 * pl.col("acc").mean()).alias("avg_acc"),
        (100 * pl.col("acc").std(ddof=0)).alias("std"),
        (100 * pl.col("d").mean()).alias("margin"),
        (100 * pl.col("d").std(ddof=0)).alias("margin_std"),
        *((100 * pl.col(c).mean()).alias(c) for c in extra),
        pl.len().alias("seeds"),
    )
    return out.sort("examples_mult", "steps_mult", "method", descending=[True, False, False]).to_dicts()


def margin_plot(rows: list[dict], path, baseline: str = "source_only"):
    """Margin over ``baseline`` against steps (log scale), one panel per examples level, one line per method."""
    from toolkiln import plots

    levels = sorted({r["examples_mult"] for r in rows}, reverse=True)
    fig, axes = plots.subplots(1, len(levels), figsize=(4.5 * len(levels), 3.6), squeeze=False, sharey=True)
    for ax, ex in zip(axes[0], levels):
        for m in sorted({r["method"] for r in rows} - {baseline}):
            pts = sorted(
                (r["steps_mult"], r["margin"], r["margin_std"])
                for r in rows
                if r["method"] == m and r["examples_mult"] == ex
            )
            if pts:
                x, y, e = zip(*pts)
                ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=m, linewidth=2.2 if m == "adnt" else 1.2)
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("training steps (x default)")
        ax.set_title(f"examples per domain x{ex:g}")
    axes[0][0].set_ylabel(f"target accuracy - {baseline} (points)")
    axes[0][-1].legend(fontsize=8)
    return plots.save(fig, path)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", default="data/adnt/domains", help="the adnt_data stage's folder")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--cells", default=DEFAULT_CELLS, help="(steps multiplier)x(examples multiplier), comma-separated")
    ap.add_argument("--targets", default="syndigits,mnistm", help="the hard targets, where adaptation has room")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default="adnt,source_only,m3sda,skada_deepcoral")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--name", default=NAME, help="result file name under bench/results")
    ap.add_argument("--resume", action="store_true", help="keep the cells the result file already holds")
    ap.add_argument("--redo", default="", help="with --resume: cells to train again although the file holds them")
    args = ap.parse_args(argv)

    import polars as pl

    from toolkiln import plots  # noqa: F401  (fail before hours of training if matplotlib is missing)
    from toolkiln.adapt.digits import subsample_train
    from toolkiln.adapt.experiment import load_domains, run_protocol
    from toolkiln.adapt.report import pseudo_label_columns
    from toolkiln.config import load_params

    cfg = load_params(args.params).adnt
    domains = load_domains(args.domains, cfg.data.domains)
    targets, seeds, methods = args.targets.split(","), [int(s) for s in args.seeds.split(",")], args.methods.split(",")
    if "source_only" not in methods:
        raise ValueError("--methods: the margins are taken over source_only; include it")
    cells = parse_cells(args.cells)
    out_path = common.RESULTS / f"{args.name}.json"
    runs: list[dict] = []
    if args.resume and out_path.is_file():
        prev = json.loads(out_path.read_text())
        if prev.get("targets") != targets or prev.get("seeds") != seeds or prev.get("methods") != methods:
            raise ValueError(f"--resume: {out_path} was made with other targets/seeds/methods; use another --name")
        redo = {cell_key(*c) for c in parse_cells(args.redo)} if args.redo else set()
        runs = [r for r in prev["runs"] if r["cell"] not in redo]
    done = {r["cell"] for r in runs}
    payload: dict = {}
    for steps_mult, ex_mult in cells:
        key = cell_key(steps_mult, ex_mult)
        if key in done:
            print(f"cell {key}: kept from {out_path.name}")
            continue
        cell_domains = {
            n: subsample_train(d, round(len(d.y_train) * ex_mult), cfg.data.seed) for n, d in domains.items()
        }
        run_cfg = cell_config(cfg, steps_mult, ex_mult, methods, seeds)
        t0 = time.perf_counter()
        res = run_protocol(cell_domains, run_cfg, workers=args.workers, targets=targets, progress=False)
        print(
            f"cell {key}: {res.height} runs ({run_cfg.train.steps} steps, skada {run_cfg.skada.max_epochs} epochs, "
            f"{len(next(iter(cell_domains.values())).y_train)} train images/domain) in {time.perf_counter() - t0:.0f}s",
            flush=True,
        )
        runs += (
            res.with_columns(*pseudo_label_columns())
            .drop("history")
            .with_columns(
                pl.lit(key).alias("cell"),
                pl.lit(steps_mult).alias("steps_mult"),
                pl.lit(ex_mult).alias("examples_mult"),
            )
            .to_dicts()
        )
        payload = {
            "targets": targets,
            "seeds": seeds,
            "methods": methods,
            "base_steps": cfg.train.steps,
            "base_train_images": len(next(iter(domains.values())).y_train),
            "rows": margins(runs),
            "runs": runs,
        }
        record(args.name, payload)  # after every cell: an interrupted study resumes from here
    if not payload:
        payload = json.loads(out_path.read_text())
    rows = payload["rows"]
    print(
        f"targets {targets}, seeds {seeds}: accuracy averaged over targets, mean +- std over seeds; "
        "margin = method - source_only, paired per seed"
    )
    cols = ["cell", "method", "avg_acc", "std", "margin", "margin_std"]
    print(table(rows, cols + [c for c in ("pseudo_precision_first", "pseudo_precision_last") if c in rows[0]]))
    print(f"-> {margin_plot(rows, common.RESULTS / f'{args.name}.png')}")
    return payload


if __name__ == "__main__":
    main()
