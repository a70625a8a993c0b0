"""Parquet store: windows and streams round-trip exactly; writes are atomic."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mww_core.store import (
    Stream,
    Windows,
    iter_batches,
    iter_windows,
    open_streams,
    read_streams,
    read_windows,
    shard_metadata,
    windows_dataset,
    write_streams,
    write_windows,
)


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


def test_streams_are_written_in_chunks_and_read_one_chunk_at_a_time(tmp_path):
    rng = np.random.default_rng(0)
    streams = [
        Stream(rng.integers(0, 600, (n, 40)).astype(np.uint16), f"s{n}", kind, spans)
        for n, kind, spans in [(25, "positive", [(1, 2), (3, 4)]), (0, "ambient", []),
                               (14, "ambient", []), (3, "negative", [(5, 6)])]
    ]  # fmt: skip
    seconds = write_streams(tmp_path / "s.parquet", iter(streams), chunk_frames=7)
    assert seconds == pytest.approx(sum(s.duration_s for s in streams))
    stored = open_streams(tmp_path / "s.parquet")
    assert [len(s.row_groups) for s in stored] == [4, 1, 2, 1]  # 7 + 7 + 7 + 4 frames, ...
    for want, got in zip(streams, stored, strict=True):
        assert (got.source, got.kind, got.spans) == (want.source, want.kind, want.spans)
        assert got.frames == want.frames and got.duration_s == want.duration_s
        chunks = list(got.chunks())
        assert all(len(c) <= 7 for c in chunks)
        np.testing.assert_array_equal(np.concatenate(chunks), want.features)
    for want, got in zip(streams, read_streams(tmp_path / "s.parquet"), strict=True):
        np.testing.assert_array_equal(got.features, want.features)


def test_streams_files_of_one_row_per_stream_are_still_read(tmp_path):
    s = Stream(np.arange(400, dtype=np.uint16).reshape(10, 40), "x/y", "ambient", [])
    table = pa.table({"features": pa.array([s.features.tobytes()], pa.large_binary()),
                      "source": ["x/y"], "kind": ["ambient"],
                      "spans": pa.array([[]], pa.list_(pa.int64()))})  # fmt: skip
    pq.write_table(table, tmp_path / "old.parquet")
    (back,) = open_streams(tmp_path / "old.parquet")
    assert back.frames == 10 and back.kind == "ambient"
    np.testing.assert_array_equal(np.concatenate(list(back.chunks())), s.features)


def _windows(n, frames=40, seed=0):
    rng = np.random.default_rng(seed)
    label = (np.arange(n) % 3 == 0).astype(np.int8)
    return Windows(
        features=rng.integers(0, 700, (n, frames, 40)).astype(np.uint16),
        label=label,
        weight_class=np.where(label == 1, "positive", "negative").astype(object),
        source=np.array([f"s{i}" for i in range(n)], dtype=object),
        offset_s=np.zeros(n, np.float32),
        seed=np.arange(n, dtype=np.int64),
    )


def test_row_groups_stream_without_reading_the_whole_store(tmp_path):
    w = _windows(100)
    write_windows(tmp_path / "a.parquet", w, {"fingerprint": "abc"}, row_group_rows=16)
    rows, meta = shard_metadata(tmp_path / "a.parquet")
    assert rows == 100 and meta["fingerprint"] == "abc"
    parts = list(iter_windows([tmp_path / "a.parquet"]))
    assert [len(p) for p in parts] == [16] * 6 + [4]
    np.testing.assert_array_equal(np.concatenate([p.features for p in parts]), w.features)
    shuffled = list(iter_windows([tmp_path / "a.parquet"], shuffle_seed=1))
    assert sorted(int(p.seed[0]) for p in shuffled) == list(range(0, 100, 16))
    assert [int(p.seed[0]) for p in shuffled] != list(range(0, 100, 16))


def test_windows_dataset_yields_weighted_float_batches(tmp_path):
    from mww_core.frontend import features_to_float

    w = _windows(90)
    write_windows(tmp_path / "a.parquet", w, row_group_rows=32)
    ds = windows_dataset(
        [tmp_path / "a.parquet"], 16, {"positive": 1.0, "negative": 20.0}, input_frames=30
    )
    seen = []
    for x, y, weight in ds.as_numpy_iterator():
        assert x.shape[1:] == (30, 40) and x.dtype == np.float32
        np.testing.assert_array_equal(weight, np.where(y == 1, 1.0, 20.0))
        seen.append(x)
    x = np.concatenate(seen)
    assert len(x) == 90
    expected = features_to_float(w.features[:, -30:])
    assert sorted(map(bytes, x)) == sorted(map(bytes, expected))  # every row exactly once


def test_iter_batches_are_seeded_complete_and_match_the_dataset(tmp_path):
    from mww_core.frontend import features_to_float

    w = _windows(200)
    write_windows(tmp_path / "a.parquet", w, row_group_rows=32)
    write_windows(tmp_path / "b.parquet", _windows(50, seed=1), row_group_rows=32)
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    weights = {"positive": 1.0, "negative": 20.0}

    def run(seed):
        return list(iter_batches(paths, 16, weights, 30, seed, shuffle_groups=3))

    first, again, other = run(7), run(7), run(8)
    assert all(x.dtype == np.float32 and x.shape[1:] == (30, 40) for x, _, _ in first)
    for (x1, y1, w1), (x2, y2, w2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(w1, w2)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=False))
    x = np.concatenate([b[0] for b in first])
    y = np.concatenate([b[1] for b in first])
    weight = np.concatenate([b[2] for b in first])
    expected = features_to_float(np.concatenate([w.features, _windows(50, seed=1).features]))
    assert sorted(map(bytes, x)) == sorted(map(bytes, expected[:, -30:]))  # each row once
    np.testing.assert_array_equal(weight, np.where(y == 1, 1.0, 20.0))
    rows_mixed = [len(set(b[1].tolist())) for b in first]
    assert max(rows_mixed) == 2  # batches mix positives and negatives across row groups
    dataset = windows_dataset(paths, 16, weights, 30, seed=7, shuffle_groups=3)
    for (x1, y1, w1), (x2, y2, w2) in zip(first, dataset.as_numpy_iterator(), strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(w1, w2)


def test_write_windows_parts_is_byte_identical_to_one_table(tmp_path):
    import pyarrow.parquet as pq
    import pytest

    from mww_core.store import (
        _SHARD_WRITE_OPTIONS,
        _windows_table,
        empty_windows,
        slice_windows,
        write_windows_parts,
    )

    meta = {"fingerprint": "f", "bad_files": "{}"}
    for n in (0, 5, 48, 70):
        w = _windows(n) if n else empty_windows(40)
        reference = tmp_path / f"ref{n}.parquet"
        pq.write_table(
            _windows_table(w, meta), reference, row_group_size=16, **_SHARD_WRITE_OPTIONS
        )
        write_windows(tmp_path / f"whole{n}.parquet", w, meta, row_group_rows=16)
        parts = (slice_windows(w, a, a + 16) for a in range(0, n, 16))
        assert write_windows_parts(tmp_path / f"parts{n}.parquet", parts, 40, meta, 16) == n
        for name in (f"whole{n}", f"parts{n}"):
            assert (tmp_path / f"{name}.parquet").read_bytes() == reference.read_bytes(), name
    with pytest.raises(ValueError, match="exceeds 16"):
        write_windows_parts(tmp_path / "big.parquet", [_windows(17)], 40, meta, 16)
    assert not (tmp_path / "big.parquet").exists()


def test_iter_batches_do_not_depend_on_threads_or_readahead(tmp_path):
    paths = []
    for k in range(3):
        paths.append(tmp_path / f"{k}.parquet")
        write_windows(paths[-1], _windows(90, seed=k), row_group_rows=16)
    weights = {"positive": 2.0, "negative": 0.5}

    def run(**kw):
        return list(iter_batches(paths, 32, weights, 33, seed=3, shuffle_groups=4, **kw))

    serial = run(readahead=0, threads=1)
    assert sum(len(b[0]) for b in serial) == 270
    for kw in ({}, {"threads": 3, "readahead": 1}, {"threads": 2, "readahead": 9}):
        for a, b in zip(serial, run(**kw), strict=True):
            for x, y in zip(a, b, strict=True):
                assert x.dtype == y.dtype == np.float32
                np.testing.assert_array_equal(x, y)
    started = iter_batches(paths, 32, weights, 33, seed=3, shuffle_groups=4)
    first = next(started)
    started.close()  # a consumer that stops early: the reader threads wind down
    np.testing.assert_array_equal(first[0], serial[0][0])
