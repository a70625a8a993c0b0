"""Typed pipeline configuration: pydantic sections, YAML loading and presets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"


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
        "dictionary words that sound alike (mww_core.confusables). Each word of the wake word "
        "said alone comes on top, and for hey jarvis a hand-written list too. They are said in "
        "the near-miss clips and, inside everyday sentences, in the ambient and mining audio.",
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
    demo: DemoDataConfig = Field(default_factory=DemoDataConfig)
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
    rir_probability: float = Field(0.5, ge=0, le=1)
    background_noise_probability: float = Field(0.75, ge=0, le=1)
    background_snr_db: tuple[float, float] = Field((3.0, 30.0))
    colored_noise_probability: float = Field(0.2, ge=0, le=1)
    colored_noise_snr_db: tuple[float, float] = Field((10.0, 40.0))
    gain_probability: float = Field(1.0, ge=0, le=1)
    gain_db: tuple[float, float] = Field((-12.0, 6.0))
    seven_band_eq_probability: float = Field(0.2, ge=0, le=1)
    seven_band_eq_gain_db: tuple[float, float] = Field((-6.0, 6.0))
    tanh_distortion_probability: float = Field(0.1, ge=0, le=1)
    tanh_distortion: tuple[float, float] = Field(
        (0.05, 0.4), description="Distortion amount range (0-1)."
    )
    pitch_shift_probability: float = Field(0.15, ge=0, le=1)
    pitch_shift_semitones: tuple[float, float] = Field((-2.0, 2.0))
    band_stop_probability: float = Field(0.1, ge=0, le=1)
    band_stop_center_hz: tuple[float, float] = Field((200.0, 4000.0))
    seed: int = Field(0, description="Base seed; each clip's seed derives from it and its id.")


class FeaturesConfig(Section):
    """TFLite-Micro frontend features and how clips are windowed into training examples."""

    sample_rate_hz: Literal[16000] = 16000
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
    first_conv_filters: int = Field(30, ge=1)
    first_conv_kernel: int = Field(5, ge=1)
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

    positive: float = Field(1.0, ge=0)
    negative: float = Field(20.0, ge=0)
    hard_negative: float = Field(40.0, ge=0)


class PhaseConfig(Section):
    """One training phase."""

    steps: int = Field(gt=0, description="Optimizer steps in this phase.")
    learning_rate: float = Field(gt=0)
    class_weights: ClassWeights = Field(default_factory=ClassWeights)
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
    batch_size: int = Field(128, ge=1)
    eval_step_interval: int = Field(500, ge=1, description="Validate every this many steps.")
    checkpoint_interval: int = Field(250, ge=1, description="Checkpoint every this many steps.")
    target_fah: float = Field(
        2.0, gt=0, description="FAH a validation cutoff must meet when picking the best model."
    )
    seed: int = 42


class MiningConfig(Section):
    """Hard-negative mining with the phase-1 model."""

    enabled: bool = True
    threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Keep windows scoring above this. 0.5 = the lowest cutoff the manifest can get "
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

    sliding_window_size: int = Field(5, ge=1)
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


class ExportConfig(Section):
    """The ESPHome v2 manifest and quantization."""

    wake_word_name: str = Field("Hey Jarvis", description="Name shown in ESPHome.")
    author: str = "mww"
    website: str = "https://github.com/"
    trained_languages: list[str] = Field(default_factory=lambda: ["en"])
    minimum_esphome_version: str = "2024.7.0"
    representative_samples: int = Field(500, ge=10)


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
    recall_tolerance: float = Field(
        0.02, ge=0, le=1, description="Largest drop in test recall that still promotes."
    )
    fah_tolerance: float = Field(
        0.5, ge=0, description="Largest rise in test false activations per hour that promotes."
    )
    seed: int = Field(7, description="Seed of the fine-tuning batches (plus the round number).")


class FullConfig(Section):
    """The whole pipeline's configuration."""

    run_name: str = Field("demo", pattern=r"^[A-Za-z0-9_.-]+$")
    runs_dir: Path = Path("runs")
    data: DataConfig = Field(default_factory=DataConfig)
    augmentation: AugmentationConfig = Field(default_factory=AugmentationConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    mining: MiningConfig = Field(default_factory=MiningConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)

    @property
    def run_dir(self) -> Path:
        """Folder holding every stage's outputs for this run."""
        return self.runs_dir / self.run_name


class ConfigError(ValueError):
    """A config file that cannot be used; the message lists every problem."""


def _format_errors(source: str, err: ValidationError) -> str:
    lines = [f"{source}: {err.error_count()} problem(s) in the config:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        value = e.get("input")
        shown = repr(value) if not isinstance(value, dict) else "{...}"
        lines.append(f"  - {where} = {shown[:80]}: {e['msg']}")
    return "\n".join(lines)


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
    except ValidationError as err:
        raise ConfigError(_format_errors(source, err)) from None
