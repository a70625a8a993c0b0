"""The training rooms: their reverberation time follows data.demo.rir_rt60_s."""

import numpy as np
import pytest

from mww_core.audio import SAMPLE_RATE_HZ
from mww_core.config.data import DemoDataConfig
from mww_core.demo_data.rooms import _simulate_rir


def _decay_s(rir: np.ndarray, drop_db: float = 20.0) -> float:
    """Seconds until the remaining energy (Schroeder integral) has fallen by ``drop_db``."""
    remaining = np.cumsum((rir**2)[::-1])[::-1]
    below = np.flatnonzero(remaining <= remaining[0] * 10 ** (-drop_db / 10))
    return below[0] / SAMPLE_RATE_HZ


def test_longer_rt60_gives_rooms_whose_sound_lasts_longer():
    rng = np.random.default_rng(3)
    dry = [_simulate_rir(rng, (0.15, 0.2)) for _ in range(3)]
    live = [_simulate_rir(rng, (1.0, 1.1)) for _ in range(3)]
    assert all(0.15 <= meta["rt60_s"] <= 0.2 for _, meta in dry)
    assert all(1.0 <= meta["rt60_s"] <= 1.1 for _, meta in live)
    # Whatever the talker's distance, the energy takes several times longer to fall by 20 dB.
    assert min(_decay_s(r) for r, _ in live) > 2 * max(_decay_s(r) for r, _ in dry)


def test_rt60_range_is_checked():
    assert DemoDataConfig().rir_rt60_s == (0.15, 1.1)
    with pytest.raises(ValueError, match="rir_rt60_s"):
        DemoDataConfig(rir_rt60_s=(0.9, 0.3))
