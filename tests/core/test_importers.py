"""microWakeWord feature sets: a RaggedMmap made by mmap_ninja imports exactly and trains."""

from __future__ import annotations

import numpy as np
import pytest
from mmap_ninja.ragged import RaggedMmap

from mww_core.config import FullConfig
from mww_core.frontend import FEATURE_SCALE
from mww_core.importers import cut_windows, find_ragged_mmaps, import_ragged_mmap
from mww_core.store import Stream, Windows, read_windows


def _make_mmap(folder, lengths, seed=0):
    """Spectrograms the way microWakeWord stores them: float32 raw x 0.0390625."""
    rng = np.random.default_rng(seed)
    raws = [rng.integers(0, 660, (n, 40)).astype(np.uint16) for n in lengths]
    folder.parent.mkdir(parents=True, exist_ok=True)
    RaggedMmap.from_generator(
        out_dir=folder,
        sample_generator=(r.astype(np.float32) * np.float32(FEATURE_SCALE) for r in raws),
        batch_size=2,
    )
    return raws


def test_import_converts_to_raw_units_and_cuts_windows(tmp_path):
    mmap = tmp_path / "speech" / "training" / "wakeword_mmap"
    raws = _make_mmap(mmap, [250, 160, 90])
    assert find_ragged_mmaps(tmp_path / "speech") == [mmap]
    shards = import_ragged_mmap(tmp_path / "speech", tmp_path / "store", 160, hop_frames=50)
    w = read_windows([p for p, _ in shards.values()])
    # 250 frames -> starts 0, 50, 90; 160 -> 0; 90 -> one window padded at the front.
    assert len(w) == 5 and set(w.label) == {0} and set(w.weight_class) == {"negative"}
    np.testing.assert_array_equal(w.features[0], raws[0][:160])
    np.testing.assert_array_equal(w.features[2], raws[0][90:250])
    np.testing.assert_array_equal(w.features[4, 70:], raws[2])
    assert not w.features[4, :70].any()
    assert w.source[3].endswith("wakeword_mmap#1") and w.offset_s[1] == pytest.approx(0.5)
    again = import_ragged_mmap(tmp_path / "speech", tmp_path / "store", 160, hop_frames=50)
    assert again == shards  # reused, not rewritten


def test_cut_windows_keeps_the_end():
    raw = np.arange(230 * 40, dtype=np.uint16).reshape(230, 40)
    windows, starts = cut_windows(raw, 100, 60)
    assert starts == [0, 60, 120, 130]
    np.testing.assert_array_equal(windows[-1], raw[-100:])


def test_missing_or_wrong_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        find_ragged_mmaps(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no RaggedMmap"):
        find_ragged_mmaps(tmp_path / "empty")


def test_trains_on_an_imported_feature_set(tmp_path):
    from mww_core.training.trainer import Trainer, TrainingData, ValidationSet

    _make_mmap(tmp_path / "set" / "negatives", [200] * 12 + [120] * 4, seed=1)
    shards = import_ragged_mmap(tmp_path / "set", tmp_path / "store", 160, hop_frames=40)
    negatives = read_windows([p for p, _ in shards.values()])
    rng = np.random.default_rng(2)
    feats = rng.integers(0, 400, (16, 160, 40)).astype(np.uint16)
    feats[:, -40:, :8] += 250
    positives = Windows(
        features=feats,
        label=np.ones(16, np.int8),
        weight_class=np.full(16, "positive", dtype=object),
        source=np.full(16, "p", dtype=object),
        offset_s=np.zeros(16, np.float32),
        seed=np.zeros(16, np.int64),
    )
    config = FullConfig.model_validate(
        {
            "training": {
                "batch_size": 16,
                "eval_step_interval": 6,
                "checkpoint_interval": 6,
                "phases": [
                    {"steps": 6, "learning_rate": 0.003},
                    {"steps": 1, "learning_rate": 1e-4},
                ],
            }
        }
    )
    trainer = Trainer(config, tmp_path / "train")
    data = TrainingData(Windows.concat([positives, negatives], 160), trainer.input_frames, 0)
    assert len(data.negatives) == len(negatives) > 16
    streams = [
        Stream(rng.integers(0, 400, (1500, 40)).astype(np.uint16), "p", "positive", [(0, 16000)]),
        Stream(negatives.features[0], "a", "ambient", []),
    ]
    before = [v.copy() for v in trainer.model.get_weights()]
    result = trainer.train_phase(0, data, ValidationSet(streams))
    assert result["steps"] == 6 and (tmp_path / "train" / "best.weights.npz").exists()
    assert np.isfinite(trainer.history[-1]["loss"])
    assert any(
        not np.array_equal(a, b) for a, b in zip(before, trainer.model.get_weights(), strict=True)
    )
