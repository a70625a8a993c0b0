"""Trainer: one phase at a time, seeded batches, device-like validation, checkpoints."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mww_core import evaluation
from mww_core.atomic import atomic_write_text
from mww_core.config import EvaluationConfig, FullConfig, PhaseConfig
from mww_core.frontend import NUM_CHANNELS, features_to_float
from mww_core.model import build_model, load_weights, save_weights
from mww_core.model.mixednet import receptive_field, score_long
from mww_core.store import Stream, Windows

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
BEST_WEIGHTS = "best.weights.npz"


@dataclass
class TrainingData:
    """Training windows; ``batch(phase, step)`` is a pure function of its arguments and the seed.

    That makes the data order part of the checkpoint for free: a resumed phase draws exactly
    the batches an uninterrupted one would have.
    """

    windows: Windows
    input_frames: int
    seed: int

    def __post_init__(self) -> None:
        wc = self.windows.weight_class
        self.positives = np.flatnonzero(wc == "positive")
        self.negatives = np.flatnonzero(wc != "positive")
        if len(self.positives) == 0 or len(self.negatives) == 0:
            raise ValueError(
                f"training needs positive and negative windows; got {len(self.positives)} "
                f"positive and {len(self.negatives)} negative"
            )

    def batch(
        self, phase_index: int, step: int, batch_size: int, phase: PhaseConfig
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features ``[batch, frames, 40]``, labels and sample weights for one step."""
        rng = np.random.default_rng([self.seed, phase_index, step])
        n_pos = max(1, int(round(batch_size * phase.positive_fraction)))
        rows = np.concatenate(
            [
                rng.choice(self.positives, n_pos),
                rng.choice(self.negatives, batch_size - n_pos),
            ]
        )
        total = self.windows.features.shape[1]
        spare = total - self.input_frames
        # Positives keep their end (where the word ends), and so do hard negatives (where the
        # model fired); other negatives are cropped anywhere.
        keep_end = self.windows.weight_class[rows] != "negative"
        starts = np.where(keep_end, spare, rng.integers(0, spare + 1, len(rows)))
        idx = starts[:, None] + np.arange(self.input_frames)[None, :]
        x = features_to_float(self.windows.features[rows[:, None], idx])
        y = self.windows.label[rows].astype(np.float32)
        weights = phase.class_weights.model_dump()
        w = np.array([weights[c] for c in self.windows.weight_class[rows]], np.float32)
        return x, y, w


@dataclass
class ValidationSet:
    """Validation streams: joined positive clips, joined negative clips, ambient recordings."""

    streams: list[Stream]

    def of_kind(self, kind: str) -> list[Stream]:
        """Streams of one kind."""
        return [s for s in self.streams if s.kind == kind]


