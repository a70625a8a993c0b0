"""Augmentation: every transform configured and measured, seeded, identical across workers."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import pytest
import scipy.linalg
import scipy.signal

from mww_core.audio import speech_rms, write_wav
from mww_core.augment import (
    AudioAugmentationPipeline,
    ParallelAugmenter,
    band_limit,
    change_speed,
    narrowband,
    revoice,
    warp_formants,
)
from mww_core.config import AugmentationConfig
from mww_core.features import place_clip


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


# --- speaker and device variety (issue 15): tiny synthetic vowels measured with an FFT or LPC ---

SR = 16000


def _vowel(f0=120.0, formants=(700.0, 1200.0, 2600.0), seconds=0.6):
    """A vowel-like sound: a 120 Hz pulse train through three formant resonators."""
    x = np.zeros(int(seconds * SR))
    x[:: int(SR / f0)] = 1.0
    for hz in formants:
        r, theta = np.exp(-np.pi * 80 / SR), 2 * np.pi * hz / SR
        x = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], x)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def _window(clip, end_gap=2400):
    return place_clip(clip, 24000, end_gap)  # 1.5 s, as the features stage places a positive


def _spectrum(x):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8 * len(x)))
    return np.fft.rfftfreq(8 * len(x), 1 / SR), spec


def _dominant_hz(x, low=0.0, high=SR / 2):
    hz, spec = _spectrum(x)
    band = (hz > low) & (hz < high)
    return hz[band][np.argmax(spec[band])]


def _formants_hz(x, order=10):
    """The first three resonances of an LPC fit to the middle 128 ms of ``x``."""
    mid = len(x) // 2
    x = x[mid - 1024 : mid + 1024].astype(np.float64)
    x = np.append(x[0], x[1:] - 0.9 * x[:-1]) * np.hamming(len(x))  # pre-emphasis
    r = np.correlate(x, x, "full")[len(x) - 1 :]
    a = scipy.linalg.solve_toeplitz(r[:order], r[1 : order + 1])
    roots = [z for z in np.roots(np.r_[1, -a]) if z.imag > 0]
    return np.sort(np.angle(roots) * SR / (2 * np.pi))[:3]


def _voiced(x):
    """First and one-past-last sample above -40 dB of the peak."""
    loud = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max())
    return loud[0], loud[-1] + 1


def _peak_dbfs(x):
    return 20 * np.log10(np.abs(x).max())


ALL_OFF = dict(
    rir_probability=0.0,
    background_noise_probability=0.0,
    colored_noise_probability=0.0,
    gain_probability=0.0,
    seven_band_eq_probability=0.0,
    tanh_distortion_probability=0.0,
    pitch_shift_probability=0.0,
    band_stop_probability=0.0,
)


def _only(**fields):
    """A pipeline running only the given transforms (no room or noise folders)."""
    return AudioAugmentationPipeline(AugmentationConfig(**{**ALL_OFF, **fields}), None, None)


def test_new_transforms_are_off_by_default_and_leave_the_old_pipeline_exact(tmp_path):
    config = AugmentationConfig(pitch_shift_probability=0.5, tanh_distortion_probability=0.5)
    assert (
        config.speed_probability,
        config.formant_warp_probability,
        config.vocoder_probability,
        config.narrowband_probability,
        config.background_onset_probability,
        config.mic_band_probability,
        config.loudness_probability,
        config.clipping_probability,
    ) == (0, 0, 0, 0, 0, 0, 0, 0)
    pipeline = AudioAugmentationPipeline(config, *_folders(tmp_path))
    clip = _window(_vowel())
    for seed in range(6):
        # The pipeline before issue 15: audiomentations alone, seeded from the clip's seed.
        random.seed(seed)
        np.random.seed(seed)
        before = np.clip(pipeline.compose(samples=clip, sample_rate=SR), -1.0, 1.0)
        np.testing.assert_array_equal(pipeline(clip, seed), before)


def test_speed_changes_duration_and_pitch_and_keeps_the_end():
    window = _window(_vowel())
    start, end = _voiced(window)
    for factor in (0.85, 1.15):
        out = change_speed(window, factor)
        out_start, out_end = _voiced(out)
        assert out.shape == window.shape
        assert abs(out_end - end) <= 8  # the word still ends where it ended
        assert (out_end - out_start) / (end - start) == pytest.approx(1 / factor, rel=0.01)
        ratio = _dominant_hz(out[out_start:out_end]) / _dominant_hz(window[start:end])
        assert ratio == pytest.approx(factor, rel=0.01)
    fast = _only(speed_probability=1.0, speed_factor=(1.1, 1.15))
    a, b = fast(window, 3), fast(window, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fast(window, 4))
    a_start, a_end = _voiced(a)
    assert 1.1 <= (end - start) / (a_end - a_start) <= 1.16


def test_speed_slowed_past_the_window_keeps_the_end_and_drops_the_start():
    window = _window(_vowel(seconds=1.4), end_gap=0)
    out = change_speed(window, 0.85)
    assert _voiced(out) == (0, len(window)) and out.shape == window.shape


def test_formant_warp_moves_the_envelope_and_keeps_pitch_and_length():
    vowel = _vowel()
    before = _formants_hz(vowel)
    for factor in (0.9, 1.1):
        out = warp_formants(vowel, factor, seed=1)
        assert out.shape == vowel.shape
        np.testing.assert_allclose(_formants_hz(out) / before, factor, atol=0.035)
        assert _dominant_hz(out, 80, 200) == pytest.approx(_dominant_hz(vowel, 80, 200), abs=1)
    blip = vowel[:600]  # under 40 ms: too short for Praat's pitch analysis, left as it is
    np.testing.assert_array_equal(warp_formants(blip, 1.1), blip)
    warped = _only(formant_warp_probability=1.0, formant_warp_factor=(1.1, 1.1))
    window = _window(vowel)
    a = warped(window, 7)
    np.testing.assert_array_equal(a, warped(window, 7))
    assert a.shape == window.shape and not np.array_equal(a, window)


def _median_pitch_hz(x):
    """Praat's median pitch of ``x`` (its autocorrelation method, over voiced frames)."""
    import parselmouth
    from parselmouth.praat import call

    pitch = parselmouth.Sound(x.astype(np.float64), SR).to_pitch()
    return call(pitch, "Get quantile", 0, 0, 0.5, "Hertz")


