"""The model layer: value grounding, the embedded judge, and the LLM judge over the real local HTTP test server."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from toolkiln.llm.http import OpenAIBackend
from toolkiln.testing.chatserver import ChatTestServer, FaultPlan
from toolkiln.verify.inject import inject
from toolkiln.verify.model import (MODEL_CHECKS, Context, DialogView, EmbeddedJudge, LLMJudge, grounded, model_checks,
                                   parse_verdict, sharded_model_checks)


def test_grounding_against_user_text_tool_results_and_schema():
    ctx = Context.of(["Book a table for 4 at Casa Nova on May 3rd, 2025 at 19:30, about 1,200 EUR budget.",
                      '{"user_id": 3815}'])
    assert grounded("Casa Nova", ctx, {}) and grounded("casa nova", ctx, {})
    assert grounded(4, ctx, {}) and grounded(4.0, ctx, {}) and grounded(1200, ctx, {}) and grounded(3815, ctx, {})
    assert grounded("2025-05-03", ctx, {"format": "date"})  # a date written out in words
    assert grounded("metric", ctx, {"enum": ["metric", "imperial"]}) and grounded(10, ctx, {"default": 10})
    assert grounded(True, ctx, {}) and grounded(["Casa Nova"], ctx, {"items": {}})
    assert not grounded("El Toro", ctx, {}) and not grounded(5, ctx, {}) and not grounded("2025-05-04", ctx, {})


@pytest.fixture(scope="module")
def judge():
    return EmbeddedJudge()


def test_embedded_judge_passes_clean_and_catches_model_kinds(clean, judge):
    ok = model_checks(clean, judge)
    assert ok["ok_model"].all(), ok.filter(~pl.col("ok_model"))["model_reasons"].to_list()
    for kind, check in (("hallucinated_value", "ok_model_hallucination"), ("wrong_intent", "ok_model_consistency"),
                        ("bad_tool_response", "ok_model_tool_response")):
        bad, _ = inject(clean, per_kind=4, seed=1, kinds=(kind,))
        assert bad.height > 0
        out = model_checks(bad, judge)
        assert (~out[check]).sum() >= bad.height - 1, (kind, out["model_reasons"].to_list())
    bad, _ = inject(clean, per_kind=3, seed=1, kinds=("hallucinated_value",))
    reasons = model_checks(bad, judge)["model_reasons"].to_list()
    assert all("is not grounded" in r[0] for r in reasons)


@pytest.mark.slow
def test_static_encoder_judge_passes_clean_and_catches_wrong_intent(clean, static_encoder):
    judge = EmbeddedJudge(encoder="static", static_encoder=str(static_encoder), intent_margin=0.15)
    ok = model_checks(clean, judge)
    assert ok["ok_model_consistency"].all(), ok.filter(~pl.col("ok_model"))["model_reasons"].to_list()
    bad, _ = inject(clean, per_kind=8, seed=1, kinds=("wrong_intent",))
    out = model_checks(bad, judge)
    assert (~out["ok_model_consistency"]).sum() >= bad.height - 2, out["model_reasons"].to_list()
    # the pool's MiniLM vectors live in another space: a static judge refuses them
    with pytest.raises(ValueError, match="minilm embeddings into a judge whose encoder is static"):
        judge.preload(["x"], np.zeros((1, 384), dtype=np.float32))


def test_static_judge_needs_its_encoder_folder():
    with pytest.raises(ValueError, match="--static-encoder"):
        EmbeddedJudge(encoder="static")
    with pytest.raises(ValueError, match="expected 'minilm' or 'static'"):
        EmbeddedJudge(encoder="bert")


def test_preloaded_pool_embeddings_leave_only_requests_to_embed(clean, monkeypatch):
    import toolkiln.embed
    from toolkiln.verify.model import api_text

    views = [DialogView.from_row(r) for r in clean.iter_rows(named=True)]
    apis = sorted({api_text(a) for d in views for a in d.tools.values()})
    pool_emb = toolkiln.embed.embed_texts(apis)  # as synthesize_apis would have made them

    embedded: list[str] = []
    real = toolkiln.embed.embed_texts

    def spy(texts, **kw):
        embedded.extend(texts)
        return real(texts, **kw)

    monkeypatch.setattr(toolkiln.embed, "embed_texts", spy)
    fresh = EmbeddedJudge()
    plain = model_checks(clean, fresh)
    all_texts = set(embedded)
    embedded.clear()
    warm = EmbeddedJudge()
    assert warm.preload(apis, pool_emb) == len(apis)
    preloaded = model_checks(clean, warm)
    assert set(apis) <= all_texts and embedded and not set(embedded) & set(apis)  # only the requests were embedded
    assert preloaded.equals(plain)  # same verdicts and reasons
    with pytest.raises(ValueError, match="2 texts but 1 embeddings"):
        warm.preload(["a", "b"], pool_emb[:1])


def test_sharded_model_layer_gives_the_single_call_verdicts_with_bfloat16(clean):
    # clean rows plus every model-layer corruption, and one unparsable row, in shards of 7 (the last one short)
    bad, _ = inject(clean, per_kind=4, seed=1, kinds=("hallucinated_value", "wrong_intent", "bad_tool_response"))
    rows = pl.concat([clean, bad.select(clean.columns)]).with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("{broken")).otherwise(pl.col("tools")).alias("tools"))
    whole = model_checks(rows, EmbeddedJudge(embed_dtype="bfloat16"))
    sharded_judge = EmbeddedJudge(embed_dtype="bfloat16")
    sharded = sharded_model_checks(rows, sharded_judge, shard_size=7)
    assert sharded.equals(whole)
    assert (~whole["ok_model"]).sum() > bad.height // 2 and "judge_error" in whole["model_outcomes"][5]
    # bfloat16 vectors depend on their batch's padding: a shard must read the vectors of the one call over all
    # texts, not embed its own part again
    views = [DialogView.from_row(r) for r in rows.slice(7, 7).iter_rows(named=True)]
    part = sharded_judge.for_shard(views)
    one_call = EmbeddedJudge(embed_dtype="bfloat16")
    one_call.prepare([DialogView.from_row(r) for i, r in enumerate(rows.iter_rows(named=True)) if i != 5])
    assert set(part.texts(views)) <= set(part._emb)
    assert all((part._emb[t] == one_call._emb[t]).all() for t in part.texts(views))


@pytest.mark.parametrize("text, outcome", [
    ('{"verdict": "pass", "reason": "all values appear"}', "pass"),
    ('Sure! ```json\n{"verdict": "FAIL", "reason": "city is made up"}\n```', "fail"),
    ("FAIL: the city was never mentioned", "fail"),
    ("yes", "pass"),
    ("I cannot decide without more context.", "judge_unparsable"),
    ('{"answer": 3}', "judge_unparsable"),
    ("", "judge_unparsable"),
    (None, "judge_unparsable"),
])
def test_parse_verdict(text, outcome):
    assert parse_verdict(text).outcome == outcome


def _responder(body: dict) -> str:
    prompt = body["messages"][-1]["content"]
    if "Hallucination check" in prompt:
        return "Let me think about it... I am not sure."  # never a verdict
    if "Consistency check" in prompt:
        return json.dumps({"verdict": "fail" if "Porto" in prompt else "pass", "reason": "checked"})
    return '{"verdict": "pass", "reason": "fits returns"}'


def test_llm_judge_one_prompt_per_subquestion_and_unparsable_is_recorded(clean):
    rows = clean.filter(pl.col("type").is_in(["single", "non_tool"])).head(4)
    with ChatTestServer(responder=_responder) as srv:
        backend = OpenAIBackend(srv.base_url, "judge-model", concurrency=4, timeout_s=5, max_retries=0,
                                api_key_env="TOOLKILN_NO_KEY")
        out = model_checks(rows, LLMJudge(backend=backend, model="judge-model"), unparsable="reject")
        n_calls = sum(1 for v in [DialogView.from_row(r) for r in rows.iter_rows(named=True)] if v.call_turns())
        # three sub-questions per dialog with calls, only consistency for text-only dialogs
        assert srv.total_requests == 3 * n_calls + (rows.height - n_calls)
        kept = model_checks(rows, LLMJudge(backend=backend, model="judge-model"), unparsable="keep")
    outcomes = [json.loads(o) for o in out["model_outcomes"]]
    for o, t in zip(outcomes, out["type"]):
        assert o["hallucination"] == ("judge_unparsable" if t == "single" else "skipped")
    assert not out.filter(pl.col("type") == "single")["ok_model_hallucination"].any()
    has_porto = [("Porto" in m) for m in out["messages"]]
    assert [not c for c in out["ok_model_consistency"]] == has_porto
    assert kept["ok_model_hallucination"].all()
    assert any("judge_unparsable" in r for rs in kept["model_reasons"] for r in rs)  # recorded even when kept


def test_llm_backend_failure_is_a_judge_error_outcome(clean):
    rows = clean.head(2)
    with ChatTestServer(faults=FaultPlan(schedule=lambda body, attempt: "500")) as srv:
        backend = OpenAIBackend(srv.base_url, "m", concurrency=2, timeout_s=5, max_retries=0, api_key_env="TOOLKILN_NO_KEY")
        out = model_checks(rows, LLMJudge(backend=backend))
    assert not out["ok_model"].any()
    assert all("judge_error" in o for o in out["model_outcomes"])
    assert set(MODEL_CHECKS) <= set(out.columns)
