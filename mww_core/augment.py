"""Waveform augmentation with audiomentations, seeded per clip; always before the frontend."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import hashlib
import logging
import multiprocessing
import random
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path

import audiomentations as am
import audiomentations.core.utils as am_utils
import numpy as np
import scipy.signal
import soxr
from audiomentations.core.audio_loading_utils import load_sound_file

from mww_core.audio import speech_rms
from mww_core.config import AugmentationConfig
from mww_core.frontend import SAMPLE_RATE_HZ

log = logging.getLogger(__name__)


class AudioAugmentationPipeline:
    """microWakeWord's transforms plus speaker and device variety, each from the config.

    In order: the speaker (speed, formant warp, tempo and vocoder, a narrowband voice), then
    audiomentations' room and signal transforms (impulse response, background and colored
    noise, EQ, distortion, pitch shift, band stop, gain), then the device (microphone band
    limits, then the level: a peak in ``loudness_peak_dbfs`` or clipping). Room impulse
    responses and background noise come from folders of audio (skipped when the folder is
    missing or empty). ``augment(waveform, seed)`` gives the same output for the same seed,
    whichever process runs it. Augmentation is waveform-level: it always runs before the
    frontend, never on spectrograms.
    """

    def __init__(
        self, config: AugmentationConfig, rir_dir: Path | None, noise_dir: Path | None
    ) -> None:
        self.config = config
        self.rir_dir = rir_dir
        self.noise_dir = noise_dir
        self.compose = am.Compose(
            _room_transforms(config, rir_dir, noise_dir) + _transforms(config)
        )
        self._background = next(
            (t for t in self.compose.transforms if isinstance(t, BackgroundNoise)), None
        )

    def augment(self, waveform: np.ndarray, seed: int = 0) -> np.ndarray:
        """Augmented copy of a 16 kHz float waveform, reproducible from ``seed``."""
        samples = _speaker_transforms(self.config, waveform.astype(np.float32), seed)
        if self._background is not None:
            rng = _drawn(seed, "background_onset", self.config.background_onset_probability)
            onset_s = 0.0 if rng is None else rng.uniform(*self.config.background_onset_s)
            self._background.onset = int(onset_s * SAMPLE_RATE_HZ)
        # audiomentations draws from the global `random` and `np.random` generators. Our own
        # transforms draw from generators of their own, so turning one on or off leaves every
        # other draw, and with all of them off the output, exactly as before.
        random.seed(seed)
        np.random.seed(seed % (2**32))
        out = self.compose(samples=samples, sample_rate=SAMPLE_RATE_HZ)
        out = _device_transforms(self.config, out, seed)
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    __call__ = augment


# --- speaker and device transforms (ours, each drawing from its own seeded generator) ----------


def _drawn(seed: int, transform: str, probability: float) -> np.random.Generator | None:
    """The generator of ``transform`` for the clip of ``seed`` when it applies, else None."""
    rng = np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, zlib.crc32(transform.encode())])
    return rng if rng.random() < probability else None


def _speaker_transforms(c: AugmentationConfig, samples: np.ndarray, seed: int) -> np.ndarray:
    if (rng := _drawn(seed, "speed", c.speed_probability)) is not None:
        samples = change_speed(samples, rng.uniform(*c.speed_factor))
    if (rng := _drawn(seed, "formant_warp", c.formant_warp_probability)) is not None:
        factor = rng.uniform(*c.formant_warp_factor)
        praat_seed = int(rng.integers(2**31))
        low, high = c.formant_warp_pitch_median_hz
        median = float(np.exp(rng.uniform(np.log(low), np.log(high)))) if high > 0 else 0.0
        samples = warp_formants(samples, factor, seed=praat_seed, pitch_median_hz=median)
    tempo = 1.0
    if (rng := _drawn(seed, "tempo", c.tempo_probability)) is not None:
        tempo = float(np.exp(rng.uniform(*np.log(c.tempo_factor))))
    if (rng := _drawn(seed, "vocoder", c.vocoder_probability)) is not None:
        samples = revoice(
            samples,
            pitch_factor=rng.uniform(*c.vocoder_pitch_factor),
            pitch_range=rng.uniform(*c.vocoder_pitch_range),
            aperiodicity_db=rng.uniform(*c.vocoder_aperiodicity_db),
            tempo=tempo,
            formant_shift=tuple(rng.uniform(*c.vocoder_formant_shift, size=3)),
            tilt_db_per_octave=rng.uniform(*c.vocoder_tilt_db_per_octave),
        )
    elif tempo != 1.0:  # the same pass with the voice source as it is
        samples = revoice(
            samples, pitch_factor=1.0, pitch_range=1.0, aperiodicity_db=0.0, tempo=tempo
        )
    if (rng := _drawn(seed, "narrowband", c.narrowband_probability)) is not None:
        samples = narrowband(samples, rng.uniform(*c.narrowband_rate_hz))
    return samples


def _device_transforms(c: AugmentationConfig, samples: np.ndarray, seed: int) -> np.ndarray:
    if (rng := _drawn(seed, "mic_band", c.mic_band_probability)) is not None:
        low, high = rng.uniform(*c.mic_low_cut_hz), rng.uniform(*c.mic_high_cut_hz)
        samples = band_limit(samples, low, high)
    if (rng := _drawn(seed, "clipping", c.clipping_probability)) is not None:
        samples = np.clip(set_peak_level(samples, rng.uniform(*c.clipping_overdrive_db)), -1, 1)
    elif (rng := _drawn(seed, "loudness", c.loudness_probability)) is not None:
        samples = set_peak_level(samples, rng.uniform(*c.loudness_peak_dbfs))
    return samples


def narrowband(samples: np.ndarray, rate_hz: float) -> np.ndarray:
    """``samples`` as if made at ``rate_hz``: resampled down to it and back up (soxr).

    soxr's anti-aliasing filter is steep: nothing is left above about ``rate_hz / 2``, as in
    audio that was sampled at that rate, and the length stays the same.
    """
    if rate_hz >= SAMPLE_RATE_HZ or not samples.any():
        return samples
    low = soxr.resample(samples, SAMPLE_RATE_HZ, rate_hz)
    back = soxr.resample(low, rate_hz, SAMPLE_RATE_HZ)
    out = np.zeros_like(samples)
    n = min(len(back), len(samples))
    out[:n] = back[:n]
    return out


def change_speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """``samples`` played ``factor`` times as fast, in a buffer of the same length.

    Resampling (soxr, as librosa does) moves duration, pitch and formants together, like
    Kaldi's speed perturbation. The audio up to its last non-zero sample is resampled and put
    back so that it still ends there: a positive placed in a window keeps its end (where the
    word ends, what a detection keys on). Slowed-down audio loses its start; sped-up audio
    gets zeros before it.
    """
    nonzero = np.flatnonzero(samples)
    if len(nonzero) == 0 or factor == 1.0:
        return samples
    end = int(nonzero[-1]) + 1
    resampled = soxr.resample(samples[:end], SAMPLE_RATE_HZ * factor, SAMPLE_RATE_HZ)
    part = resampled[-end:]
    out = np.zeros_like(samples)
    out[end - len(part) : end] = part
    return out


# Praat's "Change gender" arguments besides the formant ratio and the new pitch median (0 =
# keep the pitch): pitch floor and ceiling (Hz) of its analysis (Praat's defaults), pitch
# range and duration factors 1 = keep them.
_PRAAT_PITCH_FLOOR_HZ, _PRAAT_PITCH_CEILING_HZ = 75.0, 600.0
# Praat's pitch analysis needs three periods of the pitch floor: 40 ms.
_PRAAT_MIN_SAMPLES = int(np.ceil(3 * SAMPLE_RATE_HZ / _PRAAT_PITCH_FLOOR_HZ))


def warp_formants(
    samples: np.ndarray, factor: float, seed: int = 0, pitch_median_hz: float = 0.0
) -> np.ndarray:
    """``samples`` with every formant scaled by ``factor``, length kept, and the pitch kept or,
    with ``pitch_median_hz`` above 0, moved so that its median is that many Hz.

    A change of vocal-tract length (as VTLP simulates on filterbanks), and with a new pitch
    median a change of speaker (a man's voice as a woman's), made with Praat's "Change
    gender" (resample by ``factor``, then PSOLA back to the original duration and to the
    original or new pitch) through praat-parselmouth. Praat draws random numbers while
    overlap-adding; ``seed`` makes the result reproducible. Audio shorter than 40 ms (too short
    for Praat's pitch analysis) is returned unchanged.
    """
    if len(samples) < _PRAAT_MIN_SAMPLES:
        return samples
    import parselmouth  # imported on first use: 0.2 s, only when formant warping is on
    from parselmouth.praat import call, run

    run(f"random_initializeWithSeedUnsafelyButPredictably ({int(seed)})")
    sound = parselmouth.Sound(samples.astype(np.float64), SAMPLE_RATE_HZ)
    with warnings.catch_warnings():  # "no voiced segments" in noise or silence: it is fine
        warnings.simplefilter("ignore", parselmouth.PraatWarning)
        changed = call(
            sound,
            "Change gender",
            _PRAAT_PITCH_FLOOR_HZ,
            _PRAAT_PITCH_CEILING_HZ,
            float(factor),
            float(pitch_median_hz),
            1.0,
            1.0,
        )
    out = np.zeros_like(samples)
    values = changed.values[0][: len(samples)]
    out[: len(values)] = values
    return out


# WORLD's analysis frame period (ms): its default.
_WORLD_FRAME_MS = 5.0


def revoice(
    samples: np.ndarray,
    pitch_factor: float,
    pitch_range: float,
    aperiodicity_db: float,
    tempo: float = 1.0,
    formant_shift: tuple[float, ...] = (1.0, 1.0, 1.0),
    tilt_db_per_octave: float = 0.0,
) -> np.ndarray:
    """``samples`` re-spoken by the WORLD vocoder with a new voice source, length kept.

    WORLD (pyworld: DIO and StoneMask for the pitch, CheapTrick for the spectral envelope, D4C
    for the aperiodicity) splits speech into its source and its filter. The filter, what is
    said through which vocal tract, is kept; the source changes: the pitch is multiplied by
    ``pitch_factor``, its contour's swing around the mean log pitch by ``pitch_range`` (0 makes
    it monotone), and the aperiodicity by ``aperiodicity_db`` (below 0 buzzier, above 0
    breathier). Unvoiced sounds stay unvoiced. Silence is returned unchanged.

    ``tempo`` above 1 says it faster, below 1 slower, with the pitch kept: WORLD's 5 ms
    frames are skipped or repeated (the nearest frame of the original time). The audio up to
    its last non-zero sample is re-spoken so that it still ends there, as ``change_speed``
    does: a positive keeps its end in the window; slowed-down audio loses its start.

    ``formant_shift`` and ``tilt_db_per_octave`` change the filter too (``reshape_envelope``).
    """
    if float(np.max(np.abs(samples), initial=0.0)) < 1e-6:
        return samples
    import pyworld  # imported on first use, only when the vocoder is on

    end = len(samples) if tempo == 1.0 else int(np.flatnonzero(samples)[-1]) + 1
    x = samples[:end].astype(np.float64)
    f0, times = pyworld.dio(x, SAMPLE_RATE_HZ, frame_period=_WORLD_FRAME_MS)
    f0 = pyworld.stonemask(x, f0, times, SAMPLE_RATE_HZ)
    envelope = pyworld.cheaptrick(x, f0, times, SAMPLE_RATE_HZ)
    aperiodicity = pyworld.d4c(x, f0, times, SAMPLE_RATE_HZ)
    voiced = f0 > 0
    if voiced.any():
        log_f0 = np.log(f0[voiced])
        mean = log_f0.mean()
        f0[voiced] = np.exp(mean + (log_f0 - mean) * pitch_range) * pitch_factor
    aperiodicity = np.clip(aperiodicity * 10.0 ** (aperiodicity_db / 20.0), 0.001, 1.0)
    envelope = reshape_envelope(envelope, formant_shift, tilt_db_per_octave)
    if tempo != 1.0:
        frames = np.arange(max(1, int(round(len(f0) / tempo))))
        nearest = np.minimum(np.round(frames * tempo).astype(int), len(f0) - 1)
        f0, envelope, aperiodicity = (
            np.ascontiguousarray(a[nearest]) for a in (f0, envelope, aperiodicity)
        )
    spoken = pyworld.synthesize(f0, envelope, aperiodicity, SAMPLE_RATE_HZ, _WORLD_FRAME_MS)
    out = np.zeros_like(samples)
    if tempo == 1.0:
        out[: min(len(samples), len(spoken))] = spoken[: len(samples)]
    else:
        part = spoken[-end:]
        out[end - len(part) : end] = part
    return out


# The centres of the formant regions ``reshape_envelope`` moves (Hz): about F1, F2 and F3 of a
# man's voice; the frequency axis is stretched piecewise linearly between them.
_FORMANT_ANCHORS_HZ = (500.0, 1500.0, 2500.0)


def reshape_envelope(
    envelope: np.ndarray, formant_shift: tuple[float, ...], tilt_db_per_octave: float
) -> np.ndarray:
    """A WORLD spectral envelope (power, ``[frames, bins]`` from 0 Hz to Nyquist) with its
    formant regions moved and a spectral tilt added.

    The region around each of ``_FORMANT_ANCHORS_HZ`` moves to that frequency times its factor
    of ``formant_shift`` (the axis stretched piecewise linearly between them, 0 Hz and Nyquist
    fixed; the factors are capped so the anchors keep their order); ``tilt_db_per_octave`` then
    adds that many dB per octave away from 1 kHz (above 1 kHz louder for a positive tilt). With
    factors of 1 and no tilt the envelope is returned as it is.
    """
    shifts = np.asarray(formant_shift, dtype=np.float64)
    if np.all(shifts == 1.0) and tilt_db_per_octave == 0.0:
        return envelope
    nyquist = SAMPLE_RATE_HZ / 2
    freqs = np.linspace(0.0, nyquist, envelope.shape[1])
    old = np.array([0.0, *_FORMANT_ANCHORS_HZ, nyquist])
    new = np.array([0.0, *(np.array(_FORMANT_ANCHORS_HZ) * shifts), nyquist])
    new[1:-1] = np.clip(new[1:-1], 0.0, nyquist * 0.95)
    new = np.maximum.accumulate(new + np.arange(len(new)) * 1e-6)  # increasing, for interp
    # Each output bin reads the input envelope at the frequency that maps onto it.
    source = np.interp(freqs, new, old) / nyquist * (envelope.shape[1] - 1)
    low = np.minimum(source.astype(int), envelope.shape[1] - 2)
    weight = source - low
    out = envelope[:, low] * (1.0 - weight) + envelope[:, low + 1] * weight
    if tilt_db_per_octave:
        octaves = np.log2(np.maximum(freqs, 62.5) / 1000.0)
        out = out * 10.0 ** (tilt_db_per_octave * octaves / 10.0)  # a power spectrum
    return np.ascontiguousarray(out)


def band_limit(samples: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
    """``samples`` through a 4th-order Butterworth band-pass from ``low_hz`` to ``high_hz``.

    Causal, as a microphone and its amplifier are: 24 dB/octave outside the band.
    """
    sos = scipy.signal.butter(
        4, [low_hz, high_hz], btype="bandpass", fs=SAMPLE_RATE_HZ, output="sos"
    )
    return scipy.signal.sosfilt(sos, samples).astype(np.float32)


def set_peak_level(samples: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """``samples`` scaled so the loudest one is at ``peak_dbfs`` (0 = full scale, 1.0).

    Silence stays silent. Above 0 dBFS the result exceeds [-1, 1]; the caller clips it.
    """
    peak = float(np.max(np.abs(samples), initial=0.0))
    if peak < 1e-9:
        return samples
    return (samples * (10.0 ** (peak_dbfs / 20.0) / peak)).astype(np.float32)


# --- audiomentations: room and signal transforms -------------------------------------------------


def _room_transforms(
    config: AugmentationConfig, rir_dir: Path | None, noise_dir: Path | None
) -> list:
    transforms: list = []
    if rir_dir is not None and _has_audio(rir_dir):
        transforms.append(
            ImpulseResponse(
                ir_path=str(rir_dir), p=config.rir_probability, leave_length_unchanged=True
            )
        )
    if noise_dir is not None and _has_audio(noise_dir):
        low, high = config.background_snr_db
        transforms.append(
            BackgroundNoise(
                sounds_path=str(noise_dir),
                min_snr_db=low,
                max_snr_db=high,
                p=config.background_noise_probability,
                snr_reference=config.background_snr_reference,
            )
        )
    return transforms


# audiomentations reads room and noise files through librosa, whose first use in a process
# costs 2-3 s (importing librosa.core and loading numba kernels) in every feature worker. For
# 16 kHz mono files, read them with soundfile exactly as librosa does (same frames, same
# float32 values); other files still go through audiomentations' own loader.


def _read_plain(path: str, offset_s: float = 0.0, duration_s: float | None = None):
    """``librosa.load(path, sr=None, offset, duration)`` of a 16 kHz mono file, else None."""
    import soundfile as sf

    try:
        with sf.SoundFile(path) as handle:
            if handle.samplerate != SAMPLE_RATE_HZ or handle.channels != 1:
                return None
            if offset_s:
                handle.seek(int(offset_s * SAMPLE_RATE_HZ))
            frames = -1 if duration_s is None else int(duration_s * SAMPLE_RATE_HZ)
            return handle.read(frames=frames, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError):
        return None


class ImpulseResponse(am.ApplyImpulseResponse):
    """``ApplyImpulseResponse`` with 16 kHz mono impulse responses read without librosa."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        librosa_load = self._ApplyImpulseResponse__load_ir  # the cached loader it would use

        def load(file_path: str, sample_rate: int, mono: bool) -> tuple[np.ndarray, int]:
            samples = _read_plain(file_path) if mono and sample_rate == SAMPLE_RATE_HZ else None
            if samples is None:
                return librosa_load(file_path, sample_rate, mono)
            return samples, SAMPLE_RATE_HZ

        self._ApplyImpulseResponse__load_ir = functools.lru_cache(self.lru_cache_size)(load)


