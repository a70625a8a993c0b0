"""Waveform augmentation and the frontend's features and windowing."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from mww_core.config.base import Section, probability, span


class AugmentationConfig(Section):
    """Waveform augmentation applied before the frontend (training split only)."""

    # Added after caches were made; off, they change nothing, so they do not change the
    # fingerprint either.
    _quiet_defaults: ClassVar[dict[str, Any]] = {
        "background_snr_reference": "window",
        "background_onset_probability": 0.0,
        "background_onset_s": (0.0, 1.0),
        "tempo_probability": 0.0,
        "tempo_factor": (0.7, 1.5),
        "vocoder_formant_shift": (1.0, 1.0),
        "vocoder_tilt_db_per_octave": (0.0, 0.0),
    }

    enabled: bool = Field(True, description="Augment training clips.")
    positive_copies: int = Field(2, ge=1, description="Augmented copies per positive clip.")
    negative_copies: int = Field(1, ge=1, description="Augmented copies per negative clip.")
    near_miss_copies: int | None = Field(
        None,
        ge=1,
        description="Augmented copies per training near-miss clip: a negative the data set's "
        'dataset.json marks "near_miss": true (the demo builder marks them). More copies '
        "give near misses a larger share of each batch's negatives. None = negative_copies.",
    )
    rir_probability: float = probability(
        0.5, "Share of windows convolved with a room impulse response."
    )
    background_noise_probability: float = probability(
        0.75, "Share of windows mixed with a clip from noise/."
    )
    background_snr_db: tuple[float, float] = span(
        (3.0, 30.0), "Range of the speech-to-background-noise ratio, in dB."
    )
    background_snr_reference: Literal["window", "speech"] = Field(
        "window",
        description="What background_snr_db is measured against. window: the RMS of the "
        "whole window, silence included, as audiomentations does (a wake word filling half "
        "the window then hears the noise about 3 dB below the range). speech: the RMS of the "
        "window's loud frames (10 ms frames within 30 dB of the loudest), the way the demo's "
        "test sets the SNR of its noisy wake words.",
    )
    background_onset_probability: float = probability(
        0.0,
        "Share of background-noised windows whose noise starts later than the window, at a "
        "point drawn from background_onset_s, with silence before it (a 10 ms fade-in). "
        "The device's frontend adapts to steady noise over about half a second (its noise "
        "estimate): a noise that starts just before or during the wake word sounds louder "
        "to it than one that has gone on for a while. A clip mixed with noise over its own "
        "length sounds like that too; a window noisy from its start never does.",
    )
    background_onset_s: tuple[float, float] = span(
        (0.0, 1.0),
        "Range of the background noise's start, in seconds after the window's start "
        "(windows are 1.6 s; the wake word ends 0-0.3 s before their end).",
    )
    colored_noise_probability: float = probability(
        0.2, "Share of windows mixed with colored (1/f^k) noise."
    )
    colored_noise_snr_db: tuple[float, float] = span(
        (10.0, 40.0), "Range of the signal-to-colored-noise ratio, in dB."
    )
    gain_probability: float = probability(
        1.0, "Share of windows whose level is changed by gain_db."
    )
    gain_db: tuple[float, float] = span((-12.0, 6.0), "Range of the gain applied, in dB.")
    seven_band_eq_probability: float = probability(
        0.2, "Share of windows through a random seven-band equalizer."
    )
    seven_band_eq_gain_db: tuple[float, float] = span(
        (-6.0, 6.0), "Range of each equalizer band's gain, in dB."
    )
    tanh_distortion_probability: float = probability(
        0.1, "Share of windows soft-clipped by tanh distortion."
    )
    tanh_distortion: tuple[float, float] = span((0.05, 0.4), "Distortion amount range (0-1).")
    pitch_shift_probability: float = probability(
        0.15, "Share of windows pitch-shifted (duration kept)."
    )
    pitch_shift_semitones: tuple[float, float] = span(
        (-2.0, 2.0), "Range of the pitch shift, in semitones."
    )
    band_stop_probability: float = probability(
        0.1, "Share of windows with a band-stop filter (a dull mic)."
    )
    band_stop_center_hz: tuple[float, float] = span(
        (200.0, 4000.0), "Range of the band-stop filter's center frequency, in Hz."
    )
    # Speaker, room and device variety (issue 15). All off by default so existing features stay
    # byte-identical; README "Augmentation" has a recipe that turns them on.
    speed_probability: float = probability(
        0.0,
        "Share of windows played faster or slower by resampling (Kaldi-style speed "
        "perturbation: duration, pitch and formants change together). The end of the audio "
        "stays where it was in the window, so a positive still ends where the word ends.",
    )
    speed_factor: tuple[float, float] = Field(
        (0.85, 1.15),
        description="Speed range; above 1 is faster (shorter, higher), e.g. 1.1 = 10% faster.",
    )
    formant_warp_probability: float = probability(
        0.0,
        "Share of windows whose formants (the spectral envelope, i.e. vocal tract "
        "length) are scaled with pitch and duration kept: Praat's 'Change gender' via "
        "praat-parselmouth, a VTLP-like change of voice.",
    )
    formant_warp_factor: tuple[float, float] = Field(
        (0.9, 1.1),
        description="Formant scale range; above 1 moves formants up (a shorter vocal tract).",
    )
    formant_warp_pitch_median_hz: tuple[float, float] = Field(
        (0.0, 0.0),
        description="Range of a new median pitch (Hz) for formant-warped windows, drawn "
        "log-uniformly (Praat's 'Change gender' new pitch median; the contour keeps its shape): "
        "a man's voice as a woman's or a child's, and back. (0, 0) keeps each voice's pitch.",
    )
    vocoder_probability: float = probability(
        0.0,
        "Share of windows re-spoken through the WORLD vocoder (pyworld) with a new voice "
        "source: the spectral envelope (what is said, and the vocal tract) is kept, while the "
        "pitch level, the pitch contour's range (0 = monotone) and the breathiness are drawn "
        "anew. Parametric TTS engines and other speakers differ from the training voices "
        "mostly in the source; the vocoder's own timbre is one more engine to hear.",
    )
    vocoder_pitch_factor: tuple[float, float] = Field(
        (0.75, 1.35),
        description="Range of the factor on the voice's pitch (F0); 0.5 is an octave down.",
    )
    vocoder_pitch_range: tuple[float, float] = Field(
        (0.0, 1.5),
        description="Range of the factor on the pitch contour's swing around its mean, in "
        "log pitch: 0 = monotone (a flat, robotic voice), 1 = as spoken, 1.5 = livelier.",
    )
    vocoder_aperiodicity_db: tuple[float, float] = Field(
        (-12.0, 6.0),
        description="Range of the change to the voice's aperiodicity in dB: below 0 is buzzier "
        "(a cleaner pulse train), above 0 breathier.",
    )
    vocoder_formant_shift: tuple[float, float] = Field(
        (1.0, 1.0),
        description="Range of the factors that move the vocoded voice's first three formant "
        "regions (its spectral envelope around 500, 1500 and 2500 Hz), each drawn on its own: "
        "a vocal tract of another shape, where formant_warp_factor scales every formant alike "
        "(another length). (1, 1) keeps the envelope.",
    )
    vocoder_tilt_db_per_octave: tuple[float, float] = Field(
        (0.0, 0.0),
        description="Range of the spectral tilt given to the vocoded voice's envelope, in dB "
        "per octave around 1 kHz: below 0 a softer, darker voice, above 0 a pressed, brighter "
        "one. (0, 0) keeps the envelope.",
    )
    tempo_probability: float = probability(
        0.0,
        "Share of windows said faster or slower with their pitch kept: the WORLD vocoder's "
        "frames (5 ms) repeated or skipped to a tempo drawn from tempo_factor, the speech "
        'ending where it ended. MBROLA\'s voices at their fastest say "hey jarvis" in about '
        "0.45 s, shorter than almost every training clip; speed_factor's resampling moves the "
        "pitch with the tempo, this does not. Windows drawn for the vocoder too get both in "
        "one pass.",
    )
    tempo_factor: tuple[float, float] = Field(
        (0.7, 1.5),
        description="Range of the tempo factor, drawn log-uniformly: 1.5 says the window in "
        "two thirds of the time, 0.7 in 1.43 times it.",
    )
    narrowband_probability: float = probability(
        0.0,
        "Share of windows whose voice was made at a lower sample rate: resampled down to a "
        "rate drawn from narrowband_rate_hz and back up (soxr), after the vocoder and before "
        "the room and noise, so the voice has nothing above half that rate while the room's "
        "noise still does. Diphone TTS voices made at 8 kHz and phone-line recordings sound "
        "like this. mic_band's band-pass only tilts the top band (24 dB/octave); this empties "
        "it: through 8 kHz the demo's models find a quarter of the test wake words they find "
        "as they are (python -m bench.compare_models --through-rate 8000).",
    )
    narrowband_rate_hz: tuple[float, float] = span(
        (8000.0, 11025.0),
        "Range of the lower sample rate in Hz, drawn uniformly: at 8000 the voice stops at "
        "4 kHz (a phone line, an 8 kHz diphone voice); at most 16000.",
    )
    mic_band_probability: float = probability(
        0.0,
        "Share of windows band-limited like a cheap microphone or a phone line: "
        "a 4th-order Butterworth band-pass (24 dB/octave each side), applied after the room, "
        "noise and EQ transforms.",
    )
    mic_low_cut_hz: tuple[float, float] = span(
        (100.0, 400.0), "Range of the band-pass's lower cutoff in Hz."
    )
    mic_high_cut_hz: tuple[float, float] = Field(
        (3000.0, 7500.0),
        description="Range of the band-pass's upper cutoff in Hz (at most 7950: the Nyquist "
        "frequency at 16 kHz is 8000).",
    )
    loudness_probability: float = probability(
        0.0,
        "Share of windows scaled, last of all, to a random peak level in "
        "loudness_peak_dbfs: far speech reaches the device quiet.",
    )
    loudness_peak_dbfs: tuple[float, float] = Field(
        (-40.0, 0.0),
        description="Range of the window's peak level in dB relative to full scale (0 = the "
        "loudest sample at +-1.0).",
    )
    clipping_probability: float = probability(
        0.0,
        "Share of windows driven past full scale and hard-clipped, as an overloaded "
        "microphone input does; such a window gets no loudness_peak_dbfs level.",
    )
    clipping_overdrive_db: tuple[float, float] = Field(
        (1.0, 12.0),
        description="How far past full scale (dB) a clipped window's peak is driven before the "
        "samples are cut at +-1.0.",
    )
    seed: int = Field(0, description="Base seed; each clip's seed derives from it and its id.")

    @model_validator(mode="after")
    def _ranges_make_sense(self) -> AugmentationConfig:
        problems = _range_problems(self, _RANGE_FIELDS)
        problems += _limit_problems(
            self,
            [
                ("speed_factor", 0.0, None, "speeds are positive factors, e.g. [0.9, 1.1]"),
                ("formant_warp_factor", 0.5, 2.0, "keep factors near 1, e.g. [0.9, 1.1]"),
                ("tempo_factor", 0.25, 4.0, "tempo factors near 1, e.g. [0.7, 1.5]"),
                ("vocoder_pitch_factor", 0.0, 4.0, "pitch factors are positive, e.g. [0.8, 1.3]"),
                ("vocoder_pitch_range", None, 4.0, "0 (monotone) to about 2, e.g. [0.0, 1.5]"),
                ("vocoder_formant_shift", 0.5, 2.0, "factors near 1, e.g. [0.85, 1.18]"),
                ("vocoder_tilt_db_per_octave", -12.0, 12.0, "a few dB, e.g. [-3, 3]"),
                ("narrowband_rate_hz", 1000.0, 16000.0, "1000-16000 Hz, e.g. [8000, 11025]"),
                ("mic_low_cut_hz", 0.0, None, "cutoffs are positive frequencies"),
                ("mic_high_cut_hz", 0.0, 7950.0, "at most 7950 Hz (Nyquist is 8000 Hz)"),
                ("loudness_peak_dbfs", None, 0.0, "use clipping_* for levels above 0 dBFS"),
                ("clipping_overdrive_db", 0.0, None, "overdrive is dB above full scale"),
            ],
        )
        if self.background_onset_s[0] < 0:
            problems.append(
                f"background_onset_s = {list(self.background_onset_s)} starts before the "
                "window: give seconds after its start, e.g. [0.0, 1.0]"
            )
        low, high = self.formant_warp_pitch_median_hz
        if (low, high) != (0.0, 0.0) and not 50.0 <= low <= high <= 500.0:
            problems.append(
                f"formant_warp_pitch_median_hz = {[low, high]} is out of bounds: give "
                "[low, high] within 50-500 Hz (e.g. [90, 260]), or [0, 0] to keep the pitch"
            )
        if self.vocoder_pitch_range[0] < 0:
            problems.append(
                f"vocoder_pitch_range = {list(self.vocoder_pitch_range)} is out of bounds: "
                "0 (monotone) is the lowest, e.g. [0.0, 1.5]"
            )
        if self.mic_low_cut_hz[1] >= self.mic_high_cut_hz[0]:
            problems.append(
                f"mic_low_cut_hz {list(self.mic_low_cut_hz)} reaches mic_high_cut_hz "
                f"{list(self.mic_high_cut_hz)}: every low cutoff must be below every high cutoff"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


_RANGE_FIELDS = [
    "background_snr_db",
    "background_onset_s",
    "colored_noise_snr_db",
    "gain_db",
    "seven_band_eq_gain_db",
    "tanh_distortion",
    "pitch_shift_semitones",
    "band_stop_center_hz",
    "speed_factor",
    "formant_warp_factor",
    "tempo_factor",
    "vocoder_pitch_factor",
    "vocoder_pitch_range",
    "vocoder_aperiodicity_db",
    "vocoder_formant_shift",
    "vocoder_tilt_db_per_octave",
    "narrowband_rate_hz",
    "mic_low_cut_hz",
    "mic_high_cut_hz",
    "loudness_peak_dbfs",
    "clipping_overdrive_db",
]


def _range_problems(section: Section, names: list[str]) -> list[str]:
    """One message per ``(low, high)`` field whose low end is above its high end."""
    return [
        f"{name} = {list(getattr(section, name))}: give [low, high] with low <= high"
        for name in names
        if getattr(section, name)[0] > getattr(section, name)[1]
    ]


def _limit_problems(
    section: Section, limits: list[tuple[str, float | None, float | None, str]]
) -> list[str]:
    """One message per range field outside its limits: low above ``above``, high <= ``below``."""
    problems = []
    for name, above, below, fix in limits:
        low, high = getattr(section, name)
        if (above is not None and low <= above) or (below is not None and high > below):
            problems.append(f"{name} = {[low, high]} is out of bounds: {fix}")
    return problems


class FeaturesConfig(Section):
    """TFLite-Micro frontend features and how clips are windowed into training examples."""

    sample_rate_hz: Literal[16000] = Field(
        16000, description="Audio rate of the frontend; other rates are converted on load."
    )
    window_frames: int = Field(
        160, ge=20, description="Frames (10 ms each) stored per training example."
    )
    end_jitter_ms: tuple[int, int] = Field(
        (0, 300), description="A positive's end lands this far before the window end."
    )
    continuation_probability: float = probability(
        0.0,
        "Share of positive training windows in which the gap after the word (end_jitter_ms) "
        "holds the start of another clip of the split's negatives instead of silence: a "
        "request said right after the wake word, as users say it. 0 = off.",
    )
    continuation_pause_ms: tuple[int, int] = Field(
        (0, 100), description="Pause between the word's end and the continuing clip."
    )
    ambient_hop_s: float = Field(
        1.0, gt=0, description="Hop between negative windows cut from long ambient audio."
    )
    stream_gap_s: float = Field(
        1.5, ge=0.5, description="Faint noise between clips joined into evaluation streams."
    )
    shard_rows: int = Field(
        2048, ge=1, description="Examples per Parquet shard (on average; shards follow sources)."
    )
    row_group_rows: int = Field(
        512, ge=16, description="Rows per Parquet row group, the unit streaming readers load."
    )
    num_workers: int = Field(2, ge=1, description="Processes computing features.")
    strict: bool = Field(
        False, description="Fail on any unusable audio file instead of skipping and reporting it."
    )

    @model_validator(mode="after")
    def _jitter_in_order(self) -> FeaturesConfig:
        for name in ("end_jitter_ms", "continuation_pause_ms"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} {[low, high]}: give [low, high] with 0 <= low <= high")
        return self