def test_formant_warp_with_a_pitch_median_makes_another_speaker():
    vowel = _vowel()  # 120 Hz, a man's pitch
    out = warp_formants(vowel, 1.15, seed=1, pitch_median_hz=220.0)  # a woman's
    assert out.shape == vowel.shape
    assert _median_pitch_hz(out) == pytest.approx(220, rel=0.03)
    np.testing.assert_allclose(_formants_hz(out) / _formants_hz(vowel), 1.15, atol=0.05)
    # In the pipeline: each warped window draws its median in the range, log-uniformly.
    window = _window(vowel)
    changed = _only(
        formant_warp_probability=1.0,
        formant_warp_factor=(1.0, 1.0),
        formant_warp_pitch_median_hz=(150.0, 260.0),
    )
    pitches = [_median_pitch_hz(changed(window, seed)) for seed in range(8)]
    assert all(145 <= hz <= 265 for hz in pitches) and max(pitches) - min(pitches) > 30
    # (0, 0), the default, keeps the pitch.
    kept = _only(formant_warp_probability=1.0, formant_warp_factor=(0.9, 1.1))
    assert _median_pitch_hz(kept(window, 3)) == pytest.approx(120, rel=0.03)


@pytest.mark.parametrize("median", [(40.0, 200.0), (100.0, 700.0), (200.0, 100.0), (0.0, 200.0)])
def test_a_pitch_median_out_of_range_is_refused(median):
    with pytest.raises(ValueError, match="formant_warp_pitch_median_hz"):
        AugmentationConfig(formant_warp_pitch_median_hz=median)


def _glide(f0_start, f0_end, seconds=0.8):
    """The vowel of ``_vowel`` with its pitch gliding from ``f0_start`` to ``f0_end`` Hz."""
    x, t = np.zeros(int(seconds * SR)), 0.0
    while t < seconds:
        x[int(t * SR)] = 1.0
        t += 1.0 / (f0_start + (f0_end - f0_start) * t / seconds)
    for hz in (700.0, 1200.0, 2600.0):
        r, theta = np.exp(-np.pi * 80 / SR), 2 * np.pi * hz / SR
        x = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], x)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def _harmonic_to_noise_db(x, f0):
    """Spectral energy at the first 10 harmonics of ``f0`` against halfway between them."""
    hz, spec = _spectrum(x)
    at = lambda f: spec[np.argmin(np.abs(hz - f))] ** 2  # noqa: E731
    harmonics = sum(at(k * f0) for k in range(1, 11))
    between = sum(at((k + 0.5) * f0) for k in range(1, 11))
    return 10 * np.log10(harmonics / between)


