"""Tests for mww_core.mining: threshold, de-duplication, per-source caps, provenance, storage."""

from __future__ import annotations

import numpy as np
import pytest

from mww_core.config import FullConfig
from mww_core.mining import HardExampleMiner, deduplicate, min_separation_inferences
from mww_core.store import Stream
from tests.conftest import SMALL_MODEL

FRAMES = 30  # window frames in these tests; stride 3 -> a full window from inference 9


def make_config(**mining) -> FullConfig:
    return FullConfig.model_validate(
        {
            "features": {"window_frames": FRAMES},
            "model": SMALL_MODEL,
            "mining": {"threshold": 0.5, **mining},
        }
    )


def ramp_features(frames: int) -> np.ndarray:
    """Features whose every frame holds its own index, so a window shows where it came from."""
    return np.repeat(np.arange(frames, dtype=np.uint16)[:, None], 40, axis=1)


def test_min_separation_from_overlap():
    assert min_separation_inferences(160, 3, 0.5) == 27  # 80 frames apart
    assert min_separation_inferences(160, 3, 0.0) == 54  # no overlap at all
    with pytest.raises(ValueError):
        min_separation_inferences(160, 3, 1.0)


def test_deduplicate_keeps_the_highest_of_neighbours():
    inferences = np.array([10, 12, 14, 40, 41])
    scores = np.array([0.6, 0.9, 0.7, 0.8, 0.8])
    kept = deduplicate(inferences, scores, separation=5)
    assert inferences[kept].tolist() == [12, 40]  # 41 ties with 40: the earlier wins


def test_ambient_stream_dedup_cap_and_provenance():
    probs = np.zeros(200, np.float32)
    probs[[5, 20, 22, 60, 100, 150]] = [0.99, 0.7, 0.8, 0.9, 0.6, 0.95]  # 5: window incomplete
    stream = Stream(ramp_features(600), "train/ambient/a.wav", "ambient", [])
    miner = HardExampleMiner(make_config(max_overlap=0.5, max_per_source=3))
    found = miner.get_hard_samples(probs, stream)
    # Separation 5 inferences: 20 is a duplicate of 22; cap 3 keeps 150 (0.95), 60, 22.
    assert miner.stats["train/ambient/a.wav"] == {
        "scanned": 200, "above_threshold": 5, "duplicates": 1, "over_cap": 1, "kept": 3,
        "sources_with_hits": 1,
    }  # fmt: skip
    assert found.score.tolist() == pytest.approx([0.8, 0.9, 0.95])
    ends = [(i + 1) * 3 for i in (22, 60, 150)]
    assert found.offset_s.tolist() == pytest.approx([(e - FRAMES) * 0.01 for e in ends])
    for row, end in enumerate(ends):  # each window is the 30 frames ending at the inference
        assert found.features[row, :, 0].tolist() == list(range(end - FRAMES, end))
    assert set(found.weight_class) == {"hard_negative"}
    assert found.label.tolist() == [0, 0, 0]
    assert set(found.source) == {"train/ambient/a.wav"}


def test_joined_negative_clips_are_separate_sources():
    # Clip k spans samples [16000 * (1 + 2k), 16000 * (2 + 2k)); inference i ends at 480 i + 800.
    spans = [(16000 * (1 + 2 * k), 16000 * (2 + 2 * k)) for k in range(3)]
    probs = np.zeros(250, np.float32)
    hits = {40: 0.9, 42: 0.95, 80: 0.6, 100: 0.8, 120: 0.7, 170: 0.99}
    for i, p in hits.items():
        probs[i] = p
    stream = Stream(ramp_features(750), "train/negative", "negative", spans)
    miner = HardExampleMiner(make_config(max_overlap=0.5, max_per_source=1))
    names = ["train/negative/a.wav", "train/negative/b.wav", "train/negative/c.wav"]
    found = miner.get_hard_samples(probs, stream, names)
    # A window belongs to the last clip started before it ends: 40, 42, 80 (at 20000-39200
    # samples) -> a, 40 a duplicate of 42 and 80 over the cap; 100, 120 -> b, 120 over the cap;
    # 170 (82400) -> c.
    assert found.source.tolist() == names
    assert found.score.tolist() == pytest.approx([0.95, 0.8, 0.99])
    start = (43 * 3 - FRAMES) * 160  # first sample of the window ending at inference 42
    assert found.offset_s[0] == pytest.approx((start - spans[0][0]) / 16000)
    stats = miner.stats["train/negative"]
    assert (stats["above_threshold"], stats["kept"], stats["sources_with_hits"]) == (6, 3, 3)
    assert (stats["duplicates"], stats["over_cap"]) == (1, 2)
    with pytest.raises(ValueError, match="2 clip names for 3 clips"):
        miner.get_hard_samples(probs, stream, names[:2])


