"""ADNT on a second problem: a dialog-verification classifier adapted to a new API domain
(ADNT arXiv 2208.02947 applied to ToolACE-style dialogs).

The verifier question "is this dialog clean or corrupted?" is learned from
labelled dialogs of several API domains (the sources) and must transfer to the
dialogs of an unseen API domain whose labels are hidden (the target) — exactly
multi-source UDA, with API domains in place of digit styles:

- rows: clean dialogs of ``data/dialogs.parquet`` (``toolkiln.schema``); half of
  each domain's dialogs (seeded) are corrupted with the verification engineer's
  error-injection generator (``toolkiln.verify.inject``), the other half stay clean,
  so no dialog appears in both classes;
- inputs: an embedding of the rendered dialog (roles, text, calls with their
  arguments, tool names): char n-gram hashing + TF-IDF + SVD, or MiniLM;
- model: the same training loops as the digits benchmark (``train``) with an MLP
  in place of the CNN, 2 classes; the target domain's rows are split 50/50 into
  the unlabelled training pool and the test split.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
from torch import nn

from toolkiln.adapt.train import Task, run_method
from toolkiln.schema import DIALOG_SCHEMA

log = logging.getLogger(__name__)

LABELS = ("clean", "corrupted")


class NoEligibleTarget(ValueError):
    """No API domain has enough labelled rows of both classes to serve as a target."""


def dialog_text(row: dict) -> str:
    """One dialog as text: each turn's role and content, plus calls as ``name(args-json)`` and tool names."""
    try:
        messages = json.loads(row["messages"]) if isinstance(row["messages"], str) else row["messages"]
    except (TypeError, json.JSONDecodeError):
        return f"<unparsable messages> {row.get('messages')!s}"
    parts = []
    for m in messages if isinstance(messages, list) else []:
        if not isinstance(m, dict):
            parts.append(f"<bad turn> {m!s}")
            continue
        head = str(m.get("role", "?")) + (f"[{m['name']}]" if m.get("name") else "")
        parts.append(f"{head}: {m.get('content', '')}")
        for call in m.get("tool_calls") or []:
            if isinstance(call, dict):
                parts.append(f"call {call.get('name')}({json.dumps(call.get('arguments'), sort_keys=True)})")
    return "\n".join(parts)


def _jtype(v) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}.get(type(v), "other")


def dialog_skeleton(row: dict) -> str:
    """Structure tokens of a dialog: role sequence and bigrams, log-length buckets, non-ASCII share, called
    names with argument names and JSON value types, and the (parameter, type) pairs of the candidate tools.
    Raw material for a learned verifier; no verification rule is applied here."""
    try:
        messages = json.loads(row["messages"]) if isinstance(row["messages"], str) else row["messages"]
        tools = json.loads(row["tools"]) if isinstance(row.get("tools"), str) else (row.get("tools") or [])
    except (TypeError, json.JSONDecodeError):
        return "unparsable"
    toks, prev = [], "start"
    for m in messages if isinstance(messages, list) else []:
        if not isinstance(m, dict):
            toks.append("badturn")
            continue
        role, text = str(m.get("role")), str(m.get("content") or "")
        toks += [f"role_{role}", f"seq_{prev}_{role}", f"len_{role}_{int(math.log2(len(text) + 1))}"]
        if text and sum(ord(c) > 127 for c in text) / len(text) > 0.05:
            toks.append(f"nonascii_{role}")
        if m.get("name"):
            toks.append(f"toolname_{m['name']}")
        for call in m.get("tool_calls") or []:
            if isinstance(call, dict):
                toks.append(f"call_{call.get('name')}")
                args = call.get("arguments") if isinstance(call.get("arguments"), dict) else {}
                toks += [f"arg_{k}_{_jtype(v)}" for k, v in args.items()]
        prev = role
    for t in tools if isinstance(tools, list) else []:
        if isinstance(t, dict):
            toks.append(f"tool_{t.get('name')}")
            props = (t.get("parameters") or {}).get("properties") or {}
            toks += [f"param_{k}_{(v or {}).get('type') if isinstance(v, dict) else 'x'}" for k, v in props.items()]
            toks += [f"required_{k}" for k in (t.get("parameters") or {}).get("required") or []]
    return " ".join(toks)


