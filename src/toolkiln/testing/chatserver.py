"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

The one test double the project allows for a remote LLM: a genuine HTTP server
(stdlib ``ThreadingHTTPServer``, one thread per connection) that speaks
``POST /v1/chat/completions`` and ``GET /v1/models``. Tests script the assistant's
replies with a ``responder(request_json) -> str | list[str]`` and inject faults
(500s, 429 + Retry-After, hangs, latency, malformed bodies) through a
:class:`FaultPlan`. Fault decisions depend only on ``(seed, request key, attempt
number of that key)``, never on arrival order, so a concurrent client sees the
same faults on every run::

    with ChatTestServer(responder=lambda req: '{"ok": true}', faults=FaultPlan(p_500=0.3, seed=1)) as srv:
        backend = OpenAIBackend(base_url=srv.base_url, model="m", ...)
        ...
        assert srv.counts[request.key()] == 2

The server also records what a test wants to assert about the client: requests
per key, the maximum number of requests in flight at once, and the faults served.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence, Union

__all__ = ["FAULT_KINDS", "FaultPlan", "ChatTestServer", "request_key", "echo_responder"]

# Every fault the server can serve. "slow" answers correctly after ``slow_s``;
# "hang" sleeps ``hang_s`` (meant to exceed the client's timeout) before answering;
# the malformed kinds answer HTTP 200 with a broken body.
FAULT_KINDS = ("500", "503", "429", "400", "hang", "slow", "disconnect",
               "not_json", "no_choices", "truncated", "no_content")
MALFORMED_KINDS = ("not_json", "no_choices", "truncated", "no_content")

Responder = Callable[[dict], Union[str, Sequence[str]]]
Schedule = Union[Sequence[Union[str, None]], Callable[[dict, int], Union[str, None]]]


def request_key(body: dict) -> str:
    """The key a client's :meth:`ChatRequest.key` gives for the body it sent."""
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def echo_responder(body: dict) -> str:
    """Default reply: the last user message, so each answer is checkable against its request."""
    users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
    return f"echo: {users[-1] if users else ''}"


@dataclass(frozen=True)
class FaultPlan:
    """Which faults to serve, deterministically.

    For attempt ``i`` (0-based) of a request key: if ``schedule`` names a fault for it
    (a sequence indexed by ``i`` applying to every key, or a callable ``(body, i) ->
    kind | None``), that fault is served; otherwise one uniform draw seeded by
    ``(seed, key, i)`` is compared with the cumulative probabilities below.
    ``latency_s`` is added to every response (the benchmark's service time).
    """

    seed: int = 0
    p_500: float = 0.0
    p_429: float = 0.0
    p_hang: float = 0.0
    p_slow: float = 0.0
    p_malformed: float = 0.0
    malformed_kinds: tuple[str, ...] = MALFORMED_KINDS
    schedule: Schedule = ()
    latency_s: float = 0.0
    slow_s: float = 0.3
    hang_s: float = 10.0
    retry_after_s: float = 0.05

    def __post_init__(self) -> None:
        probs = (self.p_500, self.p_429, self.p_hang, self.p_slow, self.p_malformed)
        if any(p < 0 for p in probs) or sum(probs) > 1.0 + 1e-9:
            raise ValueError(f"FaultPlan probabilities must be >= 0 and sum to <= 1; got {probs}")
        bad = [k for k in self.malformed_kinds if k not in MALFORMED_KINDS]
        if bad or not self.malformed_kinds:
            raise ValueError(f"FaultPlan.malformed_kinds: got {self.malformed_kinds!r}; expected a non-empty subset of {MALFORMED_KINDS}")
        if not callable(self.schedule):
            bad = [k for k in self.schedule if k is not None and k not in FAULT_KINDS]
            if bad:
                raise ValueError(f"FaultPlan.schedule: unknown fault kinds {bad}; expected None or one of {FAULT_KINDS}")

    def decide(self, body: dict, key: str, attempt: int) -> str | None:
        if callable(self.schedule):
            kind = self.schedule(body, attempt)
            if kind is not None:
                if kind not in FAULT_KINDS:
                    raise ValueError(f"FaultPlan.schedule returned {kind!r}; expected None or one of {FAULT_KINDS}")
                return kind
        elif attempt < len(self.schedule) and self.schedule[attempt] is not None:
            return self.schedule[attempt]
        # A string seed hashes deterministically (unlike hash() of a tuple of str).
        rng = random.Random(f"{self.seed}:{key}:{attempt}")
        u = rng.random()
        for kind, p in (("500", self.p_500), ("429", self.p_429), ("hang", self.p_hang), ("slow", self.p_slow)):
            if u < p:
                return kind
            u -= p
        if u < self.p_malformed:
            return self.malformed_kinds[rng.randrange(len(self.malformed_kinds))]
        return None


