"""Prefect flow ``toolkiln-sweep``: ablations as DVC experiments, compared in MLflow (docs/architecture.md#tracking).

Each variant is ``dvc exp run -S key=value ...`` (DVC applies the overrides to params.yaml in a
temporary workspace and caches the results); every variant's stages log to MLflow under their
own pipeline id ``sweep-<name>``, so the MLflow UI compares them side by side.

    python -m flows.sweep                                 # the default ablations
    python -m flows.sweep --variant random_order sft.order=random
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task

from flows.dag import dvc_env
from flows.run import REPO

# The paper claims the pipeline reproduces (docs/architecture.md#training): each is one switch.
DEFAULT_VARIANTS: dict[str, list[str]] = {
    "unverified_data": ["verify.enabled=false"],
    "random_order": ["sft.order=random"],
}


@task(task_run_name="exp-{name}")
def run_variant(name: str, overrides: list[str], repo_dir: str, queue: bool = False) -> dict:
    log = get_run_logger()
    cmd = [str(Path(sys.executable).parent / "dvc"), "exp", "run", "--name", name]
    for o in overrides:
        cmd += ["-S", o]
    if queue:
        cmd.append("--queue")
    env = dvc_env()
    env["TOOLKILN_PIPELINE_ID"] = f"sweep-{name}"
    proc = subprocess.run(cmd, cwd=repo_dir, env=env, capture_output=True, text=True)
    for line in (proc.stdout + proc.stderr).splitlines()[-30:]:
        log.info(line)
    if proc.returncode != 0:
        raise RuntimeError(f"experiment {name} failed (exit {proc.returncode})")
    return {"name": name, "overrides": overrides}


@flow(name="toolkiln-sweep", log_prints=True)
def sweep(repo_dir: str = str(REPO), variants: dict[str, list[str]] | None = None) -> list[dict]:
    variants = variants or DEFAULT_VARIANTS
    # sequential: every variant trains on the same 2 CPU cores
    return [run_variant(name, ov, repo_dir) for name, ov in variants.items()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=str(REPO))
    ap.add_argument("--variant", nargs="+", action="append", metavar=("NAME", "KEY=VALUE"),
                    help="a variant: its name, then params overrides")
    args = ap.parse_args(argv)
    variants = {v[0]: v[1:] for v in args.variant} if args.variant else None
    sweep(args.repo, variants)


if __name__ == "__main__":
    main()
