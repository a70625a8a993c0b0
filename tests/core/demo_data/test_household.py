"""Tests for the home sounds of the demo data (household.py) and where ambient audio uses them."""

from __future__ import annotations

import numpy as np
import pytest

from mww_core.demo_data.ambient import (
    _AMBIENT_KINDS,
    _AmbientPool,
    _compose_ambient,
    _write_noise,
)
from mww_core.demo_data.clock import _StageClock
from mww_core.demo_data.conditions import HELD_OUT_NOISES
from mww_core.demo_data.household import HOUSEHOLD_KINDS, MORE_NOISE_KINDS, household_noise

SR = 16000


def _spectral_flatness(x: np.ndarray) -> float:
    """Geometric over arithmetic mean of the power spectrum: near 1 for noise, low for tones."""
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2 + 1e-12
    return float(np.exp(np.mean(np.log(power))) / np.mean(power))


@pytest.mark.parametrize("kind", HOUSEHOLD_KINDS + MORE_NOISE_KINDS)
def test_each_sound_is_audible_finite_and_reproducible(kind):
    a = household_noise(kind, np.random.default_rng(3), 4 * SR)
    b = household_noise(kind, np.random.default_rng(3), 4 * SR)
    c = household_noise(kind, np.random.default_rng(4), 4 * SR)
    assert a.shape == (4 * SR,) and np.isfinite(a).all()
    assert np.sqrt(np.mean(a**2)) > 1e-3
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_music_is_tonal_and_appliances_are_noisy():
    music = household_noise("music", np.random.default_rng(0), 2 * SR)
    white = np.random.default_rng(0).standard_normal(2 * SR)
    assert _spectral_flatness(music) < 0.05 < _spectral_flatness(white)


def _share_below(x: np.ndarray, hz: float) -> float:
    """The share of ``x``'s power below ``hz``."""
    power = np.abs(np.fft.rfft(x)) ** 2
    return float(power[np.fft.rfftfreq(len(x), 1 / SR) < hz].sum() / power.sum())


def test_outdoor_sounds_sit_where_they_should_in_frequency():
    rng = np.random.default_rng(5)
    # Traffic and wind are low rumbles; birdsong and typing's ticks are high.
    assert _share_below(household_noise("traffic", rng, 8 * SR), 1000.0) > 0.6
    assert _share_below(household_noise("wind", rng, 8 * SR), 1500.0) > 0.6
    assert _share_below(household_noise("birds", rng, 8 * SR), 1500.0) < 0.1
    assert _share_below(household_noise("typing", rng, 8 * SR), 1500.0) < 0.5
    # Sustained chords are tonal, applause is noise.
    synth = household_noise("synth", rng, 4 * SR)
    clapping = household_noise("applause", rng, 4 * SR)
    assert _spectral_flatness(synth) < 0.05 < _spectral_flatness(clapping)


@pytest.mark.parametrize("more_kinds", [False, True])
def test_noise_clips_take_the_more_kinds_only_when_asked(tmp_path, more_kinds):
    count = 7 + len(HOUSEHOLD_KINDS) + len(MORE_NOISE_KINDS)  # every kind once, and some again
    clock = _StageClock(None)
    files = _write_noise(tmp_path, count, [], seed=1, clock=clock, more_kinds=more_kinds)
    kinds = {meta["kind"] for meta in files.values()}
    assert len(files) == count and all((tmp_path / name).is_file() for name in files)
    assert set(HOUSEHOLD_KINDS) <= kinds
    if more_kinds:
        assert set(MORE_NOISE_KINDS) <= kinds
    else:
        assert not kinds & set(MORE_NOISE_KINDS)


def test_unknown_kind_is_named():
    with pytest.raises(ValueError, match="unknown household noise 'lawnmower'"):
        household_noise("lawnmower", np.random.default_rng(0), SR)


def test_training_ambient_uses_household_sounds_and_the_test_its_held_out_noises():
    only_home = tuple(1.0 if k in ("music", "household") else 0.0 for k in _AMBIENT_KINDS)
    pools = _AmbientPool(speech=[], confusable=[])
    sources = {}
    for held_out in (False, True):
        audio, meta = _compose_ambient(
            np.random.default_rng(1), 120 * SR, pools, [], weights=tuple(
                w / sum(only_home) for w in only_home
            ), held_out_noises=held_out,
        )  # fmt: skip
        assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
        assert {s["kind"] for s in meta["segments"]} <= {"music", "household"}
        sources[held_out] = {s["source"] for s in meta["segments"]}
    assert sources[False] and sources[False] <= set(HOUSEHOLD_KINDS)
    assert sources[True] and sources[True] <= set(HELD_OUT_NOISES)
