"""Recall per error kind and false rejects on clean data (after ToolACE §3.3; README "Verification").

The input dialogs are taken as clean (a simulator's output is meant to be
correct) and verified as they are: whatever is rejected counts as a false reject,
an upper bound, since a real generator bug is also counted. Then corruptions of
rows both layers accept are verified, each error kind in a frame of its own (a
``batch`` of the rule layer, so uniqueness holds within a kind): the corrupted
rows replace their sources, and the ``duplicate`` kind's frame keeps the clean
set, since its copies duplicate clean rows. All frames go through the rule layer
in one GX run, and all corrupted rows through the model layer in one batch. Both
layers judge every injected row, so recall is reported for the rule layer, the
model layer and their union, with the checks that fired.

The bar: every ``rule`` kind caught by the rule layer at >= 99 %, and <= 1 % of
clean rows rejected by the rule layer.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl

from toolkiln.verify.config import VerifyConfig
from toolkiln.verify.inject import KINDS, inject
from toolkiln.verify.model import MODEL_CHECKS, ModelJudge, model_checks
from toolkiln.verify.rules import RuleCaches, rule_layer

RULE_RECALL_BAR = 0.99
FALSE_REJECT_BAR = 0.01


def _model_only(df: pl.DataFrame, cfg: VerifyConfig, judge: ModelJudge | None) -> pl.DataFrame:
    if judge is None or not cfg.model.enabled:
        return pl.DataFrame({c: [True] * df.height for c in (*MODEL_CHECKS, "ok_model")})
    judged = model_checks(df.select("id", "type", "system", "tools", "messages"), judge, unparsable=cfg.model.unparsable)
    return judged.select(*MODEL_CHECKS, "ok_model")


def _both_layers(df: pl.DataFrame, cfg: VerifyConfig, judge: ModelJudge | None, caches: RuleCaches,
                 expectations: Any) -> tuple[pl.DataFrame, list[str]]:
    layer = rule_layer(df, cfg.rules, caches, expectations=expectations)
    return pl.concat([layer.checked, _model_only(df, cfg, judge)], how="horizontal"), list(layer.checks)


def _r(x: float) -> float:
    return round(float(x), 6)


def _base_from(checks: pl.DataFrame, clean: pl.DataFrame, cfg: VerifyConfig, judge: ModelJudge | None
               ) -> tuple[pl.DataFrame, list[str]]:
    """Both layers' verdicts on ``clean`` from a verification that already ran (``checks`` has its rows in order):
    the model layer judges only the rows the rule layer rejected there, which it had not seen."""
    rule_cols = [c for c in checks.columns if c.startswith("ok_") and not c.startswith("ok_model") and c != "ok_rules"]
    base = checks.select(*rule_cols, "ok_rules", *MODEL_CHECKS, "ok_model")
    unjudged = base["ok_model"].is_null()
    if unjudged.any():
        judged = _model_only(clean.filter(unjudged), cfg, judge)
        base = base.with_row_index("_pos")
        filled = base.filter(unjudged).drop(*MODEL_CHECKS, "ok_model").hstack(judged)
        base = pl.concat([base.filter(~unjudged), filled]).sort("_pos").drop("_pos")
    return pl.concat([clean, base], how="horizontal"), rule_cols


def evaluate_injection(clean: pl.DataFrame, cfg: VerifyConfig, judge: ModelJudge | None, *, seed: int,
                       caches: RuleCaches | None = None, expectations: Any = None,
                       checks: pl.DataFrame | None = None) -> dict[str, Any]:
    """Recall per kind (rule / model / either) and false-reject rates on ``clean``.

    ``checks``: the verdicts of a verification of ``clean`` that already ran (``VerifyResult.checks``, one row
    per ``clean`` row, in order); then the clean sample is not verified a second time.
    """
    caches = caches or RuleCaches()
    inj = cfg.injection
    if checks is not None and checks.height != clean.height:
        raise ValueError(f"evaluate_injection: checks has {checks.height} rows, clean has {clean.height}")
    if clean.height > inj.clean_sample:
        pos = clean.with_row_index("_pos").sample(inj.clean_sample, seed=seed, shuffle=False)["_pos"]
        clean = clean[pos]
        checks = checks[pos] if checks is not None else None
    if checks is not None:
        base, base_checks = _base_from(checks, clean, cfg, judge)
    else:
        base, base_checks = _both_layers(clean, cfg, judge, caches, expectations)
    n = base.height
    fr = {"rules": _r((~base["ok_rules"]).mean()) if n else None,
          "model": _r((~base["ok_model"]).mean()) if n else None,
          "final": _r((~(base["ok_rules"] & base["ok_model"])).mean()) if n else None}
    fr_checks = {c: int((~base[c]).sum()) for c in base_checks + list(MODEL_CHECKS) if (~base[c]).sum()}

    # Corrupt only rows both layers accept, so each injected row carries exactly its one error.
    sources = clean.filter((base["ok_rules"] & base["ok_model"]).to_list())
    bad_all, _ = inject(sources, per_kind=inj.per_kind, seed=seed)
    frames, batch, spans = [], [], {}
    start = 0
    for b, kind in enumerate(KINDS):
        bad = bad_all.filter(pl.col("kind") == kind)
        if bad.height == 0:
            continue
        # duplicate: the copies follow the clean set they duplicate; other kinds stand alone (their sources gone)
        frame = pl.concat([clean, bad.drop("kind", "source_id")]) if kind == "duplicate" else bad.drop("kind", "source_id")
        frames.append(frame)
        batch += [b] * frame.height
        spans[kind] = (start + frame.height - bad.height, start + frame.height)
        start += frame.height
    if frames:
        layer = rule_layer(pl.concat(frames), cfg.rules, caches, expectations=expectations, batch=batch)
        ruled, checks = layer.checked, list(layer.checks)
        judged = _model_only(bad_all, cfg, judge).with_columns(bad_all["kind"])
    kinds: dict[str, Any] = {}
    for kind, layer_name in KINDS.items():
        if kind not in spans:
            kinds[kind] = {"layer": layer_name, "n": 0, "note": "no clean dialog this kind applies to"}
            continue
        lo, hi = spans[kind]
        sub = pl.concat([ruled.slice(lo, hi - lo).select(*checks, "ok_rules"),
                         judged.filter(pl.col("kind") == kind).drop("kind")], how="horizontal")
        rules_caught = ~sub["ok_rules"]
        model_caught = ~sub["ok_model"]
        fired = Counter(c for c in checks + list(MODEL_CHECKS) for v in sub[c] if not v)
        kinds[kind] = {"layer": layer_name, "n": sub.height, "recall_rules": _r(rules_caught.mean()),
                       "recall_model": _r(model_caught.mean()), "recall_any": _r((rules_caught | model_caught).mean()),
                       "checks_fired": dict(fired.most_common())}
    rule_kinds = {k: v for k, v in kinds.items() if v["layer"] == "rule" and v["n"]}
    min_rule = min((v["recall_rules"] for v in rule_kinds.values()), default=None)
    return {
        "n_clean": n, "per_kind": inj.per_kind, "judge": getattr(judge, "name", None),
        "false_reject": fr, "false_reject_checks": fr_checks, "kinds": kinds,
        "bars": {"rule_recall_min": min_rule, "rule_recall_bar": RULE_RECALL_BAR,
                 "rule_recall_ok": min_rule is not None and min_rule >= RULE_RECALL_BAR,
                 "false_reject_rules": fr["rules"], "false_reject_bar": FALSE_REJECT_BAR,
                 "false_reject_ok": fr["rules"] is not None and fr["rules"] <= FALSE_REJECT_BAR},
    }
