"""Sounds of a home for training: synthesized music and household noise (issue 15).

A wake-word model that has only heard speech and coloured noise as negatives fires on the
first melody or kettle it meets. These generators give the training noise clips, ambient audio
and mining corpus music beds, appliances and knocks. They are made differently from the test
split's held-out noises (``conditions.HELD_OUT_NOISES``: sine chords over a kick drum, rain,
running water with clinks, a vacuum's motor whine), so the test still hears kinds of noise
training never did.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt

from mww_core.audio import SAMPLE_RATE_HZ

SR = SAMPLE_RATE_HZ

# The kinds made here, by name; each maker takes (rng, n) and returns n samples at any level.
HOUSEHOLD_KINDS = ("music", "appliance", "knocks", "beeps")
# More kinds for training's noise clips only (data.demo.more_noise_kinds): sounds from outside
# and from a television, so that no one family of noise stands for all the noise a device
# hears. Like the four above, none is made the way a held-out test noise is.
MORE_NOISE_KINDS = ("traffic", "wind", "applause", "typing", "birds", "synth")


def household_noise(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` samples of one of ``HOUSEHOLD_KINDS`` or ``MORE_NOISE_KINDS`` (any level; callers
    set it).

    Raises:
        ValueError: An unknown kind.
    """
    makers = {
        "music": music_bed,
        "appliance": appliance,
        "knocks": knocks,
        "beeps": beeps,
        "traffic": traffic,
        "wind": wind,
        "applause": applause,
        "typing": typing,
        "birds": birds,
        "synth": synth_pad,
    }
    if kind not in makers:
        raise ValueError(f"unknown household noise {kind!r}; use one of {', '.join(makers)}")
    return makers[kind](rng, n)


def _band(rng: np.random.Generator, n: int, low_hz: float, high_hz: float) -> np.ndarray:
    sos = butter(2, (low_hz, high_hz), btype="bandpass", fs=SR, output="sos")
    return sosfilt(sos, rng.standard_normal(n))


def _pluck(rng: np.random.Generator, f0: float, length: int, odd_only: bool) -> np.ndarray:
    """A plucked or organ-like note: decaying harmonics (odd ones only for a square-ish tone)."""
    t = np.arange(length) / SR
    harmonics = range(1, 12, 2) if odd_only else range(1, 9)
    tone = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in harmonics)
    return tone * np.exp(-t * rng.uniform(2.0, 9.0)) * (1 - np.exp(-t * 400))


