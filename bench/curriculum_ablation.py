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
    ap.add_argument("--max-samples", type=int, default=-1,
                    help="override sft.max_samples (training dialogs per run, bucket shares kept); -1 = params")
    ap.add_argument("--test-per-type", type=int, default=0,
                    help="evaluate on a seeded sample of this many test dialogs per type (0 = the whole split)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per run (0 = params policy.threads)")
    ap.add_argument("--name", default="curriculum_ablation", help="results file name under bench/results/")
    ap.add_argument("--combine", nargs="+", default=[], metavar="NAME",
                    help="no training: merge the runs of these results files (e.g. one per order, run in parallel) "
                         "into --name's table")
    args = ap.parse_args(argv)
    if args.combine:
        return combine(args.combine, args.name)

    import polars as pl

    from toolkiln.config import load_params
    from toolkiln.evaluate.harness import run_evaluation
    from toolkiln.policy.difficulty import score_difficulty
    from toolkiln.policy.examples import build_examples, target_nll
    from toolkiln.policy.model import save_policy
    from toolkiln.policy.warmup import warmup_sft
    from toolkiln.stage import setup_logging

    setup_logging()
    params = load_params(args.params)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if not Path(args.train).exists() or not Path(args.test).exists():
        print(f"skipped: needs {args.train} and {args.test} (run `dvc repro split` first)")
        return {}
    train, test = pl.read_parquet(args.train), pl.read_parquet(args.test)
    if args.test_per_type:
        test = pl.concat([g.sample(min(args.test_per_type, g.height), seed=0)
                          for _, g in test.group_by("type", maintain_order=True)])
    sft = params.sft if args.max_samples < 0 else params.sft.model_copy(update={"max_samples": args.max_samples})
    policy = params.policy if not args.threads else params.policy.model_copy(update={"threads": args.threads})
    if args.difficulty:
        difficulty = pl.read_parquet(args.difficulty)
    else:
        difficulty = score_difficulty(train, policy, params.difficulty, seed=params.seed).table
    ev = params.evaluate.model_copy(update={"bfcl_categories": []})
    runs = []
    for seed in args.seeds:
        for order in args.orders:
            t0 = time.perf_counter()
            res = warmup_sft(train, difficulty, policy, sft, seed=seed, order=order)
            # a continuous measure next to exact-match accuracy: mean target-turn NLL on the unseen-API test dialogs
            test_examples, _ = build_examples(test.to_dicts(), res.tokenizer, policy.render, "target")
            test_nll = statistics.fmean(target_nll(res.model, res.tokenizer, test_examples, batch_size=16))
            with tempfile.TemporaryDirectory(prefix="toolkiln-ablation-") as tmp:
                save_policy(res.model, res.tokenizer, tmp, policy)
                report = run_evaluation(tmp, test, ev, seed=seed)
            m = report.metrics["synthetic"]
            run = {"order": order, "seed": seed, "accuracy": m["accuracy"],
                   "by_type": {g: v["accuracy"] for g, v in m["by_group"].items()},
                   "test_target_nll": test_nll, "train_loss_mean": res.metrics["train_loss_mean"], "final_eval_loss": res.metrics.get("final_eval_loss"),
                   "train_seconds": res.metrics["train_seconds"], "seconds": time.perf_counter() - t0}
            runs.append(run)
            print(f"seed {seed} {order}: accuracy {run['accuracy']:.3f}, test target NLL {test_nll:.3f} "
                  f"({', '.join(f'{g} {a:.2f}' for g, a in run['by_type'].items())})", flush=True)

    payload = {"seeds": args.seeds, "train": str(args.train), "test": str(args.test), "n_test": test.height,
               "test_per_type": args.test_per_type, "sft": sft.model_dump(), "policy": policy.model_dump(),
               "difficulty": params.difficulty.model_dump(), "runs": runs}
    return summarise(payload, args.name)


def combine(names: list[str], out_name: str) -> dict:
    import json

    from bench.common import RESULTS

    parts = [json.loads((RESULTS / f"{n}.json").read_text()) for n in names]
    payload = {k: v for k, v in parts[0].items() if k not in ("runs", "summary", "machine")}
    payload["combined_from"] = names
    payload["runs"] = [r for p in parts for r in p["runs"]]
    return summarise(payload, out_name)


def summarise(payload: dict, name: str) -> dict:
    runs = payload["runs"]
    orders = [o for o in ORDERS if any(r["order"] == o for r in runs)]
    groups = sorted({g for r in runs for g in r["by_type"]})
    summary: dict = {}
    rows = []
    for order in orders:
        rs = [r for r in runs if r["order"] == order]
        entry = {"overall": mean_std([r["accuracy"] for r in rs])}
        if all("test_target_nll" in r for r in rs):
            entry["test_target_nll"] = mean_std([r["test_target_nll"] for r in rs])
        entry.update({g: mean_std([r["by_type"].get(g, 0.0) for r in rs]) for g in groups})
        summary[order] = entry
        rows.append({"order": order, **{k: f"{m:.3f} ± {s:.3f}" for k, (m, s) in entry.items()}})
    if set(ORDERS) <= set(orders):
        delta = {k: summary["easy_to_hard"][k][0] - summary["random"][k][0] for k in summary["random"]}
        rows.append({"order": "easy_to_hard - random", **{k: f"{v:+.3f}" for k, v in delta.items()}})
        summary["delta_easy_to_hard_minus_random"] = delta
    print(table(rows, ["order", "overall", *groups, *(["test_target_nll"] if "test_target_nll" in rows[0] else [])]))
    payload["summary"] = summary
    path = record(name, payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
