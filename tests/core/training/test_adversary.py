"""Domain-adversarial training: each window's engine from its file name, a classifier on the
embedding whose reversed gradient reaches the model, checkpointed and never exported."""

import numpy as np
import pytest
import tensorflow as tf

from mww_core.config import FullConfig
from mww_core.frontend import FEATURE_SCALE
from mww_core.model import load_weights
from mww_core.store import Stream, Windows, engine_codes, slice_windows, write_windows
from mww_core.training.adversary import reversed_gradient
from mww_core.training.streamed import StreamedTrainingData
from mww_core.training.trainer import Trainer, TrainingData, ValidationSet

PREFIXES = ("espeak", "piper", "pico")


def test_each_source_gets_the_engine_its_file_name_begins_with():
    sources = [
        "train/positive/piper_0001.wav",
        "train/negative/espeak_0003.wav",
        "pico_7.wav",
        "train/ambient/ambient_000.wav",  # no engine: -1
        "train/positive/piperx_1.wav",  # a prefix, not the engine's name
        "train/positive/espeak.wav",  # no '_' at all
    ]
    np.testing.assert_array_equal(engine_codes(sources, PREFIXES), [1, 0, 2, -1, -1, -1])


def test_the_reversed_gradient_is_the_gradient_turned_round_and_scaled():
    x = tf.constant([1.0, -2.0, 3.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        plain = tf.reduce_sum(x**2)
        reversed_ = tf.reduce_sum(reversed_gradient(0.25)(x) ** 2)
    np.testing.assert_allclose(reversed_.numpy(), plain.numpy())  # the same value forward
    np.testing.assert_allclose(tape.gradient(reversed_, x), -0.25 * tape.gradient(plain, x))


def _windows(n: int = 96) -> Windows:
    """Windows of three engines (and ambient ones), each engine with a loud band of its own,
    so that an embedding can tell them apart; positives carry a learnable 'word' too. Row
    numbers are spelt in the last two channels."""
    rng = np.random.default_rng(3)
    feats = rng.integers(0, 400, (n, 160, 40)).astype(np.uint16)
    engine = np.arange(n) % 4  # 0-2: the engines; 3: ambient
    label = (np.arange(n) % 8 < 4).astype(np.int8)
    for code in range(3):
        feats[engine == code, :, 10 + 8 * code : 16 + 8 * code] += 300
    feats[label == 1, -40:, :8] += 250
    feats[:, :, 38] = np.arange(n)[:, None] % 600
    feats[:, :, 39] = np.arange(n)[:, None] // 600
    names = [*PREFIXES, "ambient"]
    return Windows(
        features=feats,
        label=label,
        weight_class=np.where(label == 1, "positive", "negative").astype(object),
        source=np.array([f"train/x/{names[e]}_{i:03d}.wav" for i, e in enumerate(engine)], object),
        offset_s=np.zeros(n, np.float32),
        seed=np.zeros(n, np.int64),
    )


def test_streamed_batches_carry_the_engine_of_every_row_they_drew(tmp_path):
    windows = _windows()
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    write_windows(paths[0], slice_windows(windows, 0, 50), row_group_rows=16)
    write_windows(paths[1], slice_windows(windows, 50, len(windows)), row_group_rows=16)
    phase = _config(0.5).training.phases[0]
    want = engine_codes(windows.source, PREFIXES)
    for pool in (1000, 20):  # every class held whole, then the negatives streamed
        data = StreamedTrainingData(paths, 149, 5, pool_windows=pool, engine_prefixes=PREFIXES)
        for step in range(3):
            x, y, w, engine = data.batch(0, step, 16, phase)
            rows = np.rint(x[:, 0, 38] / FEATURE_SCALE).astype(int)
            rows += 600 * np.rint(x[:, 0, 39] / FEATURE_SCALE).astype(int)
            np.testing.assert_array_equal(engine, want[rows])
            np.testing.assert_array_equal(y, windows.label[rows])
        data.close()
    plain = StreamedTrainingData(paths, 149, 5)  # without prefixes: the three arrays as before
    assert len(plain.batch(0, 0, 16, phase)) == 3


def _config(weight: float) -> FullConfig:
    return FullConfig.model_validate(
        {
            "training": {
                "batch_size": 16,
                "eval_step_interval": 10,
                "checkpoint_interval": 5,
                "engine_prefixes": list(PREFIXES),
                "phases": [
                    {"steps": 20, "learning_rate": 0.003, "engine_adversarial": weight},
                    {"steps": 5, "learning_rate": 0.001},
                ],
            }
        }
    )


def _validation() -> ValidationSet:
    rng = np.random.default_rng(0)
    return ValidationSet(
        [
            Stream(
                rng.integers(0, 400, (1500, 40)).astype(np.uint16),
                "p",
                "positive",
                [(20000, 36000)],
            ),
            Stream(rng.integers(0, 400, (3000, 40)).astype(np.uint16), "a", "ambient", []),
        ]
    )


class _Crash(Exception):
    pass


def test_the_classifier_trains_beside_the_model_pushes_it_and_resumes_exactly(tmp_path):
    data = TrainingData(_windows(), 149, seed=7, engine_prefixes=PREFIXES)
    validation = _validation()
    trained = {}
    for weight in (0.0, 0.001, 1.0):
        seen: list[dict] = []
        trainer = Trainer(_config(weight), tmp_path / f"w{weight}", lambda *a: None)
        trainer.logger.update_progress = lambda phase, step, total, recent, seen=seen: seen.append(
            recent
        )
        summary = trainer.train_phase(0, data, validation)
        trained[weight] = (trainer, summary, seen)
    plain, adversarial = trained[0.0][0], trained[1.0][0]
    # The same seed and batches: only the classifier's reversed gradient tells the two apart.
    moved = [
        not np.allclose(a, b)
        for a, b in zip(plain.model.get_weights(), adversarial.model.get_weights(), strict=True)
    ]
    assert sum(moved) >= len(moved) // 2
    assert "engine_accuracy" not in trained[0.0][2][-1]
    # The classifier learns the engines' bands when its reversed gradient barely reaches the
    # model; at full weight the model hides them and the classifier stays far from it.
    last = {w: np.mean([r["engine_accuracy"] for r in trained[w][2][-5:]]) for w in (0.001, 1.0)}
    assert last[0.001] >= 0.9
    assert last[1.0] <= 0.75
    # The classifier is not part of the model: the saved best weights are the same variables.
    with (
        np.load(trained[0.0][1]["best_weights"]) as a,
        np.load(trained[1.0][1]["best_weights"]) as b,
    ):
        assert sorted(a.files) == sorted(b.files)
    assert adversarial.model.count_params() == plain.model.count_params()
    load_weights(Trainer(_config(0.0), tmp_path / "load").model, trained[1.0][1]["best_weights"])

    # A crash at step 13 resumes from step 10's checkpoint, classifier and all, to the same end.
    def crash(what, done, total):
        if done == 13:
            raise _Crash

    with pytest.raises(_Crash):
        Trainer(_config(1.0), tmp_path / "run", crash).train_phase(0, data, validation)
    resumed = Trainer(_config(1.0), tmp_path / "run")
    resumed.train_phase(0, data, validation)
    for got, want in zip(resumed.model.get_weights(), adversarial.model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for got, want in zip(
        resumed.adversary.head.get_weights(), adversarial.adversary.head.get_weights(), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_restart_starts_the_classifier_afresh_too(tmp_path):
    trainer = Trainer(_config(1.0), tmp_path)
    trainer._prepare_optimizer(0.003, engine_adversarial=1.0)
    fresh_head = [v.copy() for v in trainer.adversary.head.get_weights()]
    fresh_optimizer = [v.numpy() for v in trainer.optimizer.variables]
    data = TrainingData(_windows(), 149, seed=7, engine_prefixes=PREFIXES)
    for step in range(3):
        trainer.train_step(*data.batch(0, step, 16, trainer.config.training.phases[0]))
    assert not all(
        np.allclose(a, b)
        for a, b in zip(trainer.adversary.head.get_weights(), fresh_head, strict=True)
    )
    trainer._restart(0, 1, None, fresh_optimizer)
    for got, want in zip(trainer.adversary.head.get_weights(), fresh_head, strict=True):
        np.testing.assert_array_equal(got, want)
    assert int(trainer.adversary.optimizer.iterations.numpy()) == 0


def test_an_adversarial_phase_without_engines_in_its_batches_says_what_to_do(tmp_path):
    data = TrainingData(_windows(), 149, seed=7)  # made without engine_prefixes
    with pytest.raises(ValueError, match="engine_prefixes"):
        Trainer(_config(1.0), tmp_path).train_phase(0, data, _validation())


def test_telling_engines_apart_needs_two_of_them():
    with pytest.raises(ValueError, match="at least 2"):
        FullConfig.model_validate({"training": {"engine_prefixes": ["only_one"]}})
