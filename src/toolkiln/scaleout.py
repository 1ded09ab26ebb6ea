"""Independent jobs as Prefect tasks on a Dask cluster (``runtime.executor: dask``; docs/architecture.md#reliability).

``dask_map(fn, jobs, ...)`` runs ``fn(job)`` for every job as one Prefect task each, through
``prefect-dask``'s ``DaskTaskRunner``: on a local cluster of ``n_workers`` single-threaded
processes, or on an existing cluster when ``address`` names its scheduler (``tcp://host:8786``;
its workers must see the same files and Python environment). The results come back in the order
of ``jobs`` whatever order the tasks finish in, so a caller whose jobs seed themselves gets output
identical to a single-process run. Where the work runs is a ``runtime:`` setting: it never changes
what is produced.

``map_shards(fn, jobs, executor=...)`` is what the sharded stages call: ``local`` runs the same
jobs in a loop in this process, ``dask`` hands them to :func:`dask_map`. A stage's shards are
fixed by its params (never by the executor or the worker count), so both give the same output.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

EXECUTORS = ("local", "dask")


def map_shards(
    fn: Callable[[Any], Any],
    jobs: Sequence[Any],
    runtime: Any = None,
    *,
    name: str = "toolkiln-shards",
    task_name: str = "shard",
) -> list[Any]:
    """``[fn(job) for job in jobs]`` in this process or as Prefect tasks on Dask, as ``runtime`` says.

    ``runtime``: the ``runtime:`` section (:class:`toolkiln.config.RuntimeConfig`; None = local):
    ``executor: local`` runs the jobs in a loop here, ``dask`` on a local cluster of ``workers``
    processes or on the scheduler at ``dask.address``. ``fn`` must be a module-level function and
    the jobs picklable; results come back in job order either way.
    """
    executor = getattr(runtime, "executor", "local")
    if executor == "local":
        return [fn(job) for job in jobs]
    if executor == "dask":
        return dask_map(
            fn, jobs, n_workers=runtime.workers, address=runtime.dask.address, name=name, task_name=task_name
        )
    raise ValueError(f"runtime.executor: got {executor!r}; expected one of {EXECUTORS}")


def dask_map(
    fn: Callable[[Any], Any],
    jobs: Sequence[Any],
    *,
    n_workers: int = 2,
    address: str = "",
    name: str = "toolkiln-shards",
    task_name: str = "shard",
) -> list[Any]:
    """``[fn(job) for job in jobs]``, each call a Prefect task on a Dask worker; results in job order.

    ``fn`` and the jobs are pickled to the workers: pass paths and small tuples, not large arrays
    (a worker loads what it needs once and keeps it, see ``toolkiln.adapt.experiment``).
    """
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect_dask import DaskTaskRunner

    if not jobs:
        return []
    if address:
        runner = DaskTaskRunner(address=address)
    else:
        # processes, one thread each: torch jobs seed the process-wide RNG, so two must never share a process
        runner = DaskTaskRunner(
            cluster_kwargs={
                "n_workers": max(1, n_workers),
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    # no caching: the DVC stage around this is the cache; hashing large inputs for Prefect would only cost
    shard = task(fn, name=task_name, cache_policy=NO_CACHE, persist_result=False)

    @flow(name=name, task_runner=runner, log_prints=True, persist_result=False)
    def run_shards(items: list) -> list:
        futures = [shard.submit(x) for x in items]
        return [f.result() for f in futures]  # submission order, not completion order

    return run_shards(list(jobs))
