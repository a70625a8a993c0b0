"""Training phases, mining, evaluation, export, performance and retraining."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from mww_core.config.base import Section, probability
from mww_core.config.data import DEMO_ENGINE_PREFIXES


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


class VtlpConfig(Section):
    """Vocal tract length perturbation (Jaitly and Hinton 2013) on a phase's training features:
    each warped window's spectrum is stretched along frequency by a factor drawn per window,
    a new speaker every step (the augmented copies' formant warp is fixed per copy). Off (0)
    by default.
    """

    probability: float = probability(0.0, "Share of training windows warped.")
    factor: tuple[float, float] = Field(
        (0.88, 1.12),
        description="Warp range: a window warped by f has what was at h Hz at f*h Hz (above "
        "1: formants move up, a shorter vocal tract). Drawn uniformly.",
    )

    @model_validator(mode="after")
    def _factor_positive(self) -> VtlpConfig:
        low, high = self.factor
        if not 0 < low <= high:
            raise ValueError(f"factor {list(self.factor)} must be [low, high] with 0 < low <= high")
        return self


class PhaseConfig(Section):
    """One training phase."""

    # Added after caches were made; at 0 it changes nothing, so it leaves the fingerprint be.
    _quiet_defaults: ClassVar[dict[str, Any]] = {
        "weight_decay": 0.0,
        "cosine_decay_to": None,
        "engine_adversarial": 0.0,
        "focal_gamma": 0.0,
        "keep": "best",
        "mixup_alpha": 0.0,
    }

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
    vtlp: VtlpConfig = Field(
        default_factory=VtlpConfig,
        description="Frequency warp of this phase's training features, a new vocal tract per "
        "window and step (off by default); validation and test features are never warped.",
    )
    weight_decay: float = Field(
        0.0,
        ge=0,
        description="Decoupled weight decay (AdamW): each step shrinks every kernel by "
        "weight_decay x learning_rate of itself (biases and batch-norm scales are left out). "
        "0: none.",
    )
    cosine_decay_to: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="The learning rate falls along half a cosine from learning_rate to this "
        "share of it over the phase's steps (each restart falls again; a resumed phase goes on "
        "where it stopped), so the last steps move the weights less than the first. None: "
        "learning_rate throughout.",
    )
    engine_adversarial: float = Field(
        0.0,
        ge=0,
        description="Weight of the reversed gradient of an engine classifier (domain-"
        "adversarial training): a small classifier learns to tell from the model's embedding "
        "which engine said a window (the file name's prefix, training.engine_prefixes), and "
        "the model is pushed to make that impossible, so that what it learns of the wake word "
        "is not how one engine says it. The classifier is never exported. 0: off.",
    )
    focal_gamma: float = Field(
        0.0,
        ge=0,
        le=5,
        description="Focusing exponent of a focal loss (Lin et al. 2017): each window's loss is "
        "scaled by (1 - p)^focal_gamma, p the probability the model gives its true label, so "
        "windows it already gets right count less and the ones it gets wrong (far, noisy, "
        "pitch-shifted wake words; near misses it accepts) more. 0: plain binary "
        "cross-entropy.",
    )
    mixup_alpha: float = Field(
        0.0,
        ge=0,
        le=10,
        description="Mixup (Zhang et al. 2018) on this phase's training batches: each window "
        "is blended with another of its batch, features, label and loss weight alike, by a "
        "share drawn from Beta(mixup_alpha, mixup_alpha) and folded to at least one half, so "
        "each window keeps most of itself. Labels between 0 and 1 teach the model to score "
        "in between, not only 0 or 1. 0: off; validation is never mixed.",
    )
    weight_average: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Momentum of an exponential moving average of the weights (e.g. 0.99: "
        "about the last 100 steps). Validation, the best model and the next phase use the "
        "average; training steps on the raw weights. None: no average.",
    )

    restarts: int = Field(
        1,
        ge=1,
        le=8,
        description="Train the phase this many times, each from a fresh start (phase 1: new "
        "initial weights; later phases: the previous phase's best again) with batches of its "
        "own, and keep the weights validation rates best over all of them, by the same rule "
        "as the best step. Each restart adds the phase's steps. It can only choose as well as "
        "validation tells starts apart: on the demo's 48 validation wake words (before Pico), "
        "2 starts of each phase shipped recall 0.753 on the test split's unseen voices over "
        "nine seeds, against 0.763 with one.",
    )
    carry_over_margin: float = Field(
        0.0,
        ge=0,
        le=1,
        description="How far below the validation recall of the weights this phase starts from "
        "(the previous phase's best, which stay the best model until beaten) a validation of "
        "this phase may fall and still replace them, when it meets the FAH and near-miss "
        "targets. 0: it must beat them. Mined hard negatives teach what a validation hour "
        "cannot show: 0.05 (about 3 of the demo's 64 validation wake words) ships phase 2 "
        "unless phase 1 is clearly better.",
    )
    keep: Literal["best", "last"] = Field(
        "best",
        description="Which weights the phase ends with (for mining, the next phase and the "
        "report): best = its validation the best-step rule prefers; last = its last "
        "validation, at its final step, whatever validation says of the earlier ones (it still "
        "validates every eval_step_interval, for the curves). For a phase 1 whose later steps "
        "find far more wake words but fire on a few of validation's near misses, which mining "
        'and phase 2 then teach it (README "Training", learning curves).',
    )

    @property
    def total_steps(self) -> int:
        """Steps the phase trains in all: its steps once per start."""
        return self.steps * self.restarts

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

    # Added after caches were made; used only by a phase's engine_adversarial.
    _quiet_defaults: ClassVar[dict[str, Any]] = {
        "engine_prefixes": list(DEMO_ENGINE_PREFIXES.values())
    }

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
        1.0,
        gt=0,
        description="FAH a validation cutoff must meet when picking the best step and the phase "
        "that ships. Keep it evaluation.target_fah, the manifest cutoff's target: chosen at a "
        "looser FAH, a phase that wins there can lose at the cutoff (evaluation warns when they "
        "differ).",
    )
    max_near_miss_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of validation near-miss clips a validation cutoff may falsely "
        "accept when picking the best model (with target_fah); none: not counted. Keep it "
        "evaluation.max_near_miss_rate.",
    )
    near_miss_min_distance: int = Field(
        1,
        ge=1,
        description="Near misses closer to the wake word than this many phonemes ('kay jarvis' "
        "for 'hey jarvis': the wake word said carelessly) are slips: when picking the best "
        "model they count neither toward max_near_miss_rate nor, said in ambient audio, toward "
        "the FAH. Read from the data set's dataset.json (the demo builder writes it); 1: every "
        "near miss counts. Keep it evaluation.near_miss_min_distance.",
    )
    seed: int = Field(42, description="Seed of the model's initial weights and the batch order.")
    pool_windows: int = Field(
        8192,
        ge=1,
        description="Training windows of one class (positive, negative, hard negative, "
        "retraining focus) held in memory. A class with at most this many is held whole; a "
        "larger one streams from the store through a pool of about this many windows that "
        "moves along the class's row groups in a seeded order as training goes. 8192 windows "
        "of 160 frames take 100 MiB.",
    )
    pool_draws_per_window: float = Field(
        1.0,
        gt=0,
        description="About how many times a streamed window is drawn while in its pool: higher "
        "reads the store less often, lower mixes more windows into each stretch of steps.",
    )
    engine_prefixes: list[str] = Field(
        default_factory=lambda: list(DEMO_ENGINE_PREFIXES.values()),
        min_length=2,
        description="Groups of training windows a phase's engine_adversarial tells apart, by "
        "the prefix of their audio file's name before its first '_' ('piper_0001.wav' is "
        "piper's). The demo builder names its clips by engine; name your own clips by speaker "
        "('alice_01.wav') to train against telling speakers apart. Windows of any other name "
        "(ambient audio, mined windows) train the wake word as usual but not the classifier.",
    )


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
    max_near_miss_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description="The cutoff must also falsely accept at most this share of the validation "
        "near-miss clips (with target_fah); none: near misses do not limit the cutoff.",
    )
    near_miss_min_distance: int = Field(
        1,
        ge=1,
        description="Near misses closer to the wake word than this many phonemes are slips "
        "(training.near_miss_min_distance): the cutoff's near-miss rate and FAH leave them "
        "out and the report counts them apart. 1: every near miss counts.",
    )
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

    Every batch is drawn as the phase whose weights shipped draws it (``positive_fraction``,
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
        3.0,
        gt=0,
        description="Loss weight of an inbox window (the others keep their phase's). On the "
        "demo, 3 cleared the inbox (4/5 -> 0/5 false accepts) and kept recall on the test "
        "split's unseen voices (0.729); 10 cleared it too but cost two of those 96 clips.",
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
