"""How the demo's test positives are heard: noises, rooms and voice shifts training never has.

With ``data.demo.validation_conditions`` validation's wake words are heard in the same
conditions, made from what training knows (``Hearing``): its kinds of noise, rooms of its
sizes and pitch shifts within its range, so that the test alone hears what nothing else does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.signal import butter, fftconvolve, istft, resample_poly, sosfilt, stft

from mww_core.audio import SAMPLE_RATE_HZ, speech_rms

SR = SAMPLE_RATE_HZ

# Each test positive is heard in one of these; "command" is the wake word followed by a request.
CONDITIONS = ("clean", "noisy", "reverberant", "far_field", "pitch_shifted", "command")

# Noise types training never hears: its noise/ files are white, pink, brown and babble, its
# ambient audio coloured noise, mains hum, knocks and speech.
HELD_OUT_NOISES = ("rain", "music", "dishes", "vacuum")
NOISY_SNR_DB = (0.0, 20.0)
FAR_FIELD_DBFS = (-35.0, -25.0)  # RMS of the speech
# The demo's training shifts pitch by at most 3.5 semitones (augmentation.pitch_shift_semitones)
# and plays speech at most 1.25 times faster or slower (speed_factor, about 3.9 semitones); the
# test shifts by 4 to 5, up or down, by resampling (formants move with the pitch), beyond both.
PITCH_SHIFT_SEMITONES = (4.0, 5.0)
TAIL_S = 0.3  # reverberation kept after the clip's end
# Validation's conditions (data.demo.validation_conditions): the test's but "command" (its
# wake words carry requests through data.demo.command_share), with pitch shifts inside the
# demo's training range.
VALIDATION_CONDITIONS = tuple(c for c in CONDITIONS if c != "command")
VALIDATION_PITCH_SHIFT_SEMITONES = (2.0, 3.5)


@dataclass(frozen=True)
class Room:
    """A simulated room impulse response and how it was made."""

    rir: np.ndarray
    meta: dict[str, Any]


@dataclass(frozen=True)
class Hearing:
    """What a split's conditions are made of: its noises (``noise(kind, rng, n)`` for each of
    ``noises``), its rooms by use (``"near"``, talker within a few metres, and ``"far"``) and
    the range of its pitch shifts in semitones (up or down)."""

    noises: tuple[str, ...] = HELD_OUT_NOISES
    noise: Callable[[str, np.random.Generator, int], np.ndarray] | None = None
    rooms: dict[str, list[Room]] = field(default_factory=dict)
    pitch_semitones: tuple[float, float] = PITCH_SHIFT_SEMITONES

    def make_noise(self, kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` samples of one of ``noises`` (the test's held-out noises by default)."""
        return (self.noise or held_out_noise)(kind, rng, n)


def apply_condition(
    condition: str, audio: np.ndarray, rng: np.random.Generator, hearing: Hearing
) -> tuple[np.ndarray, dict[str, Any]]:
    """Put a clean clip (speech at full scale, no noise floor) into a condition, as the split
    of ``hearing`` hears it (the test's held-out one, or validation's).

    Args:
        condition: One of ``CONDITIONS``.
        audio: The clip, 16 kHz.
        rng: The clip's own generator.
        hearing: The split's noises, rooms and pitch shifts (the test's: held-out noises and
            rooms, shifts beyond training's).

    Returns:
        The audio (peak at most 1; far-field clips at their RMS level, the others unscaled
        relative to the input's peak) and the condition's parameters.

    Raises:
        ValueError: An unknown condition.
    """
    if condition in ("clean", "command"):
        return audio, {}
    if condition == "noisy":
        kind = str(rng.choice(hearing.noises))
        snr = float(rng.uniform(*NOISY_SNR_DB))
        noise = hearing.make_noise(kind, rng, len(audio))
        noise *= snr_gain(audio, noise, snr)
        return at_peak(audio + noise, np.abs(audio).max()), {"noise": kind, "snr_db": round(snr, 1)}
    if condition == "reverberant":
        room = hearing.rooms["near"][int(rng.integers(len(hearing.rooms["near"])))]
        return at_peak(reverberate(audio, room.rir), np.abs(audio).max()), dict(room.meta)
    if condition == "far_field":
        room = hearing.rooms["far"][int(rng.integers(len(hearing.rooms["far"])))]
        level = float(rng.uniform(*FAR_FIELD_DBFS))
        wet = reverberate(audio, room.rir)
        wet *= 10 ** (level / 20) / (speech_rms(wet) + 1e-12)
        wet *= min(1.0, 0.99 / (np.abs(wet).max() + 1e-12))  # a quiet clip is never clipped
        return wet, {**room.meta, "speech_dbfs": round(level, 1)}
    if condition == "pitch_shifted":
        semitones = float(rng.uniform(*hearing.pitch_semitones) * rng.choice([-1.0, 1.0]))
        return shift_pitch(audio, semitones), {"semitones": round(semitones, 2)}
    raise ValueError(f"unknown test condition {condition!r}; use one of {', '.join(CONDITIONS)}")


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """The clip said in a room, with ``TAIL_S`` of its reverberation kept."""
    wet = fftconvolve(audio, rir)
    return wet[: len(audio) + min(int(TAIL_S * SR), len(rir) - 1)]


def shift_pitch(audio: np.ndarray, semitones: float) -> np.ndarray:
    """Resample so the voice sounds ``semitones`` higher (shorter) or lower (longer)."""
    factor = 2 ** (semitones / 12)
    return resample_poly(audio, 1000, int(round(1000 * factor)))


