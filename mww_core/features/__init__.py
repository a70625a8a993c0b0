"""The features stage: place and augment clips, run the frontend, write incremental shards.

``plan`` (window jobs and their shards), ``workers`` (the spawned processes that make windows),
``shards`` (computing, spooling and writing shards), ``streams`` (validation/test streams),
``stage`` (``build_features``) and ``mined`` (augmented copies of mined hard negatives).
"""

from mww_core.features.mined import augment_mined_windows
from mww_core.features.plan import (
    KINDS,
    MINED_KIND,
    MINING_KIND,
    SHARD_CODE,
    SPLITS,
    ShardPlan,
    WindowJob,
    group_into_shards,
    job_seed,
    plan_shards,
    plan_window_jobs,
    source_folders,
    source_name,
)
from mww_core.features.shards import (
    PartialShard,
    build_train_windows,
    compute_shards,
    remove_stale_shards,
    row_progress,
    write_shard,
)
from mww_core.features.stage import build_features, finish_features, report_bad_files
from mww_core.features.streams import (
    StreamJob,
    iter_streams,
    make_stream,
    plan_stream_jobs,
)
from mww_core.features.workers import (
    TASK_ROWS,
    init_worker,
    make_window,
    make_windows,
    place_clip,
    worker_pool,
)

__all__ = [
    "KINDS",
    "MINED_KIND",
    "MINING_KIND",
    "SHARD_CODE",
    "SPLITS",
    "TASK_ROWS",
    "PartialShard",
    "ShardPlan",
    "StreamJob",
    "WindowJob",
    "augment_mined_windows",
    "build_features",
    "build_train_windows",
    "compute_shards",
    "finish_features",
    "group_into_shards",
    "init_worker",
    "iter_streams",
    "job_seed",
    "make_stream",
    "make_window",
    "make_windows",
    "place_clip",
    "plan_shards",
    "plan_stream_jobs",
    "plan_window_jobs",
    "remove_stale_shards",
    "report_bad_files",
    "row_progress",
    "source_folders",
    "source_name",
    "worker_pool",
    "write_shard",
]
