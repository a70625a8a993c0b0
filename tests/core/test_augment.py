"""Augmentation: every transform configured, seeded results, identical across worker counts."""

from __future__ import annotations

import numpy as np

from mww_core.audio import write_wav
from mww_core.augment import AudioAugmentationPipeline, ParallelAugmenter
from mww_core.config import AugmentationConfig


def _folders(tmp_path):
    rng = np.random.default_rng(0)
    rir = np.zeros(1600, np.float32)
    rir[0], rir[400] = 1.0, 0.3
    write_wav(tmp_path / "rirs" / "room.wav", rir)
    write_wav(tmp_path / "noise" / "hum.wav", (0.1 * rng.standard_normal(16000)).astype("f4"))
    return tmp_path / "rirs", tmp_path / "noise"


def _clips(n):
    rng = np.random.default_rng(1)
    return [(0.3 * rng.standard_normal(8000 + 800 * i)).astype(np.float32) for i in range(n)]


def test_all_eight_transforms_with_configured_probabilities(tmp_path):
    config = AugmentationConfig(pitch_shift_probability=0.33, gain_db=(-3.0, 3.0))
    pipeline = AudioAugmentationPipeline(config, *_folders(tmp_path))
    # The room transforms are audiomentations' own classes with a librosa-free file reader.
    names = [
        next(c.__name__ for c in type(t).__mro__ if c.__module__.startswith("audiomentations"))
        for t in pipeline.compose.transforms
    ]
    assert names == [
        "ApplyImpulseResponse",
        "AddBackgroundNoise",
        "AddColorNoise",
        "SevenBandParametricEQ",
        "TanhDistortion",
        "PitchShift",
        "BandStopFilter",
        "Gain",
    ]
    pitch = pipeline.compose.transforms[5]
    assert pitch.p == 0.33 and pipeline.compose.transforms[-1].min_gain_db == -3.0


def test_room_transforms_match_audiomentations_without_librosa(tmp_path):
    import random

    import audiomentations as am

    from mww_core.augment import BackgroundNoise, ImpulseResponse

    rirs, noise = _folders(tmp_path)
    ours = am.Compose(
        [ImpulseResponse(ir_path=str(rirs), p=1.0), BackgroundNoise(sounds_path=str(noise), p=1.0)]
    )
    theirs = am.Compose(
        [
            am.ApplyImpulseResponse(ir_path=str(rirs), p=1.0),
            am.AddBackgroundNoise(str(noise), p=1.0),
        ]
    )
    for seed, clip in enumerate(_clips(4)):
        outputs = []
        for compose in (ours, theirs):
            random.seed(seed)
            np.random.seed(seed)
            outputs.append(compose(samples=clip, sample_rate=16000))
        assert not np.array_equal(outputs[0], clip)
        np.testing.assert_array_equal(outputs[0], outputs[1])


def test_same_seed_same_output_other_seed_differs(tmp_path):
    pipeline = AudioAugmentationPipeline(AugmentationConfig(), *_folders(tmp_path))
    clip = _clips(1)[0]
    a, b, c = pipeline(clip, 5), pipeline.augment(clip, 5), pipeline.augment(clip, 6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == clip.shape and np.abs(a).max() <= 1.0


def test_parallel_batches_match_sequential_and_rerun(tmp_path):
    pipeline = AudioAugmentationPipeline(AugmentationConfig(seed=3), *_folders(tmp_path))
    clips = _clips(8)
    seeds = [11 * i + 1 for i in range(8)]
    sequential = ParallelAugmenter(pipeline, 1).augment_batch(clips)
    with ParallelAugmenter(pipeline, 2) as augmenter:
        first = augmenter.augment_batch(clips)
        seeded = augmenter.augment_batch(clips, seeds)
        reversed_ = augmenter.augment_batch(clips[::-1], seeds[::-1])[::-1]
    for s, f, clip in zip(sequential, first, clips, strict=True):
        np.testing.assert_array_equal(s, f)
        assert f.shape == clip.shape
    for a, b in zip(seeded, reversed_, strict=True):  # a clip's result follows its seed only
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], seeded[0])
