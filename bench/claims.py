"""The papers' training claims, tested on the miniature: seeds, equal compute, one table per claim.

Four claims, each a set of arms trained from the same base model on the same scored training pool
(``data/difficulty.parquet``: the ``score_difficulty`` sample, re-bucketed easy / medium / hard *within*
each dialog type so every bucket keeps the type mix) with the same number of optimizer steps, and
evaluated on the same seeded sample of the held-out test split (unseen-API or no-call targets) and the
same BFCL sample:

* **verification** (ToolACE §3.3): the pool corrupted like model-written data — 32% of dialogs with an
  error the rule layer catches, a further 9% with one only the model layer catches (ToolACE's measured
  failure rates), drawn from ``toolkiln.verify.inject`` — trained as is (``corrupted``), after the
  ``verify`` layers (``verified``), and uncorrupted (``clean``). Claim: verified > corrupted.
* **curriculum** (iTool §3.1): ``easy_to_hard`` vs ``random`` order over the same examples. Also reports
  the held-out target NLL (nats/token of the gold target turns of the evaluated test dialogs).
* **preference** (iTool §3.2-3.3): the ``warmup``; one round on it — deficient prompts, MCTS step-level
  pairs, SimPO (``round1_simpo``) or DPO (``round1_dpo``) on the same pairs; and ``sft_control``: the
  preference run's optimizer steps spent on SFT of the same deficient prompts with their gold targets;
  ``round1_simpo_openings``: SimPO on pairs from a search whose root also holds the offered tools' call
  openings (``itool.mcts.root_openings`` = :data:`OPENINGS`), so tool choices become siblings;
  ``round1_simpo_openings_strong``: the same pairs with a stronger update (:data:`STRONG`: 10x the learning
  rate, 3 epochs), which asks whether the round's few LoRA steps move the greedy policy at all;
  ``round1_simpo_openings_balanced``: that update with at most half of the pairs preferring a text reply
  and an NLL term on the chosen side (:data:`BALANCED`), which asks whether it then learns calls, not
  abstention; ``round1_simpo_cool`` and ``round1_simpo_cool_strong``: the openings search sampled at
  :data:`COOL` temperature instead of iTool's 1.5 (whose chosen fragments are text the policy itself finds
  unlikely, ``bench/pair_quality.py``), with the default and the strong update; ``round1_simpo_cool_calls``:
  the strong update on those pairs with no text-preferring pair (:data:`CALLS_ONLY`), which asks whether
  the tool-choice pairs alone teach calls once the "answer in text" pairs cannot swamp them.
  Claim: round1_simpo > warmup and > sft_control.
* **diversity** (ToolACE ablations): the ``full`` mix vs the pool without parallel dialogs
  (``no_parallel``; claim: full wins on parallel) and without non-tool dialogs (``no_non_tool``; claim:
  full wins on non-tool).

The easy-to-hard warm-up on the full, clean pool is one run per seed shared by four arms (``clean``,
``easy_to_hard``, ``warmup``, ``full``). A comparison counts as **reproduced** when the claimed arm's
mean beats the other's by more than one seed-std (the larger of the two), **not reproduced** when it does
not beat it at all, **inconclusive** in between or with fewer than two seeds; a claim is reproduced when
all its comparisons are.

Every (arm, seed) result is a JSON file under ``<out>/runs/`` written as soon as it exists, so the bench
resumes where it stopped; each is also an MLflow run in the experiment ``<tracking.experiment>-claims-
<claim>``. Outputs: ``<out>/claims.json``, ``<out>/claims.md`` and a plot per claim.

    python bench/claims.py                                  # every claim, seeds 0-2 (hours on 2 CPU cores)
    python bench/claims.py --claims curriculum --seeds 0 1
    python bench/claims.py --quick                           # every arm once at a tiny scale
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TYPES = ("single", "parallel", "dependent", "non_tool", "clarification")
BUCKETS = ("easy", "medium", "hard")
RULE_SHARE, MODEL_SHARE = 0.32, 0.09  # ToolACE: failed the rule layer; failed the model layer after it

OPENINGS = 3  # tool-choice openings at the root of the round1_simpo_openings arms' search
COOL = 0.7  # the round1_simpo_cool arms' sampling temperature (expansions and rollouts), with OPENINGS
# pair searches: a name (the cache files' suffix) -> overrides of itool.mcts; "" is the params' own search
SEARCHES: dict[str, dict[str, Any]] = {
    "": {},
    "_openings": {"root_openings": OPENINGS},
    "_cool": {"root_openings": OPENINGS, "temperature": COOL},
}
STRONG = {"lr_factor": 10.0, "epochs": 3}  # a stronger preference update: 10x the learning rate, 3 epochs
BALANCED = {"max_text_share": 0.5, "sft_weight": 1.0}  # text-preferring pairs capped at half, an SFT term
CALLS_ONLY = {"max_text_share": 0.0, "sft_weight": 1.0}  # call-preferring pairs only, an SFT term
# preference arm -> (its pair search, the update's algorithm or None for the SFT control, overrides of
# itool.preference; "lr_factor" multiplies the learning rate). "warmup" is the shared reference, not listed.
PREFERENCE_ARMS: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "round1_simpo": ("", "simpo", {}),
    "round1_dpo": ("", "dpo", {}),
    "sft_control": ("", None, {}),
    "round1_simpo_openings": ("_openings", "simpo", {}),
    "round1_simpo_openings_strong": ("_openings", "simpo", STRONG),
    "round1_simpo_openings_balanced": ("_openings", "simpo", {**STRONG, **BALANCED}),
    "round1_simpo_cool": ("_cool", "simpo", {}),
    "round1_simpo_cool_strong": ("_cool", "simpo", STRONG),
    "round1_simpo_cool_calls": ("_cool", "simpo", {**STRONG, **CALLS_ONLY}),
}
# claim -> arms, and the comparisons that decide it: (claimed better arm, other arm, metric)
CLAIMS: dict[str, dict[str, Any]] = {
    "verification": {
        "arms": ("clean", "corrupted", "verified"),
        "comparisons": (("verified", "corrupted", "overall"),),
    },
    "curriculum": {"arms": ("easy_to_hard", "random"), "comparisons": (("easy_to_hard", "random", "overall"),)},
    "preference": {
        "arms": ("warmup", *PREFERENCE_ARMS),
        "comparisons": (("round1_simpo", "warmup", "overall"), ("round1_simpo", "sft_control", "overall")),
    },
    "diversity": {
        "arms": ("full", "no_parallel", "no_non_tool"),
        "comparisons": (("full", "no_parallel", "parallel"), ("full", "no_non_tool", "non_tool")),
    },
}
REFERENCE_ARMS = {"clean", "easy_to_hard", "warmup", "full"}  # all the shared easy-to-hard warm-up
TABLE_METRICS = ("overall", *TYPES, "bfcl_mean", "heldout_nll")


@dataclass(frozen=True)
class Scale:
    n_train: int  # training dialogs per arm (type-stratified from the scored pool)
    steps: int  # optimizer steps of every warm-up arm
    test_per_type: int  # held-out test dialogs per type (unseen-API or no-call targets)
    bfcl_limit: int  # items per BFCL category
    max_prompts: int  # deficient prompts the preference round searches
    seeds: tuple[int, ...] = (0, 1, 2)


FULL = Scale(n_train=480, steps=60, test_per_type=20, bfcl_limit=10, max_prompts=12)
QUICK = Scale(n_train=30, steps=3, test_per_type=2, bfcl_limit=1, max_prompts=2, seeds=(0,))


@dataclass
class Setup:
    params: Any  # toolkiln.config.Params
    train: Any  # every training dialog (pl.DataFrame)
    test: Any  # the held-out split
    pool: Any  # id, type, bucket (within type) of the n_train pool dialogs
    scale: Scale
    out: Path
    checkpoints: Path
    log: Callable[[str], None] = print
    judge: Any = None
    timings: dict = field(default_factory=dict)
    memo: dict = field(default_factory=dict)  # seed-independent data shared by arms and seeds (the corrupted pool)
    data: str = ""  # data_fingerprint() of train pool + test split: written into every run


LEGACY_DATA = "legacy"  # runs written before fingerprints: the data of dvc.lock at commit 7e8aa5a (28,077 APIs)


def data_fingerprint(train, test, pool) -> str:
    """What an arm trains and is evaluated on, hashed: the pool dialogs (every column) and the test split's ids.

    The data stages are seeded but not bit-reproducible across CPUs (the MiniLM near-duplicate filter runs in
    bfloat16, whose kernels round differently with AMX, AVX512-BF16 or emulation, and a few pairs near the 0.95
    threshold flip), so the same seed can mean other dialogs on another machine. Each run records this, and the
    table flags a claim whose arms of one seed trained on different data: their comparison is not paired.
    """
    import hashlib

    import polars as pl

    h = hashlib.sha256()
    rows = train.filter(pl.col("id").is_in(pool["id"].to_list())).sort("id")
    h.update(json.dumps(rows.to_dicts(), sort_keys=True, default=str).encode())
    h.update("\n".join(sorted(test["id"].to_list())).encode())
    return h.hexdigest()[:12]


# ------------------------------------------------------------------ data of the arms
def type_buckets(difficulty, n: int, seed: int):
    """A type-stratified ``n`` of the scored dialogs, bucketed by thirds of ``combined`` within each type."""
    import polars as pl

    scored = difficulty.filter(pl.col("bucket").is_not_null())
    if "combined" not in scored.columns:
        raise ValueError(f"difficulty table: got columns {scored.columns}; expected a 'combined' score")
    types = sorted(set(scored["type"].to_list()))
    per = {t: n // len(types) + (i < n % len(types)) for i, t in enumerate(types)}
    parts = []
    for t in types:
        rows = scored.filter(pl.col("type") == t)
        rows = rows.sample(n=min(per[t], rows.height), seed=seed, shuffle=True).sort("combined")
        k = rows.height
        cuts = [BUCKETS[min(2, (3 * i) // max(k, 1))] for i in range(k)]
        parts.append(rows.select("id", "type").with_columns(pl.Series("bucket", cuts, dtype=pl.Utf8)))
    return pl.concat(parts)


def _corrupt(rows: list[dict], kinds: list[str], seed: int) -> tuple[list[dict], dict[str, str]]:
    """Each row through the first of ``kinds`` (in a seeded order per row) that applies to it."""
    from toolkiln.verify.inject import CORRUPTORS

    rng = random.Random(seed)
    out, applied = [], {}
    for row in rows:
        order = kinds[:]
        rng.shuffle(order)
        for kind in order:
            bad = CORRUPTORS[kind](json.loads(json.dumps(row)), rng)
            if bad is not None:
                out.append({**bad, "id": row["id"]})
                applied[row["id"]] = kind
                break
        else:
            out.append(row)
    return out, applied


def corrupted_pool(setup: Setup):
    """The pool's dialogs with ToolACE's failure rates injected (same ids, so the buckets carry over)."""
    import polars as pl

    from toolkiln.schema import DIALOG_SCHEMA, dialogs_frame
    from toolkiln.verify.inject import KINDS

    rows = setup.train.filter(pl.col("id").is_in(setup.pool["id"].to_list())).select(list(DIALOG_SCHEMA)).to_dicts()
    order = list(range(len(rows)))
    random.Random(f"{setup.params.seed}:corrupt").shuffle(order)
    n_rule, n_model = round(RULE_SHARE * len(rows)), round(MODEL_SHARE * len(rows))
    rule_kinds = [k for k, layer in KINDS.items() if layer == "rule" and k != "duplicate"]
    model_kinds = [k for k, layer in KINDS.items() if layer == "model"]
    pick_rule, pick_model = order[:n_rule], order[n_rule : n_rule + n_model]
    bad_rule, kinds_rule = _corrupt([rows[i] for i in pick_rule], rule_kinds, setup.params.seed)
    bad_model, kinds_model = _corrupt([rows[i] for i in pick_model], model_kinds, setup.params.seed + 1)
    for i, bad in zip(pick_rule + pick_model, bad_rule + bad_model):
        rows[i] = bad
    kinds = {**kinds_rule, **kinds_model}
    stats = {
        "dialogs": len(rows),
        "corrupted_rule": len(kinds_rule),
        "corrupted_model": len(kinds_model),
        "kinds": dict(sorted(Counter(kinds.values()).items())),
    }
    return dialogs_frame(rows), kinds, stats


# ------------------------------------------------------------------ training and evaluation
def _difficulty_of(pool, ids: list[str]):
    import polars as pl

    bucket = dict(zip(pool["id"].to_list(), pool["bucket"].to_list()))
    return pl.DataFrame(
        {"id": ids, "bucket": [bucket.get(i, "medium") for i in ids]}, schema={"id": pl.Utf8, "bucket": pl.Utf8}
    )


def train_arm(
    setup: Setup,
    tag: str,
    rows,
    *,
    seed: int,
    order: str = "easy_to_hard",
    base: str | None = None,
    steps: int | None = None,
    buckets=None,
) -> tuple[Path, dict]:
    """``warmup_sft`` on ``rows`` for exactly ``steps`` optimizer steps (repeating a small set) -> checkpoint."""
    from toolkiln.io import atomic_dir
    from toolkiln.policy.model import save_policy
    from toolkiln.policy.warmup import warmup_sft

    p = setup.params
    policy = p.policy if base is None else p.policy.model_copy(update={"base_model": str(base)})
    sft = p.sft.model_copy(
        update={"max_steps": steps or setup.scale.steps, "max_samples": 0, "eval_samples": 0, "epochs": 1}
    )
    ids = [str(i) for i in rows["id"].to_list()]
    res = warmup_sft(
        rows, _difficulty_of(buckets if buckets is not None else setup.pool, ids), policy, sft, seed=seed, order=order
    )
    out = setup.checkpoints / tag
    with atomic_dir(out) as tmp:
        save_policy(res.model, res.tokenizer, tmp, policy)
    m = res.metrics
    return out, {
        "train_dialogs": m["dialogs"],
        "train_steps": m["train_steps"],
        "train_tokens": m["train_tokens"],
        "train_seconds": round(m["seconds"], 1),
    }


def evaluate_arm(setup: Setup, checkpoint: Path) -> dict:
    """The same test and BFCL sample for every arm and seed (seeded by params.seed), plus the held-out NLL."""
    import polars as pl

    from toolkiln.evaluate.harness import run_evaluation
    from toolkiln.policy.examples import build_examples, target_nll
    from toolkiln.policy.model import load_pretrained, resolve_device

    p, s = setup.params, setup.scale
    ev = p.evaluate.model_copy(
        update={"samples_per_type": s.test_per_type, "bfcl_limit": s.bfcl_limit, "targets": "unseen"}
    )
    rep = run_evaluation(checkpoint, setup.test, ev, seed=p.seed)
    syn = rep.metrics["synthetic"]
    out = {
        "overall": syn["accuracy"],
        **{t: syn["by_group"].get(t, {}).get("accuracy") for t in TYPES},
        "n_test": syn["n"],
        "error_types": syn.get("error_types", {}),
        # no-call items scored right although the output was a broken call list (BFCL's rule), not an abstention
        "correct_unparsable": syn.get("correct_unparsable"),
    }
    if "bfcl" in rep.metrics:
        out["bfcl_mean"] = rep.metrics["bfcl"]["category_mean_accuracy"]
        out["bfcl"] = {k: v["accuracy"] for k, v in rep.metrics["bfcl"]["by_group"].items()}
    evaluated = setup.test.filter(pl.col("id").is_in(rep.dialogs["id"].to_list()))
    model, tok = load_pretrained(checkpoint, p.policy)
    examples, _ = build_examples(evaluated.to_dicts(), tok, p.policy.render, "target")
    nll = [
        x
        for x in target_nll(model, tok, examples, device=resolve_device(p.policy.device), precision=p.policy.precision)
        if not math.isnan(x)
    ]
    out["heldout_nll"] = statistics.fmean(nll) if nll else None
    return out


def _drop(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------ the arms
def reference(setup: Setup, seed: int) -> tuple[Path, dict]:
    """The shared easy-to-hard warm-up on the clean full pool (kept: the preference arms start from it)."""
    import polars as pl

    tag = f"reference_seed{seed}"
    path = setup.out / "runs" / "_reference" / f"seed{seed}.json"
    ckpt = setup.checkpoints / tag
    if path.exists() and ckpt.is_dir():
        return ckpt, json.loads(path.read_text())
    rows = setup.train.filter(pl.col("id").is_in(setup.pool["id"].to_list()))
    ckpt, train = train_arm(setup, tag, rows, seed=seed)
    result = {**train, **evaluate_arm(setup, ckpt), "data": setup.data}
    _write(path, result)
    return ckpt, result


def run_arm(setup: Setup, claim: str, arm: str, seed: int) -> dict:
    import polars as pl

    if arm in REFERENCE_ARMS:
        return reference(setup, seed)[1]
    pool_rows = setup.train.filter(pl.col("id").is_in(setup.pool["id"].to_list()))
    tag = f"{claim}_{arm}_seed{seed}"
    extra: dict = {}
    if claim == "verification":
        # The corruption and its verification depend on params.seed only, not on the run's seed: every
        # verification arm of every seed trains on the same data, built once.
        if "corrupted" not in setup.memo:
            setup.memo["corrupted"] = corrupted_pool(setup)
        corrupted, kinds, stats = setup.memo["corrupted"]
        extra["corruption"] = stats
        rows = corrupted
        if arm == "verified":
            if "verified" not in setup.memo:
                from toolkiln.verify.pipeline import verify_dialogs

                res = verify_dialogs(corrupted, setup.params.verify, setup.judge)
                kept = set(res.verified["id"].to_list())
                clean_ids = set(corrupted["id"].to_list()) - set(kinds)
                setup.memo["verified"] = (
                    corrupted.filter(pl.col("id").is_in(kept)),
                    {
                        "kept": len(kept),
                        "corrupted": len(kinds),
                        "corrupted_caught": len(set(kinds) - kept),
                        "clean_rejected": len(clean_ids - kept),
                    },
                )
            rows, extra["verify"] = setup.memo["verified"]
        ckpt, train = train_arm(setup, tag, rows, seed=seed)
    elif claim == "curriculum":
        ckpt, train = train_arm(setup, tag, pool_rows, seed=seed, order="random")
    elif claim == "diversity":
        drop = {"no_parallel": "parallel", "no_non_tool": "non_tool"}[arm]
        ckpt, train = train_arm(setup, tag, pool_rows.filter(pl.col("type") != drop), seed=seed)
    elif claim == "preference":
        return preference_arm(setup, arm, seed, pool_rows)
    else:
        raise ValueError(f"unknown claim {claim!r}; expected one of {sorted(CLAIMS)}")
    result = {**extra, **train, **evaluate_arm(setup, ckpt)}
    _drop(ckpt)
    return result


def preference_arm(setup: Setup, arm: str, seed: int, pool_rows) -> dict:
    """One iTool round on the shared warm-up: deficiencies and MCTS pairs are computed once per seed."""
    import polars as pl

    from toolkiln.io import atomic_dir
    from toolkiln.itool.preference import preference_round, save_round
    from toolkiln.itool.rounds import deficiencies_round, mcts_pairs

    p = setup.params
    warm, _ = reference(setup, seed)
    cache = setup.checkpoints / f"round1_seed{seed}"
    cache.mkdir(parents=True, exist_ok=True)
    itool = p.itool.model_copy(
        update={
            "deficiency": p.itool.deficiency.model_copy(
                update={"max_prompts": setup.scale.max_prompts, "max_scored": 0}
            )
        }
    )
    variant, algo, update = PREFERENCE_ARMS[arm]
    itool = itool.model_copy(update={"mcts": itool.mcts.model_copy(update=SEARCHES[variant])})
    pairs_file, search_file = cache / f"pairs{variant}.parquet", cache / f"search{variant}.json"
    if not pairs_file.exists():
        t0 = time.perf_counter()
        if (cache / "deficiencies.parquet").exists():  # the same deficient prompts for every search variant
            table = pl.read_parquet(cache / "deficiencies.parquet")
        else:
            table = deficiencies_round(pool_rows, warm, p.policy, itool, seed=seed, round_=1).table
            table.write_parquet(cache / "deficiencies.parquet")
        pairs = mcts_pairs(pool_rows, table, warm, p.policy, itool, seed=seed, round_=1)
        pairs.pairs.write_parquet(pairs_file)
        search_file.write_text(json.dumps({**pairs.metrics, "seconds": time.perf_counter() - t0}, default=str))
    pairs = pl.read_parquet(pairs_file)
    search = json.loads(search_file.read_text())
    stats = {
        "pairs": pairs.height,
        "prompts_searched": search.get("prompts_searched"),
        "prompts_with_pairs": search.get("prompts_with_pairs"),
        "search_seconds": round(search["seconds"], 1),
        "rollouts": search.get("rollouts"),
        "temperature": itool.mcts.temperature,
        "pairs_by_type": dict(sorted(Counter(pairs["type"].to_list()).items())) if "type" in pairs.columns else {},
    }
    tag = f"preference_{arm}_seed{seed}"
    if algo is not None:
        update = dict(update)
        lr = itool.preference.learning_rate * update.pop("lr_factor", 1.0)
        cfg = itool.preference.model_copy(update={"algorithm": algo, "learning_rate": lr, **update})
        t0 = time.perf_counter()
        res, tok = preference_round(pairs, warm, p.policy, cfg, seed=seed, round_=1, allow_empty=True)
        ckpt = setup.checkpoints / tag
        with atomic_dir(ckpt) as tmp:
            save_round(res.model, tok, tmp, warm)
        train = {
            "train_steps": res.metrics.get("train_steps", 0),
            "pairs_trained": res.metrics.get("pairs", 0),
            "updated": res.metrics.get("updated"),
            "train_seconds": round(time.perf_counter() - t0, 1),
        }
        (cache / f"{arm}_steps.json").write_text(json.dumps(train))
    else:  # sft_control: the SimPO run's optimizer steps, spent on SFT of the same prompts' gold targets
        steps_file = cache / "round1_simpo_steps.json"
        if not steps_file.exists():
            run_arm(setup, "preference", "round1_simpo", seed)
        steps = int(json.loads(steps_file.read_text())["train_steps"])
        defic = pl.read_parquet(cache / "deficiencies.parquet")
        wanted = defic.filter(pl.col("selected"))["id"].cast(pl.Utf8).to_list()
        rows = pool_rows.filter(pl.col("id").cast(pl.Utf8).is_in(wanted))
        if steps == 0 or rows.height == 0:
            # no pairs, no SimPO steps: the control spends nothing either and stays the warm-up (recorded)
            return {**reference(setup, seed)[1], **stats, "train_steps": 0, "updated": False}
        ckpt, train = train_arm(setup, tag, rows, seed=seed, order="random", base=str(warm), steps=steps)
    result = {**stats, **train, **evaluate_arm(setup, ckpt)}
    _drop(ckpt)
    return result


# ------------------------------------------------------------------ aggregation
def mean_std(xs: list[float]) -> tuple[float | None, float | None]:
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def verdict(better: list[float], other: list[float]) -> dict:
    (mb, sb), (mo, so) = mean_std(better), mean_std(other)
    if mb is None or mo is None:
        return {"margin": None, "noise": None, "verdict": "inconclusive"}
    margin, noise = mb - mo, max(sb, so)
    if min(len(better), len(other)) < 2:
        word = "inconclusive"
    elif margin > noise:
        word = "reproduced"
    elif margin <= 0:
        word = "not reproduced"
    else:
        word = "inconclusive"
    return {"margin": margin, "noise": noise, "verdict": word}


def aggregate(runs: dict[str, dict[str, dict[int, dict]]]) -> dict:
    """runs[claim][arm][seed] -> the claims.json shape."""
    claims = {}
    for claim, arms in runs.items():
        block: dict[str, Any] = {"arms": {}, "comparisons": []}
        for arm, seeds in arms.items():
            per = [seeds[s] for s in sorted(seeds)]
            ms = {m: mean_std([r.get(m) for r in per]) for m in TABLE_METRICS}
            block["arms"][arm] = {
                "seeds": per,
                "seed_ids": sorted(seeds),
                "mean": {m: v[0] for m, v in ms.items()},
                "std": {m: v[1] for m, v in ms.items()},
            }
        # which data each seed's arms trained on; a seed whose arms differ is not a paired comparison
        data: dict[int, dict[str, list[str]]] = {}
        for arm, seeds in arms.items():
            for s_, r in seeds.items():
                data.setdefault(s_, {}).setdefault(r.get("data", LEGACY_DATA), []).append(arm)
        block["data"] = {str(s_): d for s_, d in sorted(data.items())}
        block["mixed_data_seeds"] = [s_ for s_, d in sorted(data.items()) if len(d) > 1]
        words = []
        for better, other, metric in CLAIMS[claim]["comparisons"]:
            if better in arms and other in arms:
                v = verdict(
                    [r.get(metric) for r in block["arms"][better]["seeds"]],
                    [r.get(metric) for r in block["arms"][other]["seeds"]],
                )
                block["comparisons"].append({"better": better, "other": other, "metric": metric, **v})
                words.append(v["verdict"])
        block["verdict"] = (
            "reproduced"
            if words and all(w == "reproduced" for w in words)
            else "not reproduced"
            if "not reproduced" in words
            else "inconclusive"
        )
        claims[claim] = block
    return {"claims": claims}


def _cell(metric: str, mean: float | None, std: float | None) -> str:
    """A table cell: accuracies in points, the held-out NLL in nats; blank where no seed has the metric."""
    if mean is None:
        return ""
    if metric == "heldout_nll":
        return f"{mean:.3f} ± {std:.3f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def markdown(result: dict) -> str:
    lines = []
    for claim, block in result["claims"].items():
        lines += [
            f"### {claim}: {block['verdict']}",
            "",
            "| arm | seeds | " + " | ".join(TABLE_METRICS) + " |",
            "|---|---:|" + "---:|" * len(TABLE_METRICS),
        ]
        for arm, a in block["arms"].items():
            cells = [_cell(m, a["mean"][m], a["std"][m]) for m in TABLE_METRICS]
            lines.append(f"| {arm} | {len(a['seeds'])} | " + " | ".join(cells) + " |")
        lines.append("")
        data = block.get("data", {})
        if len({d for per in data.values() for d in per}) > 1:
            lines.append(
                "Data (pool + test split fingerprint) per seed: "
                + "; ".join(f"seed {s_}: " + ", ".join(per) for s_, per in data.items())
            )
        for s_ in block.get("mixed_data_seeds", []):
            lines.append(
                f"- **seed {s_}: arms trained on different data** "
                + "; ".join(f"{d}: {', '.join(a)}" for d, a in data[str(s_)].items())
                + " - not a paired comparison"
            )
        lines.append("")
        for c in block["comparisons"]:
            margin = (
                "n/a" if c["margin"] is None else f"{100 * c['margin']:+.1f} points (seed-std {100 * c['noise']:.1f})"
            )
            lines.append(f"- {c['better']} vs {c['other']} on {c['metric']}: {margin} -> **{c['verdict']}**")
        lines.append("")
    return "\n".join(lines)


def plot(result: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    groups = ("overall", *TYPES, "bfcl_mean")
    for claim, block in result["claims"].items():
        arms = list(block["arms"])
        fig, ax = plt.subplots(figsize=(9, 3.6))
        width = 0.8 / max(len(arms), 1)
        for k, arm in enumerate(arms):
            a = block["arms"][arm]
            mu = [100 * (a["mean"][g] or 0) for g in groups]
            sd = [100 * (a["std"][g] or 0) for g in groups]
            ax.bar([i + k * width for i in range(len(groups))], mu, width, yerr=sd, capsize=2, label=arm)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))], groups, fontsize=8)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{claim}: {block['verdict']} (mean ± seed-std)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"{claim}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


# ------------------------------------------------------------------ driver
def _write(path: Path, payload: dict) -> None:
    from toolkiln.io import atomic_write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, payload)


def _track(setup: Setup, claim: str, arm: str, seed: int, result: dict) -> None:
    """One MLflow run per (claim, arm, seed) in the claim's experiment."""
    cfg = setup.params.tracking
    if not cfg.enabled:
        return
    import mlflow
    from mlflow.tracking import MlflowClient

    from toolkiln.tracking import ensure_experiment, log_client_run, numeric_metrics, store_lock

    mlflow.set_tracking_uri(cfg.tracking_uri)
    with store_lock(mlflow.get_tracking_uri()):
        client = MlflowClient()
        log_client_run(
            client,
            ensure_experiment(client, cfg, f"{cfg.experiment}-claims-{claim}"),
            f"{arm} seed {seed}",
            tags={"toolkiln.claim": claim, "toolkiln.arm": arm, "toolkiln.seed": str(seed)},
            params={"arm": arm, "seed": seed, **{f"scale.{k}": v for k, v in asdict(setup.scale).items()}},
            metrics=numeric_metrics(result),
        )


