"""How validation's wake words are heard with data.demo.validation_conditions: in the test's
conditions, made of what training knows (its noises, rooms of its sizes, shifts in its range)."""

from __future__ import annotations

import numpy as np
import pytest

from mww_core.audio import SAMPLE_RATE_HZ
from mww_core.demo_data.conditions import (
    HELD_OUT_NOISES,
    VALIDATION_CONDITIONS,
    VALIDATION_PITCH_SHIFT_SEMITONES,
    Hearing,
    apply_condition,
    speech_rms,
)
from mww_core.demo_data.household import HOUSEHOLD_KINDS
from mww_core.demo_data.rooms import TRAIN_ROOM_M, VALIDATION_NOISES, validation_hearing

SR = SAMPLE_RATE_HZ


def _speech(seconds: float = 0.8, f0: float = 150.0) -> np.ndarray:
    """A voiced vowel-like sound: harmonics of ``f0`` under a syllable envelope, peak 0.9."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 12))
    x = x * np.sin(np.pi * t / seconds) ** 2
    return 0.9 * x / np.abs(x).max()


@pytest.fixture(scope="module")
def hearing() -> Hearing:
    return validation_hearing(np.random.default_rng(5), (0.3, 0.8))


def test_validation_hears_trainings_kinds_of_noise_and_rooms(hearing):
    assert set(hearing.noises) == set(VALIDATION_NOISES)
    assert not set(hearing.noises) & set(HELD_OUT_NOISES)  # the test's noises stay the test's
    assert set(hearing.noises) >= {"white", "pink", "brown"} | (set(HOUSEHOLD_KINDS) - {"music"})
    rooms = [room.meta for use in hearing.rooms.values() for room in use]
    assert len(hearing.rooms["near"]) == 4 and len(hearing.rooms["far"]) == 3
    for meta in rooms:  # training's sizes and RT60s, unlike the test's halls and small rooms
        assert all(lo <= d <= hi for d, (lo, hi) in zip(meta["room_m"], TRAIN_ROOM_M, strict=True))
        assert 0.3 <= meta["rt60_s"] <= 0.8
    assert all(room.meta["distance_m"] >= 3.0 for room in hearing.rooms["far"])
    assert all(room.meta["distance_m"] <= 3.0 for room in hearing.rooms["near"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_validation_condition_changes_the_clip_as_it_says(hearing, seed):
    clean = _speech()
    out = {}
    for condition in VALIDATION_CONDITIONS:
        audio, params = apply_condition(condition, clean, np.random.default_rng(seed), hearing)
        out[condition] = (audio, params)
    assert out["clean"][0] is clean and out["clean"][1] == {}
    noisy, params = out["noisy"]
    assert params["noise"] in VALIDATION_NOISES and 0 <= params["snr_db"] <= 20
    residual = noisy / np.abs(noisy).max() * np.abs(clean).max() - clean
    assert speech_rms(residual) > 1e-3  # noise was added
    reverberant, params = out["reverberant"]
    assert len(reverberant) > len(clean) and params["distance_m"] <= 3.0
    far, params = out["far_field"]
    assert -35 <= params["speech_dbfs"] <= -25
    assert 20 * np.log10(speech_rms(far)) == pytest.approx(params["speech_dbfs"], abs=1.5)
    shifted, params = out["pitch_shifted"]
    low, high = VALIDATION_PITCH_SHIFT_SEMITONES
    assert low <= abs(params["semitones"]) <= high
    # Resampled: higher is shorter, lower longer, by the shift's factor.
    assert len(shifted) / len(clean) == pytest.approx(2 ** (-params["semitones"] / 12), rel=0.01)


def test_the_tests_hearing_is_the_default():
    rng = np.random.default_rng(0)
    _, params = apply_condition("noisy", _speech(), rng, Hearing())
    assert params["noise"] in HELD_OUT_NOISES
    _, params = apply_condition("pitch_shifted", _speech(), rng, Hearing())
    assert 4.0 <= abs(params["semitones"]) <= 5.0
