"""Checker throughput: our parser + matcher vs bfcl-eval's official decoder + checker, same cases, same run.

Cases are the agreement cases (possible answers and their perturbations as model
outputs) over every single-turn Python AST and relevance category of BFCL v4.
``structured``: judging decoded calls (checker only); ``text``: decoding the text
and judging it (our strict parser vs BFCL's ``default_decode_ast_prompting``);
``text_tolerant``: our tolerant parser (fences, prose, JSON), against the same
official baseline. Each timing is the best of ``--repeats`` passes, the sides taking turns.

    python -m bench.checker_speed [--repeats 3] [--limit N]
"""

from __future__ import annotations

import argparse
import time

from bench.common import record, table


def _best_interleaved(fns: dict, repeats: int) -> dict:
    """Best-of-``repeats`` seconds per side, the sides taking turns so machine load drifts hit them alike."""
    best = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="entries per category (0 = all)")
    args = ap.parse_args(argv)

    from toolkiln.evaluate import bfcl
    from toolkiln.evaluate.agreement import build_cases
    from toolkiln.evaluate.ast_match import match
    from toolkiln.evaluate.harness import judge
    from toolkiln.evaluate.oracle import load_oracle, to_bfcl_calls
    from toolkiln.callparse import parse_calls

    oracle = load_oracle()
    work = []  # (case, entry, decoded-for-official)
    for cat in bfcl.SUPPORTED_CATEGORIES:
        entries = bfcl.load_category(cat, limit=args.limit, seed=0)
        by_id = {e["id"]: e for e in entries}
        work += [(c, by_id[c.entry_id], to_bfcl_calls(c.calls)) for c in build_cases(entries) if c.calls is not None]

    def safe(fn):
        def run():
            for c, e, dec in work:
                try:
                    fn(c, e, dec)
                except Exception:  # noqa: BLE001 - the official checker crashes on a few outputs; time it anyway
                    pass
        return run

    sides = {
        ("structured", "ours"): safe(lambda c, e, d: match(c.calls, e["ground_truth"], e["function"], e["category"])),
        ("structured", "official"): safe(lambda c, e, d: oracle.check(d, e["ground_truth"], e["function"], e["category"])),
        ("text", "ours"): safe(lambda c, e, d: judge(parse_calls(c.text, strict=True), e["ground_truth"],
                                                     e["function"], e["category"])),
        ("text", "official"): safe(lambda c, e, d: oracle.check_text(c.text, e["ground_truth"], e["function"],
                                                                     e["category"])),
        ("text_tolerant", "ours"): safe(lambda c, e, d: judge(parse_calls(c.text), e["ground_truth"], e["function"],
                                                              e["category"])),
    }
    secs = _best_interleaved(sides, args.repeats)
    n = len(work)
    rows = []
    for mode in ("structured", "text", "text_tolerant"):
        official = secs[(mode if mode != "text_tolerant" else "text", "official")]
        ours = secs[(mode, "ours")]
        rows.append({"mode": mode, "cases": n, "ours_entries_per_s": n / ours, "official_entries_per_s": n / official,
                     "speed_ratio_ours_over_official": official / ours})
    print(table(rows, list(rows[0])))
    payload = {"repeats": args.repeats, "limit_per_category": args.limit, "cases": n,
               "seconds": {f"{m}_{s}": v for (m, s), v in secs.items()}, "table": rows}
    path = record("checker_speed", payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
