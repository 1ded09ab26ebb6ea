"""Three policies side by side on the same held-out sample and BFCL sample (iTool §3; ToolACE §4 evaluation).

* ``base``    — SmolLM2-135M-Instruct as shipped (``checkpoints/base``), zero-shot: ``reports/eval_base``;
* ``scratch`` — the from-scratch 4.5 M-parameter policy (``profiles/scratch.yaml``) after its warm-up;
* ``warmup``  — the base model after the default warm-up SFT: ``reports/eval_warmup``.

``--train-scratch`` trains the scratch policy with the library functions of the
``score_difficulty`` and ``warmup_sft`` stages on ``data/train.parquet`` (params =
params.yaml + profiles/scratch.yaml), saves it to ``checkpoints/scratch`` and evaluates it
with the ``evaluate`` params of params.yaml into ``reports/eval_scratch`` — the same
dialogs and BFCL items as the other two (seeded selection). Without it, the table is
built from whatever ``reports/eval_*/metrics.json`` exist.

    python bench/policy_compare.py [--train-scratch]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import record, table  # noqa: E402

CHECKPOINTS = ("base", "scratch", "warmup")
TYPES = ("single", "parallel", "dependent", "non_tool", "clarification")


def train_scratch(params_path: Path, profile: Path, out: Path, report_dir: Path) -> dict:
    import polars as pl

    from toolkiln.config import Params, deep_merge, read_yaml_mapping
    from toolkiln.evaluate.harness import run_evaluation
    from toolkiln.io import atomic_dir, atomic_write_json
    from toolkiln.policy.difficulty import score_difficulty
    from toolkiln.policy.model import save_policy
    from toolkiln.policy.warmup import warmup_sft

    merged = deep_merge(read_yaml_mapping(params_path), read_yaml_mapping(profile))
    params = Params.model_validate(merged)
    train = pl.read_parquet(ROOT / "data" / "train.parquet")
    diff = score_difficulty(train, params.policy, params.difficulty, seed=params.seed)
    res = warmup_sft(train, diff.table, params.policy, params.sft, seed=params.seed)
    with atomic_dir(out) as tmp:
        save_policy(res.model, res.tokenizer, tmp, params.policy)
    report = run_evaluation(out, pl.read_parquet(ROOT / "data" / "test.parquet"), params.evaluate, seed=params.seed)
    metrics = {"tag": "scratch", **report.metrics, "warmup": res.metrics, "difficulty_seconds": diff.metrics["seconds"]}
    report_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(report_dir / "metrics.json", metrics)
    return metrics


def row_of(name: str, m: dict) -> dict:
    syn = m.get("synthetic", {})
    by = syn.get("by_group", {})
    bf = m.get("bfcl", {}).get("by_group", {})
    row = {"policy": name, "overall": syn.get("accuracy")}
    row.update({t: by.get(t, {}).get("accuracy") for t in TYPES})
    row.update({f"bfcl:{c}": v.get("accuracy") for c, v in bf.items()})
    return row


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--train-scratch", action="store_true")
    args = ap.parse_args(argv)
    if args.train_scratch:
        train_scratch(
            Path(args.params),
            ROOT / "profiles" / "scratch.yaml",
            ROOT / "checkpoints" / "scratch",
            ROOT / "reports" / "eval_scratch",
        )
    rows = []
    for name in CHECKPOINTS:
        path = ROOT / "reports" / f"eval_{name}" / "metrics.json"
        if path.exists():
            rows.append(row_of(name, json.loads(path.read_text())))
    if not rows:
        print("no reports/eval_*/metrics.json yet; run `dvc repro` (and --train-scratch)")
        return {}
    cols = ["policy", "overall", *TYPES] + sorted({k for r in rows for k in r if k.startswith("bfcl:")})
    fmt = [{k: (f"{v:.1%}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    print(table(fmt, cols))
    payload = {"rows": rows}
    record("policy_compare", payload)
    return payload


if __name__ == "__main__":
    main()
