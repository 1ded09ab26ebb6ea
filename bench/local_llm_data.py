"""The package-shipped base model as every LLM-prompted agent: synthesize_apis -> generate_dialogs -> verify
(ToolACE §3.1-3.3 with a local model instead of the simulator).

Runs the three real stage scripts, through the real prompts, on ``params.yaml`` merged with
``profiles/local-llm.yaml`` (``llm.backend: transformers`` on ``checkpoints/base``, a small scale), into a
scratch folder: nothing under ``data/`` or ``reports/`` is touched, and MLflow tracking is off. The
profile cuts the API context tree to three domains (``synth.domains``) so that a few dozen APIs share
domains, as the dialog stage's same-domain distractors need. Every agent asks in JSON mode (the local
backend starts the reply with ``{`` and stops at its closing brace).

Reports, per layer, what passed and the top rejection reasons: API synthesis (valid APIs of the candidates
asked for), dialog generation (kept dialogs of the attempts), the rule layer and the model layer (pass
rates next to ToolACE's 67.9 / 91.1 / 61.8 and the simulator's, read from the committed
``reports/verify/metrics.json``), the requests each stage made and the yield per request, seconds per stage.
When API synthesis yields fewer than ``--min-apis`` valid APIs, the dialog and verify stages run on the
simulator's pool of the same domains instead (recorded as ``dialog_pool``): each layer is then measured on
its own, the user / assistant / tool agents and the judge still all being the local model. Likewise, with
fewer than ``--min-dialogs`` LLM-written dialogs, verify checks a seeded sample of the simulator's dialogs
of those domains (``--verify-sample``), the local model as its judge.
Answers are cached under the scratch folder, so a rerun resumes (``--fresh`` starts over).

    python bench/local_llm_data.py [--threads 2] [--fresh]

Writes ``bench/results/local_llm_data.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import record, table  # noqa: E402

TOOLACE = {"rules": 0.679, "model": 0.911, "final": 0.618}  # ToolACE Table 1: pass rates of its LLM-made data


def stage_commands(d: Path, params: Path, pool: Path, embeddings: Path, dialogs: Path) -> dict[str, list[str]]:
    """The three stages' commands (dvc.yaml's, with every output under the scratch folder ``d``); the dialog and
    verify stages read the API pool ``pool`` (and its MiniLM ``embeddings``), verify checks ``dialogs``."""
    py = sys.executable
    return {
        "synthesize_apis": [
            py,
            "stages/synthesize_apis.py",
            "--params",
            str(params),
            "--tree",
            "data/api_context_tree",
            "--suite",
            "expectations/api_pool.json",
            "--pool",
            str(d / "api_pool.parquet"),
            "--rejects",
            str(d / "api_rejects.parquet"),
            "--embeddings",
            str(d / "api_embeddings.parquet"),
            "--trace",
            str(d / "api_llm_trace.jsonl"),
            "--metrics",
            str(d / "synthesize_apis.json"),
            "--plot",
            str(d / "diversity.png"),
            "--data-docs",
            str(d / "api_docs"),
        ],
        "generate_dialogs": [
            py,
            "stages/generate_dialogs.py",
            "--params",
            str(params),
            "--pool",
            str(pool),
            "--dialogs",
            str(d / "dialogs.parquet"),
            "--rejects",
            str(d / "dialog_rejects.parquet"),
            "--trace",
            str(d / "dialogs_llm_trace.jsonl"),
            "--metrics",
            str(d / "generate_dialogs.json"),
            "--types-plot",
            str(d / "types.csv"),
            "--plot",
            str(d / "dialogs.png"),
        ],
        "verify": [
            py,
            "stages/verify.py",
            "--params",
            str(params),
            "--dialogs",
            str(dialogs),
            "--apis",
            str(pool),
            "--api-embeddings",
            str(embeddings),
            "--static-encoder",
            "checkpoints/static_encoder",
            "--expectations",
            "expectations",
            "--verified",
            str(d / "verified.parquet"),
            "--rejects",
            str(d / "verify_rejects.parquet"),
            "--trace",
            str(d / "verify_llm_trace.jsonl"),
            "--metrics",
            str(d / "verify.json"),
            "--injection",
            str(d / "injection.json"),
            "--gx-results",
            str(d / "gx_results.json"),
            "--checks-plot",
            str(d / "checks.csv"),
            "--plot",
            str(d / "pass_rates.png"),
            "--recall-plot",
            str(d / "recall.png"),
            "--data-docs",
            str(d / "verify_docs"),
        ],
    }


def _fallback(
    d: Path, params, produced: str, simulator: str, minimum: int | None, unit: str, sample: int = 0, seed: int = 0
) -> dict:
    """The scratch folder's ``produced`` table when it has ``minimum`` rows, else the simulator's ``data/<simulator>``
    cut to the profile's domains (a seeded ``sample`` of it when given), written to ``simulator_<simulator>`` in
    ``d``; ``minimum=None`` takes the simulator's table whatever was produced. Returns which, and the row counts."""
    import polars as pl

    llm = pl.read_parquet(d / produced) if (d / produced).exists() else None
    if minimum is not None and llm is not None and llm.height >= minimum:
        return {"source": "llm", unit: llm.height}
    sim = pl.read_parquet(ROOT / "data" / simulator)
    if params.synth.domains:
        sim = sim.filter(pl.col("domain").is_in(params.synth.domains))
    if sample:
        sim = sim.sample(n=min(sample, sim.height), seed=seed, shuffle=True)
    sim.write_parquet(d / f"simulator_{simulator.removeprefix('api_')}")
    return {"source": "simulator", unit: sim.height, f"llm_{unit}": 0 if llm is None else llm.height}


