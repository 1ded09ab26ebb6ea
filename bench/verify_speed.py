"""Benchmark of the verification rule layer (issue 4: 100,000 dialogs in <= 30 s on 2 cores).

Measured in the same run:
* ours: the full rule layer (:func:`toolkiln.verify.rules.rule_checks`, all 20 checks) on ``--n`` dialogs,
  split into its phases, then GX asserting the check columns (``expectations/dialogs_rules.json``);
* ours, executability only: the same parse + cached compiled argument checkers, no other rule;
* baseline: a naive per-row loop that parses each row and calls ``jsonschema.validate`` on every call's
  arguments (schema re-checked and a validator built per call, as a straightforward script would);
* a cached ``jsonschema`` validator per API (the fair middle ground).
The baselines only check arguments, so "ours (full)" vs them understates the per-check speed-up. They run
on a ``--baseline-n`` subsample (they are slow); ratios compare dialogs per second. Verdicts of our
executability checks and of jsonschema are compared on that subsample (they must agree on this data).

    python -m bench.verify_speed [--n 100000] [--baseline-n 5000] [--dialogs data/dialogs.parquet]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "2")  # the budget: 2 cores

from bench.common import record, table  # noqa: E402


def _dialogs(n: int, path: str | None):
    import polars as pl

    from toolkiln.verify.examples import example_dialogs

    if path and Path(path).exists():
        base = pl.read_parquet(path)
        reps = -(-n // base.height)
        return pl.concat([base] * reps).head(n), f"{path} (x{reps})"
    return example_dialogs(n, seed=0, unique=False), "toolkiln.verify.examples (5 types, 8 APIs)"


def _naive(df, cached: bool) -> tuple[float, list[bool]]:
    import jsonschema

    validators: dict = {}
    verdicts = []
    t0 = time.perf_counter()
    for tools_s, calls_s in zip(df["tools"].to_list(), df["calls"].to_list()):
        tools = {t["name"]: t for t in json.loads(tools_s)}
        ok = True
        for c in json.loads(calls_s):
            api = tools.get(c["name"])
            if api is None:
                ok = False
                continue
            schema = {**api["parameters"], "additionalProperties": False}
            if cached:
                v = validators.get(c["name"])
                if v is None:
                    v = validators[c["name"]] = jsonschema.Draft202012Validator(
                        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
                ok &= v.is_valid(c["arguments"])
            else:
                try:
                    jsonschema.validate(c["arguments"], schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
                except jsonschema.ValidationError:
                    ok = False
        verdicts.append(ok)
    return time.perf_counter() - t0, verdicts


def _ours_exec(df) -> tuple[float, list[bool]]:
    import orjson

    from toolkiln.verify.rules import RuleCaches, parse_tools

    caches = RuleCaches()
    verdicts = []
    t0 = time.perf_counter()
    for tools_s, calls_s in zip(df["tools"].to_list(), df["calls"].to_list()):
        ts = parse_tools(tools_s, caches)
        ok = True
        for c in orjson.loads(calls_s):
            api = ts.by_name.get(c["name"])
            ok &= api is not None and not caches.checkers.get(c["name"], api.get("parameters"))(c["arguments"])
        verdicts.append(ok)
    return time.perf_counter() - t0, verdicts


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--baseline-n", type=int, default=5000)
    ap.add_argument("--dialogs", default=None, help="replicate these dialogs to --n instead of the built-in examples")
    args = ap.parse_args(argv)

    import polars as pl

    from toolkiln.verify.config import VerifyConfig
    from toolkiln.verify.pipeline import resolve_suite
    from toolkiln.verify.rules import RULE_CHECKS, RuleCaches, rule_checks

    df, source = _dialogs(args.n, args.dialogs)
    cfg = VerifyConfig()
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    checked = rule_checks(df, cfg.rules, RuleCaches(), timings=phases)
    rules_s = time.perf_counter() - t0

    t_imp = time.perf_counter()
    import great_expectations  # noqa: F401 - import cost reported apart: paid once per process

    from toolkiln.gxsuite import run_suite
    gx_import_s = time.perf_counter() - t_imp
    suite = resolve_suite(Path(__file__).resolve().parents[1] / "expectations" / "dialogs_rules.json",
                          {"mostly_rules": cfg.gx.mostly_rules})
    with tempfile.TemporaryDirectory() as tmp:
        sp = Path(tmp) / "dialogs_rules.json"
        sp.write_text(json.dumps(suite))
        t0 = time.perf_counter()
        gx_res = run_suite(checked.select(*RULE_CHECKS), sp)
        gx_s = time.perf_counter() - t0
    total_s = rules_s + gx_s

    sub = df.head(args.baseline_n)
    exec_s, exec_v = _ours_exec(sub)
    naive_s, naive_v = _naive(sub, cached=False)
    cached_s, cached_v = _naive(sub, cached=True)
    agree = sum(a == b for a, b in zip(exec_v, naive_v)) / len(sub)

    n, m = df.height, sub.height
    rows = [
        {"what": "ours: rule layer, all 20 checks", "dialogs": n, "seconds": rules_s, "dialogs_per_s": n / rules_s},
        {"what": "  - structural pass (Python, cached)", "dialogs": n, "seconds": phases["structural"], "dialogs_per_s": None},
        {"what": "  - text checks (polars)", "dialogs": n, "seconds": phases["text"], "dialogs_per_s": None},
        {"what": "  - duplicates + columns", "dialogs": n, "seconds": phases["assemble"], "dialogs_per_s": None},
        {"what": "ours: GX suite over the ok_ columns", "dialogs": n, "seconds": gx_s, "dialogs_per_s": n / gx_s},
        {"what": "ours: rule layer + GX", "dialogs": n, "seconds": total_s, "dialogs_per_s": n / total_s},
        {"what": "ours: executability only", "dialogs": m, "seconds": exec_s, "dialogs_per_s": m / exec_s},
        {"what": "baseline: naive jsonschema.validate per call", "dialogs": m, "seconds": naive_s, "dialogs_per_s": m / naive_s},
        {"what": "baseline: cached jsonschema validator per API", "dialogs": m, "seconds": cached_s, "dialogs_per_s": m / cached_s},
    ]
    naive_rate, full_rate = m / naive_s, n / total_s
    summary = {
        "n": n, "source": source, "polars_threads": pl.thread_pool_size(),
        "rule_layer_s": rules_s, "gx_s": gx_s, "gx_import_s": gx_import_s, "total_s": total_s,
        "gx_share": gx_s / total_s, "budget_s": 30.0, "within_budget": total_s <= 30.0,
        "speedup_full_vs_naive": full_rate / naive_rate,
        "speedup_exec_vs_naive": (m / exec_s) / naive_rate,
        "speedup_exec_vs_cached_jsonschema": cached_s / exec_s,
        "executability_agreement_with_jsonschema": agree,
        "rule_pass_rate": float(checked["ok_rules"].mean()), "gx_success": gx_res.success,
    }
    print(f"source: {source}; polars threads: {summary['polars_threads']}")
    print(table(rows, ["what", "dialogs", "seconds", "dialogs_per_s"]))
    print(f"\nrule layer + GX on {n:,} dialogs: {total_s:.1f} s (budget 30 s); GX share {summary['gx_share']:.1%} "
          f"(+{gx_import_s:.1f} s one-off GX import)")
    print(f"speed-up vs naive jsonschema loop: full rule layer {summary['speedup_full_vs_naive']:.0f}x, "
          f"executability alone {summary['speedup_exec_vs_naive']:.0f}x "
          f"({summary['speedup_exec_vs_cached_jsonschema']:.1f}x vs a cached jsonschema validator); "
          f"verdict agreement {agree:.1%}")
    path = record("verify_speed", {"summary": summary, "table": rows})
    print(f"-> {path}")
    return summary


if __name__ == "__main__":
    main()
