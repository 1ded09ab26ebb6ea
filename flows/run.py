"""Prefect flow ``toolkiln-pipeline``: the dvc.yaml DAG as Prefect tasks (docs/architecture.md#tracking).

    python -m flows.run                      # whole DAG (DVC skips fresh stages)
    python -m flows.run --target warmup_sft  # a stage and everything upstream of it

Each task shells out to ``dvc repro --single-item <stage>`` with retries; independent
stages of one topological generation are submitted together. All stages of one flow
run share ``TOOLKILN_PIPELINE_ID`` (the flow run id), so MLflow groups them under one
parent run.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from flows.dag import repro_stage, stage_order

REPO = Path(__file__).resolve().parents[1]


class StageFailed(RuntimeError):
    pass


@task(retries=1, retry_delay_seconds=10, task_run_name="{stage}")
def run_stage(stage: str, repo_dir: str, force: bool = False) -> dict:
    log = get_run_logger()
    proc = repro_stage(stage, repo_dir, force=force)
    ran = f"Running stage '{stage}'" in proc.stdout
    for line in (proc.stdout + proc.stderr).splitlines()[-40:]:
        log.info(line)
    if proc.returncode != 0:
        raise StageFailed(f"stage {stage} failed (exit {proc.returncode}); see the log above")
    return {"stage": stage, "ran": ran}


@flow(name="toolkiln-pipeline", log_prints=True)
def pipeline(repo_dir: str = str(REPO), targets: list[str] | None = None, force: bool = False) -> list[dict]:
    os.environ.setdefault("TOOLKILN_PIPELINE_ID", f"prefect-{flow_run.get_id() or 'local'}")
    results = []
    for generation in stage_order(repo_dir, targets):
        futures = [run_stage.submit(s, repo_dir, force) for s in generation]
        results += [f.result() for f in futures]
    get_run_logger().info("stages run: %s; fresh (skipped by DVC): %s",
                          [r["stage"] for r in results if r["ran"]], [r["stage"] for r in results if not r["ran"]])
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=str(REPO))
    ap.add_argument("--target", action="append")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    pipeline(args.repo, args.target, args.force)


if __name__ == "__main__":
    main()
