"""Chat backend for any OpenAI-compatible ``/chat/completions`` endpoint (docs/architecture.md#backends).

vLLM, llama.cpp's server, Ollama and hosted APIs all speak this protocol. The
ToolACE agents (arXiv 2409.00920 §2: API synthesis, user/assistant/tool agents,
model checking) send many independent prompts, so :meth:`OpenAIBackend.chat_many`
answers a batch concurrently under a hard bound, and keeps a long run alive
through the faults real endpoints produce:

* timeouts, connection errors, 429 and 5xx are retried with exponential backoff
  and jitter (429 waits at least its ``Retry-After``, capped at ``max_backoff_s``);
* other 4xx are final (retrying a bad request cannot help) and are recorded;
* a 200 whose body is not a chat completion (not JSON, no ``choices``, truncated)
  is retried like a 5xx, since proxies and overloaded servers produce them
  transiently; a choice without text content (refusal, tool-call only, cut at
  ``length`` with nothing) is the model's answer, so it is recorded, not retried;
* every outcome is a :class:`ChatResult`; nothing raises;
* a circuit breaker (``breaker_failures``) stops hammering a dead endpoint: after that
  many consecutive failed requests (each after its own retries) every queued request
  fails at once with reason ``circuit_open`` instead of being retried; after
  ``breaker_cooldown_s`` one probe request is let through, and its success closes the
  circuit again. ``stats`` counts answered, failed and short-circuited requests, which a
  stage compares with its failure threshold (:func:`toolkiln.llm.check_outage`);
* identical requests (same :meth:`ChatRequest.key`) get one answer, within a batch
  as across reruns through the cache: vary ``seed`` for independent samples.

The API key is read from the environment variable named by ``api_key_env`` at
call time and only ever placed in the ``Authorization`` header: it is not stored
on the object, and any error text is scrubbed of it before it is recorded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import email.utils
import json
import logging
import os
import random
import ssl
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence, TypeVar

import httpx
from tqdm.auto import tqdm

from toolkiln.llm.base import ChatRequest, ChatResult
from toolkiln.llm.cache import ResponseCache, TraceWriter

log = logging.getLogger(__name__)

T = TypeVar("T")

_SNIPPET = 300  # characters of a bad body kept in an error reason


def run_sync(make_coro: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop.

    Prefect tasks, notebooks and async servers call stage code with a loop already
    running in this thread, where ``asyncio.run`` refuses; there the coroutine gets
    a fresh loop in a worker thread instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="toolkiln-llm") as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Open(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Final(Exception):
    def __init__(self, reason: str, response: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.response = response


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_completion(body: Any) -> tuple[list[str], dict | None]:
    """Texts (by choice index) and usage from a chat-completion body.

    Raises :class:`_Retryable` when the body is not a completion at all and
    :class:`_Final` when a choice carries no text.
    """
    if not isinstance(body, dict):
        raise _Retryable(f"malformed response: expected a JSON object, got {type(body).__name__}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _Retryable(f"malformed response: no 'choices' (keys: {sorted(body)[:10]})")
    texts: list[tuple[int, str]] = []
    for pos, ch in enumerate(choices):
        if not isinstance(ch, dict):
            raise _Retryable(f"malformed response: choice {pos} is {type(ch).__name__}, not an object")
        msg = ch.get("message")
        content = msg.get("content") if isinstance(msg, dict) else None
        if not isinstance(content, str):
            raise _Final(f"choice {pos} has no text content (finish_reason={ch.get('finish_reason')!r}, "
                         f"message keys={sorted(msg) if isinstance(msg, dict) else None})", response=body)
        index = ch.get("index", pos)
        texts.append((index if isinstance(index, int) else pos, content))
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
    return [t for _, t in sorted(texts, key=lambda p: p[0])], usage


class OpenAIBackend:
    """Concurrent, retrying, caching client for an OpenAI-compatible chat endpoint."""

    def __init__(self, base_url: str, model: str, *, api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8,
                 timeout_s: float = 60.0, max_retries: int = 5, backoff_s: float = 1.0, max_backoff_s: float = 30.0,
                 breaker_failures: int = 0, breaker_cooldown_s: float = 30.0,
                 cache_dir: str | Path | None = None, trace_path: str | Path | None = None,
                 trace_append: bool = False) -> None:
        if breaker_failures < 0:
            raise ValueError(f"OpenAIBackend.breaker_failures: got {breaker_failures}; expected >= 0 (0 = off)")
        if concurrency < 1:
            raise ValueError(f"OpenAIBackend.concurrency: got {concurrency}; expected >= 1")
        if timeout_s <= 0:
            raise ValueError(f"OpenAIBackend.timeout_s: got {timeout_s}; expected > 0")
        if max_retries < 0:
            raise ValueError(f"OpenAIBackend.max_retries: got {max_retries}; expected >= 0")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.breaker = CircuitBreaker(breaker_failures, breaker_cooldown_s)
        self.stats = {"ok": 0, "cached": 0, "failed": 0, "circuit_open": 0}
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.trace = TraceWriter(trace_path, append=trace_append) if trace_path is not None else None
        # Jitter only spreads retries apart; it never changes an answer, so it needs no seed.
        self._jitter = random.Random()
        # Each chat_many runs its own event loop, so clients cannot outlive a call; the SSL context can.
        # Building it (loading the CA bundle) cost ~25-45 ms per client, per call — the dominant
        # overhead of many small chat_many calls (dialog agents call once per turn batch).
        self._ssl: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return (f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r}, "
                f"concurrency={self.concurrency}, timeout_s={self.timeout_s}, max_retries={self.max_retries})")

    # -- public API ----------------------------------------------------------
    def chat_many(self, requests: Sequence[ChatRequest], *, desc: str | None = None) -> list[ChatResult]:
        """Answer every request, in order; failures are results with ``ok=False`` and a reason."""
        requests = list(requests)
        if not requests:
            return []
        return run_sync(lambda: self._chat_all(requests, desc))

    # -- internals -------------------------------------------------------------
    def _effective(self, req: ChatRequest) -> ChatRequest:
        # Agents may leave the model to the backend; the filled-in body is what is sent and cached.
        return req if req.model else dataclasses.replace(req, model=self.model)

    def _headers(self) -> tuple[dict[str, str], str | None]:
        key = os.environ.get(self.api_key_env) or None
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers, key

    async def _chat_all(self, requests: list[ChatRequest], desc: str | None) -> list[ChatResult]:
        headers, secret = self._headers()
        results: list[ChatResult | None] = [None] * len(requests)
        bar = tqdm(total=len(requests), desc=desc, disable=desc is None, unit="req")
        todo: dict[str, list[int]] = {}  # cache key -> positions: a request repeated in a batch is asked once
        for i, req in enumerate(requests):
            hit = self._from_cache(req)
            if hit is not None:
                results[i] = hit
                bar.update(1)
            else:
                todo.setdefault(self._effective(req).key(), []).append(i)
        if todo:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()  # same defaults as httpx's own (certifi, SSL_CERT_FILE)
            async with _ClientPool(self.concurrency, headers, self.timeout_s, self._ssl) as pool:

                async def one(positions: list[int]) -> None:
                    first = await self._ask(pool, requests[positions[0]], secret)
                    for i in positions:
                        results[i] = first if i == positions[0] else dataclasses.replace(
                            first, key=requests[i].key(), texts=list(first.texts))
                    bar.update(len(positions))

                await asyncio.gather(*(one(p) for p in todo.values()))
        bar.close()
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _from_cache(self, req: ChatRequest) -> ChatResult | None:
        if self.cache is None:
            return None
        eff = self._effective(req)
        entry = self.cache.get(eff.key())
        if entry is None:
            return None
        result = ChatResult(key=req.key(), ok=True, texts=list(entry["texts"]), attempts=0, cached=True,
                            usage=entry.get("usage"))
        self.stats["cached"] += 1
        self._trace(req, eff, result, response=entry.get("response"))
        return result

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        base = min(self.max_backoff_s, self.backoff_s * (2 ** retry))
        delay = base * (0.5 + 0.5 * self._jitter.random())  # "equal jitter": never less than half the base
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff_s))
        return delay

    async def _attempt(self, pool: "_ClientPool", body: dict, started: list[float]) -> tuple[list[str], dict | None, Any]:
        async with pool.slot() as client:  # held only while a request is in flight, not while backing off
            if not self.breaker.allow():  # checked once a slot is free: queued requests fail fast
                raise _Open(self.breaker.reason())
            if not started:  # latency counts from the first send, not from queueing for a slot
                started.append(time.perf_counter())
            try:
                async with asyncio.timeout(self.timeout_s):  # total bound; httpx's is per read
                    resp = await client.post(self.url, json=body)
            except (TimeoutError, httpx.TimeoutException):
                raise _Retryable(f"timeout after {self.timeout_s:g}s") from None
            except httpx.TransportError as exc:
                raise _Retryable(f"connection error: {type(exc).__name__}: {exc}") from None
        status = resp.status_code
        text = resp.text
        if status == 429:
            raise _Retryable(f"HTTP 429 rate limited: {text[:_SNIPPET]}", parse_retry_after(resp.headers.get("Retry-After")))
        if status >= 500:
            raise _Retryable(f"HTTP {status}: {text[:_SNIPPET]}")
        if status >= 400:
            raise _Final(f"HTTP {status} (not retried): {text[:_SNIPPET]}", response=text[:_SNIPPET])
        if status != 200:
            raise _Retryable(f"unexpected HTTP {status}: {text[:_SNIPPET]}")
        try:
            payload = json.loads(text)
        except ValueError as exc:
            raise _Retryable(f"malformed response: not JSON ({exc}); body starts {text[:80]!r}") from None
        texts, usage = parse_completion(payload)
        return texts, usage, payload

    async def _ask(self, pool: "_ClientPool", req: ChatRequest, secret: str | None) -> ChatResult:
        eff = self._effective(req)
        body = eff.payload()
        started: list[float] = []
        attempts = 0
        reason = "no attempt made"
        response: Any = None
        exhausted = False
        while True:
            attempts += 1
            try:
                texts, usage, payload = await self._attempt(pool, body, started)
            except _Open as exc:
                reason = exc.reason
                self.stats["circuit_open"] += 1
                break
            except _Final as exc:
                reason, response = exc.reason, exc.response
                break
            except _Retryable as exc:
                reason = exc.reason
                if attempts > self.max_retries:
                    exhausted = True
                    break
                if self.breaker.is_open():  # the endpoint was declared dead while this request waited
                    exhausted = True
                    break
                delay = self._backoff(attempts - 1, exc.retry_after)
                log.warning("LLM request %s (%s) attempt %d failed: %s; retrying in %.2fs",
                            eff.key()[:12], req.tag or "-", attempts, _scrub(reason, secret)[:200], delay)
                await asyncio.sleep(delay)
                continue
            except Exception as exc:  # a bug or an exotic client error must not kill a 10-hour run
                reason = f"unexpected client error: {type(exc).__name__}: {exc}"
                break
            self.breaker.success()
            self.stats["ok"] += 1
            result = ChatResult(key=req.key(), ok=True, texts=texts, attempts=attempts,
                                latency_s=_since(started), usage=usage)
            if self.cache is not None:
                try:
                    self.cache.put(eff.key(), request=body, texts=texts, usage=usage, response=payload)
                except OSError as exc:  # a full disk loses the cache entry, not the answer
                    log.warning("could not write LLM cache entry %s: %s", eff.key()[:12], exc)
            self._trace(req, eff, result, response=payload)
            return result
        if exhausted:
            reason = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}: {reason}"
        if not reason.startswith("circuit_open"):
            self.stats["failed"] += 1
            if self.breaker.failure(_scrub(reason, secret)):
                log.error("LLM endpoint %s: %d consecutive requests failed (last: %s); circuit open, queued requests "
                          "fail fast for %.0fs", self.base_url, self.breaker.threshold, _scrub(reason, secret)[:200],
                          self.breaker.cooldown_s)
        result = ChatResult(key=req.key(), ok=False, error=_scrub(reason, secret), attempts=attempts,
                            latency_s=_since(started))
        self._trace(req, eff, result, response=_scrub_obj(response, secret))
        return result

    def _trace(self, req: ChatRequest, eff: ChatRequest, result: ChatResult, response: Any) -> None:
        if self.trace is None:
            return
        row = {"key": result.key, "cache_key": eff.key(), "tag": req.tag, "request": eff.payload(),
               "attempts": result.attempts, "latency_s": round(result.latency_s, 6), "cached": result.cached}
        if result.ok:
            row["response"] = response
        else:
            row["error"] = result.error
            if response is not None:
                row["response"] = response
        try:
            self.trace.write(row)
        except OSError as exc:
            log.warning("could not append to LLM trace %s: %s", self.trace.path, exc)


class CircuitBreaker:
    """Closed -> open after ``threshold`` consecutive failures -> one probe after ``cooldown_s`` -> closed on success.

    ``threshold`` 0 disables it. All methods run on the event loop's thread, so plain counters suffice.
    """

    def __init__(self, threshold: int, cooldown_s: float = 30.0) -> None:
        self.threshold, self.cooldown_s = threshold, cooldown_s
        self.streak = 0
        self.opened_at: float | None = None
        self.probing = False
        self.last_reason = ""
        self.trips = 0

    def is_open(self) -> bool:
        return self.opened_at is not None

    def allow(self) -> bool:
        """May a request be sent now? While open, only one probe after the cool-down."""
        if self.opened_at is None:
            return True
        if not self.probing and time.monotonic() - self.opened_at >= self.cooldown_s:
            self.probing = True
            return True
        return False

    def reason(self) -> str:
        return (f"circuit_open: the endpoint failed {self.threshold} consecutive requests "
                f"(last: {self.last_reason[:200]}); not sent")

    def success(self) -> None:
        self.streak, self.opened_at, self.probing = 0, None, False

    def failure(self, reason: str) -> bool:
        """Record a failed request; True when this failure opens the circuit."""
        self.last_reason = reason
        self.streak += 1
        if self.threshold and (self.probing or (self.opened_at is None and self.streak >= self.threshold)):
            self.opened_at, self.probing = time.monotonic(), False
            self.trips += 1
            return True
        return False


def _since(started: list[float]) -> float:
    return time.perf_counter() - started[0] if started else 0.0


class _ClientPool:
    """At most ``concurrency`` requests in flight, spread over small httpx pools.

    One ``httpx.AsyncClient`` with many connections degrades badly (upstream encode/httpx
    issue 3215: at 64 connections the benchmark got a third of the throughput of
    16, with multi-second tail latencies); pools of ``SHARD`` connections, each
    request taking the least-busy one, keep every pool in its fast regime.
    """

    SHARD = 8

    def __init__(self, concurrency: int, headers: dict[str, str], timeout_s: float,
                 ssl_context: ssl.SSLContext | bool = True) -> None:
        self.sem = asyncio.Semaphore(concurrency)
        n = -(-concurrency // self.SHARD)
        size = -(-concurrency // n)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self.clients = [httpx.AsyncClient(headers=headers, limits=limits, timeout=httpx.Timeout(timeout_s),
                                          verify=ssl_context) for _ in range(n)]
        self.busy = [0] * n

    async def __aenter__(self) -> "_ClientPool":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(c.aclose() for c in self.clients))

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[httpx.AsyncClient]:
        async with self.sem:
            # With at most n*size in flight, the least-busy pool always has a free connection.
            i = min(range(len(self.clients)), key=self.busy.__getitem__)
            self.busy[i] += 1
            try:
                yield self.clients[i]
            finally:
                self.busy[i] -= 1


def _scrub(text: str, secret: str | None) -> str:
    """Remove the API key from text that will be recorded (servers echo keys in 401 bodies)."""
    if secret and secret in text:
        text = text.replace(secret, "***")
    return text


def _scrub_obj(obj: Any, secret: str | None) -> Any:
    if secret and obj is not None:
        blob = json.dumps(obj, default=str)
        if secret in blob:
            return json.loads(blob.replace(secret, "***"))
    return obj
