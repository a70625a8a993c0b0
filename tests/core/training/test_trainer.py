"""Trainer: seeded batches, and a crashed phase resumes from its checkpoint to the same model."""

import numpy as np
import pytest

from mww_core.config import FullConfig
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


class _Crash(Exception):
    pass


def test_interrupted_phase_resumes_from_checkpoint(tmp_path):
    config = _config()
    data, validation = _data()

    reference = Trainer(config, tmp_path / "ref")
    reference.train_phase(0, data, validation)
    expected = reference.model.get_weights()

    def crash_at_13(what, done, total):
        if done == 13:
            raise _Crash

    with pytest.raises(_Crash):
        Trainer(config, tmp_path / "run", crash_at_13).train_phase(0, data, validation)
    seen = []
    resumed = Trainer(config, tmp_path / "run", lambda w, d, t: seen.append(d))
    resumed.train_phase(0, data, validation)
    assert seen[0] == 11  # continued after the step-10 checkpoint, not from step 0
    assert seen[-1] == 20
    for got, want in zip(resumed.model.get_weights(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
