"""Simulated rooms (shoebox impulse responses), and the noise, levels and fades of the audio."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from mww_core.audio import SAMPLE_RATE_HZ, write_wav
from mww_core.demo_data.clock import _StageClock
from mww_core.demo_data.conditions import VALIDATION_PITCH_SHIFT_SEMITONES, Hearing, Room
from mww_core.demo_data.household import HOUSEHOLD_KINDS, household_noise

SR = SAMPLE_RATE_HZ

# Rooms: the training RIRs (and train/validation ambient rooms) are shoeboxes of these sizes;
# the test's rooms lie outside them: halls (longer reverberation, talker near or far) and
# small tiled rooms. Sizes in metres (length, width, height), RT60 and talker distance.
TRAIN_ROOM_M = ((3.0, 10.0), (2.5, 8.0), (2.4, 4.0))
TEST_ROOMS = {
    "hall": {"size_m": ((11.0, 16.0), (8.5, 12.0), (4.2, 6.0)), "rt60_s": (0.9, 1.4),
             "distance_m": (0.7, 3.0)},
    "small": {"size_m": ((1.6, 2.8), (1.4, 2.3), (2.0, 2.35)), "rt60_s": (0.3, 0.6),
              "distance_m": (0.7, 2.0)},
    "far": {"size_m": ((11.0, 16.0), (8.5, 12.0), (4.2, 6.0)), "rt60_s": (0.9, 1.4),
            "distance_m": (4.0, 7.0)},
}  # fmt: skip


def _simulate_rir(
    rng: np.random.Generator,
    rt60_s: tuple[float, float],
    size_m: tuple[tuple[float, float], ...] = TRAIN_ROOM_M,
    distance_m: tuple[float, float] = (0.7, math.inf),
) -> tuple[np.ndarray, dict[str, Any]]:
    """One shoebox room impulse response (pyroomacoustics image sources), peak-normalized.

    Args:
        rng: The generator of the room's size, RT60 and talker and microphone positions.
        rt60_s: Range of the reverberation time.
        size_m: Ranges of length, width and height.
        distance_m: Range of the talker-to-microphone distance.
    """
    import pyroomacoustics as pra

    while True:
        dims = np.array([rng.uniform(low, high) for low, high in size_m])
        rt60 = float(rng.uniform(*rt60_s))
        source = rng.uniform(0.5, dims - 0.5)
        mic = rng.uniform(0.5, dims - 0.5)
        if not distance_m[0] <= np.linalg.norm(source - mic) <= distance_m[1]:
            continue
        try:
            absorption, max_order = pra.inverse_sabine(rt60, dims)
        except ValueError:  # this RT60 is out of reach for this room; draw another
            continue
        break
    room = pra.ShoeBox(
        dims, fs=SR, materials=pra.Material(absorption), max_order=min(max_order, 60)
    )
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    rir = _trim_rir(np.asarray(room.rir[0][0], dtype=np.float64))
    meta = {
        "room_m": dims.round(2).tolist(), "rt60_s": round(rt60, 3),
        "source_m": source.round(2).tolist(), "mic_m": mic.round(2).tolist(),
        "distance_m": round(float(np.linalg.norm(source - mic)), 2),
    }  # fmt: skip
    return rir, meta


def _held_out_rooms(rng: np.random.Generator, near: int = 4, far: int = 3) -> dict[str, list]:
    """The test's rooms (``TEST_ROOMS``), of sizes the training rooms never have.

    Returns:
        ``{"near": [...], "far": [...]}`` of ``Room``: halls and small rooms alternating with
        the talker within 3 m, and halls with the talker 4-7 m away.
    """
    kinds = {"near": ["hall", "small"] * (near // 2) + ["hall"] * (near % 2), "far": ["far"] * far}
    out: dict[str, list[Room]] = {}
    for use, names in kinds.items():
        out[use] = []
        for name in names:
            spec = TEST_ROOMS[name]
            rir, meta = _simulate_rir(rng, spec["rt60_s"], spec["size_m"], spec["distance_m"])
            out[use].append(Room(rir, {"room": name, **meta}))
    return out


# Validation's rooms (data.demo.validation_conditions): new rooms of the training sizes, the
# talker near (as a test hall's or small room's) or 3 m and more away.
VALIDATION_DISTANCE_M = {"near": (0.7, 3.0), "far": (3.0, math.inf)}


def _validation_rooms(
    rng: np.random.Generator, rt60_s: tuple[float, float], near: int = 4, far: int = 3
) -> dict[str, list[Room]]:
    """Validation's rooms: of the training rooms' sizes and RT60s (``rt60_s``), drawn anew."""
    counts = {"near": near, "far": far}
    return {
        use: [
            Room(*_simulate_rir(rng, rt60_s, TRAIN_ROOM_M, VALIDATION_DISTANCE_M[use]))
            for _ in range(count)
        ]
        for use, count in counts.items()
    }


def validation_hearing(rng: np.random.Generator, rt60_s: tuple[float, float]) -> Hearing:
    """How validation's wake words are heard with ``data.demo.validation_conditions``:
    training's kinds of noise (``VALIDATION_NOISES``), new rooms of the training sizes and pitch
    shifts within training's range (``conditions.VALIDATION_PITCH_SHIFT_SEMITONES``)."""
    return Hearing(
        noises=VALIDATION_NOISES,
        noise=training_noise,
        rooms=_validation_rooms(rng, rt60_s),
        pitch_semitones=VALIDATION_PITCH_SHIFT_SEMITONES,
    )


