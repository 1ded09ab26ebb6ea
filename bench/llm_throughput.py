"""LLM client throughput vs concurrency (docs/architecture.md (#backends, #reliability)).

Runs :class:`toolkiln.llm.http.OpenAIBackend` against the local chat test server
(in its own process) with a fixed injected service latency, at several concurrency bounds. An ideal
client achieves ``concurrency / latency`` requests per second; the table reports
the achieved rate, its fraction of that ideal, and the speedup over the
concurrency-1 baseline measured in the same run. A last row times a fully cached
rerun (no HTTP at all).

    .venv/bin/python bench/llm_throughput.py --out bench/results/llm_throughput.json
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time

from toolkiln.io import atomic_write_json
from toolkiln.llm.base import ChatRequest
from toolkiln.llm.http import OpenAIBackend
from toolkiln.testing.chatserver import ChatTestServer, FaultPlan


def _requests(n: int, run: str) -> list[ChatRequest]:
    return [ChatRequest(messages=({"role": "user", "content": f"{run} request {i}"},), model="bench") for i in range(n)]


def _serve(conn, latency_s: float) -> None:
    """Child process: the test server, driven over a pipe (reset / stats / stop)."""
    with ChatTestServer(faults=FaultPlan(latency_s=latency_s)) as srv:
        conn.send(srv.base_url)
        while True:
            cmd = conn.recv()
            if cmd == "reset":
                srv.reset_stats()
                conn.send(None)
            elif cmd == "stats":
                conn.send((srv.total_requests, srv.max_in_flight))
            else:
                break


class ServerProcess:
    """The endpoint in its own process, as a real one would be: sharing the client's GIL
    with 64 handler threads would measure GIL contention rather than the client."""

    def __init__(self, latency_s: float) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, latency_s), daemon=True)

    def __enter__(self) -> "ServerProcess":
        self.proc.start()
        self.base_url = self.conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.send("stop")
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()

    def call(self, cmd: str):
        self.conn.send(cmd)
        return self.conn.recv()


def measure(server: ServerProcess, concurrency: int, reqs: list[ChatRequest], cache_dir: str | None = None) -> dict:
    server.call("reset")
    backend = OpenAIBackend(server.base_url, "bench", concurrency=concurrency, timeout_s=30.0, max_retries=0,
                            cache_dir=cache_dir)
    t0, cpu0 = time.perf_counter(), time.process_time()
    results = backend.chat_many(reqs)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    sent, peak = server.call("stats")
    ok = sum(r.ok for r in results)
    if ok != len(reqs):
        errors = sorted({r.error for r in results if not r.ok})[:3]
        raise RuntimeError(f"concurrency {concurrency}: only {ok}/{len(reqs)} requests succeeded: {errors}")
    return {"concurrency": concurrency, "n_requests": len(reqs), "http_requests": sent, "seconds": round(seconds, 4),
            "req_per_s": round(len(reqs) / seconds, 2), "server_max_in_flight": peak,
            "client_cpu_ms_per_req": round(1000 * cpu / len(reqs), 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/llm_throughput.json", help="results JSON")
    ap.add_argument("--latency-ms", type=float, default=50.0, help="injected server latency per request")
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16, 64], help="concurrency bounds to measure")
    ap.add_argument("--rounds", type=int, default=6, help="requests per level = rounds x concurrency (at least 24)")
    ap.add_argument("--trials", type=int, default=3, help="trials per level; the median is reported")
    args = ap.parse_args(argv)
    latency = args.latency_ms / 1000.0

    rows = []
    with ServerProcess(latency) as server:
        for c in args.levels:
            # Median of several trials: the machine is shared, so single runs are noisy.
            trials = [measure(server, c, _requests(max(24, args.rounds * c), f"c{c}t{t}")) for t in range(args.trials)]
            row = sorted(trials, key=lambda r: r["req_per_s"])[len(trials) // 2]
            row["trials_req_per_s"] = [r["req_per_s"] for r in trials]
            row["ideal_req_per_s"] = round(c / latency, 2)
            row["fraction_of_ideal"] = round(row["req_per_s"] / row["ideal_req_per_s"], 3)
            rows.append(row)
        base = next((r for r in rows if r["concurrency"] == 1), rows[0])
        for r in rows:
            r["speedup_vs_baseline"] = round(r["req_per_s"] / base["req_per_s"], 2)

        # A fully cached rerun of the largest level: answers come from disk, no HTTP request is sent.
        top = max(args.levels)
        with tempfile.TemporaryDirectory() as cache:
            reqs = _requests(max(24, args.rounds * top), "cached")
            measure(server, top, reqs, cache_dir=cache)
            cached = measure(server, top, reqs, cache_dir=cache)
        cached["speedup_vs_baseline"] = round(cached["req_per_s"] / base["req_per_s"], 2)

    print(f"OpenAIBackend vs local test server, injected latency {args.latency_ms:g} ms "
          f"(baseline: concurrency {base['concurrency']}, {base['req_per_s']:.1f} req/s)")
    print(f"{'concurrency':>11} {'requests':>8} {'req/s':>9} {'ideal':>9} {'of ideal':>9} {'vs base':>8} {'peak':>5} "
          f"{'client cpu ms/req':>18}")
    for r in rows:
        print(f"{r['concurrency']:>11} {r['n_requests']:>8} {r['req_per_s']:>9.1f} {r['ideal_req_per_s']:>9.1f} "
              f"{r['fraction_of_ideal']:>9.1%} {r['speedup_vs_baseline']:>7.1f}x {r['server_max_in_flight']:>5} "
              f"{r['client_cpu_ms_per_req']:>18.2f}")
    print(f"{'cached':>11} {cached['n_requests']:>8} {cached['req_per_s']:>9.1f} {'-':>9} {'-':>9} "
          f"{cached['speedup_vs_baseline']:>7.1f}x {cached['http_requests']:>5}  (HTTP requests sent: {cached['http_requests']})")

    atomic_write_json(args.out, {
        "benchmark": "llm_throughput", "latency_ms": args.latency_ms, "baseline": f"concurrency={base['concurrency']}",
        "trials": args.trials, "server": "toolkiln.testing.chatserver in a separate process", "rows": rows,
        "cached_rerun": cached,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    })
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
