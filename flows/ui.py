"""The two UIs, Prefect's and MLflow's, as local servers on 127.0.0.1 (docs/architecture.md#tracking).

    python -m flows.ui                     # `make ui`: both servers, their URLs printed; Ctrl-C stops both

MLflow serves the repository's store (``sqlite:///mlflow.db``, artifacts in ``mlartifacts/``);
Prefect keeps its own database under ``$PREFECT_HOME``. Flows reach the Prefect server through
``PREFECT_API_URL``; stages reach MLflow through ``tracking.tracking_uri`` (the same SQLite file
the server reads, or the server's URL). The same start/wait/stop helpers serve the UI test and
``bench/ui_screenshots.py``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    url: str  # the UI's root
    health: str  # a URL that answers 200 once the server is ready
    proc: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM the server's process group (uvicorn/gunicorn workers included), SIGKILL if it lingers."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)

    def wait_ready(self, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.health, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise TimeoutError(f"{self.name} not ready within {timeout_s:.0f}s:\n{self.log.read_text()[-3000:]}")


def _spawn(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    # its own session, so stop() reaches every worker the server forks
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def prefect_env(home: str | Path, port: int, ui: bool = True) -> dict:
    """The environment a Prefect server on ``port`` and the flows talking to it share."""
    return {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true" if ui else "false",
        "DO_NOT_TRACK": "1",
    }


def start_prefect(port: int, home: str | Path, log: Path, ui: bool = True) -> Server:
    cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    proc = _spawn(cmd, prefect_env(home, port, ui), log)
    url = f"http://127.0.0.1:{port}"
    return Server("prefect server", url, f"{url}/api/health", proc, log)


def start_mlflow(port: int, backend_uri: str, artifacts: str | Path, log: Path) -> Server:
    cmd = [
        str(BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        backend_uri,
        "--default-artifact-root",
        Path(artifacts).resolve().as_uri(),
    ]
    proc = _spawn(cmd, {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}, log)
    url = f"http://127.0.0.1:{port}"
    return Server("mlflow server", url, f"{url}/health", proc, log)


def experiment_id(mlflow_url: str, name: str) -> str | None:
    r = httpx.get(f"{mlflow_url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name}, timeout=10)
    return r.json()["experiment"]["experiment_id"] if r.status_code == 200 else None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mlflow-port", type=int, default=5000)
    ap.add_argument("--prefect-port", type=int, default=4200)
    ap.add_argument(
        "--mlflow-db", default="mlflow.db", help="MLflow's SQLite store (the stages' tracking.tracking_uri)"
    )
    ap.add_argument("--artifacts", default="mlartifacts")
    ap.add_argument("--prefect-home", default=os.environ.get("PREFECT_HOME", str(Path.home() / ".prefect")))
    ap.add_argument("--experiment", default="toolkiln")
    args = ap.parse_args(argv)

    from toolkiln.tracking import ui_url

    # `kill` stops both servers as Ctrl-C does (they run in their own sessions, out of the terminal's reach)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logs = Path(".toolkiln") / "ui"
    servers = [
        start_mlflow(
            args.mlflow_port, f"sqlite:///{Path(args.mlflow_db).resolve()}", args.artifacts, logs / "mlflow.log"
        ),
        start_prefect(args.prefect_port, args.prefect_home, logs / "prefect.log"),
    ]
    try:
        for s in servers:
            s.wait_ready()
        mlflow_url, prefect_url = servers[0].url, servers[1].url
        exp = experiment_id(mlflow_url, args.experiment)
        print(f"MLflow  {mlflow_url}")
        if exp is not None:
            print(f"        {ui_url(mlflow_url, exp)}   (the {args.experiment} runs, headline columns)")
        print(f"Prefect {prefect_url}   (flow runs: {prefect_url}/runs)")
        print(f"        flows reach it with PREFECT_API_URL={prefect_url}/api")
        print(f"logs in {logs}/; Ctrl-C stops both", flush=True)
        while all(s.alive() for s in servers):
            time.sleep(1.0)
        dead = [s for s in servers if not s.alive()]
        print(f"{dead[0].name} exited; see {dead[0].log}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for s in servers:
            s.stop()


if __name__ == "__main__":
    main()
