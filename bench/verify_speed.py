"""Benchmark of the verification rule layer (budget: 100,000 dialogs in <= 30 s on 2 cores).

Measured in the same run:
* ours: the full rule layer (:func:`toolkiln.verify.rules.rule_layer`) on ``--n`` dialogs, split into its
  phases: the structural Python pass (parsing, the computed checks, building the flattened tables), the
  polars text features, GX validating the four rule suites over those tables (``result_format: COMPLETE``),
  and mapping GX's unexpected rows back to dialogs; the GX share of the total, and the native-vs-computed
  split (how many expectations GX states itself, how many assert a column computed in Python, and the
  rows each kind rejected);
* ours, executability only: the same parse + cached compiled argument checkers, no other rule;
* baseline: a naive per-row loop that parses each row and calls ``jsonschema.validate`` on every call's
  arguments (schema re-checked and a validator built per call, as a straightforward script would);
* a cached ``jsonschema`` validator per API (the fair middle ground).
The baselines only check arguments, so "ours (full)" vs them understates the per-check speed-up. They run
on a ``--baseline-n`` subsample (they are slow); ratios compare dialogs per second. Verdicts of our
executability checks and of jsonschema are compared on that subsample (they must agree on this data).

    python -m bench.verify_speed [--n 100000] [--baseline-n 5000] [--dialogs data/dialogs.parquet]
                                 [--pool data/api_pool.parquet] [--simulate]

Without the DVC outputs the built-in example dialogs (8 APIs) are used: every cache hits, so that is a
best case; ``--simulate`` (simulator output over a 27k-API pool, every dialog distinct) is the realistic
one and the recorded result. Verdicts differ from jsonschema where our semantics differ on purpose:
``integer`` rejects ``2.0``. ``date-time`` follows RFC 3339 like jsonschema (offset required).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "2")  # the budget: 2 cores

from bench.common import record, table  # noqa: E402


def _simulate(n: int, n_apis: int) -> tuple:
    """``n`` distinct dialogs from the project's own simulators over a fresh ``n_apis`` pool (minutes)."""
    from toolkiln.dialogs.config import DialogsConfig
    from toolkiln.dialogs.generate import generate_dialogs
    from toolkiln.dialogs.pool import APIPool
    from toolkiln.synth.config import SynthConfig
    from toolkiln.synth.pool import synthesize_pool
    from toolkiln.synth.synthesizer import SimulatorSynthesizer
    from toolkiln.synth.tree import load_tree

    tree = load_tree(Path(__file__).resolve().parents[1] / "data" / "api_context_tree")
    pool = synthesize_pool(tree, SynthConfig(n_apis=n_apis, dedup={"embed_sample": 0}), SimulatorSynthesizer(),
                           seed=0, progress=False).pool
    dialogs = generate_dialogs(APIPool.from_frame(pool), DialogsConfig(n_dialogs=n), seed=1, progress=False).dialogs
    return dialogs, pool, f"simulator: {n:,} dialogs over {pool.height:,} APIs"