def test_vocoder_moves_the_pitch_flattens_its_contour_and_keeps_the_vocal_tract():
    vowel = _vowel(seconds=0.8)
    out = revoice(vowel, pitch_factor=1.25, pitch_range=1.0, aperiodicity_db=0.0)
    assert out.shape == vowel.shape and out.dtype == np.float32
    middle = slice(2000, 10800)  # past WORLD's start and end frames
    assert _dominant_hz(out[middle], 80, 200) == pytest.approx(150, abs=3)
    np.testing.assert_allclose(_formants_hz(out) / _formants_hz(vowel), 1.0, atol=0.05)

    glide = _glide(100, 160)  # a rising pitch: ~104 Hz in the first quarter, ~156 in the last
    first, last = slice(800, 3200), slice(9600, 12000)
    spoken = revoice(glide, pitch_factor=1.0, pitch_range=1.0, aperiodicity_db=0.0)
    flat = revoice(glide, pitch_factor=1.0, pitch_range=0.0, aperiodicity_db=0.0)
    rise = _dominant_hz(spoken[last], 80, 200) / _dominant_hz(spoken[first], 80, 200)
    assert rise > 1.25
    # Monotone: both ends at the contour's mean (geometric), about 127 Hz.
    for part in (first, last):
        assert _dominant_hz(flat[part], 80, 200) == pytest.approx(127, abs=6)


def test_vocoder_breathiness_and_silence():
    vowel = _vowel(seconds=0.8)
    middle = slice(2000, 10800)
    hnr = {
        db: _harmonic_to_noise_db(revoice(vowel, 1.0, 1.0, db)[middle], 120.0)
        for db in (-12.0, 0.0, 20.0)
    }
    assert hnr[-12.0] > hnr[0.0] + 5 and hnr[0.0] > hnr[20.0] + 10  # breathier: noise between
    silence = np.zeros(8000, np.float32)
    np.testing.assert_array_equal(revoice(silence, 1.2, 0.0, 6.0), silence)
    voc = _only(vocoder_probability=1.0)
    window = _window(vowel)
    a = voc(window, 5)
    np.testing.assert_array_equal(a, voc(window, 5))
    assert not np.array_equal(a, voc(window, 6)) and a.shape == window.shape


def test_vocoder_moves_each_formant_on_its_own_and_tilts_the_spectrum():
    vowel = _vowel(formants=(500.0, 1500.0, 2500.0), seconds=0.8)  # at the moved regions
    plain = revoice(vowel, 1.0, 1.0, 0.0)
    same = revoice(vowel, 1.0, 1.0, 0.0, formant_shift=(1.0, 1.0, 1.0), tilt_db_per_octave=0.0)
    np.testing.assert_array_equal(same, plain)  # off: the vocoder alone
    moved = revoice(vowel, 1.0, 1.0, 0.0, formant_shift=(1.15, 0.85, 1.0))
    ratios = _formants_hz(moved) / _formants_hz(plain)
    assert ratios[0] > 1.08 and ratios[1] < 0.92 and ratios[2] == pytest.approx(1.0, abs=0.05)

    def high_to_low_db(x):  # energy above 2 kHz against below 1 kHz
        hz, spec = _spectrum(x[2000:10800])
        return 10 * np.log10(np.sum(spec[hz > 2000] ** 2) / np.sum(spec[hz < 1000] ** 2))

    brighter = revoice(vowel, 1.0, 1.0, 0.0, tilt_db_per_octave=4.0)
    darker = revoice(vowel, 1.0, 1.0, 0.0, tilt_db_per_octave=-4.0)
    assert high_to_low_db(brighter) > high_to_low_db(plain) + 4
    assert high_to_low_db(darker) < high_to_low_db(plain) - 4
    with pytest.raises(ValueError, match="vocoder_formant_shift"):
        AugmentationConfig(vocoder_formant_shift=(0.2, 1.2))
    with pytest.raises(ValueError, match="vocoder_tilt_db_per_octave"):
        AugmentationConfig(vocoder_tilt_db_per_octave=(3.0, -3.0))


