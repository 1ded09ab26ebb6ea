"""Recall per error kind and false rejects on clean data (after ToolACE §3.3).

The input dialogs are taken as clean (a simulator's output is meant to be
correct) and verified as they are: whatever is rejected counts as a false reject,
an upper bound, since a real generator bug is also counted. Then, one error kind
at a time, corruptions of rows both layers accept replace their sources in the
clean set (a generator that made the error would not also have made the clean
sample; ``duplicate`` is the one kind whose originals stay) and the frame is
verified again. Both layers judge every injected row, so recall is reported for
the rule layer, the model layer and their union, with the checks that fired.

The bar: every ``rule`` kind caught by the rule layer at >= 99 %,
and <= 1 % of clean rows rejected by the rule layer.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl

from toolkiln.verify.config import VerifyConfig
from toolkiln.verify.inject import KINDS, inject
from toolkiln.verify.model import MODEL_CHECKS, ModelJudge, model_checks
from toolkiln.verify.rules import RULE_CHECKS, RuleCaches, rule_checks

RULE_RECALL_BAR = 0.99
FALSE_REJECT_BAR = 0.01


def _model_only(df: pl.DataFrame, cfg: VerifyConfig, judge: ModelJudge | None) -> pl.DataFrame:
    if judge is None or not cfg.model.enabled:
        return pl.DataFrame({c: [True] * df.height for c in (*MODEL_CHECKS, "ok_model")})
    judged = model_checks(df.select("id", "type", "system", "tools", "messages"), judge, unparsable=cfg.model.unparsable)
    return judged.select(*MODEL_CHECKS, "ok_model")


def _both_layers(df: pl.DataFrame, cfg: VerifyConfig, judge: ModelJudge | None, caches: RuleCaches) -> pl.DataFrame:
    out = rule_checks(df, cfg.rules, caches)
    return pl.concat([out, _model_only(df, cfg, judge)], how="horizontal")


def _r(x: float) -> float:
    return round(float(x), 6)


def evaluate_injection(clean: pl.DataFrame, cfg: VerifyConfig, judge: ModelJudge | None, *, seed: int,
                       caches: RuleCaches | None = None) -> dict[str, Any]:
    """Recall per kind (rule / model / either) and false-reject rates on ``clean``."""
    caches = caches or RuleCaches()
    inj = cfg.injection
    if clean.height > inj.clean_sample:
        clean = clean.sample(inj.clean_sample, seed=seed, shuffle=False)
    base = _both_layers(clean, cfg, judge, caches)
    n = base.height
    fr = {"rules": _r((~base["ok_rules"]).mean()) if n else None,
          "model": _r((~base["ok_model"]).mean()) if n else None,
          "final": _r((~(base["ok_rules"] & base["ok_model"])).mean()) if n else None}
    fr_checks = {c: int((~base[c]).sum()) for c in RULE_CHECKS + MODEL_CHECKS if (~base[c]).sum()}

    # Corrupt only rows both layers accept, so each injected row carries exactly its one error.
    sources = clean.filter((base["ok_rules"] & base["ok_model"]).to_list())
    kinds: dict[str, Any] = {}
    for kind, layer in KINDS.items():
        bad, replaced = inject(sources, per_kind=inj.per_kind, seed=seed, kinds=(kind,))
        if bad.height == 0:
            kinds[kind] = {"layer": layer, "n": 0, "note": "no clean dialog this kind applies to"}
            continue
        # Rules see the whole frame (duplicates are relative to it); the model layer judges rows one by one.
        frame = pl.concat([clean.filter(~pl.col("id").is_in(list(replaced))), bad.drop("kind", "source_id")])
        ruled = rule_checks(frame, cfg.rules, caches).tail(bad.height)
        sub = pl.concat([ruled.select(*RULE_CHECKS, "ok_rules"), _model_only(bad, cfg, judge)], how="horizontal")
        rules_caught = ~sub["ok_rules"]
        model_caught = ~sub["ok_model"]
        fired = Counter(c for c in RULE_CHECKS + MODEL_CHECKS for v in sub[c] if not v)
        kinds[kind] = {"layer": layer, "n": sub.height, "recall_rules": _r(rules_caught.mean()),
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
