"""Trainer: phases of seeded batches, device-like validation, resumable checkpoints."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mww_core import evaluation
from mww_core.atomic import atomic_path, atomic_write_text
from mww_core.config import EvaluationConfig, FullConfig, PhaseConfig
from mww_core.frontend import NUM_CHANNELS, features_to_float
from mww_core.model import (
    build_model,
    load_weights,
    receptive_field,
    save_weights,
    score_long_chunks,
)
from mww_core.training.adversary import EngineAdversary
from mww_core.training.batches import (
    PrefetchedBatches,
    TrainingData,
    ValidationSet,
    class_weight_vector,
    iterate_batches,
)
from mww_core.training.display import TrainingLogger
from mww_core.training.metrics import EvaluationMetrics
from mww_core.training.profiler import TrainingProfiler
from mww_core.training.streamed import StreamedTrainingData

__all__ = [
    "StreamedTrainingData",
    "Trainer",
    "TrainingData",
    "ValidationSet",
    "keras_scorer",
    "score_feature_streams",
]
SampledData = TrainingData | StreamedTrainingData

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
BEST_WEIGHTS = "best.weights.npz"
# While a phase's best is still the weights it started from, its own best validation so far
# (what it learned, for the report's phase 1 vs phase 2 comparison).
OWN_BEST_WEIGHTS = "own_best.weights.npz"
# Every validated step's weights (the ones validation scored), for learning curves on other
# audio (``mww_core.pipeline.curves``): ``validated/step_000250.weights.npz``.
VALIDATED_DIR = "validated"
# Every validation of a phase so far, rewritten after each: a resumed phase keeps the ones
# before its checkpoint (the report's and the learning curves' points).
HISTORY = "history.json"
TENSORBOARD_EVERY = 10  # steps between TensorBoard loss points
# Restart r of phase i draws its batches as phase i + RESTART_KEY * r: a single start draws as
# it always has.
RESTART_KEY = 1000


def score_stream(scorer: Callable[[np.ndarray], np.ndarray], stream) -> np.ndarray:
    """One stream's probabilities, read chunk by chunk when the scorer can take chunks.

    ``stream`` is a ``Stream`` or a ``StoredStream``; a scorer with ``score_chunks`` (the
    TFLite runner, ``keras_scorer``) gets its chunks, any other callable the whole features.
    """
    if hasattr(scorer, "score_chunks"):
        return scorer.score_chunks(stream.chunks())
    chunks = list(stream.chunks())
    return scorer(np.concatenate(chunks) if chunks else np.zeros((0, NUM_CHANNELS), np.uint16))


def score_feature_streams(
    scorer: Callable[[np.ndarray], np.ndarray],
    streams: list,
    stride: int,
    slips: evaluation.Slips | None = None,
) -> evaluation.ScoredStreams:
    """Score stored feature streams once, for a cutoff sweep.

    ``streams`` are ``Stream``s or ``StoredStream``s (``store.open_streams``): the latter are
    read one chunk at a time, so memory holds a chunk and the probabilities (one float per
    ``stride`` frames), not the features of hours of audio. ``slips`` marks the near misses
    the sweep counts apart (``evaluation.find_slips``).
    """
    empty = np.zeros(0, np.float32)

    def joined(kind: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
        found = [s for s in streams if s.kind == kind]
        return (score_stream(scorer, found[0]), list(found[0].spans)) if found else (empty, [])

    pos_probs, pos_spans = joined("positive")
    neg_probs, neg_spans = joined("negative")
    ambient = [s for s in streams if s.kind == "ambient"]
    return evaluation.ScoredStreams(
        stride=stride,
        positive_probs=pos_probs,
        positive_spans=pos_spans,
        negative_probs=neg_probs,
        negative_spans=neg_spans,
        ambient_probs=[score_stream(scorer, s) for s in ambient],
        ambient_duration_s=sum(s.duration_s for s in ambient),
        negative_slips=None if slips is None else slips.negative,
        ambient_slips=None if slips is None else [slips.ambient.get(s.source, []) for s in ambient],
    )


class KerasStreamScorer:
    """Raw features -> one probability per ``stride`` frames, like the streaming model.

    Outputs before the model's receptive field has filled are 0. ``score_chunks`` scores a
    stream given chunk by chunk, holding one chunk at a time.
    """

    def __init__(self, model: keras.Model, config: FullConfig):
        self.model, self.config = model, config
        self.stride = config.model.stride

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Probabilities of a whole stream of raw uint16 features ``[frames, 40]``."""
        return self.score_chunks([raw])

    def score_chunks(self, chunks: Iterable[np.ndarray]) -> np.ndarray:
        """Probabilities of a stream given as consecutive chunks of raw features."""
        frames = 0

        def floats():
            nonlocal frames
            for raw in chunks:
                frames += len(raw)
                yield features_to_float(raw)

        probs = score_long_chunks(self.model, self.config.model, floats())
        # The streaming model emits an output for every call, also while its buffers fill.
        count = frames // self.stride
        return np.concatenate([np.zeros(count - len(probs), np.float32), probs])[:count]