def runs_on_disk(out: Path) -> dict[str, dict[str, dict[int, dict]]]:
    """runs[claim][arm][seed] for every finished run under ``out/runs``, every seed on disk (claims and arms in
    their table order, seeds ascending): a run of some seeds or claims must not drop the others from the table."""
    runs: dict[str, dict[str, dict[int, dict]]] = {}
    for claim, spec in CLAIMS.items():
        for arm in spec["arms"]:
            found = {}
            for path in (Path(out) / "runs" / claim / arm).glob("seed*.json"):
                tail = path.stem[len("seed") :]
                if tail.isdigit():
                    found[int(tail)] = json.loads(path.read_text())
            for seed in sorted(found):
                runs.setdefault(claim, {}).setdefault(arm, {})[seed] = found[seed]
    return runs


def run_claims(
    params,
    train,
    test,
    difficulty,
    *,
    scale: Scale,
    out: Path,
    checkpoints: Path,
    claims: tuple[str, ...] = tuple(CLAIMS),
    log: Callable[[str], None] = print,
    static_encoder: Path = ROOT / "checkpoints" / "static_encoder",
    table_only: bool = False,
    arms: tuple[str, ...] | None = None,
) -> dict:
    """Every (claim, arm, seed) not on disk yet, then the claims table, markdown and plots (``table_only``: only
    the table, from the runs on disk - e.g. after a run stopped part-way through a seed). ``arms`` limits the
    run to those arms of the chosen claims (e.g. the issue's four preference arms, not the variants)."""
    unknown = [c for c in claims if c not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claims {unknown}; expected some of {sorted(CLAIMS)}")
    offered = {a for c in claims for a in CLAIMS[c]["arms"]}
    if arms is not None and not set(arms) <= offered:
        raise ValueError(
            f"unknown arms {sorted(set(arms) - offered)} for claims {list(claims)}; expected some of {sorted(offered)}"
        )
    out, checkpoints = Path(out), Path(checkpoints)
    out.mkdir(parents=True, exist_ok=True)
    checkpoints.mkdir(parents=True, exist_ok=True)
    pool = type_buckets(difficulty, scale.n_train, params.seed)
    setup = Setup(params, train, test, pool, scale, out, checkpoints, log, data=data_fingerprint(train, test, pool))
    if "verification" in claims and params.verify.model.enabled and not table_only:
        from toolkiln.verify.model import make_judge

        setup.judge = make_judge(
            params.verify.model,
            params.llm,
            params.runtime.llm,
            trace_path=out / "verify_llm_trace.jsonl",
            static_encoder=str(static_encoder),
        )

    def write_table() -> dict:
        # every claim and seed with runs on disk, not only those asked for now
        table = {
            **aggregate(runs_on_disk(out)),
            "scale": asdict(scale),
            "pool": {"dialogs": pool.height, "types": dict(Counter(pool["type"].to_list()))},
        }
        _write(out / "claims.json", table)
        (out / "claims.md").write_text(markdown(table))
        plot(table, out)
        return table

    table = None
    for seed in () if table_only else scale.seeds:
        for claim in claims:
            for arm in CLAIMS[claim]["arms"]:
                if arms is not None and arm not in arms:
                    continue
                path = out / "runs" / claim / arm / f"seed{seed}.json"
                if not path.exists():
                    log(f"== {claim} / {arm} / seed {seed}")
                    t0 = time.perf_counter()
                    result = {
                        **run_arm(setup, claim, arm, seed),
                        "seconds": round(time.perf_counter() - t0, 1),
                        "data": setup.data,
                    }
                    _write(path, result)
                    _track(setup, claim, arm, seed, result)
        table = write_table()  # after every seed: a partial table is already readable
    return table if table is not None else write_table()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--train", default=str(ROOT / "data" / "train.parquet"))
    ap.add_argument("--test", default=str(ROOT / "data" / "test.parquet"))
    ap.add_argument("--difficulty", default=str(ROOT / "data" / "difficulty.parquet"))
    ap.add_argument("--claims", nargs="+", default=list(CLAIMS), choices=sorted(CLAIMS))
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--arms", nargs="+", default=None, help="only these arms of the chosen claims (default: all)")
    ap.add_argument("--quick", action="store_true", help="every arm once at a tiny scale")
    ap.add_argument("--table-only", action="store_true", help="write claims.json/md and plots from the runs on disk")
    ap.add_argument("--out", default=str(ROOT / "reports" / "claims"))
    ap.add_argument("--checkpoints", default=str(ROOT / "checkpoints" / "claims"))
    ap.add_argument(
        "--static-encoder",
        default=str(ROOT / "checkpoints" / "static_encoder"),
        help="the verifier's distilled encoder (dvc repro distill_encoder), read when verify.model.encoder is static",
    )
    args = ap.parse_args(argv)

    import polars as pl

    from toolkiln.config import load_params

    scale = QUICK if args.quick else FULL
    if args.seeds:
        scale = replace(scale, seeds=tuple(args.seeds))
    out = Path(args.out) / "quick" if args.quick else Path(args.out)  # a quick run never mixes into the real table
    result = run_claims(
        load_params(args.params),
        pl.read_parquet(args.train),
        pl.read_parquet(args.test),
        pl.read_parquet(args.difficulty),
        scale=scale,
        out=out,
        checkpoints=Path(args.checkpoints),
        claims=tuple(args.claims),
        static_encoder=Path(args.static_encoder),
        table_only=args.table_only,
        arms=tuple(args.arms) if args.arms else None,
    )
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
