"""Dual-layer verification of dialog rows, end to end (ToolACE §3.3; README "Verification").

``verify_dialogs`` runs the rule layer (the GX suites over the flattened tables,
:mod:`toolkiln.verify.rules`) over every row, the model layer over the rule
layer's survivors, and splits the rows into verified dialogs and rejects (each
reject lists every failing check and its reason). ``run_suites`` asserts the
model-layer columns and the contract of the verified output (batch verdicts and
data docs). :func:`run_verification` is the whole ``verify`` stage short of
reading and writing files: both layers, the error-injection study, the suites,
and seconds per phase. ToolACE's pass rates with formalised thinking are kept
beside ours in the report.

``enabled=False`` is the "unverified data" ablation: every row is kept, the
checks are still computed, and the rejects table records the rows that *would*
have been dropped (``enforced = false``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from toolkiln.schema import DIALOG_SCHEMA, DIALOG_TYPES
from toolkiln.verify.config import VerifyConfig
from toolkiln.verify.model import MODEL_CHECKS, ModelJudge, sharded_model_checks
from toolkiln.verify.rules import FAMILIES, RuleCaches, rule_layer

# ToolACE (arXiv 2409.00920) Fig. 6, with formalised thinking: share of samples passing each layer.
TOOLACE_PASS_RATES = {"rules": 0.679, "model": 0.911, "final": 0.618}
REJECT_EXTRA = {"layer": pl.Utf8, "failed_checks": pl.List(pl.Utf8), "reasons": pl.List(pl.Utf8),
                "model_outcomes": pl.Utf8, "enforced": pl.Boolean}


@dataclass
class VerifyResult:
    verified: pl.DataFrame
    rejects: pl.DataFrame
    checks: pl.DataFrame  # id, type, every ok_ column (model ones null where the model layer did not run)
    metrics: dict[str, Any] = field(default_factory=dict)
    gx: dict[str, Any] = field(default_factory=dict)  # the rule suites' batch results (toolkiln.gxsuite.RowResult)
    timings: dict[str, float] = field(default_factory=dict)


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 6) if d else None


def verify_dialogs(dialogs: pl.DataFrame, cfg: VerifyConfig, judge: ModelJudge | None, *,
                   caches: RuleCaches | None = None, expectations: str | Path | None = None,
                   data_docs_dir: str | Path | None = None, runtime: Any = None,
                   shard_size: int = 2000) -> VerifyResult:
    """Rule layer on all rows, model layer (when ``judge`` is given and enabled) on rule survivors.

    ``expectations``: the suites folder (default: the repository's); ``data_docs_dir``: where the rule
    suites' data docs go (none when unset). The model layer runs in shards of ``shard_size`` survivors
    where ``runtime`` (the ``runtime:`` section; None = this process) says, with the same verdicts
    either way (:func:`toolkiln.verify.model.sharded_model_checks`).
    """
    layer = rule_layer(dialogs, cfg.rules, caches, expectations=expectations, mostly=cfg.gx.mostly_rules,
                       data_docs_dir=data_docs_dir)
    rule_cols = list(layer.checks)
    ruled = layer.checked.with_row_index("_pos")
    survivors = ruled.filter(pl.col("ok_rules"))
    use_model = cfg.model.enabled and judge is not None
    model_schema = {**{c: pl.Boolean for c in MODEL_CHECKS}, "ok_model": pl.Boolean,
                    "model_reasons": pl.List(pl.Utf8), "model_outcomes": pl.Utf8}
    t0 = time.perf_counter()
    if use_model and survivors.height:
        judged = sharded_model_checks(survivors.select("id", "type", "system", "tools", "messages"), judge,
                                      unparsable=cfg.model.unparsable, shard_size=shard_size, runtime=runtime)
        model_cols = judged.select(list(model_schema)).with_columns(survivors["_pos"])
    else:
        model_cols = pl.DataFrame(schema={**model_schema, "_pos": pl.UInt32})
    t_model = time.perf_counter() - t0
    # Join on row position, not id: a duplicated id must not fan out. Rule rejects get nulls (not judged).
    full = ruled.join(model_cols, on="_pos", how="left").sort("_pos").drop("_pos")
    ok = pl.col("ok_rules") & pl.col("ok_model").fill_null(True)
    full = full.with_columns(ok=ok)

    rejected = full.filter(~pl.col("ok"))
    rejects = rejected.select(
        *DIALOG_SCHEMA,
        layer=pl.when(~pl.col("ok_rules")).then(pl.lit("rule")).otherwise(pl.lit("model")),
        failed_checks=pl.concat_list([pl.when(~pl.col(c).fill_null(True)).then(pl.lit(c)).otherwise(None)
                                      for c in rule_cols + list(MODEL_CHECKS)]).list.drop_nulls(),
        reasons=pl.concat_list(pl.col("rule_reasons"), pl.col("model_reasons").fill_null(pl.lit([], dtype=pl.List(pl.Utf8)))),
        model_outcomes=pl.col("model_outcomes"),
        enforced=pl.lit(cfg.enabled),
    )
    verified = (full.filter(pl.col("ok")) if cfg.enabled else full).select(list(DIALOG_SCHEMA))
    checks = full.select("id", "type", *rule_cols, "ok_rules", *MODEL_CHECKS, "ok_model", "ok")
    timings = {f"rules_{k}": round(v, 3) for k, v in layer.timings.items()}
    timings["model"] = round(t_model, 3)
    return VerifyResult(verified=verified, rejects=rejects, checks=checks, gx=layer.gx, timings=timings,
                        metrics=pass_rate_metrics(checks, model_ran=use_model, enabled=cfg.enabled,
                                                  outcomes=full["model_outcomes"], rule_checks=rule_cols))


def pass_rate_metrics(checks: pl.DataFrame, *, model_ran: bool, enabled: bool, outcomes: pl.Series | None = None,
                      rule_checks: list[str] | None = None) -> dict:
    n = checks.height
    rule_checks = rule_checks or [c for c in checks.columns if c.startswith("ok_") and not c.startswith("ok_model")
                                  and c != "ok_rules"]
    n_rules = int(checks["ok_rules"].sum())
    judged = checks.filter(pl.col("ok_model").is_not_null())
    n_final = int(checks["ok"].sum())
    m: dict[str, Any] = {
        "enabled": enabled, "model_layer": model_ran, "n_dialogs": n,
        "n_verified": n if not enabled else n_final, "n_rejected": n - n_final,
        "pass_rate": {"rules": _rate(n_rules, n), "model": _rate(int(judged["ok_model"].sum()), judged.height) if model_ran else None,
                      "final": _rate(n_final, n)},
        "toolace_pass_rate": dict(TOOLACE_PASS_RATES),
        "checks": {c: _rate(int(checks[c].sum()), n) for c in rule_checks},
        "families": {f: _rate(int(checks.select(pl.all_horizontal(list(cs))).to_series().sum()), n)
                     for f, cs in FAMILIES.items() if all(c in checks.columns for c in cs)},
        "by_type": {},
    }
    if model_ran:
        m["checks"].update({c: _rate(int(judged[c].sum()), judged.height) for c in MODEL_CHECKS})
        if outcomes is not None:
            counts: dict[str, int] = {}
            for o in outcomes.drop_nulls():
                for s, v in json.loads(o).items():
                    counts[f"{s}.{v}"] = counts.get(f"{s}.{v}", 0) + 1
            m["model_outcomes"] = dict(sorted(counts.items()))
    for t in DIALOG_TYPES:
        sub = checks.filter(pl.col("type") == t)
        if sub.height:
            m["by_type"][t] = {"n": sub.height, "rules": _rate(int(sub["ok_rules"].sum()), sub.height),
                               "final": _rate(int(sub["ok"].sum()), sub.height)}
    return m


def run_suites(result: VerifyResult, cfg: VerifyConfig, expectations_dir: str | Path,
               data_docs_dir: str | Path | None) -> dict[str, Any]:
    """The rule suites' results (already run by the rule layer) plus GX over the model-layer columns of the
    judged rows and over the verified output (its contract with ``split``)."""
    from toolkiln.gxsuite import run_suite

    params = {"mostly_rules": cfg.gx.mostly_rules, "mostly_model": cfg.gx.mostly_model}
    frames = {"dialogs_model": result.checks.filter(pl.col("ok_model").is_not_null()),
              "verified_dialogs": result.verified}
    out = dict(result.gx)
    for name, frame in frames.items():
        if name == "dialogs_model" and frame.height == 0:
            continue
        docs = Path(data_docs_dir) / name if data_docs_dir else None
        # every threshold goes to every suite: GX fills the ones a suite names and ignores the rest
        out[name] = run_suite(frame, Path(expectations_dir) / f"{name}.json", data_docs_dir=docs,
                              parameters=params).to_dict()
    return out


@dataclass
class Verification:
    """Everything the ``verify`` stage writes: outputs, the injection study (None when disabled), GX results,
    the DVC/MLflow metrics (with seconds per phase under ``timings``)."""

    result: VerifyResult
    injection: dict[str, Any] | None
    gx: dict[str, Any]
    metrics: dict[str, Any]


def run_verification(dialogs: pl.DataFrame, cfg: VerifyConfig, judge: ModelJudge | None, *, seed: int,
                     expectations_dir: str | Path, data_docs_dir: str | Path | None = None,
                     pool: pl.DataFrame | None = None, api_embeddings: pl.DataFrame | None = None,
                     log: Any = None, runtime: Any = None) -> Verification:
    """The ``verify`` stage: both layers, the error-injection study, the output suites, metrics and timings.

    ``pool``: the API pool, whose APIs ``synthesize_apis`` already held to definition clarity (offered tools
    equal to their pool entry are not re-validated). ``api_embeddings``: the pool's MiniLM embeddings made by
    ``synthesize_apis`` (``text``, ``embedding``); an embedding judge starts from them, so of the tools a dialog
    offers only those that differ from their pool entry (e.g. injected errors) are embedded again. ``runtime``:
    where the model layer's shards run (``runtime.executor``, ``runtime.shard_size``); it never changes the output.
    """
    from toolkiln.verify.evaluate import evaluate_injection
    from toolkiln.verify.report import summary_metrics

    t_all = time.perf_counter()
    caches = RuleCaches()
    if pool is not None:
        n_trusted = caches.trust_pool(pool)
        if log:
            log.info("trusting definition clarity of %d pool APIs", n_trusted)
    preloaded = 0
    # the pool's vectors are MiniLM's: a judge with the static encoder embeds the offered APIs itself (cheap)
    if (api_embeddings is not None and api_embeddings.height and hasattr(judge, "preload")
            and getattr(judge, "encoder", "minilm") == "minilm"):
        preloaded = judge.preload(api_embeddings["text"].to_list(), api_embeddings["embedding"].to_numpy())
        if log:
            log.info("model layer: %d API embeddings from the pool", preloaded)
    docs = Path(data_docs_dir) if data_docs_dir else None
    result = verify_dialogs(dialogs, cfg, judge, caches=caches, expectations=expectations_dir,
                            data_docs_dir=docs / "dialogs_rules" if docs else None, runtime=runtime,
                            shard_size=getattr(runtime, "shard_size", 2000))
    timings = dict(result.timings)
    if log:
        log.info("verified %d of %d dialogs (rule pass %.3f, final %.3f)%s", result.verified.height, dialogs.height,
                 result.metrics["pass_rate"]["rules"] or 0, result.metrics["pass_rate"]["final"] or 0,
                 "" if cfg.enabled else " [verify.enabled=false: every row kept]")
    injection = None
    t0 = time.perf_counter()
    if cfg.injection.enabled and dialogs.height:
        injection = evaluate_injection(dialogs, cfg, judge, seed=seed, caches=caches, expectations=expectations_dir,
                                       checks=result.checks)
    timings["injection"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    gx = run_suites(result, cfg, expectations_dir, docs)
    timings["output_suites_and_data_docs"] = round(time.perf_counter() - t0, 3)
    timings["total"] = round(time.perf_counter() - t_all, 3)
    metrics = summary_metrics(result.metrics, injection, gx)
    metrics["timings"] = timings
    metrics["preloaded_api_embeddings"] = preloaded
    # which encoder ranked requests against APIs (None: an LLM judge or no model layer)
    metrics["judge_encoder"] = getattr(judge, "encoder", None)
    return Verification(result=result, injection=injection, gx=gx, metrics=metrics)
