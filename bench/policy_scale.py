"""Does the default base model reach the warm-up floors with more data and compute? (iTool §3.1 capacity probe)

The CPU default warm-up trains SmolLM2-135M-Instruct on the 1,500 difficulty-scored training
dialogs (~17 min on 2 cores) and scores ~20% on the held-out sample, far under the floors
(single >= 50%). Every rendering, decoding and learning-rate lever measured so far moved the
validation score within noise, which leaves two explanations: the CPU budget (data seen) or the
model's capacity. This bench separates them: it runs the *same* library functions as the DAG
(``score_difficulty`` -> ``warmup_sft`` -> ``run_evaluation``, params.yaml plus one override per
arm) with 4x and 14x the training dialogs, all layers trained, two epochs, and scores every arm on
the eval_warmup stage's sample (the seeded per-type sample of the test split's truly-unseen
targets, and BFCL). The first arm is the default itself, so the table carries its own baseline.

Sized for an accelerator (on CPU the larger arms take hours). Arms run in the order given; each is
written to the results file when it finishes; ``--budget-s`` skips an arm whose time, predicted from
the arms measured before it (tokens per second per trained-layer count, evaluation seconds,
scoring seconds per dialog), would not fit in what is left, and records why.
``--set KEY=VALUE`` changes params for every arm after the arm's own override: hardware settings
(``evaluate.device=cuda``, batch sizes) or, for a quick check, smaller samples.

    python bench/policy_scale.py --arms default all --set evaluate.device=cuda evaluate.batch_size=32
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, machine, portable, table  # noqa: E402

TYPES = ("single", "parallel", "dependent", "non_tool", "clarification")
ALL = {"difficulty": {"max_samples": 0}}  # every training dialog scored, bucketed and trained on
ARMS: dict[str, dict] = {
    "default": {},  # params.yaml as committed: 1,500 scored dialogs, top 8 layers, one epoch
    "all": ALL,
    "all_layers": {**ALL, "policy": {"train_layers": 0}},
    "all_2_epochs": {**ALL, "sft": {"epochs": 2}},
    "n6000": {"difficulty": {"max_samples": 6000}},
}
UNKNOWN_LAYERS_FACTOR = 2.5  # first guess for an unmeasured trained-layer count: all 30 blocks vs the top 8


def parse_sets(items: list[str]) -> dict:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}`` (values read as YAML scalars)."""
    import yaml

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or any(not p for p in key.split(".")):
            raise SystemExit(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. evaluate.device=cuda")
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise SystemExit(f"--set {item!r}: {p} is set to a value and a section at once")
        node[leaf] = yaml.safe_load(value)
    return out


class Predictor:
    """Seconds an arm will take, from the arms measured before it in the same run."""

    def __init__(self) -> None:
        self.s_per_token: dict[int, float] = {}  # trained-layer count -> train seconds per token
        self.tokens_per_dialog: float | None = None
        self.eval_s: float | None = None
        self.score_s_per_dialog: float | None = None

    def observe(self, row: dict) -> None:
        if row.get("train_tokens"):
            self.s_per_token[row["train_layers"]] = row["train_s"] / row["train_tokens"]
            self.tokens_per_dialog = row["train_tokens"] / (row["dialogs"] * row["epochs"])
        if row.get("eval_s"):
            self.eval_s = row["eval_s"]
        if row.get("score_s") and row.get("scored"):
            self.score_s_per_dialog = row["score_s"] / row["scored"]

    def seconds(self, dialogs: int, epochs: int, layers: int, needs_scoring: bool) -> float | None:
        if self.tokens_per_dialog is None or not self.s_per_token:
            return None
        rate = self.s_per_token.get(layers)
        if rate is None:
            rate = min(self.s_per_token.values()) * UNKNOWN_LAYERS_FACTOR
        s = dialogs * epochs * self.tokens_per_dialog * rate + (self.eval_s or 0.0)
        if needs_scoring and self.score_s_per_dialog is not None:
            s += dialogs * self.score_s_per_dialog
        return s


def arm_params(name: str, sets: dict, base: str | None):
    from toolkiln.config import Params, deep_merge, read_yaml_mapping

    raw = deep_merge(deep_merge(read_yaml_mapping(ROOT / "params.yaml"), ARMS[name]), sets)
    if base:
        raw = deep_merge(raw, {"policy": {"base_model": base}})
    return Params.model_validate(raw)


def arm_row(name: str, params, warm: dict, rep, score: dict, train_s: float, eval_s: float) -> dict:
    syn, bfcl = rep.metrics["synthetic"], rep.metrics["bfcl"]
    errors = rep.dialogs["error_type"].drop_nulls().value_counts().sort("count", descending=True)
    return {
        "arm": name,
        "override": ARMS[name],
        "dialogs": warm["dialogs"],
        "epochs": params.sft.epochs,
        "train_layers": warm.get("trainable_layers", params.policy.train_layers),
        "train_steps": warm["train_steps"],
        "train_tokens": warm["train_tokens"],
        "train_s": round(train_s, 1),
        "tokens_per_s": round(warm["train_tokens"] / max(train_s, 1e-9), 1),
        "val_loss": warm.get("final_eval_loss"),
        "max_samples": params.difficulty.max_samples,
        "scored": score.get("n_scored"),
        "score_s": round(score.get("seconds", 0.0), 1),
        "eval_s": round(eval_s, 1),
        "overall": syn["accuracy"],
        **{t: syn["by_group"].get(t, {}).get("accuracy") for t in TYPES},
        "unseen_targets": syn.get("by_split_target", {}).get("unseen", {}).get("accuracy"),
        "bfcl_mean": bfcl["category_mean_accuracy"],
        **{f"bfcl_{c}": v["accuracy"] for c, v in bfcl["by_group"].items()},
        "errors": dict(zip(errors["error_type"].to_list(), errors["count"].to_list())),
    }


def difficulty_key(params) -> str:
    """What the difficulty table depends on: the scoring model, the rendering and the difficulty params."""
    return json.dumps(
        [params.policy.base_model, params.policy.render.model_dump(), params.difficulty.model_dump()],
        sort_keys=True,
        default=str,
    )


def run_arm(name: str, params, train, test, cache: dict, workdir: Path):
    import polars as pl

    from toolkiln.evaluate.harness import run_evaluation
    from toolkiln.policy.difficulty import score_difficulty
    from toolkiln.policy.model import save_policy
    from toolkiln.policy.warmup import warmup_sft

    key = difficulty_key(params)
    score: dict = {}
    if key not in cache:
        res = score_difficulty(train, params.policy, params.difficulty, seed=params.seed)
        cache[key] = res.table
        score = res.metrics
    t0 = time.perf_counter()
    warm = warmup_sft(train, cache[key], params.policy, params.sft, seed=params.seed)
    out = workdir / name
    save_policy(warm.model, warm.tokenizer, out, params.policy)
    train_s = time.perf_counter() - t0
    del warm.model
    t1 = time.perf_counter()
    rep = run_evaluation(out, test, params.evaluate, seed=params.seed)
    eval_s = time.perf_counter() - t1
    outputs = [
        df.select([c for c in ("id", "group", "output", "correct", "error_type") if c in df.columns]).with_columns(
            pl.lit(name).alias("arm"), pl.lit(part).alias("part")
        )
        for part, df in (("synthetic", rep.dialogs), ("bfcl", rep.bfcl))
        if df is not None
    ]
    return arm_row(name, params, warm.metrics, rep, score, train_s, eval_s), outputs


def main(argv: list[str] | None = None) -> None:
    import polars as pl

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=sorted(ARMS))
    ap.add_argument("--set", nargs="*", default=[], dest="sets", metavar="KEY=VALUE")
    ap.add_argument("--base", default=None, help="base model folder (default: params.yaml's policy.base_model)")
    ap.add_argument(
        "--gguf", default=None, help="convert this GGUF file first (as prepare_base does) and use it as --base"
    )
    ap.add_argument("--train", default=str(ROOT / "data" / "train.parquet"))
    ap.add_argument("--test", default=str(ROOT / "data" / "test.parquet"))
    ap.add_argument("--budget-s", type=float, default=0.0, help="0 = no limit")
    ap.add_argument("--results", default=str(RESULTS / "policy_scale.json"))
    args = ap.parse_args(argv)
    sets = parse_sets(args.sets)
    for name in args.arms:  # fail on a bad key or value before any training starts
        arm_params(name, sets, args.base)
    t_start = time.perf_counter()
    train, test = pl.read_parquet(args.train), pl.read_parquet(args.test)
    info = {"machine": machine(), "sets": sets, "train_dialogs": train.height, "arms": args.arms}
    try:
        import torch

        if torch.cuda.is_available():
            info["accelerator"] = torch.cuda.get_device_name(0)
        info["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    rows: list[dict] = []
    outputs: list = []
    cache: dict = {}
    pred = Predictor()
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="policy_scale-") as tmp:
        if args.gguf:  # a machine without the installed package: the prepare_base conversion, in the run
            from toolkiln.policy.base import convert_gguf
            from toolkiln.policy.model import base_chat_template

            policy = arm_params("default", sets, None).policy
            args.base = str(Path(tmp) / "base")
            info["base"] = convert_gguf(args.gguf, args.base, chat_template=lambda tok: base_chat_template(policy, tok))
            print(f"converted {args.gguf}: {info['base'].get('n_params')} parameters", flush=True)
        for name in args.arms:
            params = arm_params(name, sets, args.base)
            n = params.difficulty.max_samples or train.height
            left = args.budget_s - (time.perf_counter() - t_start) if args.budget_s else None
            need = pred.seconds(
                n, params.sft.epochs, params.policy.train_layers or 30, difficulty_key(params) not in cache
            )
            if left is not None and need is not None and need > left:
                rows.append(
                    {"arm": name, "override": ARMS[name], "skipped": f"predicted {need:.0f} s > {left:.0f} s left"}
                )
                print(f"== {name}: skipped (predicted {need:.0f} s, {left:.0f} s left)", flush=True)
                continue
            print(f"== {name}: {ARMS[name]} (predicted {need or 0:.0f} s)", flush=True)
            row, outs = run_arm(name, params, train, test, cache, Path(tmp))
            pred.observe(row)
            rows.append(row)
            outputs.extend(outs)
            results.write_text(json.dumps(portable({**info, "table": rows}), indent=2, default=str) + "\n")
            pl.concat(outputs, how="diagonal_relaxed").write_parquet(results.with_suffix(".outputs.parquet"))
            done = [r for r in rows if "skipped" not in r]
            print(
                table(
                    done,
                    [
                        "arm",
                        "dialogs",
                        "train_steps",
                        "train_s",
                        "val_loss",
                        "overall",
                        *TYPES,
                        "unseen_targets",
                        "bfcl_mean",
                        "eval_s",
                    ],
                ),
                flush=True,
            )
    results.write_text(
        json.dumps(portable({**info, "table": rows, "seconds": time.perf_counter() - t_start}), indent=2, default=str)
        + "\n"
    )


if __name__ == "__main__":
    main()