def keras_scorer(model: keras.Model, config: FullConfig) -> KerasStreamScorer:
    """Raw features -> one probability per ``stride`` frames, like the streaming model."""
    return KerasStreamScorer(model, config)


def _history_before(path: Path, step: int) -> list[dict]:
    """The validations a phase's ``history.json`` holds up to ``step`` (none when it starts
    afresh at 0, or has no readable file)."""
    if not step or not path.exists():
        return []
    try:
        return [h for h in json.loads(path.read_text()) if h["step"] <= step]
    except (ValueError, KeyError, TypeError) as exc:
        log.warning(
            "%s: unreadable (%s); its validations before step %d are left out", path, exc, step
        )
        return []


def validated_weights_path(stage_dir: Path, step: int) -> Path:
    """Where a phase keeps the weights it validated at ``step``."""
    return Path(stage_dir) / VALIDATED_DIR / f"step_{step:06d}.weights.npz"


def restart_seed(seed: int, number: int) -> int:
    """The seed of restart ``number``'s initial weights (restart 0: the training seed)."""
    if number == 0:
        return seed
    return int(np.random.default_rng([seed, number]).integers(2**31))


def _phase_summary(phase: PhaseConfig) -> str:
    """``1500 @ 0.001``, or ``1500 x 2 starts @ 0.001`` for a phase with restarts."""
    starts = f" x {phase.restarts} starts" if phase.restarts > 1 else ""
    return f"{phase.steps}{starts} @ {phase.learning_rate:g}"


def freeze_batch_normalization(model: keras.Model) -> int:
    """Run every batch-norm layer in inference mode, its statistics and scales fixed.

    Keras 3 runs a non-trainable BatchNormalization in inference mode even when the model is
    called with ``training=True``. Returns how many layers were frozen.
    """
    frozen = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
            frozen += 1
    return frozen


def _stream_confusion(row: dict, scored: evaluation.ScoredStreams) -> list[list[int]]:
    """Clip-level ``[[tn, fp], [fn, tp]]`` of one sweep row."""
    tp, fp = row["positives_detected"], row["false_accepts"]
    n_pos, n_neg = len(scored.positive_spans), len(scored.negative_spans) - row.get("slip_clips", 0)
    return [[n_neg - fp, fp], [n_pos - tp, tp]]


