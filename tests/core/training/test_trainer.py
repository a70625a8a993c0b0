"""Trainer: seeded batches, and a crashed phase resumes from its checkpoint to the same model."""

import json
from pathlib import Path

import numpy as np
import pytest

from mww_core.config import FullConfig, PhaseConfig
from mww_core.store import Stream, Windows
from mww_core.training.trainer import Trainer, TrainingData, ValidationSet


def _config():
    return FullConfig.model_validate(
        {
            "training": {
                "batch_size": 16,
                "eval_step_interval": 10,
                "checkpoint_interval": 5,
                "phases": [
                    {"steps": 20, "learning_rate": 0.003},
                    {"steps": 5, "learning_rate": 0.001},
                ],
            }
        }
    )


def _data(frames=149):
    rng = np.random.default_rng(0)
    n = 64
    feats = rng.integers(0, 400, (n, 160, 40)).astype(np.uint16)
    label = (np.arange(n) % 4 == 0).astype(np.int8)
    feats[label == 1, -40:, :8] += 250  # a learnable "word" near the end
    windows = Windows(
        features=feats,
        label=label,
        weight_class=np.where(label == 1, "positive", "negative").astype(object),
        source=np.array(["s"] * n, dtype=object),
        offset_s=np.zeros(n, np.float32),
        seed=np.zeros(n, np.int64),
    )
    streams = [
        Stream(
            rng.integers(0, 400, (1500, 40)).astype(np.uint16), "p", "positive", [(20000, 36000)]
        ),
        Stream(rng.integers(0, 400, (3000, 40)).astype(np.uint16), "a", "ambient", []),
    ]
    return TrainingData(windows, frames, seed=7), ValidationSet(streams)


def test_batches_are_a_function_of_phase_and_step():
    data, _ = _data()
    phase = _config().training.phases[0]
    a = data.batch(0, 3, 16, phase)
    b = data.batch(0, 3, 16, phase)
    c = data.batch(0, 4, 16, phase)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (16, 149, 40) and a[1].sum() == 4  # 25% positives
    assert set(a[2]) == {1.0, 20.0}  # class weights


def test_hard_negatives_get_their_share_of_every_batch():
    data, _ = _data()
    kinds = data.windows.weight_class.copy()
    kinds[[1, 2]] = "hard_negative"  # two mined windows among 48 negatives
    data = TrainingData(Windows(**{**data.windows.__dict__, "weight_class": kinds}), 149, seed=7)
    plain, focused = (
        _config().training.phases[1],
        _config().training.phases[1].model_copy(update={"hard_negative_fraction": 0.25}),
    )
    hard_weight = focused.class_weights.hard_negative
    seen = [np.sum(data.batch(1, s, 16, focused)[2] == hard_weight) for s in range(20)]
    assert seen == [4] * 20  # a quarter of 16, every step
    rare = sum(np.sum(data.batch(1, s, 16, plain)[2] == hard_weight) for s in range(20))
    assert rare < 20  # drawn like any negative: about 2/48 of 12 a step
    with pytest.raises(ValueError, match="must be below 1"):
        PhaseConfig.model_validate({**focused.model_dump(), "positive_fraction": 0.8})


class _Crash(Exception):
    pass