def _trim_rir(rir: np.ndarray) -> np.ndarray:
    """Start just before the direct sound, end where the tail has decayed by 60 dB (<= 1.5 s)."""
    peak = np.abs(rir).max()
    onset = int(np.flatnonzero(np.abs(rir) >= 0.1 * peak)[0])
    rir = rir[max(0, onset - 16) :]
    remaining = np.cumsum((rir**2)[::-1])[::-1]
    end = int(np.searchsorted(-remaining, -remaining[0] * 1e-6))
    rir = rir[: max(min(end, int(1.5 * SR)), 64)]
    rir = _fade(rir, 0, min(len(rir) // 10, int(0.05 * SR)))
    return rir / np.abs(rir).max()


def _write_rirs(
    root: Path,
    count: int,
    rng: np.random.Generator,
    clock: _StageClock,
    rt60_s: tuple[float, float],
) -> dict[str, dict[str, Any]]:
    files = {}
    with clock.stage("room impulse responses", count) as tick:
        for i in range(count):
            rir, meta = _simulate_rir(rng, rt60_s)
            name = f"rirs/rir_{i:03d}.wav"
            write_wav(root / name, rir)
            files[name] = {**meta, "seconds": round(len(rir) / SR, 3)}
            tick()
    return files


# --------------------------------------------------------------------------- noise and levels

# Training's noise clips (noise/) are of these kinds and babble: coloured noise by its
# spectral exponent, and the household sounds.
COLOURED_NOISES = {"white": 0.0, "pink": 1.0, "brown": 2.0}
# Validation's noisy wake words hear training's kinds but its music bed: the test's held-out
# noises have a music of their own, and one name would stand for two sounds.
VALIDATION_NOISES = (*COLOURED_NOISES, *(k for k in HOUSEHOLD_KINDS if k != "music"))


def training_noise(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` samples of a coloured noise (``COLOURED_NOISES``) or a household sound
    (``household.HOUSEHOLD_KINDS``), at any level (callers set it)."""
    if kind in COLOURED_NOISES:
        return _colored_noise(rng, n, COLOURED_NOISES[kind])
    return household_noise(kind, rng, n)


def _colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum *= np.maximum(freqs, 20.0) ** (-exponent / 2)
    x = np.fft.irfft(spectrum, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _at_level(x: np.ndarray, db: float) -> np.ndarray:
    rms = np.sqrt(np.mean(x**2))
    return x * (10 ** (db / 20) / rms) if rms > 0 else x


def _limit(x: np.ndarray, peak: float = 0.95) -> np.ndarray:
    top = np.abs(x).max() if len(x) else 0.0
    return x * (peak / top) if top > peak else x


def _fade(x: np.ndarray, fade_in: int, fade_out: int) -> np.ndarray:
    x = np.array(x, dtype=np.float64)
    if fade_in > 0 and len(x) >= fade_in:
        x[:fade_in] *= np.linspace(0.0, 1.0, fade_in)
    if fade_out > 0 and len(x) >= fade_out:
        x[-fade_out:] *= np.linspace(1.0, 0.0, fade_out)
    return x
