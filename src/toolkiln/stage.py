"""Shared plumbing for the thin stage scripts in ``stages/`` (docs/architecture.md#conventions).

A stage script parses its paths from argv, then::

    with stage_context("synthesize_apis", args.params) as ctx:
        result = library_function(inputs, ctx.params.synth, seed=ctx.params.seed)
        atomic_write_parquet(args.out, result.table)
        ctx.run.log_metrics(result.metrics)

The context validates ``params.yaml`` first (so bad params fail before any work),
configures readable logging, and opens the MLflow child run for the stage.

Under ``accelerate launch`` / ``torchrun`` every process runs the script; only the main one
(``ctx.is_main``) opens the MLflow run, and a stage that can be launched that way writes its
outputs only ``if ctx.is_main`` (the other processes' ``ctx.run`` logs nothing).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Iterator

from toolkiln.config import Params, ParamsError, load_params
from toolkiln.tracking import StageRun, stage_run

# The launchers announce a process's rank in the environment (torchrun / accelerate: RANK, WORLD_SIZE; MPI for
# multi-node CPU: PMI_*, OMPI_COMM_WORLD_*), so no process group has to exist and torch need not be imported.
_RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK")
_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def _first_int(names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            return int(value)
    return default


def process_rank() -> int:
    """This process's global rank under ``accelerate launch`` / ``torchrun`` (0 outside a launcher)."""
    return _first_int(_RANK_VARS, 0)


def world_size() -> int:
    """Processes in the launch (1 outside a launcher)."""
    return _first_int(_SIZE_VARS, 1)


def is_main_process() -> bool:
    return process_rank() == 0


class TargetMissed(SystemExit):
    """A stage missed its target (too few APIs or dialogs, an empty split): exit 1 with the reason,
    so DVC records nothing and the next ``dvc repro`` runs the stage again."""


@dataclass
class StageContext:
    name: str
    params: Params
    run: StageRun
    log: logging.Logger
    is_main: bool = True

    def require(self, ok: bool, message: str) -> None:
        """Stop the stage (exit status 1, ``message`` on stderr) unless ``ok``.

        Called after the stage wrote its metrics, so a failed run can be inspected; DVC does not
        register the outputs of a stage that exits non-zero, so a miss is never cached as a success.
        """
        if not ok:
            self.log.error("target missed: %s", message)
            raise TargetMissed(f"{self.name}: target missed: {message}")


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr, force=True)
    for noisy in ("httpx", "alembic", "urllib3", "filelock", "great_expectations", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextlib.contextmanager
def stage_context(name: str, params_path: str = "params.yaml", sections: tuple[str, ...] = ()) -> Iterator[StageContext]:
    setup_logging()
    log = logging.getLogger(f"toolkiln.stage.{name}")
    try:
        params = load_params(params_path)
    except ParamsError as exc:
        log.error("invalid params:\n%s", exc)
        raise SystemExit(2) from None
    logged = {"seed": params.seed}
    for s in sections:
        logged[s] = getattr(params, s).model_dump(mode="json")
    t0 = time.perf_counter()
    main = is_main_process()
    # one MLflow run per stage, not one per launched process
    tracking = params.tracking if main else params.tracking.model_copy(update={"enabled": False})
    with stage_run(name, tracking, logged) as run:
        yield StageContext(name, params, run, log, main)
        run.log_metrics({"stage_seconds": time.perf_counter() - t0})
    log.info("%s done in %.1fs", name, time.perf_counter() - t0)