@dataclass
class _Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter = field(default_factory=Counter)  # request key -> requests received
    faults: Counter = field(default_factory=Counter)  # fault kind -> times served
    log: list = field(default_factory=list)  # (key, attempt, fault) in arrival order
    authorizations: Counter = field(default_factory=Counter)  # Authorization header values seen
    in_flight: int = 0
    max_in_flight: int = 0
    total: int = 0


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints do; clients pool connections
    # Headers and body leave in separate writes; with Nagle on, the body waits ~40 ms for the
    # client's delayed ACK, which would double the benchmark's 50 ms service time.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # tests assert on logs; the server stays quiet

    def setup(self) -> None:
        super().setup()
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def _wait(self, seconds: float) -> bool:
        """Sleep unless the server stops; True when stopping (the connection is then dropped unanswered)."""
        if self.server.owner.stopping.wait(seconds):
            self.close_connection = True
            return True
        return False

    # -- helpers ---------------------------------------------------------
    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": "test_server", "code": status}}, headers)

    # -- routes ------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": self.server.owner.model_name, "object": "model", "owned_by": "toolkiln-testserver"}]})
        else:
            self._error(404, f"no route GET {self.path}")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route POST {self.path}")
            return
        owner = self.server.owner
        stats = owner.stats
        with stats.lock:
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            self._chat(raw, owner, stats)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) or the server is shutting down
        finally:
            with stats.lock:
                stats.in_flight -= 1

    def _chat(self, raw: bytes, owner: "ChatTestServer", stats: _Stats) -> None:
        try:
            body = json.loads(raw)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise ValueError("body must be an object with a 'messages' list")
        except ValueError as exc:
            self._error(400, f"bad request body: {exc}")
            return
        key = request_key(body)
        auth = self.headers.get("Authorization")
        with stats.lock:
            attempt = stats.counts[key]
            stats.counts[key] += 1
            stats.total += 1
            if auth is not None:
                stats.authorizations[auth] += 1
        if owner.require_auth is not None and auth != f"Bearer {owner.require_auth}":
            with stats.lock:
                stats.log.append((key, attempt, "401"))
            # Echo what was presented, as some servers do: the worst case for a client's error scrubbing.
            self._error(401, f"Incorrect API key provided: {auth}")
            return
        fault = owner.faults.decide(body, key, attempt)
        with stats.lock:
            stats.log.append((key, attempt, fault))
            if fault is not None:
                stats.faults[fault] += 1
        plan = owner.faults
        if plan.latency_s > 0 and self._wait(plan.latency_s):
            return
        if fault == "hang":
            if self._wait(plan.hang_s):
                return
        elif fault == "slow":
            if self._wait(plan.slow_s):
                return
        elif fault in ("500", "503"):
            self._error(int(fault), "injected server error")
            return
        elif fault == "429":
            self._error(429, "injected rate limit", {"Retry-After": f"{plan.retry_after_s:g}"})
            return
        elif fault == "400":
            self._error(400, "injected bad request")
            return
        elif fault == "disconnect":
            # Promise a body, then drop the connection: the client sees a protocol error.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"id": ')
            self.close_connection = True
            return
        try:
            reply = owner.responder(body)
        except Exception as exc:  # noqa: BLE001 - a broken test responder is the server's 500, as in real life
            self._error(500, f"responder failed: {type(exc).__name__}: {exc}")
            return
        n = int(body.get("n") or 1)
        texts = [reply] * n if isinstance(reply, str) else list(reply)
        self._send_completion(body, texts, fault)

    def _send_completion(self, body: dict, texts: list[str], fault: str | None) -> None:
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        completion = {
            "id": f"chatcmpl-test-{request_key(body)[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                        for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": prompt_tokens,
                      "completion_tokens": sum(len(t.split()) for t in texts),
                      "total_tokens": prompt_tokens + sum(len(t.split()) for t in texts)},
        }
        if fault == "not_json":
            self._send(200, b"<html><body>502 Bad Gateway (proxy)</body></html>", content_type="text/html")
        elif fault == "no_choices":
            self._send_json(200, {k: v for k, v in completion.items() if k != "choices"})
        elif fault == "truncated":
            blob = json.dumps(completion).encode()
            self._send(200, blob[: max(1, len(blob) // 2)])
        elif fault == "no_content":
            for ch in completion["choices"]:
                ch["message"] = {"role": "assistant", "content": None}
                ch["finish_reason"] = "length"
            self._send_json(200, completion)
        else:
            self._send_json(200, completion)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # socketserver's default backlog of 5 resets bursts of concurrent connects
    owner: "ChatTestServer"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn_lock = threading.Lock()
        self.connections: set[socket.socket] = set()  # open client connections, closed on stop

    def drop_connections(self) -> None:
        # Keep-alive handler threads block reading the next request; shutting their
        # sockets down ends them now instead of whenever the client hangs up.
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ChatTestServer:
    """Context manager running the server in a background thread on 127.0.0.1:<ephemeral>."""

    def __init__(self, responder: Responder | None = None, faults: FaultPlan | None = None, *,
                 model_name: str = "toolkiln-test", require_auth: str | None = None) -> None:
        self.responder: Responder = responder or echo_responder
        self.faults = faults or FaultPlan()
        self.model_name = model_name
        self.require_auth = require_auth  # when set, requests must carry "Bearer <it>" (else 401)
        self.stats = _Stats()
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> "ChatTestServer":
        if self._server is not None:
            raise RuntimeError("ChatTestServer already started")
        self.stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="chat-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.stopping.set()  # wakes handlers sleeping in hangs/latency so they exit promptly
        self._server.shutdown()
        self._server.server_close()
        self._server.drop_connections()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> "ChatTestServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests read ---------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("ChatTestServer is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def counts(self) -> Counter:
        """Requests received per request key (see :func:`request_key`)."""
        with self.stats.lock:
            return Counter(self.stats.counts)

    @property
    def total_requests(self) -> int:
        with self.stats.lock:
            return self.stats.total

    @property
    def max_in_flight(self) -> int:
        with self.stats.lock:
            return self.stats.max_in_flight

    @property
    def faults_served(self) -> Counter:
        with self.stats.lock:
            return Counter(self.stats.faults)

    @property
    def log(self) -> list[tuple[str, int, str | None]]:
        with self.stats.lock:
            return list(self.stats.log)

    def reset_stats(self) -> None:
        """Forget counts (e.g. between a first run and a rerun); fault attempt numbers restart too."""
        with self.stats.lock:
            self.stats = _Stats()
