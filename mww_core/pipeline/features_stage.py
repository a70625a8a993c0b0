"""The features stage: augmented train windows and validation/test streams as Parquet."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from mww_core import stages
from mww_core.config import FullConfig
from mww_core.stages import StageRecord, fingerprint, run_stage

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def run_features(
    config: FullConfig, data: StageRecord, progress: Progress | None = None
) -> StageRecord:
    """Features stage: train windows and validation/test streams as Parquet.

    Train shards live in ``<run>/feature_shards``, named by their inputs, so after a change
    (say, 10 new negative files) only the shards whose inputs changed are computed again.
    """
    extra = [stages.file_listing(s.path) for s in config.data.sources]
    extra += [stages.file_listing(s.path) for s in config.data.feature_sets]
    fp = fingerprint(
        data.fingerprint,
        config.data.model_dump(mode="json", include={"sources", "feature_sets"}),
        extra,
        config.augmentation.fingerprint(),
        config.features.fingerprint(),
        stages.code_fingerprint(__name__),
    )

    def compute(stage_dir: Path) -> dict:
        from mww_core import fanout, fsstore
        from mww_core.features.stage import build_features

        # Shards made by Dask workers (tasks.feature_fanout) are already in the store.
        local = fsstore.local_path(fanout.store_location(config))
        if local is None:  # memory://, s3://, gs://...: the store-agnostic path
            return fanout.build_features_at(config, stage_dir, fanout.store_url(config), progress)
        return build_features(config, stage_dir, progress, local)

    return run_stage(config.run_dir / "features", "features", fp, compute)