def score_feature_streams(
    scorer: Callable[[np.ndarray], np.ndarray], streams: list[Stream], stride: int
) -> evaluation.ScoredStreams:
    """Score stored feature streams once, for a cutoff sweep."""
    empty = np.zeros(0, np.float32)

    def joined(kind: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
        found = [s for s in streams if s.kind == kind]
        return (scorer(found[0].features), list(found[0].spans)) if found else (empty, [])

    pos_probs, pos_spans = joined("positive")
    neg_probs, neg_spans = joined("negative")
    ambient = [s for s in streams if s.kind == "ambient"]
    return evaluation.ScoredStreams(
        stride=stride,
        positive_probs=pos_probs,
        positive_spans=pos_spans,
        negative_probs=neg_probs,
        negative_spans=neg_spans,
        ambient_probs=[scorer(s.features) for s in ambient],
        ambient_duration_s=sum(s.duration_s for s in ambient),
    )


def keras_scorer(model: keras.Model, config: FullConfig) -> Callable[[np.ndarray], np.ndarray]:
    """Raw features -> one probability per ``stride`` frames, like the streaming model."""

    def score(raw: np.ndarray) -> np.ndarray:
        probs = score_long(model, config.model, features_to_float(raw))
        # The streaming model emits an output for every call, also while its buffers fill.
        count = len(raw) // config.model.stride
        return np.concatenate([np.zeros(count - len(probs), np.float32), probs])[:count]

    return score


class Trainer:
    """Trains the model phase by phase under ``stage_dir`` with resumable checkpoints."""

    def __init__(self, config: FullConfig, stage_dir: Path, progress: Progress | None = None):
        self.config = config
        self.stage_dir = stage_dir
        self.progress = progress
        self.input_frames = receptive_field(config.model)
        keras.utils.set_random_seed(config.training.seed)
        tf.config.experimental.enable_op_determinism()
        self.model = self._build_model()
        self.loss_fn = keras.losses.BinaryCrossentropy()
        self.history: list[dict] = []

    def _build_model(self) -> keras.Model:
        if self.config.performance.gpu_only and not tf.config.list_physical_devices("GPU"):
            raise RuntimeError(
                "performance.gpu_only is set but TensorFlow sees no GPU; unset it to train on CPU"
            )
        return build_model(self.config.model)

    def _compile_step(self, optimizer: keras.optimizers.Optimizer):
        model, loss_fn = self.model, self.loss_fn
        spec = [
            tf.TensorSpec((None, self.input_frames, NUM_CHANNELS), tf.float32),
            tf.TensorSpec((None,), tf.float32),
            tf.TensorSpec((None,), tf.float32),
        ]

        @tf.function(input_signature=spec)
        def train_step(x, y, w):
            with tf.GradientTape() as tape:
                p = model(x, training=True)
                loss = loss_fn(y[:, None], p, sample_weight=w)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        return train_step

    def validate(self, validation: ValidationSet) -> dict:
        """Recall and FAH on validation streams at the cutoff meeting ``training.target_fah``."""
        scored = score_feature_streams(
            keras_scorer(self.model, self.config),
            validation.streams,
            self.config.model.stride,
        )
        # Device firing defaults, not the evaluation section: tuning evaluation must not
        # invalidate training (the flow re-runs only evaluation and export then).
        rows = evaluation.sweep(scored, EvaluationConfig())
        chosen, met = evaluation.choose_cutoff(rows, self.config.training.target_fah)
        return {
            "recall": chosen["recall"] or 0.0,
            "fah": chosen["fah"],
            "cutoff": chosen["cutoff"],
            "false_accept_rate": chosen["false_accept_rate"],
            "target_met": met,
        }

    @staticmethod
    def _is_best_model(metrics: dict, best: dict | None) -> bool:
        """Highest recall at the FAH target; ties (and missed targets) go to lower FAH."""

        def key(m: dict) -> tuple:
            return (m["target_met"], m["recall"], -m["fah"])

        return best is None or key(metrics) > key(best)

    def train_phase(
        self,
        phase_index: int,
        data: TrainingData,
        validation: ValidationSet,
        init_weights: Path | None = None,
    ) -> dict:
        """Train one phase to its configured steps, resuming from the last checkpoint if any."""
        phase = self.config.training.phases[phase_index]
        cfg = self.config.training
        if init_weights is not None:
            load_weights(self.model, init_weights)
        optimizer = keras.optimizers.Adam(learning_rate=phase.learning_rate)
        optimizer.build(self.model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False)
        ckpt = tf.train.Checkpoint(model=self.model, optimizer=optimizer, step=step)
        manager = tf.train.CheckpointManager(ckpt, self.stage_dir / "checkpoints", max_to_keep=2)
        best = self._load_best_record()
        if manager.latest_checkpoint:
            ckpt.restore(manager.latest_checkpoint).expect_partial()
            log.info("resuming phase %d at step %d", phase_index + 1, int(step.numpy()))
        train_step = self._compile_step(optimizer)
        started, losses = time.time(), []
        while int(step.numpy()) < phase.steps:
            s = int(step.numpy())
            x, y, w = data.batch(phase_index, s, cfg.batch_size, phase)
            losses.append(float(train_step(x, y, w)))
            step.assign_add(1)
            s += 1
            if s % cfg.eval_step_interval == 0 or s == phase.steps:
                best = self._evaluate(validation, s, float(np.mean(losses[-50:])), best)
            if s % cfg.checkpoint_interval == 0 or s == phase.steps:
                manager.save(checkpoint_number=s)
            if self.progress:
                self.progress(f"phase {phase_index + 1}", s, phase.steps)
        return {
            "best": best,
            "steps": phase.steps,
            "seconds": time.time() - started,
            "best_weights": str(self.stage_dir / BEST_WEIGHTS),
        }

    def _evaluate(self, validation: ValidationSet, step: int, loss: float, best: dict | None):
        metrics = {"step": step, "loss": loss, **self.validate(validation)}
        self.history.append(metrics)
        log.info(
            "step %d: loss %.4f, validation recall %.3f at FAH %.2f (cutoff %.2f)",
            step, loss, metrics["recall"], metrics["fah"], metrics["cutoff"],
        )  # fmt: skip
        if self._is_best_model(metrics, best):
            save_weights(self.model, self.stage_dir / BEST_WEIGHTS)
            atomic_write_text(self.stage_dir / "best.json", json.dumps(metrics, indent=2))
            best = metrics
        return best

    def _load_best_record(self) -> dict | None:
        path = self.stage_dir / "best.json"
        return json.loads(path.read_text()) if path.exists() else None