def choose_dialog_pool(d: Path, params, min_apis: int | None) -> dict:
    """The pool the dialog agents draw on: the LLM-written one when it has ``min_apis`` valid APIs, else the
    simulator's pool (``data/api_pool.parquet``) cut to the profile's domains, so that the user, assistant, tool
    and judge agents are still measured when API synthesis yields too little to build dialogs from."""
    return _fallback(d, params, "api_pool.parquet", "api_pool.parquet", min_apis, "apis")


def choose_verify_input(d: Path, params, min_dialogs: int, sample: int, seed: int) -> dict:
    """What verify checks: the LLM-written dialogs when there are ``min_dialogs``, else a seeded sample of the
    simulator's dialogs (``data/dialogs.parquet``) of the profile's domains: the judge is the local model either
    way, so its model layer is measured even when the dialog agents keep nothing."""
    return _fallback(d, params, "dialogs.parquet", "dialogs.parquet", min_dialogs, "dialogs", sample, seed)


def trace_counts(path: Path) -> dict:
    """Requests in a stage's LLM trace: generated, answered from the cache, failed; completion tokens."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    tokens = sum(
        (r.get("response") or {}).get("usage", {}).get("completion_tokens", 0) for r in rows if not r.get("cached")
    )
    return {
        "requests": len(rows),
        "cached": sum(bool(r.get("cached")) for r in rows),
        "failed": sum("error" in r for r in rows),
        "completion_tokens": tokens,
    }


def top_reasons(path: Path, k: int = 5) -> list[tuple[str, int]]:
    """The ``k`` most frequent rejection reasons of a rejects table (a reason's variable tail cut at ':' / '(')."""
    import polars as pl

    if not path.exists():
        return []
    df = pl.read_parquet(path)
    col = "reasons" if "reasons" in df.columns else "reason" if "reason" in df.columns else None
    if col is None or df.is_empty():
        return []
    counts: Counter = Counter()
    for v in df[col].to_list():
        for reason in v if isinstance(v, list) else [v]:
            counts[_head(str(reason))] += 1
    return counts.most_common(k)


def _head(reason: str) -> str:
    """A reason without its per-row detail: 'unparsable: invalid JSON at char 12' -> 'unparsable: invalid JSON'."""
    if reason.startswith("duplicate_name"):
        return "duplicate_name (an earlier API's name, often the example's)"
    reason = re.sub(r"value \S+=.* is missing from", "a value is missing from", reason)
    for sep in (" (", " at char", ": got", " starting"):
        if sep in reason:
            reason = reason[: reason.index(sep)]
    return reason[:90]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--profile", default="profiles/local-llm.yaml")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scratch", default="checkpoints/local_llm_data", help="outputs, traces and the LLM cache")
    ap.add_argument("--fresh", action="store_true", help="drop the scratch folder (and its LLM cache) first")
    ap.add_argument(
        "--min-apis",
        type=int,
        default=24,
        help="below this many valid LLM-written APIs the dialog agents draw on the simulator's pool of the same domains",
    )
    ap.add_argument(
        "--min-dialogs",
        type=int,
        default=8,
        help="below this many LLM-written dialogs verify (the rule layer and the local model as judge) checks a "
        "seeded sample of the simulator's dialogs of the same domains instead",
    )
    ap.add_argument("--verify-sample", type=int, default=40, help="simulator dialogs verify checks in that case")
    ap.add_argument("--out", default="local_llm_data")
    args = ap.parse_args(argv)

    from toolkiln.config import Params, deep_merge, read_yaml_mapping

    d = (ROOT / args.scratch).resolve()
    if args.fresh and d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True, exist_ok=True)
    merged = deep_merge(read_yaml_mapping(ROOT / args.params), read_yaml_mapping(ROOT / args.profile))
    merged = deep_merge(
        merged, {"seed": args.seed, "tracking": {"enabled": False}, "runtime": {"llm": {"cache_dir": str(d / "cache")}}}
    )
    params = Params.model_validate(merged)  # fails fast, naming the key, before any model is loaded
    import yaml

    (d / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    print(f"llm: {params.llm.backend} {params.llm.model}; domains: {params.synth.domains or 'all'}", flush=True)

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT / "src")}
    stages: dict[str, dict] = {}
    dialog_pool = {"source": "llm", "apis": None}
    verify_input = {"source": "llm", "dialogs": None}
    for name in ("synthesize_apis", "generate_dialogs", "verify"):
        if name == "generate_dialogs":
            dialog_pool = choose_dialog_pool(d, params, args.min_apis)
            print(f"dialogs draw on the {dialog_pool['source']} pool ({dialog_pool['apis']} APIs)", flush=True)
        if name == "verify":
            verify_input = choose_verify_input(d, params, args.min_dialogs, args.verify_sample, args.seed)
            print(f"verify checks {verify_input['dialogs']} {verify_input['source']} dialogs", flush=True)
            if verify_input["source"] == "simulator" and dialog_pool["source"] == "llm":
                dialog_pool = choose_dialog_pool(d, params, None)  # the simulator's dialogs call its APIs
        sim = dialog_pool["source"] == "simulator"
        pool = d / ("simulator_pool.parquet" if sim else "api_pool.parquet")
        emb = ROOT / "data" / "api_embeddings.parquet" if sim else d / "api_embeddings.parquet"
        dialogs = d / ("simulator_dialogs.parquet" if verify_input["source"] == "simulator" else "dialogs.parquet")
        cmd = stage_commands(d, d / "params.yaml", pool, emb, dialogs)[name]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        (d / f"{name}.log").write_text(proc.stdout + proc.stderr)
        tail = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ERROR" in ln or "require" in ln][-2:]
        stages[name] = {"exit": proc.returncode, "seconds": round(seconds, 1), "errors": tail}
        print(f"{name}: exit {proc.returncode} in {seconds:.0f} s", flush=True)
        if proc.returncode != 0 and not (d / f"{name}.json").exists():
            print((proc.stdout + proc.stderr)[-3000:])
            break

    def metrics(name: str) -> dict:
        p = d / f"{name}.json"
        return json.loads(p.read_text()) if p.exists() else {}

    syn, dia, ver = metrics("synthesize_apis"), metrics("generate_dialogs"), metrics("verify")
    traces = {
        n: trace_counts(d / f)
        for n, f in (
            ("synthesize_apis", "api_llm_trace.jsonl"),
            ("generate_dialogs", "dialogs_llm_trace.jsonl"),
            ("verify", "verify_llm_trace.jsonl"),
        )
    }
    sim = json.loads((ROOT / "reports" / "verify" / "metrics.json").read_text())["pass_rate"]

    def layer(name: str, n_in, passed, stage: str, rejects: str) -> dict:
        return {
            "layer": name,
            "in": n_in,
            "passed": passed,
            "rate": passed / n_in if n_in else None,
            "requests": traces[stage]["requests"],
            "top_reasons": top_reasons(d / rejects),
        }

    rows = []
    if syn:
        rows.append(
            layer(
                "API synthesis", syn.get("candidates"), syn.get("n_apis", 0), "synthesize_apis", "api_rejects.parquet"
            )
        )
    if dia:
        rows.append(
            layer(
                "dialog generation",
                dia.get("n_attempts"),
                dia.get("n_dialogs", 0),
                "generate_dialogs",
                "dialog_rejects.parquet",
            )
        )
    if ver:
        pr = ver.get("pass_rate", {})
        for layer in ("rules", "model", "final"):
            rows.append(
                {
                    "layer": f"verify: {layer}",
                    "in": ver.get("n_dialogs"),
                    "rate": pr.get(layer),
                    "toolace": TOOLACE[layer],
                    "simulator": sim.get(layer),
                }
            )
        rows[-1].update(
            passed=ver.get("n_verified"),
            requests=traces["verify"]["requests"],
            top_reasons=top_reasons(d / "verify_rejects.parquet"),
        )
    requests = sum(t["requests"] - t["cached"] for t in traces.values())
    result = {
        "llm": params.llm.model_dump(mode="json"),
        "profile": args.profile,
        "domains": params.synth.domains,
        "seed": args.seed,
        "threads": args.threads,
        "stages": stages,
        "dialog_pool": dialog_pool,
        "verify_input": verify_input,
        "traces": traces,
        "layers": rows,
        "yield": {
            "apis_per_request": (
                syn.get("n_apis", 0) / traces["synthesize_apis"]["requests"]
                if traces["synthesize_apis"]["requests"]
                else None
            ),
            "dialogs_per_request": (
                dia.get("n_dialogs", 0) / traces["generate_dialogs"]["requests"]
                if traces["generate_dialogs"]["requests"]
                else None
            ),
            "verified_dialogs_per_request": ver.get("n_verified", 0) / requests if requests else None,
            "generated_requests": requests,
            "seconds": round(sum(s["seconds"] for s in stages.values()), 1),
        },
    }
    record(args.out, result)
    print(table(rows, ["layer", "in", "passed", "rate", "toolace", "simulator", "requests"]))
    for r in rows:
        if r.get("top_reasons"):
            print(f"{r['layer']}: " + "; ".join(f"{reason} x {n}" for reason, n in r["top_reasons"]))
    print(json.dumps(result["yield"], indent=1))
    return result


if __name__ == "__main__":
    main()