_ONSET_FADE_SAMPLES = SAMPLE_RATE_HZ // 100  # 10 ms


class BackgroundNoise(am.AddBackgroundNoise):
    """``AddBackgroundNoise`` (relative SNR) with 16 kHz mono noise files read without librosa.

    ``onset``: samples of silence before the noise starts (with a 10 ms fade-in); 0, the
    default, mixes it from the first sample as audiomentations does. The noise's level is set
    before the silence is cut out of it. ``snr_reference``: ``"window"`` sets the SNR against
    the RMS of all of ``samples`` (audiomentations' way), ``"speech"`` against ``speech_rms``.
    """

    def __init__(self, snr_reference: str = "window", **kwargs) -> None:
        super().__init__(**kwargs)
        self.onset = 0
        self.snr_reference = snr_reference
        import soundfile as sf

        for i, path in enumerate(self.sound_file_paths):
            with contextlib.suppress(sf.LibsndfileError, RuntimeError):
                self.time_info_arr[i] = sf.info(path).duration  # as librosa.get_duration

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        mixed = self._mix(samples, sample_rate)
        if self.onset <= 0:
            return mixed
        fade = np.clip((np.arange(len(samples)) - self.onset) / _ONSET_FADE_SAMPLES, 0.0, 1.0)
        return (samples + (mixed - samples) * fade).astype(mixed.dtype)

    def _mix(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mix a span of a noise file into ``samples`` at the drawn SNR (audiomentations' math)."""
        if self.noise_rms != "relative":
            return super().apply(samples, sample_rate)
        params = self.parameters
        noise = None
        if sample_rate == SAMPLE_RATE_HZ:
            noise = _read_plain(params["noise_file_path"], params["offset"], params["duration"])
        if noise is None:
            noise, _ = load_sound_file(
                params["noise_file_path"],
                sample_rate,
                offset=params["offset"],
                duration=params["duration"],
            )
        if self.noise_transform is not None:
            noise = self.noise_transform(noise, sample_rate)
        noise_rms = am_utils.calculate_rms(noise)
        if noise_rms < 1e-9:
            return super().apply(samples, sample_rate)  # warns and returns the input
        level = (
            speech_rms(samples)
            if self.snr_reference == "speech"
            else am_utils.calculate_rms(samples)
        )
        desired = am_utils.calculate_desired_noise_rms(level, params["snr_db"])
        noise = noise * (desired / noise_rms)
        while len(noise) < len(samples):
            noise = np.concatenate((noise, noise))
        return samples + noise[: len(samples)]


def _transforms(c: AugmentationConfig) -> list:
    return [
        am.AddColorNoise(
            min_snr_db=c.colored_noise_snr_db[0],
            max_snr_db=c.colored_noise_snr_db[1],
            p=c.colored_noise_probability,
        ),
        am.SevenBandParametricEQ(
            min_gain_db=c.seven_band_eq_gain_db[0],
            max_gain_db=c.seven_band_eq_gain_db[1],
            p=c.seven_band_eq_probability,
        ),
        am.TanhDistortion(
            min_distortion=c.tanh_distortion[0],
            max_distortion=c.tanh_distortion[1],
            p=c.tanh_distortion_probability,
        ),
        am.PitchShift(
            min_semitones=c.pitch_shift_semitones[0],
            max_semitones=c.pitch_shift_semitones[1],
            p=c.pitch_shift_probability,
        ),
        am.BandStopFilter(
            min_center_freq=c.band_stop_center_hz[0],
            max_center_freq=c.band_stop_center_hz[1],
            p=c.band_stop_probability,
        ),
        am.Gain(min_gain_db=c.gain_db[0], max_gain_db=c.gain_db[1], p=c.gain_probability),
    ]


def _has_audio(folder: Path) -> bool:
    return folder.is_dir() and any(
        p.suffix.lower() in {".wav", ".flac", ".ogg", ".mp3"} for p in folder.iterdir()
    )


def clip_seed(base: int, index: int) -> int:
    """Seed of the ``index``-th clip of a batch: a pure function of the base seed and index."""
    digest = hashlib.sha256(f"{base}|clip|{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFFFFFFFFFFFFFF


_WORKER_PIPELINE: list[AudioAugmentationPipeline] = []


def _init_augment_worker(
    config: AugmentationConfig, rir_dir: Path | None, noise_dir: Path | None
) -> None:
    pipeline = AudioAugmentationPipeline(config, rir_dir, noise_dir)
    pipeline.augment(np.zeros(SAMPLE_RATE_HZ, np.float32), 0)  # compile numba kernels once
    _WORKER_PIPELINE[:] = [pipeline]


def _augment_in_worker(item: tuple[np.ndarray, int]) -> np.ndarray:
    return _WORKER_PIPELINE[0].augment(*item)


class ParallelAugmenter:
    """Augments batches of clips in worker processes; each clip is seeded, so results do not
    depend on the number of workers or on which worker ran a clip.

    Use as a context manager (or call ``close``) to stop the workers.
    """

    def __init__(self, pipeline: AudioAugmentationPipeline, num_workers: int) -> None:
        if num_workers < 1:
            raise ValueError(f"num_workers must be at least 1, got {num_workers}")
        self.pipeline = pipeline
        self.num_workers = num_workers
        self._pool: cf.ProcessPoolExecutor | None = None

    def _executor(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            p = self.pipeline
            self._pool = cf.ProcessPoolExecutor(
                self.num_workers,
                # spawn: the parent may hold TensorFlow threads, which fork would copy broken.
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_augment_worker,
                initargs=(p.config, p.rir_dir, p.noise_dir),
            )
        return self._pool

    def augment_batch(
        self, batch: Sequence[np.ndarray], seeds: Sequence[int] | None = None
    ) -> list[np.ndarray]:
        """Augmented copies of ``batch`` (16 kHz float waveforms), in order.

        Args:
            batch: Waveforms; lengths may differ.
            seeds: One seed per clip; default ``clip_seed(config.seed, i)`` for the i-th clip.

        Returns:
            One augmented waveform per input, each a function of its clip and seed only.
        """
        if seeds is None:
            seeds = [clip_seed(self.pipeline.config.seed, i) for i in range(len(batch))]
        if len(seeds) != len(batch):
            raise ValueError(f"got {len(seeds)} seeds for {len(batch)} clips; pass one per clip")
        items = list(zip(batch, seeds, strict=True))
        if self.num_workers == 1:
            return [self.pipeline.augment(clip, seed) for clip, seed in items]
        chunk = max(1, len(items) // (4 * self.num_workers))
        return list(self._executor().map(_augment_in_worker, items, chunksize=chunk))

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> ParallelAugmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