def shift_formants(audio: np.ndarray, ratio: float, lifter: int = 40) -> np.ndarray:
    """Move the spectral envelope (the vocal tract's resonances) by ``ratio``, keeping the pitch.

    The envelope of each frame is its low-quefrency cepstrum; the frame is divided by it and
    multiplied by the envelope stretched along frequency, so a ratio above 1 sounds like a
    shorter vocal tract, below 1 a longer one.
    """
    n_fft, hop = 512, 128
    _, _, spec = stft(audio, fs=SR, nperseg=n_fft, noverlap=n_fft - hop)
    log_mag = np.log(np.abs(spec) + 1e-8)
    cepstrum = np.fft.irfft(log_mag, axis=0)
    cepstrum[lifter:-lifter] = 0.0
    envelope = np.fft.rfft(cepstrum, axis=0).real[: spec.shape[0]]
    bins = np.arange(spec.shape[0], dtype=np.float64)
    source = np.clip(bins / ratio, 0, bins[-1])
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, len(bins) - 1)
    weight = (source - low)[:, None]
    warped = envelope[low] * (1 - weight) + envelope[high] * weight
    _, out = istft(spec * np.exp(warped - envelope), fs=SR, nperseg=n_fft, noverlap=n_fft - hop)
    return np.pad(out, (0, max(0, len(audio) - len(out))))[: len(audio)]


def snr_gain(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> float:
    """The factor that puts ``noise`` (its RMS) ``snr_db`` below ``speech`` (``speech_rms``)."""
    return speech_rms(speech) / (np.sqrt(np.mean(noise**2)) + 1e-12) / 10 ** (snr_db / 20)


def peak_gain(audio: np.ndarray, peak: float) -> float:
    """The factor that scales ``audio`` to the given peak (at most 0.99); 1 for silence."""
    top = np.abs(audio).max() if len(audio) else 0.0
    return min(peak, 0.99) / top if top > 0 else 1.0


def at_peak(audio: np.ndarray, peak: float) -> np.ndarray:
    """``audio`` scaled to the given peak (at most 0.99)."""
    return audio * peak_gain(audio, peak)


# --------------------------------------------------------------------------- held-out noises


def held_out_noise(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` samples of a noise type in ``HELD_OUT_NOISES`` (any level; callers set it)."""
    makers = {"rain": _rain, "music": _music, "dishes": _dishes, "vacuum": _vacuum}
    return makers[kind](rng, n)


def _filtered(rng: np.random.Generator, n: int, band_hz: tuple[float, float]) -> np.ndarray:
    sos = butter(4, band_hz, btype="bandpass", fs=SR, output="sos")
    return sosfilt(sos, rng.standard_normal(n))


def _rain(rng: np.random.Generator, n: int) -> np.ndarray:
    """A hiss of high-passed noise with dense droplet clicks on top."""
    out = 0.3 * _filtered(rng, n, (1500.0, 7000.0))
    drops = np.zeros(n)
    at = rng.integers(0, n, size=int(rng.uniform(150, 400) * n / SR))
    drops[at] = rng.uniform(0.5, 3.0, size=len(at)) * rng.choice([-1.0, 1.0], size=len(at))
    decay = np.exp(-np.arange(int(0.003 * SR)) / (0.0005 * SR))
    sos = butter(2, 2000.0, btype="highpass", fs=SR, output="sos")
    return out + sosfilt(sos, np.convolve(drops, decay)[:n])


def _music(rng: np.random.Generator, n: int) -> np.ndarray:
    """Chords of harmonic notes changing every 0.3-0.8 s, over a steady kick drum."""
    t = np.arange(n) / SR
    out, pos = np.zeros(n), 0
    while pos < n:
        length = min(n - pos, int(rng.uniform(0.3, 0.8) * SR))
        span = t[:length]
        for midi in rng.integers(48, 80, size=3):
            f0 = 440.0 * 2 ** ((midi - 69) / 12)
            note = sum(np.sin(2 * np.pi * f0 * h * span) / h**1.5 for h in range(1, 6))
            out[pos : pos + length] += note * np.exp(-span * rng.uniform(1.0, 4.0))
        pos += length
    beat = int(rng.uniform(0.4, 0.6) * SR)
    kick = np.sin(2 * np.pi * 55.0 * t[: int(0.15 * SR)]) * np.exp(-t[: int(0.15 * SR)] * 30)
    for start in range(int(rng.integers(0, beat)), n, beat):
        end = min(n, start + len(kick))
        out[start:end] += 2.0 * kick[: end - start]
    return out


def _dishes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Running water and the clinks of plates and cutlery (ringing high partials)."""
    out = 0.4 * _filtered(rng, n, (400.0, 4000.0))
    ring = np.arange(int(0.25 * SR)) / SR
    for start in rng.integers(0, n, size=int(rng.uniform(2.0, 5.0) * n / SR) + 1):
        partials = rng.uniform(2000.0, 7000.0, size=3)
        clink = sum(np.sin(2 * np.pi * f * ring) for f in partials) * np.exp(-ring * 25)
        end = min(n, start + len(clink))
        out[start:end] += rng.uniform(1.0, 4.0) * clink[: end - start]
    return out


def _vacuum(rng: np.random.Generator, n: int) -> np.ndarray:
    """A motor's whine (harmonics of 120-300 Hz, not mains) over a swelling band of air noise."""
    t = np.arange(n) / SR
    f0 = rng.uniform(120.0, 300.0)
    whine = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in range(1, 8))
    air = _filtered(rng, n, (300.0, 3000.0)) * (1 + 0.2 * np.sin(2 * np.pi * 0.3 * t))
    return 0.3 * whine / 7 + air
