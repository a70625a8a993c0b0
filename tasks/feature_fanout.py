"""The features stage's shards as Prefect tasks on Dask (prefect-dask's DaskTaskRunner)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE

from mww_core import fanout
from mww_core.config import FullConfig
from mww_core.features import ShardPlan

if TYPE_CHECKING:  # dask is imported only when a Dask runner is asked for
    from prefect_dask import DaskTaskRunner

# A shard is written under a temporary name and renamed, so a retry (a worker killed midway,
# a store that timed out) simply computes the same shard again.
SHARD_RETRIES = 3


@task(
    name="feature-shard",
    cache_policy=NO_CACHE,
    retries=SHARD_RETRIES,
    retry_delay_seconds=1,
    task_run_name="shard-{plan.kind}-{plan.fingerprint}",
)
def feature_shard(config: FullConfig, plan: ShardPlan, url: str) -> dict:
    """Compute one shard on whichever worker runs this and write it into the store."""
    return dataclasses.asdict(fanout.compute_shard_isolated(config, plan, url))


@flow(name="feature-shards", validate_parameters=False)
def feature_shards(config: FullConfig, plans: list[ShardPlan], url: str) -> list[dict]:
    """Every shard of ``plans`` as its own task; returns each shard's name, rows and content."""
    logger = get_run_logger()
    futures = feature_shard.map(unmapped(config), plans, unmapped(url))
    results = []
    for done, future in enumerate(futures, 1):
        results.append(future.result())
        logger.info("feature shards: %d/%d written to %s", done, len(plans), url)
    return results


def dask_task_runner(config: FullConfig) -> DaskTaskRunner:
    """The runner ``performance.task_runner`` asks for ("dask-local" or "dask").

    Raises:
        ValueError: ``task_runner`` is "threads" (no Dask runner wanted).
    """
    from prefect_dask import DaskTaskRunner

    perf = config.performance
    if perf.task_runner == "dask":
        return DaskTaskRunner(address=perf.dask_address)
    if perf.task_runner == "dask-local":
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={
                "n_workers": perf.dask_workers,
                "threads_per_worker": 1,  # the augmentation seeds process-global generators
                "processes": True,
                "host": "127.0.0.1",
                "dashboard_address": None,
            },
        )
    raise ValueError(f"performance.task_runner is {perf.task_runner!r}, not a Dask runner")


def fan_out_shards(config: FullConfig, runner: DaskTaskRunner | None = None) -> list[dict]:
    """Compute the train shards missing from the store on Dask, as a subflow.

    The features stage that follows (``tasks.stages.features``) finds them in the store and
    only writes the streams and ``stage.json``. Returns the shards computed (none when the
    store is up to date; then no cluster is started).
    """
    url = fanout.store_url(config)
    todo = fanout.missing_shards(fanout.train_shard_plans(config), url)
    if not todo:
        return []
    subflow = feature_shards.with_options(task_runner=runner or dask_task_runner(config))
    return subflow(config, todo, url)