def test_tempo_changes_the_duration_keeps_the_pitch_and_the_end():
    window = _window(_vowel(seconds=0.6))
    start, end = _voiced(window)
    for tempo in (1.5, 0.7):
        out = revoice(window, pitch_factor=1.0, pitch_range=1.0, aperiodicity_db=0.0, tempo=tempo)
        out_start, out_end = _voiced(out)
        assert out.shape == window.shape and out.dtype == np.float32
        assert abs(out_end - end) <= 160  # the word still ends where it ended (one frame)
        assert (out_end - out_start) / (end - start) == pytest.approx(1 / tempo, rel=0.05)
        middle = out[out_start + 1600 : out_end - 1600]
        assert _dominant_hz(middle, 80, 200) == pytest.approx(120, abs=3)  # pitch kept
    # Drawn per window from its own generator, reproducible from the seed; with the vocoder
    # drawn too, one pass does both.
    tempo = _only(tempo_probability=1.0, tempo_factor=(1.4, 1.5))
    a = tempo(window, 3)
    np.testing.assert_array_equal(a, tempo(window, 3))
    a_start, a_end = _voiced(a)
    assert 1.35 <= (end - start) / (a_end - a_start) <= 1.55
    both = _only(tempo_probability=1.0, tempo_factor=(1.4, 1.5), vocoder_probability=1.0,
                 vocoder_pitch_factor=(1.25, 1.25), vocoder_pitch_range=(1.0, 1.0))  # fmt: skip
    b = both(window, 3)
    b_start, b_end = _voiced(b)
    assert (b_end - b_start) == pytest.approx(a_end - a_start, abs=160)
    assert _dominant_hz(b[b_start + 800 : b_end - 800], 80, 200) == pytest.approx(150, abs=4)
    # At probability 0 no window is drawn for it: the vocoder alone, whatever the range.
    voc = _only(vocoder_probability=1.0)
    never = _only(vocoder_probability=1.0, tempo_probability=0.0, tempo_factor=(1.4, 1.5))
    np.testing.assert_array_equal(never(window, 3), voc(window, 3))


def test_tempo_factor_out_of_bounds_is_refused():
    with pytest.raises(ValueError, match="tempo_factor"):
        AugmentationConfig(tempo_factor=(0.0, 1.5))
    with pytest.raises(ValueError, match="tempo_factor"):
        AugmentationConfig(tempo_factor=(1.5, 0.7))


def _energy_centre(x):
    """The sample index at the centre of ``x``'s energy."""
    energy = x.astype(np.float64) ** 2
    return np.sum(np.arange(len(x)) * energy) / np.sum(energy)


def test_narrowband_empties_the_band_above_half_its_rate_and_keeps_the_timing():
    t = np.arange(SR) / SR
    burst = np.where((t > 0.4) & (t < 0.6), 0.2, 0.0)  # tones from 0.4 to 0.6 s only
    clip = (burst * (np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 5000 * t))).astype(
        np.float32
    )
    hz, before = _spectrum(clip)
    level = {}
    for rate in (8000.0, 11025.0):
        out = narrowband(clip, rate)
        assert out.shape == clip.shape and out.dtype == np.float32
        _, after = _spectrum(out)
        k = {tone: np.argmin(np.abs(hz - tone)) for tone in (1000, 5000)}
        level[rate] = {tone: 20 * np.log10(after[i] / before[i]) for tone, i in k.items()}
        # The burst stays where it was (its energy's centre within a sample): the filter is
        # linear-phase, with its delay taken out.
        assert abs(_energy_centre(out) - _energy_centre(clip)) < 1.0
    assert level[8000.0][5000] < -40 and abs(level[8000.0][1000]) < 0.5  # 5 kHz above 4 kHz
    assert abs(level[11025.0][5000]) < 0.5  # below 5.5 kHz: kept
    # In the pipeline, seeded: the same seed gives the same voice, and the top band is gone.
    nb = _only(narrowband_probability=1.0, narrowband_rate_hz=(8000.0, 8000.0))
    np.testing.assert_array_equal(nb(clip, 3), nb(clip, 3))
    _, piped = _spectrum(nb(clip, 3))
    assert 20 * np.log10(piped[k[5000]] / before[k[5000]]) < -40
    with pytest.raises(ValueError, match="narrowband_rate_hz"):
        AugmentationConfig(narrowband_rate_hz=(8000.0, 22050.0))


