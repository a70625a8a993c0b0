"""Streamed training batches: TrainingData's rules, drawn from row groups in bounded memory."""

import numpy as np
import pytest

from mww_core import fsstore
from mww_core.config import FullConfig, PhaseConfig
from mww_core.frontend import FEATURE_SCALE
from mww_core.store import Stream, Windows, read_windows, slice_windows, write_windows
from mww_core.training.batches import TrainingData
from mww_core.training.streamed import StreamedTrainingData
from mww_core.training.trainer import Trainer, ValidationSet

ROW_GROUP = 16


def _windows(kinds: list[str], seed: int = 0) -> Windows:
    """Windows whose last two channels spell their row number in every frame."""
    n = len(kinds)
    rng = np.random.default_rng(seed)
    feats = rng.integers(1, 400, (n, 160, 40)).astype(np.uint16)
    feats[:, :, 38] = np.arange(n)[:, None] % 600
    feats[:, :, 39] = np.arange(n)[:, None] // 600
    label = np.array([k == "positive" for k in kinds], np.int8)
    feats[label == 1, -40:, :8] += 250  # a learnable "word" near the end
    return Windows(
        features=feats,
        label=label,
        weight_class=np.array(kinds, dtype=object),
        source=np.array(["s"] * n, dtype=object),
        offset_s=np.zeros(n, np.float32),
        seed=np.zeros(n, np.int64),
    )


def _row_numbers(x: np.ndarray) -> np.ndarray:
    raw = np.rint(x[:, 0, 38:] / FEATURE_SCALE).astype(int)
    return raw[:, 0] + 600 * raw[:, 1]


