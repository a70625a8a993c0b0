"""Tests for mww_core.features.mined: mined windows re-made from their audio, augmented."""

from __future__ import annotations

import numpy as np
import pytest

from mww_core.audio import write_wav
from mww_core.config import FullConfig
from mww_core.features.mined import augment_mined_windows
from mww_core.store import Windows
from tests.conftest import SMALL_MODEL


def test_mined_windows_are_remade_with_augmentation(tmp_path):
    rng = np.random.default_rng(1)
    data = tmp_path / "data"
    write_wav(data / "train/ambient/room.wav", (0.1 * rng.standard_normal(48000)).astype("f4"))
    write_wav(data / "train/negative/clip.wav", (0.1 * rng.standard_normal(16000)).astype("f4"))
    write_wav(data / "noise/hum.wav", (0.05 * rng.standard_normal(32000)).astype("f4"))
    config = FullConfig.model_validate(
        {
            "data": {"data_dir": str(data), "build_demo": False},
            "features": {"window_frames": 60, "num_workers": 1},
            "model": SMALL_MODEL,
        }
    )
    # One window of an ambient file, one that starts before its clip, one with no file behind it.
    mined = Windows(
        features=np.zeros((3, 60, 40), np.uint16),
        label=np.zeros(3, np.int8),
        weight_class=np.array(["hard_negative"] * 3, dtype=object),
        source=np.array(["train/ambient/room.wav", "train/negative/clip.wav", "t/n#3"], object),
        offset_s=np.array([1.0, -0.4, 0.0], np.float32),
        seed=np.full(3, -1, np.int64),
        score=np.array([0.9, 0.7, 0.8], np.float32),
    )
    calls = []
    made = augment_mined_windows(config, mined, copies=3, progress=lambda *a: calls.append(a))
    assert len(made) == 6  # 2 remade windows x 3 copies; "t/n#3" is skipped
    assert calls[-1] == ("augmented copies", 6, 6)
    assert list(made.source) == ["train/ambient/room.wav"] * 3 + ["train/negative/clip.wav"] * 3
    assert set(made.weight_class) == {"hard_negative"} and not made.label.any()
    assert list(made.score) == pytest.approx([0.9] * 3 + [0.7] * 3)
    assert len(set(made.seed)) == 6  # every copy has its own augmentation seed
    assert not np.array_equal(made.features[0], made.features[1])
    # The clip window starts 0.4 s before the clip: its first frames are silence, not audio.
    assert made.features[3, :20].mean() < made.features[3, -20:].mean()
    again = augment_mined_windows(config, mined, copies=3)
    np.testing.assert_array_equal(made.features, again.features)  # seeded: same bytes
    assert len(augment_mined_windows(config, mined, copies=0)) == 0


def test_copies_of_clips_outside_the_data_folder_do_not_depend_on_where_it_lives(tmp_path):
    rng = np.random.default_rng(2)
    clip = (0.1 * rng.standard_normal(24000)).astype("f4")
    config = FullConfig.model_validate(
        {
            "data": {"data_dir": str(tmp_path / "data"), "build_demo": False},
            "features": {"window_frames": 60, "num_workers": 1},
            "model": SMALL_MODEL,
        }
    )

    def copies(folder, audio=clip):
        write_wav(folder / "candidate_00.wav", audio)  # e.g. a retraining inbox
        mined = Windows(
            features=np.zeros((1, 60, 40), np.uint16),
            label=np.zeros(1, np.int8),
            weight_class=np.array(["hard_negative"], dtype=object),
            source=np.array([str((folder / "candidate_00.wav").resolve())], object),
            offset_s=np.array([0.2], np.float32),
            seed=np.full(1, -1, np.int64),
            score=np.array([0.9], np.float32),
        )
        return augment_mined_windows(config, mined, copies=3)

    here, there = copies(tmp_path / "inbox"), copies(tmp_path / "elsewhere" / "inbox")
    np.testing.assert_array_equal(here.seed, there.seed)
    np.testing.assert_array_equal(here.features, there.features)
    other = copies(tmp_path / "other", clip[::-1].copy())  # the same name, other audio
    assert not set(other.seed) & set(here.seed)