class Trainer:
    """Trains the model phase by phase under ``stage_dir`` with resumable checkpoints.

    Best model rule (``_is_best_model``): a validation that meets ``training.target_fah`` beats
    one that does not; among those, higher recall wins, then lower FAH, then fewer near-miss false
    accepts, then a higher cutoff; an exact tie goes to the later step. A phase's
    ``carry_over_margin`` lets it replace the previous phase's best with a little less recall.
    Recall and FAH come from streaming the validation audio the way the device fires, at the
    sweep cutoff that meets the FAH target (``evaluation.choose_cutoff``).
    """

    def __init__(
        self,
        config: FullConfig,
        stage_dir: Path | None = None,
        progress: Progress | None = None,
        logger: TrainingLogger | None = None,
    ):
        self.config = config
        self.stage_dir = Path(stage_dir) if stage_dir is not None else config.run_dir / "train"
        self.progress = progress
        self.logger = logger or TrainingLogger()
        self.profiler = TrainingProfiler()
        self.input_frames = receptive_field(config.model)
        keras.utils.set_random_seed(config.training.seed)
        tf.config.experimental.enable_op_determinism()
        self.model = self._build_model(seed=config.training.seed)
        self.history: list[dict] = []  # every validation of every phase this trainer ran
        self._phase_history: list[dict] = []  # the current phase's, as its history.json has them
        self.optimizer: keras.optimizers.Optimizer | None = None
        self._step_fn = None
        self._writer = None
        self.adversary: EngineAdversary | None = None

    # ---- model and optimizer ------------------------------------------------------------

    def _precision_policy(self) -> str:
        """``mixed_float16`` when asked for and a GPU is present, else ``float32``."""
        if not self.config.performance.mixed_precision:
            return "float32"
        if not tf.config.list_physical_devices("GPU"):
            self.logger.log_warning(
                "performance.mixed_precision needs a GPU (float16 is slower than float32 on a "
                "CPU); training in float32. Unset it to silence this warning."
            )
            return "float32"
        return "mixed_float16"

    def _build_model(self, policy: str | None = None, seed: int | None = None) -> keras.Model:
        """The configured architecture, under ``policy`` (default: from the performance config),
        its initial weights from ``seed`` (``mww_core.model.InitialSeeds``)."""
        if self.config.performance.gpu_only and not tf.config.list_physical_devices("GPU"):
            raise RuntimeError(
                "performance.gpu_only is set but TensorFlow sees no GPU; unset it to train on CPU"
            )
        policy = policy or self._precision_policy()
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            return build_model(self.config.model, seed)
        finally:
            keras.config.set_dtype_policy(previous)

    def _prepare_optimizer(
        self,
        learning_rate: float,
        weight_average: float | None = None,
        weight_decay: float = 0.0,
        cosine: tuple[int, float] | None = None,
        engine_adversarial: float = 0.0,
        focal_gamma: float = 0.0,
    ) -> None:
        """A fresh Adam (loss-scaled under mixed precision) and the compiled step using it.

        ``weight_average``: the momentum of a moving average of the weights Adam keeps beside
        them (its variables are checkpointed with it); ``_averaged_weights`` swaps it in.
        ``cosine``: ``(steps, share)``, the learning rate falls along half a cosine to
        ``share`` of itself over ``steps`` of Adam's own step count (checkpointed with it).
        ``engine_adversarial``: above 0, a fresh engine classifier trains beside the model and
        its reversed gradient, times this, reaches the model (``EngineAdversary``).
        ``focal_gamma``: above 0, the step's loss is the focal loss with this exponent.
        """
        rate = learning_rate
        if cosine is not None:
            steps, share = cosine
            rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=share)
        optimizer = keras.optimizers.Adam(
            learning_rate=rate,
            use_ema=weight_average is not None,
            ema_momentum=weight_average or 0.99,
            weight_decay=weight_decay or None,
        )
        if weight_decay:
            optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        if self.model.dtype_policy.name == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(self.model.trainable_variables)
        self.optimizer = optimizer
        self.adversary = None
        if engine_adversarial > 0:
            if self.model.dtype_policy.name == "mixed_float16":
                raise ValueError(
                    "engine_adversarial is not supported with performance.mixed_precision; "
                    "unset one of them"
                )
            self.adversary = EngineAdversary(
                self.model,
                len(self.config.training.engine_prefixes),
                engine_adversarial,
                learning_rate,
                self.config.training.seed,
            )
        loss_fn = (
            keras.losses.BinaryFocalCrossentropy(gamma=focal_gamma)
            if focal_gamma > 0
            else keras.losses.BinaryCrossentropy()
        )
        self._step_fn = self._compile_step(optimizer, loss_fn, self.adversary)

    def _learning_rate(self) -> float:
        """The learning rate of Adam's next step (a cosine's value at its step count)."""
        return float(np.asarray(self.optimizer.learning_rate))

    def _compile_step(
        self,
        optimizer: keras.optimizers.Optimizer,
        loss_fn: keras.losses.Loss,
        adversary: EngineAdversary | None = None,
    ):
        """The compiled training step on ``(x, y, w)``, minimizing ``loss_fn`` (the wake-word
        loss: binary cross-entropy, or a focal loss). With ``adversary`` it takes each row's
        engine too: one forward pass gives the probability and the embedding, the model gets
        the wake-word loss's gradient plus the engine classifier's, reversed, and the
        classifier its own."""
        model = self.model
        spec = [
            tf.TensorSpec((None, self.input_frames, NUM_CHANNELS), tf.float32),
            tf.TensorSpec((None,), tf.float32),
            tf.TensorSpec((None,), tf.float32),
        ]
        scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

        def train_step(x, y, w, engine=None):
            mine = model.trainable_variables
            theirs = [] if adversary is None else adversary.head.trainable_variables
            with tf.GradientTape() as tape:
                if adversary is None:
                    p = tf.cast(model(x, training=True), tf.float32)
                else:
                    p, embedding = adversary.joint(x, training=True)
                    engine_loss, engine_accuracy = adversary.losses(embedding, engine)
                loss = loss_fn(y[:, None], p, sample_weight=w)
                total = loss if adversary is None else loss + engine_loss
                scaled_loss = optimizer.scale_loss(total) if scaled else total
            grads = tape.gradient(scaled_loss, mine + theirs)
            optimizer.apply_gradients(zip(grads[: len(mine)], mine, strict=True))
            accuracy = tf.reduce_mean(tf.cast(tf.equal(p[:, 0] >= 0.5, y >= 0.5), tf.float32))
            if adversary is None:
                return loss, accuracy
            adversary.optimizer.apply_gradients(zip(grads[len(mine) :], theirs, strict=True))
            return loss, accuracy, engine_accuracy

        if adversary is None:
            return tf.function(lambda x, y, w: train_step(x, y, w), input_signature=spec)
        return tf.function(train_step, input_signature=[*spec, tf.TensorSpec((None,), tf.int32)])

    def train_step(self, fingerprints, ground_truth, sample_weights, engines=None) -> dict:
        """One optimizer step on a batch: ``[batch, frames, 40]`` floats, labels, weights (and
        each row's engine, -1 for none, used when the phase trains an ``EngineAdversary``)."""
        if self._step_fn is None:
            self._prepare_optimizer(self.config.training.phases[0].learning_rate)
        batch = [
            np.asarray(fingerprints, np.float32),
            np.asarray(ground_truth, np.float32).reshape(-1),
            np.asarray(sample_weights, np.float32).reshape(-1),
        ]
        if self.adversary is None:
            loss, accuracy = self._step_fn(*batch)
            return {"loss": float(loss), "accuracy": float(accuracy)}
        if engines is None:
            raise ValueError(
                "engine_adversarial needs each training window's engine: the training data "
                "must be made with engine_prefixes (mww_core.pipeline.train_stage.streamed_data "
                "does so when a phase sets engine_adversarial)"
            )
        loss, accuracy, engine_accuracy = self._step_fn(
            *batch, np.asarray(engines, np.int32).reshape(-1)
        )
        return {
            "loss": float(loss),
            "accuracy": float(accuracy),
            "engine_accuracy": float(engine_accuracy),
        }

    # ---- phases, class weights ----------------------------------------------------------

    def _apply_class_weights(
        self, ground_truth, weight_class=None, phase_index: int = 0
    ) -> np.ndarray:
        """Sample weights from each example's class (from the labels when not given)."""
        if weight_class is None:
            labels = np.asarray(ground_truth).reshape(-1)
            weight_class = np.where(labels >= 0.5, "positive", "negative")
        weights = self.config.training.phases[phase_index].class_weights
        return class_weight_vector(np.asarray(weight_class), weights)

    # ---- validation and the best model --------------------------------------------------

    def validate(self, data_factory: ValidationSet | Callable | Iterable) -> dict:
        """Validation metrics.

        A ``ValidationSet`` is streamed like the device (recall and FAH at the cutoff meeting
        ``training.target_fah``, clip confusion matrix); a factory (called with no arguments)
        or a generator of ``(fingerprints, ground_truth[, ...])`` batches is scored window by
        window with ``EvaluationMetrics`` at cutoff 0.5.
        """
        if isinstance(data_factory, ValidationSet):
            return self._validate_streams(data_factory)
        metrics = EvaluationMetrics()
        for batch in iterate_batches(data_factory, 0):
            probs = self.model(np.asarray(batch[0], np.float32), training=False)
            metrics.update(batch[1], np.asarray(probs, np.float32))
        result = metrics.compute_metrics()
        # No ambient audio here: the best-model rule then compares recall only.
        return {**result, "fah": 0.0, "target_met": True}

    def _validate_streams(self, validation: ValidationSet) -> dict:
        scored = score_feature_streams(
            keras_scorer(self.model, self.config),
            validation.streams,
            self.config.model.stride,
            validation.slips,
        )
        # Device firing defaults, not the evaluation section: tuning evaluation must not
        # invalidate training (the flow re-runs only evaluation and export then).
        rows = evaluation.sweep(scored, EvaluationConfig())
        training = self.config.training
        chosen, met = evaluation.choose_cutoff(
            rows, training.target_fah, None, training.max_near_miss_rate
        )
        return {
            "recall": chosen["recall"] or 0.0,
            "fah": chosen["fah"],
            "cutoff": chosen["cutoff"],
            "false_accept_rate": chosen["false_accept_rate"],
            "target_met": met,
            "confusion_matrix": _stream_confusion(chosen, scored),
        }

    @staticmethod
    def _is_best_model(metrics: dict, best: dict | None, carry_over_margin: float = 0.0) -> bool:
        """Whether ``metrics`` replaces ``best``.

        Meeting the FAH target first, then higher recall, lower FAH, fewer near-miss false
        accepts, a higher cutoff (the same recall with more margin); a later validation that
        ties on all of these wins: validation cannot tell the two apart and it trained longer.
        ``best`` carried over from the previous phase is replaced by a validation that meets
        the targets with recall at most ``carry_over_margin`` below its own (the phase's
        ``carry_over_margin``; with 0, by the rule above).
        """
        carried = best is not None and best.get("carried_over") and carry_over_margin > 0
        if carried and metrics.get("target_met", True):
            if metrics["recall"] >= best["recall"] - carry_over_margin - 1e-9:
                return True

        def key(m: dict) -> tuple:
            return (
                bool(m.get("target_met", True)),
                m["recall"],
                -(m.get("fah") or 0.0),
                -(m.get("false_accept_rate") or 0.0),
                m.get("cutoff") or 0.0,
            )

        return best is None or key(metrics) >= key(best)

    @contextlib.contextmanager
    def _averaged_weights(self):
        """The model holds the phase's moving average of its weights inside, the raw ones after.

        Without ``weight_average`` the model is left as it is.
        """
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)  # loss scaling
        if optimizer is None or not optimizer.use_ema:
            yield
            return
        variables = self.model.trainable_variables
        raw = [v.numpy() for v in variables]
        optimizer.finalize_variable_values(variables)
        try:
            yield
        finally:
            for variable, value in zip(variables, raw, strict=True):
                variable.assign(value)

    def _evaluate(
        self, validation, step: int, train_metrics: dict, best: dict | None, out: Path,
        carry_over_margin: float = 0.0, keep_last: bool = False,
    ):  # fmt: skip
        with self._averaged_weights():
            return self._evaluate_model(
                validation, step, train_metrics, best, out, carry_over_margin, keep_last
            )

    def _evaluate_model(
        self, validation, step: int, train_metrics: dict, best: dict | None, out: Path,
        carry_over_margin: float = 0.0, keep_last: bool = False,
    ):  # fmt: skip
        """Validate, and keep the weights as the phase's best when they beat ``best`` (by
        ``_is_best_model``, with the phase's ``carry_over_margin``), or always with
        ``keep_last`` (the phase's ``keep: last``: its final validation ends it)."""
        metrics = {"step": step, **train_metrics, **self.validate(validation)}
        metrics["is_best"] = keep_last or self._is_best_model(metrics, best, carry_over_margin)
        save_weights(self.model, validated_weights_path(out, step))
        self.history.append(metrics)
        self._phase_history.append(metrics)
        atomic_write_text(out / HISTORY, json.dumps(self._phase_history, indent=2))
        self.logger.log_step_metrics(step, train_metrics)
        self.logger.print_validation_results(step, metrics)
        if "confusion_matrix" in metrics:
            self.logger.print_confusion_matrix(metrics["confusion_matrix"])
        self._scalars(
            step, {f"validation/{k}": metrics.get(k) for k in ("recall", "fah", "cutoff")}
        )
        if metrics["is_best"]:
            save_weights(self.model, out / BEST_WEIGHTS)
            atomic_write_text(out / "best.json", json.dumps(metrics, indent=2))
            best = metrics
        elif best is not None and best.get("carried_over"):
            own_path = out / "own_best.json"
            own = json.loads(own_path.read_text()) if own_path.exists() else None
            if self._is_best_model(metrics, own):
                save_weights(self.model, out / OWN_BEST_WEIGHTS)
                atomic_write_text(own_path, json.dumps(metrics, indent=2))
        return best

    @staticmethod
    def _carry_best(record: dict, weights: Path, out: Path) -> dict:
        """Start the phase's best model as the weights it starts from, with their record."""
        out.mkdir(parents=True, exist_ok=True)
        carried = {**record, "is_best": True, "carried_over": True}
        with atomic_path(out / BEST_WEIGHTS) as tmp:
            shutil.copyfile(weights, tmp)
        atomic_write_text(out / "best.json", json.dumps(carried, indent=2))
        return carried

    @staticmethod
    def _load_best_record(out: Path) -> dict | None:
        path = out / "best.json"
        return json.loads(path.read_text()) if path.exists() else None

    # ---- checkpoints and TensorBoard ----------------------------------------------------

    def _checkpoint(self, out: Path) -> tuple[tf.train.CheckpointManager, dict]:
        """Checkpoint of weights, optimizer state, step, best metric and data position."""
        state = {
            "step": tf.Variable(0, dtype=tf.int64, trainable=False),
            "data_position": tf.Variable(0, dtype=tf.int64, trainable=False),
            "best_recall": tf.Variable(-1.0, dtype=tf.float64, trainable=False),
            "best_fah": tf.Variable(-1.0, dtype=tf.float64, trainable=False),
        }
        objects = {}
        if self.adversary is not None:  # the engine classifier resumes where it was too
            objects = {
                "engine_head": self.adversary.head,
                "engine_optimizer": self.adversary.optimizer,
            }
        ckpt = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, **objects, **state)
        manager = tf.train.CheckpointManager(ckpt, out / "checkpoints", max_to_keep=2)
        if manager.latest_checkpoint:
            ckpt.restore(manager.latest_checkpoint).expect_partial()
        return manager, state

    def _save_checkpoint(self, manager, state: dict, step: int, best: dict | None) -> str:
        """Write a checkpoint (atomic: TF writes then renames) and the config it belongs to."""
        if best is not None:
            state["best_recall"].assign(float(best["recall"]))
            state["best_fah"].assign(float(best.get("fah") or 0.0))
        path = manager.save(checkpoint_number=step)
        snapshot = Path(manager.directory) / "config.json"
        if not snapshot.exists():
            atomic_write_text(snapshot, self.config.model_dump_json(indent=2))
        self.logger.log_checkpoint(path, step)
        return path

    def _scalars(self, step: int, values: dict[str, Any]) -> None:
        if self._writer is None:
            return
        with self._writer.as_default(step=step):
            for name, value in values.items():
                if value is not None:
                    tf.summary.scalar(name, float(value))

    # ---- the training loop --------------------------------------------------------------

    def train_phase(
        self,
        phase_index: int,
        data: SampledData | Callable | Iterable,
        validation: ValidationSet | Callable | Iterable,
        init_weights: Path | None = None,
        stage_dir: Path | None = None,
        init_best: dict | None = None,
        freeze_batch_norm: bool = False,
    ) -> dict:
        """Train one phase to its configured steps, resuming from the last checkpoint if any.

        ``data`` is a ``TrainingData`` or ``StreamedTrainingData`` (batches are a pure
        function of seed, phase and step, built ahead in a thread) or a factory/generator of
        ``(x, y[, weights])`` batches, of which a resumed phase skips the ones already consumed.
        ``init_best`` is the validation record of ``init_weights`` (the previous phase's best):
        this phase's weights replace them only when a validation beats it, so a phase never ends
        worse than it started.
        ``freeze_batch_norm`` keeps batch normalization's statistics and scales as they are
        (fine-tuning: re-estimating them on the fine-tune's batches alone moves every output).
        """
        phase = self.config.training.phases[phase_index]
        out = Path(stage_dir) if stage_dir is not None else self.stage_dir
        if init_weights is not None:
            load_weights(self.model, init_weights)
        if freeze_batch_norm:
            freeze_batch_normalization(self.model)
        cosine = None if phase.cosine_decay_to is None else (phase.steps, phase.cosine_decay_to)
        self._prepare_optimizer(
            phase.learning_rate,
            phase.weight_average,
            phase.weight_decay,
            cosine,
            phase.engine_adversarial,
            phase.focal_gamma,
        )
        fresh_optimizer = [variable.numpy() for variable in self.optimizer.variables]
        manager, state = self._checkpoint(out)
        best = self._load_best_record(out)
        if best is None and init_best is not None and init_weights is not None:
            best = self._carry_best(init_best, init_weights, out)
        start = int(state["step"].numpy())
        self._phase_history = _history_before(out / HISTORY, start)
        self.history.extend(self._phase_history)
        if start:
            log.info("resuming phase %d at step %d", phase_index + 1, start)
        total = phase.total_steps
        settings = {"steps": total, "learning_rate": phase.learning_rate, "start_step": start}
        self.logger.log_phase_transition(phase_index, settings)
        batches = self._batches(data, phase_index, phase, int(state["data_position"].numpy()))
        self._writer = tf.summary.create_file_writer(str(out / "tensorboard"))
        started = time.time()

        def restart(number: int) -> None:
            self._restart(phase_index, number, init_weights, fresh_optimizer)

        try:
            best = self._run_steps(
                phase_index, batches, validation, manager, state, best, out, restart
            )
        finally:
            if isinstance(batches, PrefetchedBatches):
                batches.close()
            if isinstance(data, StreamedTrainingData):
                data.close()  # its pools and threads; the next phase starts its own
            self._writer.close()
            self._writer = None
        if best is not None and best.get("carried_over"):
            log.info(
                "phase %d did not beat the weights it started from on validation (recall %.3f, "
                "FAH %s): they stay the best model",
                phase_index + 1, best["recall"], best.get("fah"),
            )  # fmt: skip
        carried = best is not None and best.get("carried_over")
        own = out / (
            OWN_BEST_WEIGHTS if carried and (out / OWN_BEST_WEIGHTS).exists() else BEST_WEIGHTS
        )
        summary = {
            "best": best,
            "steps": total,
            "seconds": time.time() - started,
            "best_weights": str(out / BEST_WEIGHTS),
            "own_best_weights": str(own),
            "profile": self.profiler.rows(),
        }
        self.logger.print_completion_summary(summary)
        if self.config.performance.profiling:
            self.logger.print_profile(self.profiler)
        return summary

    def _batches(self, data, phase_index: int, phase: PhaseConfig, position: int):
        if not isinstance(data, TrainingData | StreamedTrainingData):
            return iterate_batches(data, position)
        size = self.config.training.batch_size

        def make(step: int):
            restart, local = divmod(step, phase.steps)
            return data.batch(phase_index + RESTART_KEY * restart, local, size, phase)

        total, depth = phase.total_steps, self.config.performance.prefetch_batches
        if depth == 0:
            return (make(step) for step in range(position, total))
        return PrefetchedBatches(make, position, total, depth)

    def _next_batch(self, batches, phase_index: int, step: int) -> tuple:
        try:
            batch = next(batches)
        except StopIteration:
            total = self.config.training.phases[phase_index].total_steps
            raise ValueError(
                f"training data ran out at step {step} of phase {phase_index + 1} ({total} "
                "steps); the data factory must yield one batch per step"
            ) from None
        if len(batch) == 2:
            return batch[0], batch[1], self._apply_class_weights(batch[1], None, phase_index)
        return tuple(batch[:4])  # features, labels, weights[, engines]

    def _restart(
        self, phase_index: int, number: int, init_weights: Path | None, optimizer_state: list
    ) -> None:
        """Start the phase afresh as restart ``number`` (from 0): the weights it started from
        (phase 1: new initial weights, seeded by the restart) and a fresh optimizer."""
        if init_weights is not None:
            load_weights(self.model, init_weights)
        else:
            seed = restart_seed(self.config.training.seed, number)
            keras.utils.set_random_seed(seed)
            fresh = self._build_model(self.model.dtype_policy.name, seed)
            self.model.set_weights(fresh.get_weights())
        for variable, value in zip(self.optimizer.variables, optimizer_state, strict=True):
            variable.assign(value)
        if self.adversary is not None:
            self.adversary.reset()
        restarts = self.config.training.phases[phase_index].restarts
        log.info("phase %d: restart %d of %d", phase_index + 1, number + 1, restarts)

    def _run_steps(
        self, phase_index, batches, validation, manager, state, best, out: Path, restart
    ):  # fmt: skip
        """Train to the phase's steps times its restarts; ``restart(n)`` starts restart n."""
        phase = self.config.training.phases[phase_index]
        cfg = self.config.training
        losses: list[float] = []
        step = int(state["step"].numpy())
        total = phase.total_steps
        while step < total:
            if step and step % phase.steps == 0:  # also when resumed at the boundary
                restart(step // phase.steps)
                losses = []
            with self.profiler.section("data"):
                x, y, w, *engines = self._next_batch(batches, phase_index, step)
            with self.profiler.section("train_step"):
                metrics = self.train_step(x, y, w, *engines)
            step += 1
            state["step"].assign(step)
            state["data_position"].assign_add(1)
            losses.append(metrics["loss"])
            recent = {"loss": float(np.mean(losses[-50:])), "accuracy": metrics["accuracy"]}
            if "engine_accuracy" in metrics:  # near chance when the embedding hides the engine
                recent["engine_accuracy"] = metrics["engine_accuracy"]
            if phase.restarts > 1:
                recent["restart"] = (step - 1) // phase.steps + 1
            if step % TENSORBOARD_EVERY == 0:
                with self.profiler.section("tensorboard"):
                    self._scalars(step, {"train/loss": np.mean(losses[-TENSORBOARD_EVERY:]),
                                         "train/accuracy": metrics["accuracy"],
                                         "train/learning_rate": self._learning_rate(),
                                         "train/engine_accuracy":
                                             metrics.get("engine_accuracy")})  # fmt: skip
            if step % cfg.eval_step_interval == 0 or step % phase.steps == 0:
                with self.profiler.section("validation"):
                    best = self._evaluate(
                        validation, step, recent, best, out, phase.carry_over_margin,
                        keep_last=phase.keep == "last",
                    )  # fmt: skip
            if step % cfg.checkpoint_interval == 0 or step % phase.steps == 0:
                with self.profiler.section("checkpoint"):
                    self._save_checkpoint(manager, state, step, best)
            recent["learning_rate"] = self._learning_rate()
            self.logger.update_progress(phase_index, step, total, recent)
            if self.progress:
                self.progress(f"phase {phase_index + 1}", step, total)
        return best

    def train(
        self,
        train_data_factory: SampledData | Callable | Iterable,
        val_data_factory: ValidationSet | Callable | Iterable,
        input_shape: tuple[int, ...] | None = None,
    ) -> dict:
        """Every phase in turn under ``stage_dir/phase_<n>``; each starts from the last's best.

        ``input_shape`` (``(frames, 40)``, optionally with a batch dimension) is checked
        against the model's receptive field.
        """
        if input_shape is not None and tuple(input_shape)[-2:] != (self.input_frames, NUM_CHANNELS):
            raise ValueError(
                f"input_shape {tuple(input_shape)} does not fit the model: it takes "
                f"({self.input_frames}, {NUM_CHANNELS}) (its receptive field); crop the training "
                "windows to that or change the model config"
            )
        self.logger.print_header(self._header())
        results, previous = [], None
        for index in range(len(self.config.training.phases)):
            out = self.stage_dir / f"phase_{index + 1}"
            result = self.train_phase(index, train_data_factory, val_data_factory, previous, out)
            previous = Path(result["best_weights"])
            results.append(result)
        return {"phases": results, "best_weights": results[-1]["best_weights"]}

    def _header(self) -> dict:
        cfg = self.config
        return {
            "run": cfg.run_name,
            "model": f"{cfg.model.name} ({self.model.count_params():,} parameters, "
            f"{self.input_frames} frames, {self.model.dtype_policy.name})",
            "phases": ", ".join(map(_phase_summary, cfg.training.phases)),
            "batch size": cfg.training.batch_size,
            "devices": ", ".join(d.device_type for d in tf.config.list_physical_devices()),
        }
