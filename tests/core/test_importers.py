"""microWakeWord feature sets: a RaggedMmap made by mmap_ninja imports exactly and trains."""

from __future__ import annotations

import numpy as np
import pytest
from mmap_ninja.ragged import RaggedMmap

from mww_core.config import FullConfig
from mww_core.frontend import FEATURE_SCALE
from mww_core.importers import cut_windows, find_ragged_mmaps, import_ragged_mmap
from mww_core.store import Stream, Windows, read_windows, write_windows


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


def test_a_microwakeword_feature_set_imports_and_trains_on_the_streaming_path(tmp_path):
    """microWakeWord's published negatives: <set>/{training,validation,testing}/wakeword_mmap
    RaggedMmaps of spectrograms of varied lengths (float raw x 0.0390625, or uint16 raw)."""
    from mww_core.importers import import_feature_sets
    from mww_core.training.trainer import StreamedTrainingData, Trainer, ValidationSet

    root = tmp_path / "negative_datasets"
    rng = np.random.default_rng(3)
    lengths = list(rng.integers(60, 400, 40))
    speech = _make_mmap(root / "speech" / "training" / "wakeword_mmap", lengths, seed=4)
    _make_mmap(root / "speech" / "validation" / "wakeword_mmap", [200, 300], seed=5)
    _make_mmap(root / "speech" / "testing" / "wakeword_mmap", [250], seed=6)
    party = [rng.integers(0, 660, (n, 40)).astype(np.uint16) for n in (300, 500, 170)]
    (root / "dinner_party" / "training").mkdir(parents=True)
    RaggedMmap.from_generator(
        out_dir=root / "dinner_party" / "training" / "wakeword_mmap",
        sample_generator=iter(party),
        batch_size=2,
    )
    config = FullConfig.model_validate(
        {
            "data": {"feature_sets": [
                {"path": str(root / "speech" / "training"), "hop_frames": 40},
                {"path": str(root / "dinner_party" / "training"), "weight_class": "hard_negative"},
            ]},
            "features": {"row_group_rows": 16, "shard_rows": 64},
            "training": {"batch_size": 16, "eval_step_interval": 5, "checkpoint_interval": 5,
                         "phases": [{"steps": 5, "learning_rate": 0.003},
                                    {"steps": 1, "learning_rate": 1e-4}]},
        }
    )  # fmt: skip
    shards = import_feature_sets(config, tmp_path / "store")
    negatives = read_windows([p for p, _ in shards.values()])
    # Every training spectrogram became windows cut every 40 frames (the last flush with the
    # end; shorter ones padded in front), in the mmap's order: the first one's windows first.
    assert len(negatives) > 100 and set(negatives.label) == {0}
    np.testing.assert_array_equal(negatives.features[0], cut_windows(speech[0], 160, 40)[0][0])
    assert (negatives.weight_class == "hard_negative").sum() == 3 + 5 + 2  # 300, 500, 170 at 100

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
    write_windows(tmp_path / "store" / "positive.parquet", positives)
    paths = [tmp_path / "store" / "positive.parquet", *(p for p, _ in shards.values())]
    trainer = Trainer(config, tmp_path / "train")
    data = StreamedTrainingData(paths, trainer.input_frames, 0, pool_windows=48)
    assert data.streamed == (1,)  # the imported speech negatives stream from the store
    # Imported windows are what the batches hold: each negative row is a crop of one.
    x, y, _ = data.batch(0, 0, 16, config.training.phases[0])
    crops = np.rint(x[y == 0] / FEATURE_SCALE).astype(np.uint16)
    for crop in crops:
        starts = [s for s in range(12) if (negatives.features[:, s : s + 149] == crop).all(
            axis=(1, 2)).any()]  # fmt: skip
        assert starts, "a negative in the batch is no imported window"
    streams = [
        Stream(rng.integers(0, 400, (1500, 40)).astype(np.uint16), "p", "positive", [(0, 16000)]),
        Stream(negatives.features[0], "a", "ambient", []),
    ]
    before = [v.copy() for v in trainer.model.get_weights()]
    result = trainer.train_phase(0, data, ValidationSet(streams))
    assert result["steps"] == 5 and np.isfinite(trainer.history[-1]["loss"])
    assert any(
        not np.array_equal(a, b) for a, b in zip(before, trainer.model.get_weights(), strict=True)
    )
