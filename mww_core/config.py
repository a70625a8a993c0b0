"""Typed pipeline configuration: pydantic sections, YAML loading and presets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"


def probability(default: float, description: str) -> Any:
    """A field holding a probability (0 to 1)."""
    return Field(default, ge=0, le=1, description=description)


def span(default: tuple[float, float], description: str) -> Any:
    """A field holding a ``[low, high]`` range values are drawn from."""
    return Field(default, description=description)


def section(kind: type, description: str) -> Any:
    """A field holding a whole section, its defaults when not given."""
    return Field(default_factory=kind, description=description)


class Section(BaseModel):
    """Base for every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def fingerprint(self) -> str:
        """Stable hash of this section's values, used in stage fingerprints."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class DemoDataConfig(Section):
    """Size and seed of the bundled, offline demo data set for any wake word."""

    piper_positives: int = Field(240, ge=0, description="Positive clips from the Piper voice.")
    espeak_positives: int = Field(240, ge=0, description="Positive clips from espeak-ng voices.")
    near_miss_negatives: int = Field(
        300, ge=0, description="Clips of phrases that sound like the wake word."
    )
    near_miss_phrases: int = Field(
        40,
        ge=0,
        description="Near-miss phrases generated for the wake word by replacing its words with "
        "dictionary words that sound alike (mww_core.demo_data.confusables). Each word of the "
        "wake word said alone comes on top, and for hey jarvis a hand-written list too. They are "
        "said in the near-miss clips and, inside everyday sentences, in the ambient and mining "
        "audio.",
    )
    near_miss_max_phoneme_distance: int = Field(
        2,
        ge=1,
        description="Largest phoneme edit distance (insertions, deletions, substitutions) "
        "between a generated near-miss phrase and the wake word, in the CMU dictionary's "
        "pronunciations and as espeak-ng says them. 1 or 2 sound alike; more drifts away.",
    )
    speech_negatives: int = Field(150, ge=0, description="Clips of read-aloud sentences.")
    ambient_minutes: dict[str, float] = Field(
        default_factory=lambda: {"train": 20.0, "validation": 30.0, "test": 60.0},
        description="Minutes of long ambient audio (noise, babble, speech, near misses) per "
        "split. One false activation in 30 minutes is 2 FAH, in 60 minutes 1 FAH: less audio "
        "cannot tell a model that meets a 1 FAH target from one that does not.",
    )
    mining_minutes: float = Field(
        60.0,
        ge=0,
        description="Minutes of talk-heavy recordings in train/mining/ (train voices, their own "
        "utterances, two near misses a minute) that only hard-negative mining scans.",
    )
    split_fractions: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.7, "validation": 0.1, "test": 0.2},
        description="Share of the clips in each split; no utterance appears in two splits.",
    )
    validation_espeak_voices: list[str] = Field(
        default_factory=lambda: ["en-gb-x-gbclan"],
        description="espeak-ng base voices (of mww_core.demo_data.ESPEAK_VOICES) heard in "
        "validation and never in training, beside the training voices with variants of "
        "validation's own: picking the best model then rewards voices it never heard.",
    )
    test_espeak_voices: list[str] = Field(
        default_factory=lambda: ["en-us-nyc", "en-029", "en-gb-scotland"],
        description="espeak-ng base voices heard only in the test split, with variants of its "
        "own. The test's Piper speech also comes from settings (length, noise, formant shift) "
        "and its positives from rooms and noises that training and validation never use.",
    )
    rirs: int = Field(
        24, ge=0, description="Room impulse responses simulated with pyroomacoustics."
    )
    noise_clips: int = Field(16, ge=0, description="Background noise clips for augmentation.")
    seed: int = Field(1234, description="Seed for every random choice in the demo data.")


class AudioSourceConfig(Section):
    """An extra folder of audio (wav/flac/ogg/mp3, any rate or channel count) for one split."""

    path: Path = Field(description="Folder of audio files, searched recursively.")
    kind: Literal["positive", "negative", "ambient", "mining"] = Field(
        description="positive = wake-word clips; negative = other clips; ambient = long "
        "recordings cut into windows every features.ambient_hop_s; mining = long negative "
        "recordings (podcasts, TV) that only hard-negative mining scans (train split only)."
    )
    split: Literal["train", "validation", "test"] = Field("train", description="Which split.")
    copies: int | None = Field(
        None, ge=1, description="Augmented copies per window; default from augmentation."
    )

    @model_validator(mode="after")
    def _mining_is_train(self) -> AudioSourceConfig:
        if self.kind == "mining" and self.split != "train":
            raise ValueError(
                f"{self.path}: kind 'mining' folders are scanned for hard negatives of the train "
                f"split only; set split: train (got {self.split})"
            )
        return self


class FeatureSetConfig(Section):
    """Precomputed microWakeWord features (RaggedMmap folders from mmap_ninja) to import."""

    path: Path = Field(description="A RaggedMmap folder, or a folder holding several.")
    weight_class: Literal["negative", "hard_negative"] = Field(
        "negative", description="Loss weight class of the imported (negative) windows."
    )
    hop_frames: int = Field(
        100, ge=1, description="Hop between windows cut from spectrograms longer than a window."
    )


class DataConfig(Section):
    """Where the audio comes from.

    ``data_dir`` holds ``{train,validation,test}/{positive,negative,ambient}/*.wav`` plus
    ``rirs/`` and ``noise/`` folders used by augmentation.
    """

    wake_word: str = Field("hey jarvis", min_length=1, description="The phrase to detect.")
    data_dir: Path = Field(Path("data/demo"), description="Root folder of the audio data set.")
    build_demo: bool = Field(
        True, description="Build the bundled demo data set into data_dir when it is missing."
    )
    demo: DemoDataConfig = Field(
        default_factory=DemoDataConfig,
        description="Sizes and seed of the bundled demo data set (with build_demo: true).",
    )
    sources: list[AudioSourceConfig] = Field(
        default_factory=list, description="Extra audio folders, besides data_dir's layout."
    )
    feature_sets: list[FeatureSetConfig] = Field(
        default_factory=list,
        description="microWakeWord feature sets imported as training negatives.",
    )


class AugmentationConfig(Section):
    """Waveform augmentation applied before the frontend (training split only)."""

    enabled: bool = Field(True, description="Augment training clips.")
    positive_copies: int = Field(2, ge=1, description="Augmented copies per positive clip.")
    negative_copies: int = Field(1, ge=1, description="Augmented copies per negative clip.")
    rir_probability: float = probability(
        0.5, "Share of windows convolved with a room impulse response."
    )
    background_noise_probability: float = probability(
        0.75, "Share of windows mixed with a clip from noise/."
    )
    background_snr_db: tuple[float, float] = span(
        (3.0, 30.0), "Range of the speech-to-background-noise ratio, in dB."
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
                ("mic_low_cut_hz", 0.0, None, "cutoffs are positive frequencies"),
                ("mic_high_cut_hz", 0.0, 7950.0, "at most 7950 Hz (Nyquist is 8000 Hz)"),
                ("loudness_peak_dbfs", None, 0.0, "use clipping_* for levels above 0 dBFS"),
                ("clipping_overdrive_db", 0.0, None, "overdrive is dB above full scale"),
            ],
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
    "colored_noise_snr_db",
    "gain_db",
    "seven_band_eq_gain_db",
    "tanh_distortion",
    "pitch_shift_semitones",
    "band_stop_center_hz",
    "speed_factor",
    "formant_warp_factor",
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
        low, high = self.end_jitter_ms
        if not 0 <= low <= high:
            raise ValueError(f"end_jitter_ms {[low, high]}: give [low, high] with 0 <= low <= high")
        return self


MODEL_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "mixednet": {
        # The official hey_jarvis v2 model's shape, read from its .tflite graph.
        "hey_jarvis": {
            "first_conv_filters": 30,
            "pointwise_filters": [60, 60, 60, 60],
            "mixconv_kernels": [[5], [9], [13], [21]],
        },
        # microWakeWord's training notebook.
        "notebook": {
            "first_conv_filters": 32,
            "pointwise_filters": [64, 64, 64, 64],
            "mixconv_kernels": [[5], [7, 11], [9, 15], [23]],
        },
    },
    "inception": {
        # microWakeWord's inception.py widths; kernels chosen for a 149-frame receptive field.
        "microwakeword": {
            "first_conv_filters": 24,
            "branch_filters": [10, 10, 16],
            "pointwise_filters": [10, 10, 16],
            "branch_kernels": [5, 9, 11],
            "dropout": 0.2,
        },
    },
}
DEFAULT_PRESET = {"mixednet": "hey_jarvis", "inception": "microwakeword"}


class ModelConfig(Section):
    """Architecture; the default is the shape of the official hey_jarvis v2 model.

    ``preset`` names a shape of the chosen architecture (``MODEL_PRESETS``): mixednet
    ``hey_jarvis`` (default) or ``notebook``; inception ``microwakeword`` (default). Fields
    given explicitly override the preset's values.
    """

    name: Literal["mixednet", "inception"] = Field(
        "mixednet", description="Architecture, a key of mww_core.model.MODELS."
    )
    preset: str | None = Field(
        None, description="Named shape of the architecture; None = its default preset."
    )
    first_conv_filters: int = Field(30, ge=1, description="Filters of the first convolution.")
    first_conv_kernel: int = Field(
        5, ge=1, description="Kernel of the first convolution, in frames (10 ms each)."
    )
    stride: int = Field(3, ge=1, description="Frames per streaming inference.")
    pointwise_filters: list[int] = Field(
        default_factory=lambda: [60, 60, 60, 60],
        description="Output width of each block's 1x1 convolution (both architectures).",
    )
    mixconv_kernels: list[list[int]] = Field(
        default_factory=lambda: [[5], [9], [13], [21]],
        description="MixedNet: depthwise kernels of each block (several = MixConv groups).",
    )
    branch_filters: list[int] = Field(
        default_factory=list, description="Inception: width of each block's branches."
    )
    branch_kernels: list[int] = Field(
        default_factory=list, description="Inception: temporal kernel of each block's branches."
    )
    head_frames: int = Field(5, ge=1, description="Time steps flattened into the dense head.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout before the dense head.")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name = data.get("name", "mixednet")
        presets = MODEL_PRESETS.get(name)
        if presets is None:
            return data  # the name's own validation reports it
        preset = data.get("preset") or DEFAULT_PRESET[name]
        if preset not in presets:
            raise ValueError(
                f"model.preset {preset!r} is not a {name} preset; choose one of "
                f"{', '.join(sorted(presets))}"
            )
        return {**presets[preset], **data}

    @property
    def receptive_field(self) -> int:
        """Input frames one output sees (149 for the official hey_jarvis shape)."""
        if self.name == "mixednet":
            steps = sum(max(k) - 1 for k in self.mixconv_kernels) + self.head_frames - 1
        else:  # inception
            steps = sum(2 * (k - 1) for k in self.branch_kernels) + self.head_frames - 1
        return self.first_conv_kernel + self.stride * steps

    @model_validator(mode="after")
    def _blocks_match(self) -> ModelConfig:
        blocks = {"pointwise_filters": self.pointwise_filters}
        if self.name == "mixednet":
            blocks["mixconv_kernels"] = self.mixconv_kernels
        else:
            blocks.update(branch_filters=self.branch_filters, branch_kernels=self.branch_kernels)
        sizes = {k: len(v) for k, v in blocks.items()}
        if len(set(sizes.values())) > 1 or 0 in sizes.values():
            listed = ", ".join(f"model.{k} has {n}" for k, n in sizes.items())
            raise ValueError(f"{listed} entries: give one per block (at least one block)")
        return self


class ClassWeights(Section):
    """Loss weight of each example class."""

    positive: float = Field(1.0, ge=0, description="Loss weight of a wake-word window.")
    negative: float = Field(20.0, ge=0, description="Loss weight of a negative window.")
    hard_negative: float = Field(
        40.0, ge=0, description="Loss weight of a mined hard-negative window."
    )


class SpecAugmentConfig(Section):
    """SpecAugment (Park et al. 2019) on a phase's training features: zeroed time spans and
    frequency bands, drawn per example from the batch's seed. All 0 (the default) = off.
    """

    time_masks: int = Field(0, ge=0, description="Time masks per example.")
    time_mask_max_frames: int = Field(
        0, ge=0, description="Widest time mask in 10 ms frames; each width is drawn in [0, max]."
    )
    freq_masks: int = Field(0, ge=0, description="Frequency masks per example.")
    freq_mask_max_bins: int = Field(
        0,
        ge=0,
        le=40,
        description="Widest frequency mask in frontend channels (of 40); each width is drawn "
        "in [0, max].",
    )

    @model_validator(mode="after")
    def _widths_given(self) -> SpecAugmentConfig:
        problems = [
            f"{count} is {getattr(self, count)} but {width} is 0: set {width} above 0, "
            f"or {count}: 0"
            for count, width in [
                ("time_masks", "time_mask_max_frames"),
                ("freq_masks", "freq_mask_max_bins"),
            ]
            if getattr(self, count) > 0 and getattr(self, width) == 0
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def enabled(self) -> bool:
        """True when any mask is drawn."""
        return self.time_masks > 0 or self.freq_masks > 0


class PhaseConfig(Section):
    """One training phase."""

    steps: int = Field(gt=0, description="Optimizer steps in this phase.")
    learning_rate: float = Field(gt=0, description="Adam's learning rate in this phase.")
    class_weights: ClassWeights = Field(
        default_factory=ClassWeights, description="Loss weight of each kind of window."
    )
    positive_fraction: float = Field(
        0.25, gt=0, lt=1, description="Share of positives in each batch."
    )
    hard_negative_fraction: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Share of each batch drawn from the mined hard negatives (when there are "
        "any). 0 draws them like any other negative, so a few dozen mined windows among "
        "thousands are rarely seen.",
    )
    spec_augment: SpecAugmentConfig = Field(
        default_factory=SpecAugmentConfig,
        description="Time and frequency masks on this phase's training features (off by "
        "default); validation and test features are never masked.",
    )

    @model_validator(mode="after")
    def _fractions_fit(self) -> PhaseConfig:
        if self.positive_fraction + self.hard_negative_fraction >= 1.0:
            raise ValueError(
                f"positive_fraction ({self.positive_fraction}) + hard_negative_fraction "
                f"({self.hard_negative_fraction}) must be below 1: the rest of each batch is "
                "ordinary negatives"
            )
        return self


class TrainingConfig(Section):
    """Both training phases and their shared settings."""

    phases: list[PhaseConfig] = Field(
        default_factory=lambda: [
            PhaseConfig(steps=20000, learning_rate=0.001),
            PhaseConfig(steps=10000, learning_rate=0.0001),
        ],
        min_length=2,
        description="Phase 1 trains from scratch; the last phase adds mined hard negatives.",
    )
    batch_size: int = Field(128, ge=1, description="Windows per optimizer step.")
    eval_step_interval: int = Field(500, ge=1, description="Validate every this many steps.")
    checkpoint_interval: int = Field(250, ge=1, description="Checkpoint every this many steps.")
    target_fah: float = Field(
        2.0, gt=0, description="FAH a validation cutoff must meet when picking the best model."
    )
    seed: int = Field(42, description="Seed of the model's initial weights and the batch order.")


class MiningConfig(Section):
    """Hard-negative mining with the phase-1 model."""

    enabled: bool = Field(True, description="Mine hard negatives with the phase-1 model.")
    threshold: float = probability(
        0.5,
        "Keep windows scoring above this. 0.5 = the lowest cutoff the manifest can get "
        "(evaluation.cutoffs): every window that could start a false activation is kept.",
    )
    max_per_source: int = Field(
        200,
        ge=1,
        description="Cap of hard negatives per source file, so one odd recording cannot dominate "
        "phase 2 (each clip of a joined negative stream is its own source).",
    )
    max_overlap: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="Kept windows of one source overlap by at most this share of a window; "
        "the lower-scoring of two closer windows is dropped as a duplicate.",
    )
    augmented_copies: int = Field(
        8,
        ge=0,
        description="Augmented copies of each mined window, cut again from its source audio "
        "with the features stage's augmentation (0: only the windows as mined). A few hundred "
        "exact spectrograms teach phase 2 those windows; their varied copies teach it the "
        "confusion.",
    )


class EvaluationConfig(Section):
    """Streaming evaluation, the way ESPHome fires."""

    sliding_window_size: int = Field(
        5, ge=1, description="Outputs averaged before comparing with the cutoff (the manifest's)."
    )
    refractory_inferences: int = Field(25, ge=0, description="Inferences ignored after a fire.")
    ignore_first_frames: int = Field(74, ge=0, description="No detection in the first frames.")
    target_fah: float = Field(1.0, gt=0, description="The cutoff is chosen to meet this FAH.")
    cutoffs: list[float] = Field(
        default_factory=lambda: [round(0.5 + 0.01 * i, 2) for i in range(50)],
        description="Probability cutoffs in the sweep; the manifest's cutoff is one of these.",
    )
    curve_cutoffs: list[float] = Field(
        default_factory=lambda: [0.01, 0.02, 0.05] + [round(0.1 + 0.05 * i, 2) for i in range(8)],
        description="Extra low cutoffs swept only to draw the DET/ROC curves and the report's "
        "table (never chosen for the manifest).",
    )
    gap_s: float = Field(1.5, ge=0.5, description="Silence between concatenated test clips.")

    @model_validator(mode="after")
    def _cutoffs_are_probabilities(self) -> EvaluationConfig:
        for name in ("cutoffs", "curve_cutoffs"):
            bad = [c for c in getattr(self, name) if not 0.0 < c <= 1.0]
            if bad:
                raise ValueError(
                    f"{name} {bad} are not probabilities: every cutoff must be in (0, 1]"
                )
        if not self.cutoffs:
            raise ValueError("cutoffs is empty: give at least one cutoff in (0, 1]")
        return self


class ExportConfig(Section):
    """The ESPHome v2 manifest and quantization."""

    wake_word_name: str = Field("Hey Jarvis", description="Name shown in ESPHome.")
    author: str = Field("mww", description="Author named in the manifest.")
    website: str = Field("https://github.com/", description="Website named in the manifest.")
    trained_languages: list[str] = Field(
        default_factory=lambda: ["en"], description="Languages named in the manifest."
    )
    minimum_esphome_version: str = Field(
        "2024.7.0", description="Oldest ESPHome that runs the model (micro_wake_word v2)."
    )
    representative_samples: int = Field(
        500, ge=10, description="Training spectrograms that calibrate int8 quantization."
    )


class PerformanceConfig(Section):
    """Hardware and profiling switches."""

    gpu_only: bool = Field(False, description="Fail instead of training on the CPU.")
    mixed_precision: bool = Field(
        False,
        description="float16 compute with float32 weights and loss scaling on a GPU; "
        "without a GPU a warning and float32.",
    )
    profiling: bool = Field(False, description="Print a table of where training time goes.")
    prefetch_batches: int = Field(
        4, ge=0, description="Batches built ahead in a background thread (0 = none)."
    )
    task_runner: Literal["threads", "dask-local", "dask"] = Field(
        "threads",
        description="Where feature shards are computed: threads = this machine's worker "
        "processes (features.num_workers); dask-local = a Dask LocalCluster of dask_workers "
        "processes on 127.0.0.1; dask = an existing Dask scheduler at dask_address.",
    )
    dask_workers: int = Field(2, ge=1, description="Worker processes of the dask-local cluster.")
    dask_address: str | None = Field(
        None, description="Scheduler of an existing Dask cluster, e.g. tcp://10.0.0.5:8786."
    )
    feature_store_url: str | None = Field(
        None,
        description="fsspec URL of the train-shard folder (file://, memory://, s3://, gs://...) "
        "that every worker can reach; default <run folder>/feature_shards.",
    )

    @model_validator(mode="after")
    def _dask_needs_address(self) -> PerformanceConfig:
        if self.task_runner == "dask" and not self.dask_address:
            raise ValueError(
                "performance.task_runner is 'dask' but performance.dask_address is not set; "
                "give the scheduler address (tcp://host:8786) or use task_runner: dask-local"
            )
        return self

    def fingerprint(self) -> str:
        """Hash of the settings that change results (where shards are computed does not)."""
        scale_out = {"task_runner", "dask_workers", "dask_address", "feature_store_url"}
        text = json.dumps(self.model_dump(mode="json", exclude=scale_out), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class FineTuneConfig(Section):
    """The retraining fine-tune: rehearsal of the run's training data plus the new negatives.

    Every batch is drawn as the run's last training phase draws it (``positive_fraction``,
    ``hard_negative_fraction``, class weights) from the run's own training store, so the model
    keeps rehearsing the wake word; ``inbox_fraction`` of each batch comes from the windows the
    current model falsely accepted in the inbox clips and their augmented copies.
    """

    steps: int = Field(300, gt=0, description="Optimizer steps of the fine-tune.")
    learning_rate: float = Field(
        5e-5,
        gt=0,
        description="Learning rate; low, since the fine-tune starts from the current model's "
        "weights and must not undo what it learned.",
    )
    inbox_fraction: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="Share of every batch drawn from the inbox windows (and their copies).",
    )
    inbox_weight: float = Field(
        10.0, gt=0, description="Loss weight of an inbox window (the others keep their phase's)."
    )
    augmented_copies: int = Field(
        8,
        ge=0,
        description="Augmented copies of each falsely accepted inbox window, cut again from its "
        "clip with the features stage's augmentation, as mining.augmented_copies does.",
    )


class RetrainConfig(Section):
    """Retraining on new negative audio (false wakes, near misses) dropped into an inbox."""

    inbox_dir: Path = Field(
        Path("inbox/negatives"),
        description="Folder of new negative clips; every file not seen before triggers a round.",
    )
    fine_tune: FineTuneConfig = Field(
        default_factory=FineTuneConfig,
        description="The fine-tune, started from the current model's weights.",
    )
    recall_tolerance: float = probability(0.02, "Largest drop in test recall that still promotes.")
    fah_tolerance: float = Field(
        0.5, ge=0, description="Largest rise in test false activations per hour that promotes."
    )
    seed: int = Field(7, description="Seed of the fine-tuning batches (plus the round number).")


class FullConfig(Section):
    """The whole pipeline's configuration."""

    run_name: str = Field(
        "demo", pattern=r"^[A-Za-z0-9_.-]+$", description="Folder of this run under runs_dir."
    )
    runs_dir: Path = Field(Path("runs"), description="Folder holding every run's folder.")
    data: DataConfig = section(DataConfig, "Where the audio is, and the demo data set.")
    augmentation: AugmentationConfig = section(
        AugmentationConfig, "Waveform augmentation of training windows."
    )
    features: FeaturesConfig = section(FeaturesConfig, "Frontend features and windowing.")
    model: ModelConfig = section(ModelConfig, "The architecture and its shape.")
    training: TrainingConfig = section(TrainingConfig, "Training phases and their shared settings.")
    mining: MiningConfig = section(MiningConfig, "Hard-negative mining between the phases.")
    evaluation: EvaluationConfig = section(EvaluationConfig, "Streaming evaluation and the cutoff.")
    export: ExportConfig = section(ExportConfig, "The exported model and its manifest.")
    performance: PerformanceConfig = section(PerformanceConfig, "Hardware, speed and scale-out.")
    retrain: RetrainConfig = section(RetrainConfig, "Retraining on new negatives.")

    @property
    def run_dir(self) -> Path:
        """Folder holding every stage's outputs for this run."""
        return self.runs_dir / self.run_name

    @model_validator(mode="after")
    def _windows_cover_the_model(self) -> FullConfig:
        needed = self.model.receptive_field
        if self.features.window_frames < needed:
            raise ValueError(
                f"features.window_frames ({self.features.window_frames}) is shorter than the "
                f"model's receptive field ({needed} frames): set features.window_frames to at "
                f"least {needed} or choose a smaller model"
            )
        return self


class ConfigError(ValueError):
    """A config file that cannot be used; the message lists every problem."""


def _error_line(error: dict) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    value = error.get("input")
    shown = repr(value) if not isinstance(value, dict) else "{...}"
    return f"  - {where} = {shown[:80]}: {error['msg']}"


def _within_bounds(error: dict) -> Any:
    """A value that meets the numeric bound an error names (``greater_than: 0`` -> 1)."""
    ctx = error.get("ctx") or {}
    for key, step in (("gt", 1), ("ge", 0), ("lt", -1), ("le", 0)):
        if isinstance(ctx.get(key), int | float):
            return ctx[key] + step
    return None


def _set_aside(data: dict, error: dict) -> bool:
    """Replace a bad value: with one within its bound, else by removing it (its default)."""
    loc = tuple(error["loc"])
    node: Any = data
    for key in loc[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return False
    if not (isinstance(node, dict) and loc and loc[-1] in node):
        return False
    bounded = _within_bounds(error)
    if bounded is None:
        del node[loc[-1]]
    else:
        node[loc[-1]] = bounded
    return True


def config_problems(raw: dict[str, Any]) -> list[str]:
    """Every problem of a config, cross-field ones included, as ``field.path = value: why``.

    pydantic skips a section's cross-field checks while one of its fields is bad. So each bad
    value is set aside (a value within its bound, or its default, takes its place) and the
    config is validated again, until
    nothing new turns up: a config with a bad value and a bad combination reports both at once.
    """
    data = json.loads(json.dumps(raw, default=str))
    lines: list[str] = []
    dropped: set[tuple] = set()
    for _ in range(10):
        try:
            FullConfig.model_validate(data)
            break
        except ValidationError as err:
            errors = [
                e for e in err.errors()
                if not (e["type"] == "missing" and tuple(e["loc"]) in dropped)
            ]  # fmt: skip
            new = [line for line in map(_error_line, errors) if line not in lines]
            lines += new
            progress = False
            for error in errors:
                if error["type"] != "missing" and _set_aside(data, error):
                    dropped.add(tuple(error["loc"]))
                    progress = True
            if not new or not progress:
                break
    return lines


def load_config(path: str | Path | None = None, **overrides: Any) -> FullConfig:
    """Load a YAML config (or a preset name such as ``demo``) into a validated FullConfig.

    Relative ``data_dir``/``runs_dir`` stay relative to the working directory.
    """
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        if not p.exists() and (PRESETS_DIR / f"{path}.yaml").exists():
            p = PRESETS_DIR / f"{path}.yaml"
        if not p.exists():
            raise ConfigError(
                f"{p}: config file not found; pass a YAML file or a preset "
                f"({', '.join(sorted(x.stem for x in PRESETS_DIR.glob('*.yaml')))})"
            )
        source = str(p)
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of sections")
    raw.update(overrides)
    try:
        return FullConfig.model_validate(raw)
    except ValidationError:
        problems = config_problems(raw)
        lines = [f"{source}: {len(problems)} problem(s) in the config:", *problems]
        raise ConfigError("\n".join(lines)) from None


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation)
    for module in ("typing.", "pathlib.", f"{__name__}."):
        text = text.replace(module, "")
    return text


def describe_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """``(field path, type, default, description)`` of every field of a section, nested
    sections (and the items of lists of sections) included."""
    rows = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        nested = _section_of(info.annotation)
        if info.is_required():
            default = "(required)"
        elif info.default_factory is not None:
            made = info.default_factory()
            if isinstance(made, BaseModel):
                default = "(fields below)"
            elif isinstance(made, list) and made and isinstance(made[0], BaseModel):
                default = f"{len(made)} entries: " + json.dumps([m.model_dump(mode="json",
                    exclude_defaults=True) for m in made])  # fmt: skip
            else:
                default = json.dumps(made, default=str)
        else:
            default = json.dumps(info.default, default=str)
        rows.append((path, _type_name(info.annotation), default, info.description or ""))
        if nested is not None:
            item = "[]." if getattr(info.annotation, "__origin__", None) is list else "."
            rows += describe_fields(nested, path + item)
    return rows


def _section_of(annotation: Any) -> type[BaseModel] | None:
    """The config section a field holds (itself, or as the items of a list), if any."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def explain_config(section: str | None = None) -> list[tuple[str, str, str, str]]:
    """The rows of ``describe_fields`` for the whole config or one section (``training``).

    Raises:
        ConfigError: No section has that name.
    """
    if section is None:
        return describe_fields(FullConfig)
    fields = FullConfig.model_fields
    nested = _section_of(fields[section].annotation) if section in fields else None
    if nested is None:
        sections = [n for n, f in fields.items() if _section_of(f.annotation) is not None]
        raise ConfigError(f"no config section {section!r}; choose one of {', '.join(sections)}")
    return describe_fields(nested, f"{section}.")
