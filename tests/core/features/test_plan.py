"""Tests for mww_core.features.plan: shards cut by content, so new files disturb few of them."""

from __future__ import annotations

from mww_core.config import FullConfig
from mww_core.features.plan import WindowJob, group_into_shards


def test_shards_depend_on_each_source_only():
    def jobs(names):
        return [WindowJob(n, "negative", 0, 0.0, 0) for n in names]

    config = FullConfig.model_validate({"features": {"shard_rows": 16}})
    names = [f"train/negative/clip_{i:04d}.wav" for i in range(400)]
    old = {tuple(j.source for j in s) for s in group_into_shards(config, jobs(names))}
    extra = [f"train/negative/clip_{i:04d}b.wav" for i in range(0, 400, 40)]
    new = {tuple(j.source for j in s) for s in group_into_shards(config, jobs(names + extra))}
    assert 15 <= len(old) <= 40  # about 400 / 16 shards
    # Each new file disturbs only the shard it falls into (which may split in two).
    assert 0 < len(old - new) <= len(extra)
    assert len(new - old) <= 2 * len(old - new)
    changed = {name for shard in new - old for name in shard}
    assert changed == set(extra) | {name for shard in old - new for name in shard}