def _store(tmp_path, counts=(40, 300, 12, 10)):
    """Shards of positives, negatives, mined windows and focus rows; and all of them in order."""
    positive, negative, hard, focus = counts
    kinds = ["positive"] * positive + ["negative"] * negative + ["hard_negative"] * hard
    kinds += ["negative"] * focus
    windows = _windows(kinds)
    bounds = np.cumsum([0, positive, negative // 2, negative - negative // 2, hard, focus])
    paths = []
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        paths.append(tmp_path / f"shard{k}.parquet")
        write_windows(paths[-1], slice_windows(windows, a, b), row_group_rows=ROW_GROUP)
    return paths[:-1], paths[-1:], windows


PHASES = [
    PhaseConfig(steps=9, learning_rate=1e-3),
    PhaseConfig(
        steps=9,
        learning_rate=1e-3,
        hard_negative_fraction=0.125,
        spec_augment={
            "time_masks": 2,
            "time_mask_max_frames": 10,
            "freq_masks": 1,
            "freq_mask_max_bins": 4,
        },
    ),  # fmt: skip
]


@pytest.mark.parametrize("with_focus", [False, True])
def test_held_classes_give_the_batches_of_training_data(tmp_path, with_focus):
    paths, focus_paths, windows = _store(tmp_path)
    focus = np.arange(len(windows)) >= len(windows) - 10
    if with_focus:
        streamed = StreamedTrainingData(paths, 149, 5, focus_paths, 0.125, 9.0)
        in_memory = TrainingData(windows, 149, 5, focus, 0.125, 9.0)
    else:
        streamed = StreamedTrainingData(paths + focus_paths, 149, 5)
        in_memory = TrainingData(read_windows(paths + focus_paths), 149, 5)
    assert streamed.streamed == () and len(streamed) == len(windows)
    for phase in PHASES:
        for step in (0, 1, 7):
            for a, b in zip(
                in_memory.batch(1, step, 32, phase), streamed.batch(1, step, 32, phase), strict=True
            ):
                np.testing.assert_array_equal(a, b)


def test_a_streamed_class_keeps_the_batch_rules_and_is_a_function_of_the_step(tmp_path):
    paths, focus_paths, windows = _store(tmp_path)
    data = StreamedTrainingData(paths, 149, 5, focus_paths, 0.125, 9.0, pool_windows=64)
    assert data.streamed == (1,)  # only the 300 negatives exceed the pool
    phase = PhaseConfig(steps=9, learning_rate=1e-3, hard_negative_fraction=0.125)  # no masks
    batches = [data.batch(1, step, 32, phase) for step in range(30)]
    for x, y, w in batches:
        rows = _row_numbers(x)
        kinds = windows.weight_class[rows]
        assert (kinds == "positive").sum() == (y == 1).sum() == 8  # positive_fraction 0.25
        assert (w == 9.0).sum() == 4 and (rows >= len(windows) - 10)[w == 9.0].all()  # focus
        assert (w == 40.0).sum() == 4 and (kinds[w == 40.0] == "hard_negative").all()
        assert set(w[kinds == "negative"]) <= {20.0, 9.0}
    # Pools hold about pool_windows rows: 4 row groups of 16 (and 2 decoded ahead).
    pool = next(iter(data._pools.values()))
    assert pool.window == 4 and sum(len(b) for b in pool._blocks) <= 64
    assert len(pool._decoded) <= pool.window + 2
    # Each batch draws its negatives from the pool at its step: 4 row groups, slid in order.
    for step in (0, 29):
        rows = _row_numbers(batches[step][0])
        rows = rows[(windows.weight_class[rows] == "negative") & (rows < len(windows) - 10)]
        assert len(set(data.index.group_of(rows))) <= 4
    # A fresh reader (a resumed phase) draws the same batches at any step, in any order.
    again = StreamedTrainingData(paths, 149, 5, focus_paths, 0.125, 9.0, pool_windows=64)
    for step in (29, 3, 17):
        for a, b in zip(batches[step], again.batch(1, step, 32, phase), strict=True):
            np.testing.assert_array_equal(a, b)
    data.close()
    again.close()


def test_streamed_negatives_cover_the_store_and_keep_the_mined_windows_share(tmp_path):
    paths, _, windows = _store(tmp_path, counts=(40, 300, 30, 0))
    data = StreamedTrainingData(paths, 149, 3, pool_windows=48)
    phase = PHASES[0]  # mined windows drawn like any negative: 30 of 330
    seen, hard = [], 0
    for step in range(120):
        rows = _row_numbers(data.batch(0, step, 32, phase)[0])
        kinds = windows.weight_class[rows]
        seen += list(rows[kinds == "negative"])
        hard += int((kinds == "hard_negative").sum())
    negatives = np.flatnonzero(windows.weight_class == "negative")
    # Every negative row group came round (a new seeded order each pass over them).
    assert set(data.index.group_of(np.array(seen))) == set(data.index.group_of(negatives))
    assert len(set(seen)) > 0.9 * len(negatives)
    assert 0.05 < hard / (120 * 24) < 0.14  # 30/330 = 9% of the 24 negatives a batch
    data.close()


def test_bad_shards_are_refused_naming_the_file(tmp_path):
    paths, _, windows = _store(tmp_path)
    short = slice_windows(windows, 0, 4)
    write_windows(tmp_path / "short.parquet", Windows(**{**short.__dict__,
                  "features": short.features[:, :100]}))  # fmt: skip
    with pytest.raises(ValueError, match="short.parquet: windows of 100 frames"):
        StreamedTrainingData([*paths, tmp_path / "short.parquet"], 149, 0)
    odd = Windows(**{**short.__dict__, "weight_class": np.array(["noise"] * 4, dtype=object)})
    write_windows(tmp_path / "odd.parquet", odd)
    with pytest.raises(ValueError, match="odd.parquet row group 0: unknown weight_class"):
        StreamedTrainingData([*paths, tmp_path / "odd.parquet"], 149, 0)
    with pytest.raises(ValueError, match="training needs positive and negative"):
        StreamedTrainingData(paths[1:], 149, 0)
    # A shard that cannot be read once training runs is named, with what to do.
    data = StreamedTrainingData(paths, 149, 0, pool_windows=32)
    paths[1].write_bytes(b"not parquet")
    with pytest.raises(OSError, match=r"shard1.parquet: cannot read row group .* features stage"):
        data.batch(0, 0, 16, PHASES[0])
    data.close()


def test_trains_from_a_memory_store_url_like_from_local_shards(tmp_path, memory_url):
    paths, _, windows = _store(tmp_path, counts=(24, 120, 0, 0))
    urls = []
    for path in paths:
        urls.append(fsstore.join(memory_url, path.name))
        fsstore.upload_atomic(path, urls[-1])
    config = FullConfig.model_validate({"training": {
        "batch_size": 16, "eval_step_interval": 4, "checkpoint_interval": 4,
        "phases": [{"steps": 4, "learning_rate": 0.003}, {"steps": 1, "learning_rate": 1e-3}],
    }})  # fmt: skip
    rng = np.random.default_rng(1)
    streams = [Stream(rng.integers(0, 400, (1500, 40)).astype(np.uint16), "a", "ambient", []),
               Stream(windows.features[0], "p", "positive", [(0, 16000)])]  # fmt: skip
    weights = []
    for source, name in ((paths, "local"), (urls, "memory")):
        trainer = Trainer(config, tmp_path / name)
        data = StreamedTrainingData(source, trainer.input_frames, 0, pool_windows=32)
        assert data.streamed == (1,)
        trainer.train_phase(0, data, ValidationSet(streams))
        weights.append(trainer.model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
