"""Train/test split by API (docs/architecture.md#dialogs: the test set measures generalisation to unseen tools).

A dialog's *key APIs* are the APIs it calls (``apis``) plus, for a non-tool
dialog, the API its request was about (``provenance.intent_api``, left out of its
candidates). Test APIs are drawn in a seeded random order and added until their
dialogs — every dialog with at least one test key API — reach ``test_fraction``;
then, if a dialog type is missing from test, one of its dialogs' key APIs are
added too. No test API is a key API of a train dialog; with
``strip_test_distractors`` test APIs are also removed from the candidate lists of
train dialogs (a train dialog left with no candidate moves to test), so no test
API appears in train at all.

The promise is about the *target turn*: a dependent dialog is in test because one of
its calls uses a test API, yet its target turn may call only APIs that train dialogs
call too. Each test dialog's provenance therefore records ``split_target``:
``unseen`` (every API the target turn calls is a test API), ``seen`` (none is),
``partly_seen`` or ``no_call`` (a text target: refusal, clarifying question).
Evaluation reports accuracy per group and, by default, samples the unseen and no-call
targets only (``evaluate.targets``), so a number called "unseen APIs" means that.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from toolkiln.schema import DIALOG_SCHEMA, DIALOG_TYPES
from toolkiln.dialogs.config import SplitConfig


@dataclass
class SplitResult:
    train: pl.DataFrame
    test: pl.DataFrame
    test_apis: list[str]
    metrics: dict = field(default_factory=dict)


def key_apis(row: dict) -> set[str]:
    keys = set(row.get("apis") or [])
    try:
        intent = json.loads(row.get("provenance") or "{}").get("intent_api")
    except ValueError:
        intent = None
    if intent:
        keys.add(intent)
    return keys


TARGET_KINDS = ("unseen", "partly_seen", "seen", "no_call")


def target_apis(row: dict) -> set[str]:
    """Names the target turn calls."""
    calls = row.get("calls") or "[]"
    calls = json.loads(calls) if isinstance(calls, str) else calls
    t = int(row.get("target_turn", -1))
    return {str(c.get("name")) for c in calls if int(c.get("turn", -2)) == t}


def target_status(row: dict, test_apis: set[str]) -> str:
    """unseen | partly_seen | seen | no_call: how many of the target turn's APIs are test APIs."""
    names = target_apis(row)
    if not names:
        return "no_call"
    unseen = len(names & test_apis)
    return "unseen" if unseen == len(names) else ("seen" if unseen == 0 else "partly_seen")


def split_by_api(df: pl.DataFrame, cfg: SplitConfig, *, seed: int) -> SplitResult:
    missing = [c for c in DIALOG_SCHEMA if c not in df.columns]
    if missing:
        raise ValueError(f"split: input lacks dialog columns {missing}; expected toolkiln.schema.DIALOG_SCHEMA")
    rows = df.select(list(DIALOG_SCHEMA)).to_dicts()
    n = len(rows)
    keys = [key_apis(r) for r in rows]
    by_api: dict[str, list[int]] = {}
    for i, ks in enumerate(keys):
        for a in ks:
            by_api.setdefault(a, []).append(i)
    order = sorted(by_api)
    rng = random.Random(seed)
    rng.shuffle(order)
    in_test = [False] * n
    test_apis: set[str] = set()
    n_test = 0
    target = round(cfg.test_fraction * n)

    def add(api: str) -> None:
        nonlocal n_test
        if api in test_apis:
            return
        test_apis.add(api)
        for i in by_api.get(api, []):
            if not in_test[i]:
                in_test[i] = True
                n_test += 1

    for a in order:
        if n_test >= target:
            break
        add(a)
    if cfg.all_types_in_test:
        for t in DIALOG_TYPES:
            idx = [i for i, r in enumerate(rows) if r["type"] == t]
            if idx and not any(in_test[i] for i in idx):
                pick = idx[rng.randrange(len(idx))]
                for a in sorted(keys[pick]):
                    add(a)
                if not keys[pick]:  # a dialog with no key API can only be moved itself
                    in_test[pick] = True
                    n_test += 1

    stripped = moved = 0
    if cfg.strip_test_distractors and test_apis:
        for i, r in enumerate(rows):
            if in_test[i]:
                continue
            tools = json.loads(r["tools"])
            kept = [t for t in tools if t.get("name") not in test_apis]
            if len(kept) == len(tools):
                continue
            if not kept:
                in_test[i] = True
                moved += 1
                continue
            stripped += len(tools) - len(kept)
            prov = json.loads(r["provenance"] or "{}")
            prov["split_removed_candidates"] = sorted(t["name"] for t in tools if t.get("name") in test_apis)
            r.update(tools=json.dumps(kept, ensure_ascii=False), n_candidates=len(kept),
                     provenance=json.dumps(prov, ensure_ascii=False))

    train_rows = [r for i, r in enumerate(rows) if not in_test[i]]
    test_rows = [r for i, r in enumerate(rows) if in_test[i]]
    target_kinds = Counter()
    for r in test_rows:
        kind = target_status(r, test_apis)
        target_kinds[kind] += 1
        prov = json.loads(r["provenance"] or "{}")
        prov["split_target"] = kind
        r["provenance"] = json.dumps(prov, ensure_ascii=False)
    leak = sorted({a for i, r in enumerate(rows) if not in_test[i] for a in keys[i] & test_apis})
    if leak:
        raise AssertionError(f"split: test APIs {leak[:5]} are key APIs of train dialogs")
    if cfg.strip_test_distractors:
        seen = {t["name"] for r in train_rows for t in json.loads(r["tools"])} & test_apis
        if seen:
            raise AssertionError(f"split: test APIs {sorted(seen)[:5]} are still offered in train dialogs")
    train = pl.DataFrame(train_rows, schema=DIALOG_SCHEMA) if train_rows else pl.DataFrame(schema=DIALOG_SCHEMA)
    test = pl.DataFrame(test_rows, schema=DIALOG_SCHEMA) if test_rows else pl.DataFrame(schema=DIALOG_SCHEMA)
    train_apis = {a for i in range(n) if not in_test[i] for a in keys[i]}
    metrics = {
        "n_dialogs": n, "n_train": train.height, "n_test": test.height,
        "test_share": round(test.height / n, 4) if n else 0.0, "test_fraction_target": cfg.test_fraction,
        "n_test_apis": len(test_apis), "n_train_apis": len(train_apis), "api_overlap": len(train_apis & test_apis),
        "types_train": dict(Counter(train["type"].to_list())) if train.height else {},
        "types_test": dict(Counter(test["type"].to_list())) if test.height else {},
        "domains_train": int(train["domain"].n_unique()) if train.height else 0,
        "domains_test": int(test["domain"].n_unique()) if test.height else 0,
        "stripped_candidates": stripped, "moved_to_test_no_candidates": moved,
        "test_targets": {k: target_kinds.get(k, 0) for k in TARGET_KINDS},
    }
    return SplitResult(train, test, sorted(test_apis), metrics)
