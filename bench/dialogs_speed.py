"""Dialog generation speed: simulator dialogs/s, and LLM-path throughput vs concurrency.

1. **Simulator.** The default ``dialogs`` config (24,000 dialogs) on a pool of
   ``--pool-apis`` APIs made by the API synthesiser (or ``--pool``). Aim: the
   default in <= 2 minutes on 2 cores. Baseline in the same run: the same slots
   with ``voting.n = 1`` (what the consistency vote costs).
2. **LLM agents over HTTP.** All three agents as LLM agents against the local chat
   test server (in its own process, :class:`toolkiln.testing.scripted.ScriptedLLM`
   answering) with ``--latency-ms`` injected per request, at several concurrency
   bounds (dialogs in flight = 16 x concurrency). An ideal client achieves
   ``concurrency / latency`` requests/s; the table gives the achieved fraction.
   Baseline in the same run: the bare HTTP client (``OpenAIBackend.chat_many`` on
   trivial requests, no dialog logic) at the same bound and latency.

    .venv/bin/python -m bench.dialogs_speed [--n 24000] [--levels 1 4 16 64]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

from bench.common import record, table


def _serve(conn, latency_s: float) -> None:
    from toolkiln.testing.scripted import ScriptedLLM
    from toolkiln.testing.chatserver import ChatTestServer, FaultPlan

    with ChatTestServer(responder=ScriptedLLM(), faults=FaultPlan(latency_s=latency_s)) as srv:
        conn.send(srv.base_url)
        while True:
            cmd = conn.recv()
            if cmd == "stats":
                conn.send((srv.total_requests, srv.max_in_flight))
            elif cmd == "reset":
                srv.reset_stats()
                conn.send(None)
            else:
                break


class Server:
    """The scripted endpoint in its own process (sharing the client's GIL would measure contention)."""

    def __init__(self, latency_s: float):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, latency_s), daemon=True)

    def __enter__(self) -> "Server":
        self.proc.start()
        self.base_url = self.conn.recv()
        return self

    def __exit__(self, *exc) -> None:
        self.conn.send("stop")
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()

    def call(self, cmd: str):
        self.conn.send(cmd)
        return self.conn.recv()


def _pool(args):
    import polars as pl

    from toolkiln.dialogs.pool import APIPool

    if args.pool:
        df = pl.read_parquet(args.pool)
    else:
        from toolkiln.synth.config import SynthConfig
        from toolkiln.synth.pool import synthesize_pool
        from toolkiln.synth.synthesizer import SimulatorSynthesizer
        from toolkiln.synth.tree import load_tree

        tree = load_tree(Path(__file__).resolve().parents[1] / "data" / "api_context_tree")
        df = synthesize_pool(tree, SynthConfig(n_apis=args.pool_apis, dedup={"embed_sample": 0}), SimulatorSynthesizer(),
                             seed=0, progress=False).pool
    t0 = time.perf_counter()
    pool = APIPool.from_frame(df)
    return pool, time.perf_counter() - t0


def simulator_rows(pool, n: int) -> list[dict]:
    from toolkiln.dialogs.config import DialogsConfig, VotingConfig
    from toolkiln.dialogs.generate import generate_dialogs

    rows = []
    for name, cfg in (("voting n=1 (baseline)", DialogsConfig(n_dialogs=n, voting=VotingConfig(n=1))),
                      ("default (voting n=3)", DialogsConfig(n_dialogs=n))):
        t0 = time.perf_counter()
        res = generate_dialogs(pool, cfg, seed=0, progress=False)
        s = time.perf_counter() - t0
        rows.append({"config": name, "dialogs": res.dialogs.height, "rejected": res.rejects.height, "seconds": round(s, 2),
                     "dialogs_per_s": round(res.dialogs.height / s, 1)})
    base = rows[0]["dialogs_per_s"]
    for r in rows:
        r["vs_baseline"] = round(r["dialogs_per_s"] / base, 3)
    return rows