def test_mine_save_load_roundtrip(tmp_path):
    streams = [
        Stream(ramp_features(300), "train/positive", "positive", [(16000, 32000)]),
        Stream(ramp_features(300), "train/ambient/a.wav", "ambient", []),
        Stream(ramp_features(300), "train/ambient/b.wav", "ambient", []),
    ]

    def scorer(features: np.ndarray) -> np.ndarray:
        probs = np.zeros(len(features) // 3, np.float32)
        probs[50] = 0.9
        return probs

    miner = HardExampleMiner(make_config())
    calls = []
    found = miner.mine_from_dataset(scorer, streams, progress=lambda *a: calls.append(a))
    assert sorted(miner.stats) == ["train/ambient/a.wav", "train/ambient/b.wav"]  # no positives
    assert calls == [("streams scanned", 1, 2), ("streams scanned", 2, 2)]  # mined ones only
    assert miner.totals()["kept"] == 2 == len(found)
    path = tmp_path / "hard.parquet"
    miner.save_hard_negatives(path, found)
    back = miner.load_hard_negatives(path)
    np.testing.assert_array_equal(back.features, found.features)
    assert back.source.tolist() == found.source.tolist()
    assert back.score.tolist() == pytest.approx([0.9, 0.9])
    again = miner.get_all_hard_negatives([path, path])  # the same windows twice: kept once
    assert len(again) == 2


def test_threshold_keeps_nothing_below_it():
    probs = np.full(100, 0.5, np.float32)  # not above 0.5
    stream = Stream(ramp_features(300), "x.wav", "ambient", [])
    miner = HardExampleMiner(make_config())
    assert len(miner.get_hard_samples(probs, stream)) == 0
    assert miner.stats["x.wav"]["kept"] == 0


def test_mining_folder_is_scanned_but_never_trained_on(tmp_path):
    from mww_core.audio import write_wav
    from mww_core.features.plan import plan_window_jobs
    from mww_core.features.streams import plan_stream_jobs

    rng = np.random.default_rng(0)
    for folder, seconds in [("positive", 1.0), ("ambient", 4.0), ("mining", 6.0)]:
        audio = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
        write_wav(tmp_path / "train" / folder / f"{folder}.wav", audio)
    config = FullConfig.model_validate({"data": {"data_dir": str(tmp_path), "build_demo": False}})
    window_kinds = {job.kind for job in plan_window_jobs(config)}
    assert window_kinds == {"positive", "ambient"}
    streams = {job.kind: job.sources for job in plan_stream_jobs(config, "train")}
    assert streams["mining"] == ("train/mining/mining.wav",)
    streams = [
        Stream(np.zeros((600, 40), np.uint16), name, kind, [])
        for name, kind in [("train/mining/mining.wav", "mining"), ("p.wav", "positive")]
    ]
    fires = HardExampleMiner(config).mine_from_dataset(
        lambda feats: np.full(len(feats) // config.model.stride, 0.9, np.float32), streams
    )
    assert len(fires) > 0 and set(fires.source) == {"train/mining/mining.wav"}
    with pytest.raises(ValueError, match="split: train"):
        FullConfig.model_validate(
            {"data": {"sources": [{"path": "x", "kind": "mining", "split": "test"}]}}
        )
