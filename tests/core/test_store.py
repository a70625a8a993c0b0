"""Parquet store: windows and streams round-trip exactly; writes are atomic."""

import numpy as np

from mww_core.store import Stream, Windows, read_streams, read_windows, write_streams, write_windows


def test_windows_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    w = Windows(
        features=rng.integers(0, 700, (5, 160, 40)).astype(np.uint16),
        label=np.array([1, 0, 0, 1, 0], np.int8),
        weight_class=np.array(
            ["positive", "negative", "hard_negative", "positive", "negative"], dtype=object
        ),  # fmt: skip
        source=np.array(list("abcde"), dtype=object),
        offset_s=np.arange(5, dtype=np.float32),
        seed=np.arange(5, dtype=np.int64),
    )
    write_windows(tmp_path / "a.parquet", w)
    write_windows(tmp_path / "b.parquet", w)
    back = read_windows([tmp_path / "a.parquet", tmp_path / "b.parquet"])
    assert len(back) == 10
    np.testing.assert_array_equal(back.features[:5], w.features)
    assert list(back.weight_class[:5]) == list(w.weight_class)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "b.parquet"]


def test_streams_round_trip(tmp_path):
    s = Stream(np.arange(400, dtype=np.uint16).reshape(10, 40), "x/y", "positive", [(1, 5), (7, 9)])
    write_streams(tmp_path / "s.parquet", [s])
    (back,) = read_streams(tmp_path / "s.parquet")
    np.testing.assert_array_equal(back.features, s.features)
    assert back.spans == [(1, 5), (7, 9)] and back.kind == "positive"