def _noise_only(**fields):
    """Background noise on every window, every other transform off."""
    off = dict(rir_probability=0, colored_noise_probability=0, gain_probability=0)
    off |= dict(seven_band_eq_probability=0, tanh_distortion_probability=0)
    off |= dict(pitch_shift_probability=0, band_stop_probability=0)
    return AugmentationConfig(background_noise_probability=1.0, **off, **fields)


def test_background_onset_keeps_silence_before_the_noise_and_the_same_noise_after(tmp_path):
    clip = _window(_vowel())
    from_start = AudioAugmentationPipeline(_noise_only(), *_folders(tmp_path))
    late = AudioAugmentationPipeline(
        _noise_only(background_onset_probability=1.0, background_onset_s=(0.5, 0.5)),
        *_folders(tmp_path),
    )
    onset, fade = SR // 2, SR // 100
    for seed in range(4):
        noisy, delayed = from_start(clip, seed), late(clip, seed)
        assert np.abs(noisy[:onset] - clip[:onset]).max() > 1e-3  # noise from the first sample
        np.testing.assert_array_equal(delayed[:onset], clip[:onset])  # silence kept as it was
        # After the fade-in, the very noise (file, span and level) the window would have had.
        np.testing.assert_allclose(delayed[onset + fade :], noisy[onset + fade :], atol=1e-6)
        ramp = np.abs(delayed[onset : onset + fade] - clip[onset : onset + fade])
        assert ramp[: fade // 4].max() < np.abs(noisy - clip)[onset : onset + fade].max()


def test_background_onset_is_drawn_per_seed_within_its_range(tmp_path):
    clip = _window(_vowel())
    late = AudioAugmentationPipeline(
        _noise_only(background_onset_probability=0.5, background_onset_s=(0.2, 0.9)),
        *_folders(tmp_path),
    )

    def start(seed):  # the first sample the noise changed
        return int(np.flatnonzero(late(clip, seed) != clip)[0])

    starts = [start(seed) for seed in range(40)]
    assert starts == [start(seed) for seed in range(40)]
    at_start = sum(s == 0 for s in starts)
    assert 8 <= at_start <= 32  # about half the windows keep their noise from the start
    late_starts = [s for s in starts if s > 0]
    assert min(late_starts) >= 0.2 * SR and max(late_starts) <= 0.9 * SR
    assert len(set(late_starts)) == len(late_starts)  # a point of its own for each window


@pytest.mark.parametrize("noise_rate", [SR, 22050])  # 22.05 kHz: audiomentations' loader
def test_background_snr_against_the_speech_or_the_whole_window(tmp_path, noise_rate):
    clip = _window(_vowel())  # 0.6 s of voice in a 1.5 s window: the rest is silence
    rng = np.random.default_rng(3)
    noise = (0.1 * rng.standard_normal(noise_rate * 2)).astype("f4")
    write_wav(tmp_path / "noise" / "hiss.wav", noise, sample_rate=noise_rate)
    fixed = dict(background_snr_db=(10.0, 10.0))

    def snr_db(reference, seed):
        config = _noise_only(background_snr_reference=reference, **fixed)
        added = AudioAugmentationPipeline(config, None, tmp_path / "noise")(clip, seed) - clip
        return 20 * np.log10(speech_rms(clip) / np.sqrt(np.mean(added.astype("f8") ** 2)))

    pauses_db = 20 * np.log10(speech_rms(clip) / np.sqrt(np.mean(clip.astype("f8") ** 2)))
    assert pauses_db > 3.0  # the silence lowers the window's RMS well below the voice's
    resampled = pytest.warns(UserWarning, match="had to be resampled")
    with resampled if noise_rate != SR else contextlib.nullcontext():
        for seed in range(3):
            assert snr_db("speech", seed) == pytest.approx(10.0, abs=0.1)
            assert snr_db("window", seed) == pytest.approx(10.0 + pauses_db, abs=0.1)


def test_mic_band_removes_energy_outside_the_cutoffs():
    t = np.arange(SR) / SR
    tones = {60: 0.0, 1000: 0.0, 7500: 0.0}
    clip = sum(0.2 * np.sin(2 * np.pi * hz * t) for hz in tones).astype(np.float32)
    mic = _only(mic_band_probability=1.0, mic_low_cut_hz=(300, 300), mic_high_cut_hz=(3400, 3400))
    out = mic(clip, 0)
    hz, before = _spectrum(clip[4000:])
    _, after = _spectrum(out[4000:])  # past the filter's start-up
    for tone in tones:
        k = np.argmin(np.abs(hz - tone))
        tones[tone] = 20 * np.log10(after[k] / before[k])
    assert tones[60] < -40 and tones[7500] < -40  # 2.2 and 1.1 octaves outside the band
    assert abs(tones[1000]) < 1
    np.testing.assert_array_equal(out, band_limit(clip, 300, 3400))


def test_loudness_sets_the_peak_within_range_and_clipping_cuts_at_full_scale():
    window = _window(_vowel())
    quiet = _only(loudness_probability=1.0, loudness_peak_dbfs=(-40.0, -20.0))
    levels = [_peak_dbfs(quiet(window, seed)) for seed in range(20)]
    assert all(-40.01 <= level <= -19.99 for level in levels)
    assert np.ptp(levels) > 10  # drawn, not fixed
    assert levels == [_peak_dbfs(quiet(window, seed)) for seed in range(20)]
    clipped = _only(clipping_probability=1.0, clipping_overdrive_db=(6.0, 6.0))(window, 0)
    assert np.abs(clipped).max() == 1.0
    assert np.mean(np.abs(clipped) == 1.0) > 0.001  # the peaks are cut flat
    silence = np.zeros(8000, np.float32)
    np.testing.assert_array_equal(quiet(silence, 0), silence)


def test_everything_on_is_reproducible_in_worker_processes(tmp_path):
    config = AugmentationConfig(
        speed_probability=0.8,
        formant_warp_probability=0.8,
        vocoder_probability=0.8,
        mic_band_probability=0.8,
        loudness_probability=0.8,
        clipping_probability=0.1,
    )
    pipeline = AudioAugmentationPipeline(config, *_folders(tmp_path))
    clips = [_window(_vowel(f0=100 + 20 * i)) for i in range(4)]
    sequential = ParallelAugmenter(pipeline, 1).augment_batch(clips)
    with ParallelAugmenter(pipeline, 2) as augmenter:
        parallel = augmenter.augment_batch(clips)
    for s, p, clip in zip(sequential, parallel, clips, strict=True):
        np.testing.assert_array_equal(s, p)
        assert s.shape == clip.shape and np.abs(s).max() <= 1.0


def test_bad_ranges_name_the_field_and_the_fix():
    with pytest.raises(ValueError) as err:
        AugmentationConfig(
            speed_factor=(1.2, 0.9), mic_high_cut_hz=(3000, 9000), loudness_peak_dbfs=(-20, 3)
        )
    message = str(err.value)
    assert "speed_factor = [1.2, 0.9]: give [low, high] with low <= high" in message
    assert "mic_high_cut_hz" in message and "7950 Hz" in message
    assert "loudness_peak_dbfs" in message and "clipping_" in message
    with pytest.raises(ValueError) as err:
        AugmentationConfig(vocoder_pitch_factor=(0.0, 1.2), vocoder_pitch_range=(-0.5, 1.0))
    message = str(err.value)
    assert "vocoder_pitch_factor = [0.0, 1.2] is out of bounds" in message
    assert "vocoder_pitch_range = [-0.5, 1.0] is out of bounds: 0 (monotone)" in message
    assert AugmentationConfig(vocoder_pitch_range=(0.0, 1.0)).vocoder_pitch_range == (0.0, 1.0)
    with pytest.raises(ValueError, match=r"background_onset_s = \[-0.2, 1.0\] starts before"):
        AugmentationConfig(background_onset_s=(-0.2, 1.0))
    with pytest.raises(ValueError, match=r"background_onset_s = \[0.9, 0.1\]: give"):
        AugmentationConfig(background_onset_s=(0.9, 0.1))
