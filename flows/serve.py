"""Serve the pipeline on a schedule (Prefect UI at http://127.0.0.1:4200 once `prefect server start` runs).

    prefect server start --host 127.0.0.1 &
    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.serve --cron "0 3 * * *"

Two deployments: ``toolkiln-pipeline/nightly`` (the whole DAG on ``--cron``; DVC skips what is
fresh) and ``toolkiln-sweep/ablations`` (run on demand from the UI).
"""

from __future__ import annotations

import argparse

from flows.run import REPO, pipeline
from flows.sweep import sweep


def build_deployments(cron: str, repo_dir: str = str(REPO)) -> list:
    return [
        pipeline.to_deployment(name="nightly", cron=cron, parameters={"repo_dir": repo_dir},
                               description="The dvc.yaml DAG; each task is `dvc repro --single-item <stage>`."),
        sweep.to_deployment(name="ablations", parameters={"repo_dir": repo_dir},
                            description="Ablations as `dvc exp run` variants, side by side in MLflow."),
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cron", default="0 3 * * *", help="schedule of the full pipeline (default: nightly 03:00)")
    ap.add_argument("--repo", default=str(REPO))
    args = ap.parse_args(argv)
    from prefect import serve

    serve(*build_deployments(args.cron, args.repo))


if __name__ == "__main__":
    main()