def _crash_and_resume(config, tmp_path, crash_step: int) -> list[tuple[int, int]]:
    """Phase 1 run through, and run crashing at ``crash_step`` then again: asserts both end
    with the same weights; returns the (done, total) steps the rerun reported."""
    data, validation = _data()
    reference = Trainer(config, tmp_path / "ref")
    reference.train_phase(0, data, validation)

    def crash(what, done, total):
        if done == crash_step:
            raise _Crash

    with pytest.raises(_Crash):
        Trainer(config, tmp_path / "run", crash).train_phase(0, data, validation)
    seen = []
    resumed = Trainer(config, tmp_path / "run", lambda w, d, t: seen.append((d, t)))
    resumed.train_phase(0, data, validation)
    for got, want in zip(resumed.model.get_weights(), reference.model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    return seen


def test_interrupted_phase_resumes_from_checkpoint(tmp_path):
    seen = _crash_and_resume(_config(), tmp_path, 13)
    assert seen[0] == (11, 20)  # continued after the step-10 checkpoint, not from step 0
    assert seen[-1] == (20, 20)
    # The validation before the crash stays in the history, as in the uninterrupted run, and
    # every validated step kept its weights.
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    reference = json.loads((tmp_path / "ref" / "history.json").read_text())
    assert [h["step"] for h in history] == [h["step"] for h in reference] == [10, 20]
    assert [h["recall"] for h in history] == [h["recall"] for h in reference]
    kept = sorted(p.name for p in (tmp_path / "run" / "validated").iterdir())
    assert kept == ["step_000010.weights.npz", "step_000020.weights.npz"]


def _small_config(**performance):
    return FullConfig.model_validate(
        {
            "training": {
                "batch_size": 8,
                "eval_step_interval": 3,
                "checkpoint_interval": 3,
                "phases": [
                    {"steps": 6, "learning_rate": 0.003},
                    {"steps": 3, "learning_rate": 0.001, "class_weights": {"negative": 5.0}},
                ],
            },
            "performance": performance,
        }
    )


def test_class_weights(tmp_path):
    trainer = Trainer(_small_config(), tmp_path)
    np.testing.assert_array_equal(trainer._apply_class_weights([1, 0, 0]), [1.0, 20.0, 20.0])
    weights = trainer._apply_class_weights([0], np.array(["negative"]), phase_index=1)
    np.testing.assert_array_equal(weights, [5.0])
    np.testing.assert_array_equal(
        trainer._apply_class_weights([0], np.array(["hard_negative"])), [40.0]
    )


def test_best_model_rule():
    best = {"recall": 0.8, "fah": 0.5, "target_met": True}
    assert Trainer._is_best_model(best, None)
    assert Trainer._is_best_model({"recall": 0.9, "fah": 0.9, "target_met": True}, best)
    assert not Trainer._is_best_model({"recall": 0.99, "fah": 5.0, "target_met": False}, best)
    assert Trainer._is_best_model({"recall": 0.8, "fah": 0.2, "target_met": True}, best)
    assert Trainer._is_best_model({"recall": 0.8, "fah": 0.5, "target_met": True}, best)  # later
    worse = {"recall": 0.8, "fah": 0.5, "false_accept_rate": 0.1, "target_met": True}
    assert not Trainer._is_best_model(worse, best)
    surer = {**best, "cutoff": 0.9}
    assert Trainer._is_best_model(surer, {**best, "cutoff": 0.8})
    assert not Trainer._is_best_model({**best, "cutoff": 0.7}, {**best, "cutoff": 0.8})


def test_train_all_phases_from_factories(tmp_path):
    data, _ = _data()
    phase = _small_config().training.phases[0]

    def train_batches():  # a factory: called once per phase, yields (x, y) batches
        for step in range(100):
            x, y, _ = data.batch(0, step, 8, phase)
            yield x, y

    val = [data.batch(9, s, 8, phase)[:2] for s in range(3)]
    trainer = Trainer(_small_config(), tmp_path / "train")
    with pytest.raises(ValueError, match="receptive field"):
        trainer.train(train_batches, val, input_shape=(100, 40))
    result = trainer.train(train_batches, lambda: iter(val), input_shape=(8, 149, 40))
    assert len(result["phases"]) == 2
    assert (tmp_path / "train" / "phase_2" / "best.weights.npz").exists()
    assert [h["step"] for h in trainer.history] == [3, 6, 3]
    assert {"loss", "accuracy", "recall", "auc", "confusion_matrix"} <= set(trainer.history[0])
    events = list((tmp_path / "train" / "phase_1" / "tensorboard").glob("events.out.*"))
    assert events and events[0].stat().st_size > 0
    # The same validation from a factory and from a generator.
    assert trainer.validate(lambda: iter(val))["auc"] == trainer.validate(iter(val))["auc"]


def test_mixed_precision_and_gpu_only(tmp_path, caplog):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("checks the CPU behaviour")
    trainer = Trainer(_small_config(mixed_precision=True), tmp_path)
    assert trainer.model.dtype_policy.name == "float32"
    assert "mixed_precision needs a GPU" in caplog.text
    # The mixed path itself (float16 compute, float32 weights, loss scaling) runs anywhere.
    trainer.model = trainer._build_model("mixed_float16")
    assert trainer.model.dtype_policy.name == "mixed_float16"
    assert all(v.dtype == "float32" for v in trainer.model.trainable_variables)
    data, _ = _data()
    x, y, w = data.batch(0, 0, 8, trainer.config.training.phases[0])
    assert np.isfinite(trainer.train_step(x, y, w)["loss"])
    with pytest.raises(RuntimeError, match="no GPU; unset it"):
        Trainer(_small_config(gpu_only=True), tmp_path)


def test_inception_trains_and_validates_on_streams(tmp_path):
    config = _small_config().model_copy(
        update={"model": FullConfig.model_validate({"model": {"name": "inception"}}).model}
    )
    data, validation = _data()
    trainer = Trainer(config, tmp_path)
    before = [w.copy() for w in trainer.model.get_weights()]
    result = trainer.train_phase(0, data, validation)
    assert trainer.model.name == "inception" and result["best"]["step"] in (3, 6)
    assert {"recall", "fah", "cutoff", "confusion_matrix"} <= set(trainer.history[-1])
    assert any(
        not np.array_equal(a, b) for a, b in zip(before, trainer.model.get_weights(), strict=True)
    )


def test_a_phase_keeps_its_starting_weights_unless_validation_beats_them(tmp_path):
    config = _small_config()
    data, validation = _data()
    first = Trainer(config, tmp_path / "p1")
    result = first.train_phase(0, data, validation)
    start = tmp_path / "p1" / "best.weights.npz"

    unbeatable = {**result["best"], "recall": 2.0, "step": 6}  # no validation can reach it
    kept = Trainer(config, tmp_path / "p2").train_phase(
        1, data, validation, start, init_best=unbeatable
    )
    assert kept["best"]["carried_over"] and kept["best"]["recall"] == 2.0
    assert (tmp_path / "p2/best.weights.npz").read_bytes() == start.read_bytes()
    # What phase 2 learned is kept beside them, for the report's phase 1 vs phase 2 comparison.
    own = Path(kept["own_best_weights"])
    assert own.name == "own_best.weights.npz" and own.read_bytes() != start.read_bytes()

    beatable = {**result["best"], "recall": -1.0, "step": 6}
    tuned = Trainer(config, tmp_path / "p3").train_phase(
        1, data, validation, start, init_best=beatable
    )
    assert not tuned["best"].get("carried_over") and tuned["best"]["step"] == 3
    assert (tmp_path / "p3/best.weights.npz").read_bytes() != start.read_bytes()
    assert tuned["own_best_weights"] == tuned["best_weights"]


def test_a_phase_that_keeps_its_last_weights_ends_with_its_final_validation(tmp_path):
    config = _small_config()
    phases = [p.model_copy(update={"keep": "last"}) for p in config.training.phases]
    last = config.model_copy(
        update={"training": config.training.model_copy(update={"phases": phases})}
    )
    data, validation = _data()
    result = Trainer(last, tmp_path / "p1").train_phase(0, data, validation)
    assert result["best"]["step"] == 6
    final = tmp_path / "p1" / "validated" / "step_000006.weights.npz"
    assert (tmp_path / "p1" / "best.weights.npz").read_bytes() == final.read_bytes()
    # Even weights no validation can beat give way: the phase ends with what it trained.
    start = tmp_path / "p1" / "best.weights.npz"
    unbeatable = {**result["best"], "recall": 2.0, "step": 6}
    tuned = Trainer(last, tmp_path / "p2").train_phase(
        1, data, validation, start, init_best=unbeatable
    )
    assert not tuned["best"].get("carried_over") and tuned["best"]["step"] == 3
    assert (tmp_path / "p2/best.weights.npz").read_bytes() != start.read_bytes()


def test_a_carry_over_margin_lets_a_phase_replace_slightly_better_starting_weights(tmp_path):
    config = _small_config()
    data, validation = _data()
    result = Trainer(config, tmp_path / "p1").train_phase(0, data, validation)
    start = tmp_path / "p1" / "best.weights.npz"
    unbeatable = {**result["best"], "recall": 2.0}
    Trainer(config, tmp_path / "p2").train_phase(1, data, validation, start, init_best=unbeatable)
    learned = json.loads((tmp_path / "p2" / "own_best.json").read_text())
    assert learned["target_met"]
    ahead = {**result["best"], "recall": learned["recall"] + 0.04, "fah": 0.0, "target_met": True}

    def phase_2(margin: float, folder: str) -> dict:
        phases = list(config.training.phases)
        phases[1] = phases[1].model_copy(update={"carry_over_margin": margin})
        training = config.training.model_copy(update={"phases": phases})
        trainer = Trainer(config.model_copy(update={"training": training}), tmp_path / folder)
        return trainer.train_phase(1, data, validation, start, init_best=ahead)["best"]

    assert phase_2(0.03, "strict")["carried_over"]  # 0.04 behind: more than the margin
    replaced = phase_2(0.05, "margin")
    assert not replaced.get("carried_over")
    assert replaced["recall"] >= ahead["recall"] - 0.05 and replaced["target_met"]
    assert (tmp_path / "margin/best.weights.npz").read_bytes() != start.read_bytes()
    # The rule itself: a validation missing the targets never wins by the margin.
    missed = {"recall": ahead["recall"], "fah": 9.0, "target_met": False}
    assert not Trainer._is_best_model(missed, {**ahead, "carried_over": True}, 0.05)
    assert Trainer._is_best_model(
        {"recall": 0.76, "fah": 1.0, "target_met": True}, {**ahead, "recall": 0.8,
        "carried_over": True}, 0.05)  # fmt: skip
    assert not Trainer._is_best_model(
        {"recall": 0.76, "fah": 1.0, "target_met": True}, {**ahead, "recall": 0.8,
        "carried_over": True}, 0.0)  # fmt: skip


def _restarting(config, restarts: int, phase_index: int = 0):
    phases = list(config.training.phases)
    phases[phase_index] = phases[phase_index].model_copy(update={"restarts": restarts})
    training = config.training.model_copy(update={"phases": phases})
    return config.model_copy(update={"training": training})


def test_restarts_train_the_phase_again_and_keep_the_best_validation_of_all(tmp_path):
    config = _restarting(_small_config(), 2)
    data, validation = _data()
    once = Trainer(_small_config(), tmp_path / "once")
    once.train_phase(0, data, validation)
    twice = Trainer(config, tmp_path / "twice")
    result = twice.train_phase(0, data, validation)
    assert [(h["step"], h.get("restart")) for h in twice.history] == [
        (3, 1), (6, 1), (9, 2), (12, 2)
    ]  # fmt: skip
    # The first start is the single-start phase; the second starts from other weights.
    for a, b in zip(once.history, twice.history[:2], strict=True):
        assert (a["loss"], a["recall"], a["fah"]) == (b["loss"], b["recall"], b["fah"])
    assert twice.history[2]["loss"] != twice.history[0]["loss"]
    # The best over both starts, by the best-step rule, is the one kept.
    best = None
    for record in twice.history:
        best = record if Trainer._is_best_model(record, best) else best
    assert result["best"]["step"] == best["step"] and result["steps"] == 12
    assert "6 x 2 starts @ 0.003" in twice._header()["phases"]
    # A later phase restarts from the weights it was given, not from new ones.
    start = tmp_path / "twice" / "best.weights.npz"
    tuned = Trainer(_restarting(config, 2, 1), tmp_path / "p2")
    tuned.train_phase(1, data, validation, start)
    assert [h["step"] for h in tuned.history] == [3, 6]
    again = Trainer(_restarting(config, 1, 1), tmp_path / "p2_once")
    again.train_phase(1, data, validation, start)
    assert again.history[0]["loss"] == tuned.history[0]["loss"]
    assert tuned.history[1]["loss"] != tuned.history[0]["loss"]  # other batches, same start


def test_a_phase_interrupted_between_restarts_resumes_to_the_same_model(tmp_path):
    seen = _crash_and_resume(_restarting(_small_config(), 2), tmp_path, 7)
    assert seen[0] == (7, 12)  # from the checkpoint at the end of the first start
    assert (
        json.loads((tmp_path / "run/best.json").read_text())["step"]
        == json.loads((tmp_path / "ref/best.json").read_text())["step"]
    )


def test_frozen_batch_normalization_keeps_its_statistics():
    import keras

    from mww_core.config import load_config
    from mww_core.model import build_model
    from mww_core.training.trainer import freeze_batch_normalization

    model = build_model(load_config("demo").model)
    norms = [layer for layer in model._flatten_layers() if isinstance(
        layer, keras.layers.BatchNormalization)]  # fmt: skip
    before = [n.moving_mean.numpy().copy() for n in norms]
    trainable = len(model.trainable_variables)
    assert freeze_batch_normalization(model) == len(norms) > 0
    assert len(model.trainable_variables) == trainable - 2 * len(norms)  # gamma and beta
    x = np.random.default_rng(0).uniform(0, 26, (8, 149, 40)).astype(np.float32)
    model(x, training=True)  # a training-mode call would update unfrozen statistics
    for n, mean in zip(norms, before, strict=True):
        np.testing.assert_array_equal(n.moving_mean.numpy(), mean)


def test_validation_reads_stored_streams_chunk_by_chunk_like_streams_in_memory(tmp_path):
    from mww_core.store import open_streams, write_streams
    from mww_core.training.trainer import keras_scorer, score_feature_streams

    _, validation = _data()
    write_streams(tmp_path / "v.parquet", validation.streams, chunk_frames=700)
    stored = open_streams(tmp_path / "v.parquet")
    assert [len(s.row_groups) for s in stored] == [3, 5]
    trainer = Trainer(_small_config(), tmp_path)
    scorer = keras_scorer(trainer.model, trainer.config)
    whole = score_feature_streams(scorer, validation.streams, 3)
    chunked = score_feature_streams(scorer, stored, 3)
    for a, b in zip([whole.positive_probs, *whole.ambient_probs],
                    [chunked.positive_probs, *chunked.ambient_probs], strict=True):  # fmt: skip
        assert a.shape == b.shape and np.std(a) > 0
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert whole.ambient_duration_s == chunked.ambient_duration_s
    assert trainer.validate(ValidationSet(stored)) == trainer.validate(validation)


def test_validation_counts_slips_apart_from_near_misses_and_fah(tmp_path):
    from mww_core.evaluation import Slips
    from mww_core.training.trainer import keras_scorer, score_feature_streams

    _, validation = _data()
    rng = np.random.default_rng(5)
    spans = [(20000, 36000), (40000, 56000)]
    negative = Stream(rng.integers(0, 400, (1500, 40)).astype(np.uint16), "n", "negative", spans)
    streams = [*validation.streams, negative]
    slips = Slips(np.array([True, False]), {"a": [(0, 480000)]})  # the whole ambient stream
    trainer = Trainer(_small_config(), tmp_path)
    scored = score_feature_streams(keras_scorer(trainer.model, trainer.config), streams, 3, slips)
    assert scored.negative_slips.tolist() == [True, False]
    assert scored.ambient_slips == [[(0, 480000)]]
    plain = trainer.validate(ValidationSet(streams))
    marked = trainer.validate(ValidationSet(streams, slips))
    assert sum(plain["confusion_matrix"][0]) == 2  # [[tn, fp], [fn, tp]]: both negatives
    assert sum(marked["confusion_matrix"][0]) == 1  # the slip is counted apart
    assert marked["fah"] == 0.0  # every ambient activation falls on the slip's span


def _averaging_config():
    raw = _config().model_dump()
    raw["training"]["phases"][0]["weight_average"] = 0.9
    return FullConfig.model_validate(raw)


def test_weight_average_is_validated_and_saved_and_resumes_exactly(tmp_path):
    from mww_core.model import load_weights

    config = _averaging_config()
    data, validation = _data()
    reference = Trainer(config, tmp_path / "ref")
    summary = reference.train_phase(0, data, validation)
    raw = reference.model.get_weights()
    average = [v.numpy() for v in reference.optimizer._model_variables_moving_average]
    # The model trains on its raw weights; validation saw the average, and it is what is saved.
    assert summary["best"]["step"] == 20  # the better of steps 10 and 20 on this data
    best = Trainer(config, tmp_path / "best")
    load_weights(best.model, summary["best_weights"])
    for got, want in zip(best.model.trainable_variables, average, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)  # the step-20 average
    trained = [v.numpy() for v in reference.model.trainable_variables]
    moved = [not np.allclose(a, r) for a, r in zip(average, trained, strict=True)]
    assert sum(moved) >= len(average) // 2  # ... not the raw weights the model trains on

    def crash_at_13(what, done, total):
        if done == 13:
            raise _Crash

    with pytest.raises(_Crash):
        Trainer(config, tmp_path / "run", crash_at_13).train_phase(0, data, validation)
    resumed = Trainer(config, tmp_path / "run")
    again = resumed.train_phase(0, data, validation)
    for got, want in zip(resumed.model.get_weights(), raw, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert again["best"]["step"] == summary["best"]["step"]
    # The average itself was checkpointed: the resumed phase saves the same averaged weights.
    with np.load(summary["best_weights"]) as want, np.load(again["best_weights"]) as got:
        assert sorted(got.files) == sorted(want.files)
        for name in want.files:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)


def test_weight_decay_shrinks_the_kernels_and_leaves_biases_and_norms_alone(tmp_path):
    data, validation = _data()
    norms = {}
    for decay in (0.0, 5.0):
        raw = _config().model_dump()
        for phase in raw["training"]["phases"]:
            phase["weight_decay"] = decay
        trainer = Trainer(FullConfig.model_validate(raw), tmp_path / f"decay_{decay}")
        trainer.train_phase(0, data, validation)
        norms[decay] = {
            v.path: float(np.linalg.norm(v.numpy())) for v in trainer.model.trainable_variables
        }
    kernels = [p for p in norms[0.0] if p.endswith("kernel")]
    assert all(norms[5.0][p] < norms[0.0][p] for p in kernels)  # every kernel pulled to 0
    # Decoupled decay acts on the kernels only: the rest trains on as it did.
    trainer = Trainer(_config(), tmp_path / "step")
    trainer._prepare_optimizer(0.01, weight_decay=2.0)
    before = [v.numpy().copy() for v in trainer.model.trainable_variables]
    zeros = [np.zeros(v.shape, np.float32) for v in trainer.model.trainable_variables]
    trainer.optimizer.apply(zeros, trainer.model.trainable_variables)
    for v, old in zip(trainer.model.trainable_variables, before, strict=True):
        want = old * (1 - 0.01 * 2.0) if v.path.endswith("kernel") else old
        np.testing.assert_allclose(v.numpy(), want, rtol=1e-6, atol=1e-7)


def test_cosine_decay_lowers_the_learning_rate_to_its_share_and_resumes_exactly(tmp_path):
    raw = _config().model_dump()
    raw["training"]["phases"][0]["cosine_decay_to"] = 0.1
    config = FullConfig.model_validate(raw)
    data, validation = _data()
    rates = []
    trainer = Trainer(
        config, tmp_path / "rates", lambda w, d, t: rates.append(trainer._learning_rate())
    )
    trainer.train_phase(0, data, validation)
    # The rate of the step after each one done: half a cosine from 0.003 down to 0.0003.
    want = [0.003 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * done / 20))) for done in range(1, 21)]
    np.testing.assert_allclose(rates, want, rtol=1e-5)
    assert rates[-1] == pytest.approx(0.0003)
    # Adam's step count drives it and is checkpointed: a crashed phase resumes on the curve.
    seen = _crash_and_resume(config, tmp_path, 13)
    assert seen[0] == (11, 20)


