"""OpenAIBackend against the real local chat-completions test server, with injected faults."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from toolkiln.llm import make_backend
from toolkiln.llm.base import ChatRequest
from toolkiln.llm.config import LLMConfig, LLMRuntime
from toolkiln.llm.http import OpenAIBackend, parse_retry_after
from toolkiln.testing.chatserver import ChatTestServer, FaultPlan, request_key

SECRET = "sk-test-DO-NOT-LEAK-4f1c9a"
KEY_ENV = "TOOLKILN_TEST_LLM_KEY"


def reqs(n: int, prefix: str = "q") -> list[ChatRequest]:
    return [
        ChatRequest(messages=({"role": "user", "content": f"{prefix}{i}"},), model="m", tag=f"t{i}") for i in range(n)
    ]


def backend(srv: ChatTestServer, **kw) -> OpenAIBackend:
    opts = dict(api_key_env=KEY_ENV, concurrency=4, timeout_s=1.0, max_retries=3, backoff_s=0.01, max_backoff_s=0.05)
    opts.update(kw)
    return OpenAIBackend(srv.base_url, "m", **opts)


def always(kind: str):
    return lambda body, attempt: kind


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)


def test_happy_path_order_texts_usage(tmp_path):
    with ChatTestServer() as srv:
        rs = backend(srv).chat_many(reqs(12), desc="happy")
        assert srv.total_requests == 12
        assert srv.stats.authorizations == {f"Bearer {SECRET}": 12}
    assert [r.texts for r in rs] == [[f"echo: q{i}"] for i in range(12)]
    assert [r.key for r in rs] == [q.key() for q in reqs(12)]
    assert all(r.ok and r.attempts == 1 and not r.cached and r.error is None for r in rs)
    assert rs[0].usage == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert all(r.latency_s > 0 for r in rs)


def test_model_filled_from_backend_and_n_choices():
    seen = []

    def responder(body):
        seen.append(body["model"])
        return [f"a{i}" for i in range(body["n"])]

    with ChatTestServer(responder=responder) as srv:
        [r] = backend(srv).chat_many([ChatRequest(messages=({"role": "user", "content": "x"},), n=3)])
    assert seen == ["m"] and r.ok and r.texts == ["a0", "a1", "a2"]


def test_repeated_request_in_a_batch_is_asked_once():
    batch = reqs(3) + reqs(2)
    with ChatTestServer() as srv:
        rs = backend(srv).chat_many(batch)
        assert srv.total_requests == 3
    assert [r.texts for r in rs] == [["echo: q0"], ["echo: q1"], ["echo: q2"], ["echo: q0"], ["echo: q1"]]
    assert [r.key for r in rs] == [q.key() for q in batch]


def test_empty_batch():
    with ChatTestServer() as srv:
        assert backend(srv).chat_many([]) == []
        assert srv.total_requests == 0


@pytest.mark.parametrize("kind", ["500", "503", "429", "hang", "disconnect", "not_json", "no_choices", "truncated"])
def test_transient_faults_are_retried(kind):
    plan = FaultPlan(schedule=(kind, kind), hang_s=5.0, retry_after_s=0.01)
    with ChatTestServer(faults=plan) as srv:
        rs = backend(srv, timeout_s=0.3).chat_many(reqs(5))
        counts = srv.counts
    assert all(r.ok for r in rs), [r.error for r in rs]
    assert [r.texts for r in rs] == [[f"echo: q{i}"] for i in range(5)]
    assert all(r.attempts == 3 for r in rs)
    assert sorted(counts.values()) == [3] * 5


@pytest.mark.parametrize(
    "kind,reason",
    [
        ("500", "HTTP 500"),
        ("429", "HTTP 429 rate limited"),
        ("hang", "timeout after 0.2s"),
        ("not_json", "not JSON"),
        ("truncated", "not JSON"),
        ("no_choices", "no 'choices'"),
        ("disconnect", "connection error"),
    ],
)
def test_retries_are_bounded_and_failures_carry_reasons(kind, reason):
    with ChatTestServer(faults=FaultPlan(schedule=always(kind), hang_s=5.0, retry_after_s=0.01)) as srv:
        rs = backend(srv, timeout_s=0.2, max_retries=2).chat_many(reqs(3))
        counts = srv.counts
    for r in rs:
        assert not r.ok and r.texts == [] and r.attempts == 3
        assert r.error.startswith("gave up after 3 attempts: ") and reason in r.error, r.error
    assert sorted(counts.values()) == [3, 3, 3]


@pytest.mark.parametrize(
    "kind,reason", [("400", "HTTP 400 (not retried)"), ("no_content", "choice 0 has no text content")]
)
def test_final_failures_are_not_retried(kind, reason):
    with ChatTestServer(faults=FaultPlan(schedule=always(kind))) as srv:
        rs = backend(srv).chat_many(reqs(3))
        assert srv.total_requests == 3
    assert all(not r.ok and r.attempts == 1 and reason in r.error for r in rs), [r.error for r in rs]


def test_mixed_random_faults_every_request_gets_a_result(tmp_path):
    plan = FaultPlan(
        seed=3,
        p_500=0.15,
        p_429=0.1,
        p_hang=0.05,
        p_slow=0.1,
        p_malformed=0.15,
        hang_s=5.0,
        slow_s=0.05,
        retry_after_s=0.01,
    )
    with ChatTestServer(faults=plan) as srv:
        rs = backend(srv, timeout_s=0.3, max_retries=4).chat_many(reqs(40))
        counts = srv.counts
        served = srv.faults_served
    assert len(rs) == 40
    assert {"500", "429", "hang", "slow"} <= set(served)
    for i, r in enumerate(rs):
        if r.ok:
            assert r.texts == [f"echo: q{i}"]
        else:
            assert r.error and r.texts == []
        assert 1 <= r.attempts <= 5
    assert max(counts.values()) <= 5
    # p(an attempt is transient-faulty) ~ 0.43, so most succeed within 5 attempts; some needed retries.
    assert sum(r.ok for r in rs) >= 30 and any(r.attempts > 1 for r in rs)


def test_retry_after_is_honoured(caplog):
    plan = FaultPlan(schedule=("429",), retry_after_s=0.2)
    with ChatTestServer(faults=plan) as srv, caplog.at_level(logging.WARNING, logger="toolkiln.llm.http"):
        [r] = backend(srv, backoff_s=0.001, max_backoff_s=1.0).chat_many(reqs(1))
    assert r.ok and r.attempts == 2
    [msg] = [rec.getMessage() for rec in caplog.records if "retrying in" in rec.getMessage()]
    assert "HTTP 429" in msg and "retrying in 0.20s" in msg


def test_backoff_grows_and_is_capped():
    b = OpenAIBackend("http://127.0.0.1:9/v1", "m", backoff_s=1.0, max_backoff_s=5.0)
    for retry, base in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 5.0), (10, 5.0)]:
        d = b._backoff(retry, None)
        assert base / 2 <= d <= base
    assert b._backoff(0, 3.0) >= 3.0  # Retry-After wins over a shorter backoff
    assert b._backoff(0, 100.0) == 5.0  # ...but never past the cap


def test_parse_retry_after():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: go now


def test_slow_responses_within_timeout_succeed_first_time():
    with ChatTestServer(faults=FaultPlan(p_slow=1.0, slow_s=0.05)) as srv:
        rs = backend(srv, timeout_s=2.0).chat_many(reqs(4))
        assert srv.faults_served["slow"] == 4
    assert all(r.ok and r.attempts == 1 for r in rs)


@pytest.mark.parametrize("concurrency", [1, 12])  # 12: two httpx pools of 6 under one bound
def test_concurrency_bound_holds(concurrency):
    with ChatTestServer(faults=FaultPlan(latency_s=0.03)) as srv:
        rs = backend(srv, concurrency=concurrency).chat_many(reqs(24))
        peak = srv.max_in_flight
    assert all(r.ok for r in rs)
    assert peak <= concurrency
    if concurrency > 1:
        assert peak >= 2  # requests really overlap (24 requests x 30 ms each)


def test_dead_endpoint_is_recorded_not_raised():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", api_key_env=KEY_ENV, max_retries=1, backoff_s=0.0)
    rs = b.chat_many(reqs(2))
    assert all(not r.ok and r.attempts == 2 and "connection error" in r.error for r in rs)


def test_callable_inside_running_event_loop():
    with ChatTestServer() as srv:
        b = backend(srv)

        async def flow():  # e.g. a Prefect task body calling stage code synchronously
            return b.chat_many(reqs(3))

        rs = asyncio.run(flow())
    assert [r.texts for r in rs] == [["echo: q0"], ["echo: q1"], ["echo: q2"]]


def test_cache_second_run_sends_nothing(tmp_path):
    cache = tmp_path / "cache"
    with ChatTestServer() as srv:
        first = backend(srv, cache_dir=cache).chat_many(reqs(10))
        assert srv.total_requests == 10
        srv.reset_stats()
        again = backend(srv, cache_dir=cache).chat_many(reqs(10))
        assert srv.total_requests == 0
    assert [r.texts for r in again] == [r.texts for r in first]
    assert all(r.cached and r.attempts == 0 for r in again) and not any(r.cached for r in first)
    assert len(list(cache.glob("*/*.json"))) == 10


def test_only_successes_are_cached(tmp_path):
    cache = tmp_path / "cache"
    bad = {q.key() for q in reqs(6)[::2]}
    plan = FaultPlan(schedule=lambda body, attempt: "400" if request_key(body) in bad else None)
    with ChatTestServer(faults=plan) as srv:
        first = backend(srv, cache_dir=cache).chat_many(reqs(6))
    assert [r.ok for r in first] == [False, True] * 3
    with ChatTestServer() as srv:
        again = backend(srv, cache_dir=cache).chat_many(reqs(6))
        assert set(srv.counts) == bad  # only the failures are asked again
    assert all(r.ok for r in again) and [r.cached for r in again] == [False, True] * 3


def test_corrupt_cache_entry_is_a_miss(tmp_path):
    cache = tmp_path / "cache"
    with ChatTestServer() as srv:
        backend(srv, cache_dir=cache).chat_many(reqs(2))
        victim = next(cache.glob("*/*.json"))
        victim.write_text('{"truncated": ')
        srv.reset_stats()
        rs = backend(srv, cache_dir=cache).chat_many(reqs(2))
        assert srv.total_requests == 1
    assert all(r.ok for r in rs) and sorted(r.cached for r in rs) == [False, True]
    assert json.loads(victim.read_text())["texts"]  # rewritten whole


INTERRUPTED_RUN = textwrap.dedent("""
    import sys
    from toolkiln.llm.base import ChatRequest
    from toolkiln.llm.http import OpenAIBackend
    url, cache = sys.argv[1], sys.argv[2]
    reqs = [ChatRequest(messages=({"role": "user", "content": f"q{i}"},), model="m") for i in range(40)]
    OpenAIBackend(url, "m", concurrency=2, timeout_s=5, cache_dir=cache).chat_many(reqs)