def verification_rows(clean: pl.DataFrame, *, seed: int, max_dialogs: int = 0) -> pl.DataFrame:
    """Labelled rows ``id, domain, kind, label, text`` from clean dialogs: half corrupted, half kept clean."""
    from toolkiln.verify.inject import KINDS, inject

    missing = [c for c in DIALOG_SCHEMA if c not in clean.columns]
    if missing:
        raise ValueError(f"dialogs: missing columns {missing}; expected the schema of toolkiln.schema.DIALOG_SCHEMA")
    if max_dialogs and clean.height > max_dialogs:
        clean = clean.sample(max_dialogs, seed=seed, shuffle=True)
    ids = sorted(clean["id"].to_list())
    rng = random.Random(seed)
    rng.shuffle(ids)
    to_corrupt = set(ids[: len(ids) // 2])
    pool = clean.filter(pl.col("id").is_in(to_corrupt))
    keep = clean.filter(~pl.col("id").is_in(to_corrupt))
    # about one corruption per dialog of the pool, spread over every error kind
    per_kind = max(1, math.ceil(pool.height / len(KINDS)))
    bad, _ = inject(pool, per_kind=per_kind, seed=seed)
    rows = [{"id": r["id"], "domain": r["domain"], "kind": "clean", "label": 0, "text": dialog_text(r),
             "skeleton": dialog_skeleton(r)} for r in keep.iter_rows(named=True)]
    rows += [{"id": r["id"], "domain": r["domain"], "kind": r["kind"], "label": 1, "text": dialog_text(r),
              "skeleton": dialog_skeleton(r)} for r in bad.iter_rows(named=True)]
    return pl.DataFrame(rows, schema={"id": pl.Utf8, "domain": pl.Utf8, "kind": pl.Utf8, "label": pl.Int64,
                                      "text": pl.Utf8, "skeleton": pl.Utf8})


def _hashed_svd(texts: list[str], dim: int, seed: int, **vectorizer) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.preprocessing import normalize

    counts = HashingVectorizer(n_features=2 ** 18, alternate_sign=False, norm=None, **vectorizer).transform(texts)
    counts = counts[:, counts.getnnz(axis=0) > 0]  # SVD cost grows with the (mostly empty) hashed width
    tfidf = TfidfTransformer(sublinear_tf=True).fit_transform(counts)
    k = max(1, min(dim, tfidf.shape[0] - 1, tfidf.shape[1] - 1))
    Z = TruncatedSVD(k, random_state=seed).fit_transform(tfidf)
    if k < dim:  # tiny corpora: pad so the model's input size stays the configured one
        Z = np.pad(Z, ((0, 0), (0, dim - k)))
    return normalize(Z)


def embed(texts: list[str], skeletons: list[str] | None = None, *, kind: str = "hashing", dim: int = 128,
          seed: int = 0) -> np.ndarray:
    """Float32 embeddings of dialogs, fitted on all of them (sources and target alike: unsupervised, the
    target's labels are never touched). ``hashing``: half the dimensions from char 2-4-gram TF-IDF of the
    text, half from the structure tokens (``skeleton``), each reduced by SVD. ``minilm``: the MiniLM
    sentence embedding of the text, with the skeleton view appended when given."""
    if kind not in ("hashing", "minilm"):
        raise ValueError(f"embedder: got {kind!r}; expected 'hashing' or 'minilm'")
    if kind == "minilm":
        from toolkiln.embed import embed_texts

        text_view = embed_texts(texts)
    else:
        text_view = _hashed_svd(texts, dim - dim // 2 if skeletons is not None else dim, seed,
                                analyzer="char_wb", ngram_range=(2, 4))
    if skeletons is None:
        return text_view.astype(np.float32)
    skel_view = _hashed_svd(skeletons, dim // 2, seed, analyzer="word", token_pattern=r"\S+", lowercase=False,
                            ngram_range=(1, 2))
    return (np.hstack([text_view, skel_view]) / np.sqrt(2)).astype(np.float32)


def _mlp_backbone(in_dim: int, hidden: int, n_classes: int = 2):
    def make():
        F = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        return F, nn.Linear(hidden, n_classes)

    return make


def choose_targets(rows: pl.DataFrame, target_domain: str, max_tasks: int, min_rows: int) -> list[str]:
    counts = rows.group_by("domain").agg(pl.len().alias("n"), pl.col("label").n_unique().alias("k"))
    ok = counts.filter((pl.col("n") >= min_rows) & (pl.col("k") == 2)).sort(["n", "domain"], descending=[True, False])
    if target_domain:
        if target_domain not in set(ok["domain"]):
            raise ValueError(f"adnt.dialogs.target_domain: {target_domain!r} is not a domain with >= {min_rows} rows "
                             f"of both labels; have {ok['domain'].to_list()}")
        return [target_domain]
    return ok["domain"].to_list()[:max_tasks]


def dialog_task(rows: pl.DataFrame, Z: np.ndarray, target: str, hidden: int, seed: int) -> Task:
    """Sources = every other domain (labelled); the target's rows split 50/50 into unlabelled train / test."""
    dom = rows["domain"].to_numpy()
    y = torch.from_numpy(rows["label"].to_numpy().astype(np.int64))
    X = torch.from_numpy(Z)
    sources = sorted(d for d in set(dom) if d != target)
    t_idx = np.flatnonzero(dom == target)
    t_idx = np.random.default_rng(seed).permutation(t_idx)
    half = len(t_idx) // 2
    tr, te = torch.from_numpy(t_idx[:half]), torch.from_numpy(t_idx[half:])
    s_idx = [torch.from_numpy(np.flatnonzero(dom == s)) for s in sources]
    return Task(target, sources, [X[i] for i in s_idx], [y[i] for i in s_idx], X[tr], y[tr], X[te], y[te],
                n_classes=2, backbone=_mlp_backbone(Z.shape[1], hidden))


def dialog_cfg(cfg):
    """The ADNTConfig the shared loops run with on dialogs: MLP width, steps, batch and threshold from
    ``cfg.dialogs``; everything else (ADNT's method knobs, lr) as on digits."""
    d = cfg.dialogs
    return cfg.model_copy(update={
        "model": cfg.model.model_copy(update={"feature_dim": d.hidden}),
        "train": cfg.train.model_copy(update={"steps": d.steps, "batch_size": d.batch_size}),
        "method": cfg.method.model_copy(update={"pseudo_threshold": d.pseudo_threshold}),
    })


def run_dialog_adaptation(clean: pl.DataFrame, cfg, *, progress: bool = True) -> tuple[pl.DataFrame, pl.DataFrame]:
    """ADNT on dialogs end to end: labelled rows, embeddings, then every (method, target, seed). Returns the runs
    (method, target, seed, acc, ...) and the labelled rows' per-domain counts."""
    from tqdm import tqdm

    d = cfg.dialogs
    seed0 = cfg.protocol.seeds[0]
    rows = verification_rows(clean, seed=seed0, max_dialogs=d.max_dialogs)
    targets = choose_targets(rows, d.target_domain, d.max_tasks, d.min_domain_rows)
    if not targets:
        raise NoEligibleTarget(f"dialogs: no API domain has >= {d.min_domain_rows} labelled rows of both classes "
                         f"({rows.height} rows over {rows['domain'].n_unique()} domains)")
    Z = embed(rows["text"].to_list(), rows["skeleton"].to_list(), kind=d.embedder, dim=d.dim, seed=seed0)
    run_cfg = dialog_cfg(cfg)
    out = []
    jobs = [(t, s, m) for t in targets for s in cfg.protocol.seeds for m in d.methods]
    for t, s, m in tqdm(jobs, desc="dialog adaptation", disable=not progress):
        task = dialog_task(rows, Z, t, d.hidden, s)
        r = run_method(m, task, run_cfg, 1000 * s + targets.index(t))
        out.append({"method": m, "target": t, "seed": s, "acc": r.acc, "seconds": r.seconds,
                    "target_majority": float(max(task.yt_test.float().mean(), 1 - task.yt_test.float().mean()))})
    counts = rows.group_by("domain").agg(pl.len().alias("rows"), pl.col("label").sum().alias("corrupted")).sort("domain")
    return pl.DataFrame(out), counts


@dataclass
class DialogAdaptationReport:
    """What ``adnt_dialogs`` writes: the runs, a markdown table and metrics (``skipped`` says why when empty)."""

    results: pl.DataFrame
    table: str
    metrics: dict


def dialog_adaptation_report(clean: pl.DataFrame, cfg, *, progress: bool = True) -> DialogAdaptationReport:
    """The ``adnt_dialogs`` stage as one call. With too few dialogs per domain (e.g. a smoke run) the report is an
    empty result that records why, so the DAG goes on."""
    from toolkiln.adapt.experiment import summarise
    from toolkiln.adapt.report import markdown_table, summary_dict

    try:
        results, counts = run_dialog_adaptation(clean, cfg, progress=progress)
    except NoEligibleTarget as exc:
        log.warning("%s", exc)
        empty = pl.DataFrame(schema={"method": pl.Utf8, "target": pl.Utf8, "seed": pl.Int64, "acc": pl.Float64})
        return DialogAdaptationReport(empty, f"No dialog adaptation task: {exc}\n", {"skipped": str(exc)})
    summary = summarise(results)
    targets = list(dict.fromkeys(results["target"].to_list()))
    majority = results.group_by("target").agg(pl.col("target_majority").first()).sort("target")
    table = markdown_table(summary, targets) + "\nMajority-class accuracy per target: " + ", ".join(
        f"{r['target']} {100 * r['target_majority']:.1f}" for r in majority.iter_rows(named=True)) + "\n"
    s = summary_dict(summary)
    margin = s["adnt"]["avg"]["mean"] - s["source_only"]["avg"]["mean"] if "adnt" in s and "source_only" in s else None
    metrics = {"summary": s, "adnt_minus_source_only": margin, "n_rows": int(counts["rows"].sum()),
               "domains": {r["domain"]: {"rows": r["rows"], "corrupted": r["corrupted"]}
                           for r in counts.iter_rows(named=True)}}
    return DialogAdaptationReport(results, table, metrics)