def music_bed(rng: np.random.Generator, n: int) -> np.ndarray:
    """A melody over a bass line with hi-hat and snare, at 70-150 beats per minute.

    Melody notes come from a pentatonic or major scale, one or two per beat; the drums are
    band-limited noise bursts (no sine kick, unlike the test's music).
    """
    beat = int(SR * 60.0 / rng.uniform(70.0, 150.0))
    scale = np.array([0, 2, 4, 7, 9] if rng.random() < 0.5 else [0, 2, 4, 5, 7, 9, 11])
    root = int(rng.integers(52, 64))
    odd_only = bool(rng.random() < 0.5)
    out = np.zeros(n + 2 * SR)
    pos, degree = 0, int(rng.integers(len(scale)))
    while pos < n:
        step = beat // int(rng.choice([1, 2]))
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, 2 * len(scale) - 1))
        midi = root + 12 * (degree // len(scale)) + scale[degree % len(scale)]
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        note = _pluck(rng, f0, min(2 * step, SR), odd_only)
        out[pos : pos + len(note)] += note
        pos += step
    for k, start in enumerate(range(0, n, beat)):
        if k % 2 == 0:  # bass on every other beat
            midi = root - 12 + scale[int(rng.integers(len(scale)))]
            out[start : start + beat] += 1.5 * _pluck(
                rng, 440.0 * 2 ** ((midi - 69) / 12), beat, False
            )
        hat = _band(rng, int(0.05 * SR), 6000.0, 7900.0) * np.exp(-np.arange(int(0.05 * SR)) / 200)
        out[start : start + len(hat)] += 0.6 * hat
        if k % 4 == 2:  # snare on the backbeat
            length = int(0.15 * SR)
            snare = _band(rng, length, 800.0, 5000.0) * np.exp(-np.arange(length) / (0.03 * SR))
            out[start : start + length] += 1.2 * snare
    return out[:n]


def appliance(rng: np.random.Generator, n: int) -> np.ndarray:
    """A kettle, fan, fridge or washing machine: a band of noise with a slow rhythm, a motor or
    blade tone, and sometimes mains hum."""
    t = np.arange(n) / SR
    low = rng.uniform(80.0, 1500.0)
    high = min(7800.0, low * rng.uniform(2.0, 8.0))
    rhythm = 1 + rng.uniform(0.1, 0.8) * np.sin(2 * np.pi * rng.uniform(0.2, 3.0) * t)
    x = _band(rng, n, low, high) * rhythm
    motor = rng.uniform(25.0, 100.0)
    x += rng.uniform(0.0, 0.5) * sum(
        np.sin(2 * np.pi * motor * h * t + rng.uniform(0, 6)) / h for h in range(1, 5)
    )
    if rng.random() < 0.4:  # bubbling: short bursts of higher noise
        bubbles = (rng.random(n) < 30.0 / SR).astype(float)
        bubbles = np.convolve(bubbles, np.exp(-np.arange(int(0.02 * SR)) / 60.0))[:n]
        x += 3.0 * bubbles * _band(rng, n, 1000.0, 4000.0)
    if rng.random() < 0.4:
        mains = float(rng.choice([50.0, 60.0]))
        x += 0.3 * sum(np.sin(2 * np.pi * mains * h * t) / h for h in (1, 2, 3, 4))
    return x


def knocks(rng: np.random.Generator, n: int) -> np.ndarray:
    """Footsteps, doors, cupboards and chairs: low thumps and wooden knocks, irregularly, over
    a faint room tone (so no stretch of it is digital silence: background-noise augmentation
    skips a noise clip that is too silent where it is cut)."""
    out = 0.02 * _band(rng, n, 50.0, 4000.0)
    for _ in range(max(1, rng.poisson(1.5 * n / SR))):
        length = int(rng.uniform(0.05, 0.3) * SR)
        at = int(rng.integers(0, max(1, n - length)))
        centre = rng.uniform(60.0, 1500.0)
        thump = _band(rng, length, centre * 0.7, min(7800.0, centre * 2.5))
        out[at : at + length] += (
            rng.uniform(0.3, 3.0)
            * thump
            * np.exp(-np.arange(length) / rng.uniform(0.01, 0.06) / SR)
        )
    return out


def beeps(rng: np.random.Generator, n: int) -> np.ndarray:
    """A microwave, oven or phone: short pure tones and ringing in 500-4000 Hz, over hiss."""
    out = 0.05 * rng.standard_normal(n)
    t_all = np.arange(n) / SR
    pos = int(rng.uniform(0.0, 1.0) * SR)
    while pos < n:
        f = rng.uniform(500.0, 4000.0)
        length = min(n - pos, int(rng.uniform(0.08, 0.6) * SR))
        out[pos : pos + length] += np.sin(2 * np.pi * f * t_all[:length]) * np.hanning(length)
        pos += length + int(rng.uniform(0.1, 3.0) * SR)
    return out


_SETTLE = 64  # samples of a band-pass filter's start-up, dropped from short bursts


def _burst(rng: np.random.Generator, n: int, low_hz: float, high_hz: float) -> np.ndarray:
    """``n`` samples of band-passed noise, past the filter's start-up (a short burst's first
    samples would otherwise be the filter ringing in)."""
    return _band(rng, n + _SETTLE, low_hz, high_hz)[_SETTLE:]


def _envelope(rng: np.random.Generator, n: int, per_second: float, depth: float) -> np.ndarray:
    """A slowly wandering gain around 1: smoothed random steps, ``per_second`` of them."""
    steps = max(2, int(n / SR * per_second) + 2)
    points = np.exp(depth * rng.standard_normal(steps))
    return np.interp(np.arange(n), np.linspace(0, n, steps), points)


def traffic(rng: np.random.Generator, n: int) -> np.ndarray:
    """A street through a window: a low rumble with cars passing (swells of tyre noise, each
    with its engine's low tone sliding down as it goes by)."""
    t = np.arange(n) / SR
    out = 0.3 * _band(rng, n, 30.0, 400.0)
    for _ in range(max(1, rng.poisson(0.4 * n / SR))):
        centre = rng.uniform(0.0, n / SR)
        width = rng.uniform(0.8, 3.0)
        swell = np.exp(-(((t - centre) / width) ** 2))
        tyres = _band(rng, n, 150.0, rng.uniform(800.0, 2000.0))
        f0 = rng.uniform(40.0, 120.0) * (1 + 0.1 * np.tanh(-(t - centre) / width))
        engine = np.sin(2 * np.pi * np.cumsum(f0) / SR)
        out += rng.uniform(0.5, 2.0) * swell * (tyres + 0.5 * engine)
    return out


def wind(rng: np.random.Generator, n: int) -> np.ndarray:
    """Wind on a window or in the trees: low-passed noise in gusts, its brightness moving with
    its strength."""
    gusts = _envelope(rng, n, rng.uniform(0.5, 2.0), 0.6)
    low = _band(rng, n, 20.0, 300.0)
    high = _band(rng, n, 300.0, rng.uniform(1000.0, 3000.0))
    return gusts * low + 0.5 * gusts**2 * high


def applause(rng: np.random.Generator, n: int) -> np.ndarray:
    """A studio audience on the television: many hands clapping (short bursts of mid-band
    noise, 5-40 a second) rising and falling."""
    out = np.zeros(n + SR)
    rate = rng.uniform(5.0, 40.0)
    level = _envelope(rng, n + SR, 0.7, 0.5)
    for at in rng.integers(0, n, size=max(1, int(rate * n / SR))):
        length = int(rng.uniform(0.004, 0.015) * SR)
        centre = rng.uniform(700.0, 2500.0)
        clap = _burst(rng, length, centre * 0.6, min(7800.0, centre * 2.0))
        out[at : at + length] += level[at] * clap * np.exp(-np.arange(length) / (0.3 * length))
    return out[:n] + 0.02 * _band(rng, n, 100.0, 4000.0)


def typing(rng: np.random.Generator, n: int) -> np.ndarray:
    """A keyboard: bursts of key clicks (a sharp high tick with a duller thud) 5-10 a second,
    with pauses between words."""
    out = 0.01 * _band(rng, n, 200.0, 6000.0)
    pos = int(rng.uniform(0.0, 0.5) * SR)
    while pos < n:
        for _ in range(int(rng.integers(2, 9))):
            if pos >= n:
                break
            length = int(0.012 * SR)
            tick = _burst(rng, length, 2500.0, 7000.0) * np.exp(-np.arange(length) / 30)
            thud = _burst(rng, length, 150.0, 900.0) * np.exp(-np.arange(length) / 80)
            end = min(n, pos + length)
            out[pos:end] += (rng.uniform(0.5, 1.5) * tick + thud)[: end - pos]
            pos += int(rng.uniform(0.08, 0.2) * SR)
        pos += int(rng.uniform(0.2, 1.5) * SR)
    return out


def birds(rng: np.random.Generator, n: int) -> np.ndarray:
    """Birdsong from a garden: trills of short whistled sweeps at 2-6 kHz over a faint hiss."""
    out = 0.01 * _band(rng, n, 500.0, 6000.0)
    pos = int(rng.uniform(0.0, 1.0) * SR)
    while pos < n:
        base = rng.uniform(2000.0, 5000.0)
        sweep = rng.uniform(-1500.0, 1500.0)
        for _ in range(int(rng.integers(2, 8))):
            if pos >= n:
                break
            length = int(rng.uniform(0.03, 0.15) * SR)
            f = base + sweep * np.linspace(0.0, 1.0, length)
            chirp = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.hanning(length)
            end = min(n, pos + length)
            out[pos:end] += chirp[: end - pos]
            pos += length + int(rng.uniform(0.02, 0.1) * SR)
        pos += int(rng.uniform(0.3, 2.5) * SR)
    return out


def synth_pad(rng: np.random.Generator, n: int) -> np.ndarray:
    """Television music: sustained sawtooth chords that swell in and out (no drums, no plucked
    notes), a chord every 1-4 s, with a slow vibrato."""
    t = np.arange(n) / SR
    out, pos = np.zeros(n), 0
    vibrato = 1 + 0.004 * np.sin(2 * np.pi * rng.uniform(3.0, 6.0) * t)
    while pos < n:
        length = min(n - pos, int(rng.uniform(1.0, 4.0) * SR))
        root = int(rng.integers(45, 65))
        for interval in (0, int(rng.choice([3, 4])), 7):
            f0 = 440.0 * 2 ** ((root + interval - 69) / 12)
            phase = np.cumsum(f0 * vibrato[pos : pos + length]) / SR
            saw = sum(np.sin(2 * np.pi * h * phase) / h for h in range(1, 12) if f0 * h < 7500)
            out[pos : pos + length] += saw
        fade = np.minimum(1.0, np.minimum(np.arange(length), length - np.arange(length)) / 4000)
        out[pos : pos + length] *= fade
        pos += length
    return out