""")


def test_interrupted_run_resumes_without_reasking(tmp_path):
    cache = tmp_path / "cache"
    with ChatTestServer(faults=FaultPlan(latency_s=0.05)) as srv:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
        proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED_RUN, srv.base_url, str(cache)], env=env)
        try:
            deadline = time.monotonic() + 60
            while len(list(cache.glob("*/*.json"))) < 6 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)  # the harshest interruption: no cleanup at all
        finally:
            proc.wait(timeout=30)
        answered = {p.stem for p in cache.glob("*/*.json")}
        assert 6 <= len(answered) < 40, "the first run should have been cut mid-way"
        srv.reset_stats()
        rs = OpenAIBackend(srv.base_url, "m", concurrency=8, cache_dir=cache).chat_many(reqs(40))
        reasked = set(srv.counts)
    assert all(r.ok for r in rs)
    assert reasked.isdisjoint(answered)  # nothing already answered is asked again
    assert len(reasked) == 40 - len(answered)
    assert sum(r.cached for r in rs) == len(answered)


def test_trace_keeps_raw_traffic(tmp_path):
    trace = tmp_path / "trace.jsonl"
    with ChatTestServer(
        faults=FaultPlan(schedule=lambda body, a: "400" if body["messages"][0]["content"] == "q1" else None)
    ) as srv:
        backend(srv, trace_path=trace).chat_many(reqs(3))
    rows = {r["tag"]: r for r in map(json.loads, trace.read_text().splitlines())}
    assert set(rows) == {"t0", "t1", "t2"}
    ok, bad = rows["t0"], rows["t1"]
    assert ok["request"]["messages"] == [{"role": "user", "content": "q0"}]
    assert ok["response"]["choices"][0]["message"]["content"] == "echo: q0"
    assert ok["attempts"] == 1 and ok["latency_s"] > 0 and not ok["cached"]
    assert "HTTP 400" in bad["error"] and "injected bad request" in bad["response"]
    with ChatTestServer() as srv:
        backend(srv, trace_path=trace, trace_append=True).chat_many(reqs(1, prefix="more"))
        assert len(trace.read_text().splitlines()) == 4
        backend(srv, trace_path=trace).chat_many(reqs(2, prefix="fresh"))
    assert [json.loads(r)["request"]["messages"][0]["content"] for r in trace.read_text().splitlines()] in (
        ["fresh0", "fresh1"],
        ["fresh1", "fresh0"],
    )  # a new trace holds its own run only


def test_api_key_never_leaks(tmp_path, caplog, monkeypatch):
    cache, trace = tmp_path / "cache", tmp_path / "trace.jsonl"
    caplog.set_level(logging.DEBUG)  # including httpx/httpcore debug output
    plan = FaultPlan(schedule=("500",))
    with ChatTestServer(faults=plan) as srv:
        b = backend(srv, cache_dir=cache, trace_path=trace)
        ok = b.chat_many(reqs(3))
        assert srv.stats.authorizations[f"Bearer {SECRET}"] == 6  # the key was sent, as a Bearer header
    # A server that rejects the key and echoes it back in its 401 body.
    with ChatTestServer(require_auth="another-key") as srv:
        b401 = backend(srv, cache_dir=cache, trace_path=trace, trace_append=True)
        denied = b401.chat_many(reqs(2, prefix="z"))
    assert all(r.ok for r in ok)
    assert all(not r.ok and "HTTP 401" in r.error and "***" in r.error for r in denied)
    blobs = [rec.getMessage() for rec in caplog.records] + [repr(b), repr(b401)]
    blobs += [str(r.to_dict()) for r in ok + denied]
    blobs += [p.read_text() for p in cache.rglob("*") if p.is_file()] + [trace.read_text()]
    assert any("HTTP 500" in m for m in blobs)  # the retry was logged...
    assert not [m for m in blobs if SECRET in m]  # ...but the key appears nowhere
    assert SECRET not in str(vars(b))


def test_missing_key_sends_no_authorization(monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with ChatTestServer() as srv:
        [r] = backend(srv).chat_many(reqs(1))
        assert r.ok and not srv.stats.authorizations


def test_make_backend():
    assert make_backend(LLMConfig()) is None
    cfg = LLMConfig(backend="openai", base_url="http://127.0.0.1:1234/v1/", model="qwen")
    b = make_backend(cfg, LLMRuntime(concurrency=3, timeout_s=7.0, max_retries=2, cache_dir=""))
    assert isinstance(b, OpenAIBackend)
    assert (b.url, b.model, b.concurrency, b.timeout_s, b.max_retries, b.cache) == (
        "http://127.0.0.1:1234/v1/chat/completions",
        "qwen",
        3,
        7.0,
        2,
        None,
    )
    with pytest.raises(ValueError, match="not a local model folder"):
        make_backend(LLMConfig(backend="transformers", model="no/such/folder"))


def test_ssl_context_is_built_once_per_backend(monkeypatch):
    # Loading the CA bundle per client per call was the main cost of many small chat_many calls.
    import httpx

    built = []
    real = httpx.create_ssl_context
    monkeypatch.setattr(httpx, "create_ssl_context", lambda *a, **k: built.append(1) or real(*a, **k))
    with ChatTestServer() as srv:
        b = backend(srv, concurrency=16)  # two client shards per call
        for k in range(3):
            assert all(r.ok for r in b.chat_many(reqs(5, prefix=f"c{k}-")))
        assert srv.total_requests == 15
    assert len(built) == 1


def test_circuit_breaker_stops_hammering_a_dead_endpoint():
    with ChatTestServer(faults=FaultPlan(schedule=always("503"))) as srv:
        b = backend(srv, concurrency=1, max_retries=0, breaker_failures=3, breaker_cooldown_s=3600)
        rs = b.chat_many(reqs(20))
        later = b.chat_many(reqs(5, prefix="later"))  # the circuit stays open across calls
        sent = srv.total_requests
    assert sent == 3  # three failed requests, then nothing more reached the server
    assert [r.error.startswith("gave up after 1 attempt: HTTP 503") for r in rs[:3]] == [True] * 3
    assert all(
        not r.ok and r.error.startswith("circuit_open: the endpoint failed 3 consecutive requests")
        for r in rs[3:] + later
    )
    assert b.stats == {"ok": 0, "cached": 0, "failed": 3, "circuit_open": 22}


def test_circuit_breaker_probe_closes_it_when_the_endpoint_recovers():
    dead = {"a0", "b0", "c0"}  # the contents of the first three requests
    plan = FaultPlan(schedule=lambda body, attempt: "500" if body["messages"][0]["content"] in dead else None)
    with ChatTestServer(faults=plan) as srv:
        b = backend(srv, concurrency=1, max_retries=0, breaker_failures=3, breaker_cooldown_s=0)
        rs = b.chat_many(reqs(1, "a") + reqs(1, "b") + reqs(1, "c") + reqs(5, "ok"))
    assert [r.ok for r in rs] == [False] * 3 + [True] * 5  # the first request after opening is the probe
    assert b.stats["circuit_open"] == 0 and b.breaker.trips == 1 and not b.breaker.is_open()


def test_outage_above_the_threshold_exits_nonzero():
    from toolkiln.llm import EndpointOutage, check_outage

    class Fake:
        stats = {"ok": 90, "cached": 5, "failed": 2, "circuit_open": 3}

    assert check_outage(Fake(), 0.05, "s")["failure_rate"] == 0.05  # at the threshold: fine
    with pytest.raises(EndpointOutage) as exc:
        check_outage(Fake(), 0.04, "s")
    assert exc.value.code == 3 and "5 of 100 LLM requests failed" in str(exc.value)
    assert check_outage(None, 0.0, "s")["failure_rate"] == 0.0  # the simulator sends nothing


def test_json_mode_is_sent_as_openai_response_format():
    req = ChatRequest(messages=({"role": "user", "content": "JSON please"},), response_format="json_object")
    assert req.payload()["response_format"] == {"type": "json_object"}
    assert "response_format" not in ChatRequest(messages=req.messages).payload()
    assert req.key() != ChatRequest(messages=req.messages).key()
    with pytest.raises(ValueError, match="response_format"):
        ChatRequest(messages=req.messages, response_format="xml")
    with pytest.raises(ValueError, match="a JSON Schema dict goes with response_format='json_schema'"):
        ChatRequest(messages=req.messages, response_format="json_schema")
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    structured = ChatRequest(messages=req.messages, response_format="json_schema", schema=schema)
    assert structured.payload()["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema},
    }