def llm_rows(pool, levels: list[int], latency_s: float, rounds: int, batch_factor: int, dialog_factor: float) -> list[dict]:
    from toolkiln.dialogs.config import DialogsConfig
    from toolkiln.dialogs.generate import generate_dialogs
    from toolkiln.dialogs.llm_agents import llm_agents
    from toolkiln.llm.base import ChatRequest
    from toolkiln.llm.config import LLMConfig
    from toolkiln.llm.http import OpenAIBackend

    rows = []
    with Server(latency_s) as srv:
        for c in levels:
            backend = OpenAIBackend(srv.base_url, "bench", concurrency=c, timeout_s=60.0, max_retries=0, cache_dir=None)
            # bare client baseline: the same number of trivial requests at the same bound
            n_req = max(24, rounds * c)
            reqs = [ChatRequest(messages=({"role": "user", "content": f"c{c} {i}"},), model="bench") for i in range(n_req)]
            srv.call("reset")
            t0 = time.perf_counter()
            backend.chat_many(reqs)
            raw_rps = n_req / (time.perf_counter() - t0)
            # the dialog engine with all three LLM agents
            # Many dialogs in flight per concurrency slot: each engine step is one chat_many call, whose fixed cost
            # (client setup) and last partial wave are spread over more requests.
            cfg = DialogsConfig(n_dialogs=max(24, int(dialog_factor * batch_factor * c)), batch_size=batch_factor * c)
            llm_cfg = LLMConfig(backend="openai", base_url=srv.base_url, model="bench")
            srv.call("reset")
            t0 = time.perf_counter()
            res = generate_dialogs(pool, cfg, seed=c, agents=llm_agents(cfg.voting, llm_cfg), backend=backend,
                                   progress=False)
            s = time.perf_counter() - t0
            sent, peak = srv.call("stats")
            ideal = c / latency_s
            rows.append({"concurrency": c, "dialogs": res.dialogs.height, "rejected": res.rejects.height,
                         "requests": sent, "seconds": round(s, 2), "req_per_s": round(sent / s, 1),
                         "ideal_req_per_s": round(ideal, 1), "fraction_of_ideal": round(sent / s / ideal, 3),
                         "bare_client_req_per_s": round(raw_rps, 1), "vs_bare_client": round(sent / s / raw_rps, 3),
                         "dialogs_per_s": round(res.dialogs.height / s, 2), "server_peak_in_flight": peak})
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24000, help="simulator dialogs (the default config's n_dialogs)")
    ap.add_argument("--pool", default="", help="an API pool parquet (default: synthesise --pool-apis APIs)")
    ap.add_argument("--pool-apis", type=int, default=27000)
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16, 64], help="LLM concurrency bounds")
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--rounds", type=int, default=24, help="bare-client baseline requests = rounds x concurrency")
    ap.add_argument("--batch-factor", type=int, default=16, help="dialogs in flight = factor x concurrency")
    ap.add_argument("--dialog-factor", type=float, default=2.0, help="dialogs per level = factor x dialogs in flight")
    ap.add_argument("--skip-llm", action="store_true")
    args = ap.parse_args(argv)

    pool, load_s = _pool(args)
    sim = simulator_rows(pool, args.n)
    print(f"Simulator: {args.n:,} dialogs on a pool of {len(pool):,} APIs (pool index {load_s:.1f}s; aim <= 120 s)")
    print(table(sim, ["config", "dialogs", "rejected", "seconds", "dialogs_per_s", "vs_baseline"]))
    llm = []
    if not args.skip_llm:
        llm = llm_rows(pool, args.levels, args.latency_ms / 1000, args.rounds, args.batch_factor, args.dialog_factor)
        print(f"\nLLM agents over HTTP, injected latency {args.latency_ms:g} ms (aim: >= 80% of concurrency/latency)")
        print(table(llm, ["concurrency", "dialogs", "requests", "seconds", "req_per_s", "ideal_req_per_s",
                          "fraction_of_ideal", "bare_client_req_per_s", "vs_bare_client", "server_peak_in_flight"]))
    out = {"benchmark": "dialogs_speed", "pool_apis": len(pool), "pool_index_s": round(load_s, 2), "simulator": sim,
           "llm": llm, "latency_ms": args.latency_ms, "batch_factor": args.batch_factor,
           "dialog_factor": args.dialog_factor,
           "baselines": {"simulator": "same slots with voting.n=1", "llm": "bare OpenAIBackend.chat_many, same bound"}}
    print(f"wrote {record('dialogs_speed', out)}")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