def _dialogs(n: int, path: str | None, pool_path: str | None):
    import polars as pl

    from toolkiln.testing.examples import example_dialogs

    pool = pl.read_parquet(pool_path) if pool_path and Path(pool_path).exists() else None
    if path and Path(path).exists():
        base = pl.read_parquet(path)
        reps = -(-n // base.height)
        return pl.concat([base] * reps).head(n), pool, f"{path} (x{reps})"
    return example_dialogs(n, seed=0, unique=False), None, "toolkiln.testing.examples (5 types, 8 APIs: best case)"


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


def _ours_exec(df, pool) -> tuple[float, list[bool]]:
    import orjson

    from toolkiln.argcheck import CheckerCache
    from toolkiln.verify.rules import RuleCaches, parse_tools

    caches = RuleCaches(checkers=CheckerCache())  # formats judged in Python here, as jsonschema does
    if pool is not None:  # one-off, timed in the full rule layer; here only the per-dialog work counts
        caches.trust_pool(pool)
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
    ap.add_argument("--dialogs", default="data/dialogs.parquet",
                    help="dialogs replicated to --n (when the file exists; else the built-in examples)")
    ap.add_argument("--pool", default="data/api_pool.parquet",
                    help="API pool whose definition clarity is trusted, as the stage's --apis (when it exists)")
    ap.add_argument("--simulate", action="store_true", help="generate --n distinct dialogs with the project's "
                    "simulators over a 27k-API pool instead (a few minutes)")
    args = ap.parse_args(argv)

    import polars as pl

    from toolkiln.verify.config import VerifyConfig
    from toolkiln.verify.rules import RuleCaches, load_rule_suites, rule_layer

    df, pool, source = _simulate(args.n, 27000) if args.simulate else _dialogs(args.n, args.dialogs, args.pool)
    cfg = VerifyConfig()
    t_imp = time.perf_counter()
    import great_expectations  # noqa: F401 - import cost reported apart: paid once per process
    gx_import_s = time.perf_counter() - t_imp
    caches = RuleCaches()
    t0, c0 = time.perf_counter(), time.process_time()
    if pool is not None:
        caches.trust_pool(pool)
    layer = rule_layer(df, cfg.rules, caches, mostly=cfg.gx.mostly_rules)
    total_s, rules_cpu = time.perf_counter() - t0, time.process_time() - c0
    phases = layer.timings
    gx_s = phases["gx"]
    checked = layer.checked
    suites = load_rule_suites()
    native = computed = 0
    native_rows = computed_rows = 0
    for suite in layer.gx.values():
        for e in suite["expectations"]:
            if e["meta"].get("computed"):
                computed += 1
                computed_rows += e["unexpected_count"]
            else:
                native += 1
                native_rows += e["unexpected_count"]
    assert native + computed == sum(len(s["expectations"]) for s in suites.values())

    # Ours over all n (compiling each API once is part of the price, amortised as in the stage);
    # the jsonschema loops over the first baseline_n (they are slow); rates compare.
    sub = df.head(args.baseline_n)
    exec_s, exec_v = _ours_exec(df, pool)
    naive_s, naive_v = _naive(sub, cached=False)
    cached_s, cached_v = _naive(sub, cached=True)
    agree = sum(a == b for a, b in zip(exec_v, naive_v)) / len(sub)

    n, m = df.height, sub.height
    rows = [
        {"what": "ours: rule layer (suites over flattened tables)", "dialogs": n, "seconds": total_s,
         "dialogs_per_s": n / total_s},
        {"what": "  - structural pass (Python: parse, computed checks, tables)", "dialogs": n,
         "seconds": phases["structural"], "dialogs_per_s": None},
        {"what": "  - text features (polars)", "dialogs": n, "seconds": phases["text"], "dialogs_per_s": None},
        {"what": f"  - GX: {native} native + {computed} computed-column expectations", "dialogs": n, "seconds": gx_s,
         "dialogs_per_s": None},
        {"what": "  - unexpected rows -> reasons, columns", "dialogs": n, "seconds": phases["assemble"],
         "dialogs_per_s": None},
        {"what": "ours: executability only", "dialogs": n, "seconds": exec_s, "dialogs_per_s": n / exec_s},
        {"what": "baseline: naive jsonschema.validate per call", "dialogs": m, "seconds": naive_s, "dialogs_per_s": m / naive_s},
        {"what": "baseline: cached jsonschema validator per API", "dialogs": m, "seconds": cached_s, "dialogs_per_s": m / cached_s},
    ]
    naive_rate, full_rate = m / naive_s, n / total_s
    summary = {
        "n": n, "source": source, "pool_trusted": pool is not None, "polars_threads": pl.thread_pool_size(),
        "loadavg_1m_after": os.getloadavg()[0], "rule_layer_cpu_s": rules_cpu, "phases_s": phases,
        "gx_s": gx_s, "gx_import_s": gx_import_s, "total_s": total_s,
        "tables": {k: t.height for k, t in layer.tables.items()},
        "expectations": {"native": native, "computed": computed},
        "unexpected_rows": {"native": native_rows, "computed": computed_rows},
        "gx_share": gx_s / total_s, "budget_s": 30.0, "within_budget": total_s <= 30.0,
        "speedup_full_vs_naive": full_rate / naive_rate,
        "speedup_exec_vs_naive": (n / exec_s) / naive_rate,
        "speedup_exec_vs_cached_jsonschema": (n / exec_s) / (m / cached_s),
        "executability_agreement_with_jsonschema": agree,
        "rule_pass_rate": float(checked["ok_rules"].mean()),
        "gx_success": all(r["success"] for r in layer.gx.values()),
    }
    print(f"source: {source}; pool trusted: {pool is not None}; polars threads: {summary['polars_threads']}; "
          f"load average {os.getloadavg()[0]:.1f} (a shared machine inflates wall time; CPU time {rules_cpu:.1f} s)")
    print(table(rows, ["what", "dialogs", "seconds", "dialogs_per_s"]))
    print(f"\nrule layer on {n:,} dialogs: {total_s:.1f} s (budget 30 s); GX share {summary['gx_share']:.1%} "
          f"(+{gx_import_s:.1f} s one-off GX import); expectations native {native} / computed {computed}, "
          f"rows they flagged {native_rows} / {computed_rows}; tables {summary['tables']}")
    print(f"speed-up vs naive jsonschema loop: full rule layer {summary['speedup_full_vs_naive']:.0f}x, "
          f"executability alone {summary['speedup_exec_vs_naive']:.0f}x "
          f"({summary['speedup_exec_vs_cached_jsonschema']:.1f}x vs a cached jsonschema validator); "
          f"verdict agreement {agree:.1%}")
    path = record("verify_speed", {"summary": summary, "table": rows})
    print(f"-> {path}")
    return summary


if __name__ == "__main__":
    main()
