"""Serve the pipeline on a schedule (Prefect UI at http://127.0.0.1:4200 once `prefect server start` runs).

    prefect server start --host 127.0.0.1 &
    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.serve --cron "0 3 * * *"
"""

from __future__ import annotations

import argparse

from flows.run import REPO, pipeline
from flows.sweep import sweep


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cron", default="0 3 * * *", help="schedule of the full pipeline (default: nightly 03:00)")
    args = ap.parse_args(argv)
    from prefect import serve

    serve(
        pipeline.to_deployment(name="nightly", cron=args.cron, parameters={"repo_dir": str(REPO)}),
        sweep.to_deployment(name="ablations", parameters={"repo_dir": str(REPO)}),
    )


if __name__ == "__main__":
    main()
