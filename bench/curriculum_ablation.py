"""iTool's easy-to-hard warm-up vs random order, over seeds, on the held-out unseen-API split (iTool arXiv 2501.09766 §3.1).

One difficulty table (``score_difficulty`` with the params' seed, or ``--difficulty``),
then for every seed and order: ``warmup_sft`` with that seed (model init and shuffles),
the ``evaluate`` harness on ``data/test.parquet`` (synthetic split only, BFCL off),
accuracy overall and per dialog type. Both orders train on exactly the same examples
(the same multiset), so the difference is the order alone. ``random`` is the baseline:
the table reports mean ± std (sample std over seeds) and easy_to_hard - random.

    python bench/curriculum_ablation.py --seeds 0 1 2          # results: bench/results/curriculum_ablation.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import record, table  # noqa: E402

ORDERS = ("random", "easy_to_hard")


def mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--train", default=str(ROOT / "data" / "train.parquet"))
    ap.add_argument("--test", default=str(ROOT / "data" / "test.parquet"))
    ap.add_argument("--difficulty", default="", help="reuse this difficulty table instead of scoring again")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--orders", nargs="+", default=list(ORDERS), choices=ORDERS)
    ap.add_argument("--name", default="curriculum_ablation", help="results file name under bench/results/")
    args = ap.parse_args(argv)

    import polars as pl

    from toolkiln.config import load_params
    from toolkiln.evaluate.harness import run_evaluation
    from toolkiln.policy.difficulty import score_difficulty
    from toolkiln.policy.model import save_policy
    from toolkiln.policy.warmup import warmup_sft
    from toolkiln.stage import setup_logging

    setup_logging()
    params = load_params(args.params)
    if not Path(args.train).exists() or not Path(args.test).exists():
        print(f"skipped: needs {args.train} and {args.test} (run `dvc repro split` first)")
        return {}
    train, test = pl.read_parquet(args.train), pl.read_parquet(args.test)
    if args.difficulty:
        difficulty = pl.read_parquet(args.difficulty)
    else:
        difficulty = score_difficulty(train, params.policy, params.difficulty, seed=params.seed).table
    ev = params.evaluate.model_copy(update={"bfcl_categories": []})
    runs = []
    for seed in args.seeds:
        for order in args.orders:
            t0 = time.perf_counter()
            res = warmup_sft(train, difficulty, params.policy, params.sft, seed=seed, order=order)
            with tempfile.TemporaryDirectory(prefix="toolkiln-ablation-") as tmp:
                save_policy(res.model, res.tokenizer, tmp)
                report = run_evaluation(tmp, test, ev, seed=seed)
            m = report.metrics["synthetic"]
            run = {"order": order, "seed": seed, "accuracy": m["accuracy"],
                   "by_type": {g: v["accuracy"] for g, v in m["by_group"].items()},
                   "train_loss_mean": res.metrics["train_loss_mean"], "final_eval_loss": res.metrics.get("final_eval_loss"),
                   "train_seconds": res.metrics["train_seconds"], "seconds": time.perf_counter() - t0}
            runs.append(run)
            print(f"seed {seed} {order}: accuracy {run['accuracy']:.3f} "
                  f"({', '.join(f'{g} {a:.2f}' for g, a in run['by_type'].items())})", flush=True)

    groups = sorted({g for r in runs for g in r["by_type"]})
    summary: dict = {}
    rows = []
    for order in args.orders:
        rs = [r for r in runs if r["order"] == order]
        entry = {"overall": mean_std([r["accuracy"] for r in rs])}
        entry.update({g: mean_std([r["by_type"].get(g, 0.0) for r in rs]) for g in groups})
        summary[order] = entry
        rows.append({"order": order, **{k: f"{m:.3f} ± {s:.3f}" for k, (m, s) in entry.items()}})
    if set(ORDERS) <= set(args.orders):
        delta = {k: summary["easy_to_hard"][k][0] - summary["random"][k][0] for k in summary["random"]}
        rows.append({"order": "easy_to_hard - random", **{k: f"{v:+.3f}" for k, v in delta.items()}})
        summary["delta_easy_to_hard_minus_random"] = delta
    print(table(rows, ["order", "overall", *groups]))
    payload = {"seeds": args.seeds, "train": str(args.train), "test": str(args.test), "n_test": test.height,
               "sft": params.sft.model_dump(), "policy": params.policy.model_dump(),
               "difficulty": params.difficulty.model_dump(), "runs": runs, "summary": summary}
    path = record(args.name, payload)
    print(f"wrote {path.relative_to(ROOT)}")
    return payload


if __name__ == "__main__":
    main()