def test_focal_gamma_trains_on_the_focal_loss_which_counts_confident_windows_less(tmp_path):
    data, _ = _data()
    x, y, w = data.batch(0, 0, 16, _config().training.phases[0])
    losses = {}
    for gamma in (0.0, 2.0):
        raw = _config().model_dump()
        raw["training"]["phases"][0]["focal_gamma"] = gamma
        trainer = Trainer(FullConfig.model_validate(raw), tmp_path / f"gamma_{gamma}")
        phase = trainer.config.training.phases[0]
        trainer._prepare_optimizer(phase.learning_rate, focal_gamma=phase.focal_gamma)
        p = trainer.model(x, training=True).numpy()[:, 0].astype(np.float64)  # batch statistics
        right = np.where(y == 1, p, 1 - p)  # the probability given to the true label
        want = -((1 - right) ** gamma) * np.log(np.clip(right, 1e-7, 1))
        # The step's loss is on the batch before its update: Keras' weighted mean over rows.
        losses[gamma] = trainer.train_step(x, y, w)["loss"]
        assert losses[gamma] == pytest.approx(float(np.sum(want * w) / len(w)), rel=0.05)
    assert losses[2.0] < 0.5 * losses[0.0]  # every window counts less, the confident ones most
    with pytest.raises(ValueError, match="focal_gamma"):
        PhaseConfig.model_validate({"steps": 1, "learning_rate": 0.1, "focal_gamma": -1})
