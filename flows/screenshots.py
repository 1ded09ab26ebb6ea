"""Screenshots of the two UIs showing a real run, and of the report page, in headless Chromium.

    python -m flows.screenshots                    # whole DAG, smoke profile; PNGs in docs/img/
    python -m flows.screenshots --target split     # only the data stages (quicker)

Starts an MLflow server and a Prefect server on free 127.0.0.1 ports (``flows.ui``), runs the
pipeline flow on a smoke-profile copy of the repository against them, then opens in Debian's
``chromium`` (``apt-get install -y chromium``): the Prefect flow run, the ``toolkiln`` experiment's
runs table as ``tracking.ui_url`` opens it, and the report page built from ``--reports`` (by
default this checkout's ``reports/``, the last full run) through a ``file://`` URL. Every
screenshot is checked to have rendered (not one flat colour, enough non-background pixels);
the script exits 1 otherwise. Not a test: the UI test (``tests/flows/test_ui.py``) checks the same
run through the servers' HTTP APIs and needs no browser.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from flows.ui import experiment_id, free_port, start_mlflow, start_prefect
from toolkiln.report import build_report
from toolkiln.testing.smokerepo import make_smoke_repo
from toolkiln.tracking import ui_url

REPO = Path(__file__).resolve().parents[1]
FLOW = "import sys; from flows.run import pipeline; pipeline(sys.argv[1], sys.argv[2:] or None)"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no chromium on PATH: apt-get install -y chromium")


def screenshot(url: str, out: Path, size: tuple[int, int], profile: Path, wait_ms: int = 20000) -> None:
    """One page, after ``wait_ms`` of virtual time so a single-page app has fetched and drawn its data."""
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={size[0]},{size[1]}",
        f"--virtual-time-budget={wait_ms}",
        f"--screenshot={out}",
        url,
    ]
    subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    if not out.exists():
        raise SystemExit(f"chromium wrote no screenshot of {url}")


def rendered(png: Path) -> tuple[bool, str]:
    """Whether the page drew something: many colours and a real share of pixels off the background."""
    from PIL import Image

    img = Image.open(png).convert("RGB")
    small = img.resize((img.width // 4, img.height // 4))
    colors = small.getcolors(maxcolors=1 << 20) or []
    background = max(colors)[1] if colors else (0, 0, 0)
    off = sum(n for n, c in colors if sum(abs(a - b) for a, b in zip(c, background)) > 30)
    share = off / (small.width * small.height)
    ok = len(colors) >= 50 and share >= 0.03
    return ok, f"{len(colors)} colours, {share:.1%} off-background"


def _prefect_flow_run(api: str) -> str:
    runs = httpx.post(f"{api}/flow_runs/filter", json={"flows": {"name": {"any_": ["toolkiln-pipeline"]}}}, timeout=30)
    runs.raise_for_status()
    return runs.json()[0]["id"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "docs" / "img"))
    ap.add_argument("--reports", default=str(REPO / "reports"), help="the reports the report page is built from")
    ap.add_argument("--target", action="append", help="run only these stages and their upstream (default: all)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary repository and servers' logs")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="toolkiln-ui-"))
    shots: list[Path] = []
    mlflow = start_mlflow(free_port(), f"sqlite:///{tmp / 'mlflow.db'}", tmp / "mlartifacts", tmp / "mlflow.log")
    prefect = start_prefect(free_port(), tmp / "prefect", tmp / "prefect.log")
    try:
        mlflow.wait_ready()
        prefect.wait_ready()
        repo = tmp / "repo"
        env = make_smoke_repo(REPO, repo, tracking_uri=mlflow.url, pipeline_id=time.strftime("ui-%Y%m%d-%H%M%S"))
        env.update(
            PREFECT_API_URL=f"{prefect.url}/api",
            PREFECT_HOME=str(tmp / "prefect-client"),
            TOOLKILN_MLFLOW_UI=mlflow.url,
            PREFECT_LOGGING_LEVEL="INFO",
        )
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", FLOW, str(repo), *(args.target or [])],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"flow failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        print(f"flow run: {time.perf_counter() - t0:.0f} s", flush=True)

        profile = tmp / "chromium"
        run_id = _prefect_flow_run(f"{prefect.url}/api")
        exp = experiment_id(mlflow.url, "toolkiln")
        pages = [
            ("prefect_flow_run.png", f"{prefect.url}/runs/flow-run/{run_id}", (1400, 900)),
            ("mlflow_runs.png", ui_url(mlflow.url, exp), (1800, 900)),
        ]
        for name, url, size in pages:
            screenshot(url, out / name, size, profile)
            shots.append(out / name)
        page = tmp / "report.html"
        page.write_text(build_report(args.reports).html)
        screenshot(page.as_uri(), out / "report.png", (1400, 2000), profile, wait_ms=3000)
        shots.append(out / "report.png")
    finally:
        mlflow.stop()
        prefect.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")
    bad = []
    for png in shots:
        ok, why = rendered(png)
        print(f"{png}: {'ok' if ok else 'BLANK'} ({why})")
        bad += [] if ok else [png]
    if bad:
        raise SystemExit(f"not rendered: {[str(p) for p in bad]}")


if __name__ == "__main__":
    main()
