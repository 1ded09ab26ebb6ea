"""The chat test server itself: protocol, deterministic faults, clean shutdown."""

import threading

import httpx
import pytest

from toolkiln.testing.chatserver import ChatTestServer, FaultPlan, request_key


def _body(i: int) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": f"u{i}"}], "temperature": 0.0, "n": 1}


def test_protocol_models_and_completion():
    with ChatTestServer(responder=lambda body: '{"api": "x"}', model_name="tiny") as srv:
        models = httpx.get(f"{srv.base_url}/models").json()
        resp = httpx.post(f"{srv.base_url}/chat/completions", json=_body(0))
        missing = httpx.post(f"{srv.base_url}/nope", json=_body(0))
        bad = httpx.post(f"{srv.base_url}/chat/completions", content=b"not json")
        assert srv.counts == {request_key(_body(0)): 1}
    assert models["data"][0]["id"] == "tiny"
    data = resp.json()
    assert data["choices"][0]["message"] == {"role": "assistant", "content": '{"api": "x"}'}
    assert data["usage"]["prompt_tokens"] == 1
    assert missing.status_code == 404 and bad.status_code == 400


def test_fault_decisions_are_deterministic_and_near_their_rates():
    plan = FaultPlan(seed=5, p_500=0.2, p_429=0.1, p_malformed=0.2)
    draws = [plan.decide({}, f"k{i}", a) for i in range(500) for a in range(2)]
    assert draws == [plan.decide({}, f"k{i}", a) for i in range(500) for a in range(2)]
    assert draws != [FaultPlan(seed=6, p_500=0.2, p_429=0.1, p_malformed=0.2).decide({}, f"k{i}", a)
                     for i in range(500) for a in range(2)]
    assert 150 <= draws.count("500") <= 250 and 60 <= draws.count("429") <= 140
    assert {d for d in draws if d not in (None, "500", "429")} == {"not_json", "no_choices", "truncated", "no_content"}


def test_schedule_overrides_draws():
    plan = FaultPlan(p_500=1.0, schedule=("429", None))
    assert [plan.decide({}, "k", a) for a in range(3)] == ["429", "500", "500"]


@pytest.mark.parametrize("kwargs,match", [
    (dict(p_500=0.7, p_429=0.7), "sum to <= 1"),
    (dict(p_hang=-0.1), ">= 0"),
    (dict(schedule=("boom",)), "unknown fault kinds"),
    (dict(malformed_kinds=("html",)), "malformed_kinds"),
])
def test_bad_fault_plans_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FaultPlan(**kwargs)


def test_stop_is_clean_with_requests_hanging():
    srv = ChatTestServer(faults=FaultPlan(p_hang=1.0, hang_s=600)).start()
    errors = []

    def client():
        try:
            httpx.post(f"{srv.base_url}/chat/completions", json=_body(1), timeout=30)
        except httpx.HTTPError as exc:
            errors.append(exc)

    t = threading.Thread(target=client)
    t.start()
    while srv.total_requests == 0:
        t.join(0.01)
    srv.stop()  # must wake the 600 s hang rather than wait for it
    t.join(timeout=20)
    assert not t.is_alive() and len(errors) == 1
    with pytest.raises(RuntimeError, match="not running"):
        _ = srv.base_url
