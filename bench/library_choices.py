"""Hand-written code vs the library that does the same job, measured on the project's own data.

* MinHash-LSH near-duplicate candidates: ``toolkiln.synth.dedup.minhash_pairs`` (numpy) vs ``datasketch``
  (``MinHash.bulk`` + ``MinHashLSH``), same token sets, same Jaccard threshold: time and recall of the pairs
  whose exact Jaccard is at or above it (brute force on a sample).
* Strings matching a parameter's ``pattern``: ``toolkiln.dialogs.regexgen.sample_pattern`` vs ``exrex.getone``,
  every distinct pattern in the pool: how often the string really matches (``re.search``), its length, time.
* JSON in model replies: ``toolkiln.llm.parse.extract_json`` vs ``json_repair.repair_json``, on API
  definitions from the pool wrapped the way models wrap them (prose, fences) and broken the way models break
  them (truncation, trailing commas, single quotes, Python literals, comments): how often each returns the
  value that was meant, returns a *different* value (a silent corruption), or refuses (a recorded rejection).

Needs the comparison libraries (``pip install datasketch exrex json-repair``; the ``bench`` extra).

    python -m bench.library_choices [--pool data/api_pool.parquet] [--n 6000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import time
from pathlib import Path

from bench.common import record, table

ROOT = Path(__file__).resolve().parents[1]


def _pool(path: str, n: int):
    import polars as pl

    if Path(path).exists():
        df = pl.read_parquet(path)
        return df.sample(min(n, df.height), seed=0), path
    from toolkiln.synth.config import SynthConfig
    from toolkiln.synth.pool import synthesize_pool
    from toolkiln.synth.synthesizer import SimulatorSynthesizer
    from toolkiln.synth.tree import load_tree

    cfg = SynthConfig(n_apis=n, dedup={"method": "minhash", "embed_sample": 0})
    res = synthesize_pool(
        load_tree(ROOT / "data" / "api_context_tree"), cfg, SimulatorSynthesizer(), seed=0, progress=False
    )
    return res.pool, f"simulator pool of {res.pool.height}"


def minhash_rows(df, threshold: float, num_perm: int = 64) -> list[dict]:
    from datasketch import MinHash, MinHashLSH

    from toolkiln.synth.dedup import api_tokens, minhash_pairs

    sets = [
        api_tokens(n, d, list(json.loads(p)["properties"]))
        for n, d, p in zip(df["name"], df["description"], df["parameters"])
    ]
    t0 = time.perf_counter()
    ours = {(i, j) for i, j, _ in minhash_pairs(sets, threshold, num_perm)}
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sigs = MinHash.bulk([[t.encode() for t in s] for s in sets], num_perm=num_perm, seed=1)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    for i, m in enumerate(sigs):
        lsh.insert(i, m)
    theirs = set()
    for i, m in enumerate(sigs):
        for j in lsh.query(m):
            if j > i and len(sets[i] & sets[j]) / max(len(sets[i] | sets[j]), 1) >= threshold:
                theirs.add((i, j))
    theirs_s = time.perf_counter() - t0
    # truth on the first 2,000 APIs (all pairs)
    m = min(2000, len(sets))
    truth = {
        (i, j)
        for i, j in itertools.combinations(range(m), 2)
        if len(sets[i] & sets[j]) / max(len(sets[i] | sets[j]), 1) >= threshold
    }

    def recall(found):
        return len({p for p in found if p[1] < m} & truth) / max(len(truth), 1)

    return [
        {
            "task": f"MinHash-LSH pairs, {len(sets)} APIs, Jaccard >= {threshold}",
            "impl": "ours (numpy)",
            "seconds": ours_s,
            "quality": recall(ours),
            "note": f"{len(ours)} pairs; recall vs brute force",
        },
        {
            "task": f"MinHash-LSH pairs, {len(sets)} APIs, Jaccard >= {threshold}",
            "impl": "datasketch",
            "seconds": theirs_s,
            "quality": recall(theirs),
            "note": f"{len(theirs)} pairs; recall vs brute force",
        },
    ]


def regex_rows(df) -> list[dict]:
    import exrex

    from toolkiln.dialogs.regexgen import sample_pattern

    patterns: set[str] = set()

    def walk(s):
        if isinstance(s, dict):
            if isinstance(s.get("pattern"), str):
                patterns.add(s["pattern"])
            for v in s.values():
                walk(v)
        elif isinstance(s, list):
            for v in s:
                walk(v)

    for p in df["parameters"]:
        walk(json.loads(p))
    pats = sorted(patterns)
    out = []
    for impl, fn in (
        ("ours (re parse tree)", lambda p, r: sample_pattern(p, r)),
        ("exrex.getone", lambda p, r: exrex.getone(p, limit=8)),
    ):
        rng = random.Random(0)
        ok, lengths = 0, []
        t0 = time.perf_counter()
        for p in pats:
            for _ in range(5):
                try:
                    s = fn(p, rng)
                except Exception:  # noqa: BLE001 - a library failure counts as "no string"
                    s = None
                if s is not None and re.search(p, s):
                    ok += 1
                    lengths.append(len(s))
        secs = time.perf_counter() - t0
        out.append(
            {
                "task": f"sample {len(pats)} pool patterns x5",
                "impl": impl,
                "seconds": secs,
                "quality": ok / (5 * max(len(pats), 1)),
                "note": f"share matching; mean length {sum(lengths) / max(len(lengths), 1):.1f}",
            }
        )
    return out


def _variants(api: dict, rng: random.Random) -> dict[str, str]:
    s = json.dumps(api, ensure_ascii=False)
    ind = json.dumps(api, ensure_ascii=False, indent=2)
    return {
        "prose + fenced": f"Here is the API definition:\n```json\n{ind}\n```\nLet me know if you need changes.",
        "prose around": f"Sure! {s} Hope this helps.",
        "truncated": s[: int(len(s) * rng.uniform(0.5, 0.95))],
        "trailing comma": s[:-1] + ",}",
        "single quotes": s.replace('"', "'"),
        "python literals": s.replace("true", "True").replace("false", "False").replace("null", "None"),
        "comment line": ind.replace("\n", "\n// the API\n", 1),
    }


def json_rows(df, n: int = 400) -> list[dict]:
    from json_repair import repair_json

    from toolkiln.llm.parse import extract_json

    rng = random.Random(0)
    apis = [
        {
            "name": r["name"],
            "description": r["description"],
            "parameters": json.loads(r["parameters"]),
            "returns": json.loads(r["returns"]),
        }
        for r in df.head(n).iter_rows(named=True)
    ]
    cases = [(kind, api, text) for api in apis for kind, text in _variants(api, rng).items()]
    out = []
    for impl in ("ours (extract_json)", "json_repair"):
        stats: dict[str, list[int]] = {}
        t0 = time.perf_counter()
        for kind, api, text in cases:
            if impl.startswith("ours"):
                got, _ = extract_json(text, expect="object")
            else:
                got = repair_json(text, return_objects=True)
                got = got if isinstance(got, dict) and got else None
            s = stats.setdefault(kind, [0, 0, 0])  # right, wrong value, refused
            s[0 if got == api else 1 if got is not None else 2] += 1
        secs = time.perf_counter() - t0
        for kind, (right, wrong, refused) in stats.items():
            out.append(
                {
                    "task": f"JSON reply: {kind} ({right + wrong + refused})",
                    "impl": impl,
                    "seconds": secs / len(cases) * (right + wrong + refused),
                    "quality": right / (right + wrong + refused),
                    "note": f"right {right}, WRONG value {wrong}, refused {refused}",
                }
            )
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", default=str(ROOT / "data" / "api_pool.parquet"))
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--parts", default="minhash,regex,json", help="comma-separated subset to run")
    args = ap.parse_args(argv)
    df, source = _pool(args.pool, args.n)
    parts = set(args.parts.split(","))
    rows = []
    if "minhash" in parts:
        rows += minhash_rows(df, 0.5) + minhash_rows(df, 0.9)
    if "regex" in parts:
        rows += regex_rows(df)
    if "json" in parts:
        rows += json_rows(df)
    print(f"data: {source}")
    print(table(rows, ["task", "impl", "seconds", "quality", "note"]))
    name = "library_choices" if parts == {"minhash", "regex", "json"} else "library_choices_" + "_".join(sorted(parts))
    path = record(name, {"data": source, "rows": rows})
    print(f"-> {path}")
    return {"rows": rows}


if __name__ == "__main__":
    main()
