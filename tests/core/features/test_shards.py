"""Tests for mww_core.features.shards: a shard spooled task by task is written byte for byte."""

from __future__ import annotations

import numpy as np

from mww_core.features.plan import ShardPlan, WindowJob
from mww_core.features.shards import PartialShard, write_shard
from mww_core.features.workers import TASK_ROWS
from mww_core.store import Windows, write_windows
from tests.core.features.test_stage import _config


def test_spooled_shard_is_byte_identical_to_a_whole_one(tmp_path):
    config = _config(tmp_path, row_group_rows=16)
    frames = config.features.window_frames
    kinds = ["positive", "negative"]
    jobs = tuple(WindowJob(f"s{i // 3}", kinds[i % 2], i % 3, 0.0, i) for i in range(100))
    plan = ShardPlan("negative", jobs, "abc")
    rng = np.random.default_rng(0)
    feats = rng.integers(0, 900, (len(jobs), frames, 40)).astype(np.uint16)
    dropped = {5, 40, 41, 99}  # rows of "unusable files"
    tasks = {}
    for start in range(0, len(jobs), TASK_ROWS):
        kept = [i for i in range(min(TASK_ROWS, len(jobs) - start)) if start + i not in dropped]
        tasks[start] = (feats[[start + i for i in kept]], kept)
    shard = PartialShard(plan, len(tasks), {}, {"s13.wav": "broken"})
    for start in (32, 96, 0, 64):  # tasks come back out of order
        shard.parts[start] = tasks[start]
        shard.spool_ready(tmp_path)
    assert not shard.parts and shard.spool is not None  # all in the spool, none held
    write_shard(config, shard, tmp_path / "spooled", frames)

    keep = [i for i in range(len(jobs)) if i not in dropped]
    whole = Windows(
        features=feats[keep],
        label=np.array([jobs[i].kind == "positive" for i in keep], np.int8),
        weight_class=np.array([jobs[i].kind for i in keep], dtype=object),
        source=np.array([jobs[i].source for i in keep], dtype=object),
        offset_s=np.zeros(len(keep), np.float32),
        seed=np.array(keep, np.int64),
    )
    meta = {"fingerprint": "abc", "bad_files": '{"s13.wav": "broken"}'}
    write_windows(tmp_path / "whole" / plan.file_name, whole, meta, row_group_rows=16)
    spooled = (tmp_path / "spooled" / plan.file_name).read_bytes()
    assert spooled == (tmp_path / "whole" / plan.file_name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "spooled").iterdir()) == [plan.file_name]
