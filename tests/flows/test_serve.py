"""`python -m flows.serve` against a real Prefect server on 127.0.0.1: the deployments exist, with their schedule."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd, env, log):
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def _wait(check, timeout_s: float, what: str, procs, logs):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p, log in zip(procs, logs):
            if p.poll() is not None:
                pytest.fail(f"{what}: a process exited ({p.returncode}):\n" + log.read_text()[-3000:])
        try:
            got = check()
            if got:
                return got
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    pytest.fail(f"{what}: not within {timeout_s:.0f}s\n" + "\n".join(log.read_text()[-2000:] for log in logs))


@pytest.mark.slow
def test_serve_registers_the_scheduled_deployments(tmp_path, repo_root):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": api,
        "PYTHONPATH": f"{repo_root / 'src'}:{repo_root}",
        "DO_NOT_TRACK": "1",
        "PREFECT_UI_ENABLED": "false",
    }
    prefect = os.path.join(os.path.dirname(sys.executable), "prefect")
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    server = _start([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, server_log.open("w"))
    served = None
    try:
        _wait(
            lambda: httpx.get(f"{api}/health", timeout=5).status_code == 200,
            300,
            "prefect server",
            [server],
            [server_log],
        )
        served = _start(
            [sys.executable, "-m", "flows.serve", "--cron", "17 4 * * *", "--repo", str(repo_root)],
            {**env},
            serve_log.open("w"),
        )

        def ours():
            found = [
                d
                for d in httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()
                if d["name"] in ("nightly", "ablations")
            ]
            return found if len(found) == 2 else None

        deps = _wait(ours, 300, "deployments", [server, served], [server_log, serve_log])
        by_name = {d["name"]: d for d in deps}
        assert set(by_name) == {"nightly", "ablations"}
        flows = {f["id"]: f["name"] for f in httpx.post(f"{api}/flows/filter", json={}, timeout=10).json()}
        assert flows[by_name["nightly"]["flow_id"]] == "toolkiln-pipeline"
        assert flows[by_name["ablations"]["flow_id"]] == "toolkiln-sweep"
        crons = [s["schedule"].get("cron") for s in by_name["nightly"]["schedules"]]
        assert crons == ["17 4 * * *"] and by_name["nightly"]["parameters"] == {"repo_dir": str(repo_root)}
        assert by_name["ablations"]["schedules"] == []
    finally:
        if served is not None:
            _stop(served)
        _stop(server)
