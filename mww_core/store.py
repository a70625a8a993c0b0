"""The Parquet feature store: fixed-size training windows and long feature streams."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mww_core.atomic import atomic_path
from mww_core.frontend import FEATURE_SCALE, MAX_FEATURE_VALUE, NUM_CHANNELS

WEIGHT_CLASSES = ("positive", "negative", "hard_negative")


@dataclass
class Windows:
    """Fixed-length examples: raw uint16 features ``[n, frames, 40]`` and per-row provenance."""

    features: np.ndarray
    label: np.ndarray  # int8, 1 = wake word
    weight_class: np.ndarray  # str, one of WEIGHT_CLASSES
    source: np.ndarray  # str, the audio file (relative to the data folder)
    offset_s: np.ndarray  # float32, where the window starts in the source
    seed: np.ndarray  # int64, the augmentation seed (-1 = not augmented)
    score: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.features)

    @staticmethod
    def concat(parts: list[Windows], frames: int) -> Windows:
        """One Windows holding every row of ``parts`` (an empty one if there are none)."""
        if not parts:
            return empty_windows(frames)
        return Windows(
            features=np.concatenate([p.features for p in parts]),
            label=np.concatenate([p.label for p in parts]),
            weight_class=np.concatenate([p.weight_class for p in parts]),
            source=np.concatenate([p.source for p in parts]),
            offset_s=np.concatenate([p.offset_s for p in parts]),
            seed=np.concatenate([p.seed for p in parts]),
            score=np.concatenate([scores_or_nan(p) for p in parts]),
        )


def scores_or_nan(w: Windows) -> np.ndarray:
    """The rows' mining scores, NaN for rows that have none (windows not made by mining)."""
    return w.score if len(w.score) == len(w) else np.full(len(w), np.nan, np.float32)


def empty_windows(frames: int) -> Windows:
    """A Windows with no rows."""
    return Windows(
        features=np.zeros((0, frames, NUM_CHANNELS), np.uint16),
        label=np.zeros(0, np.int8),
        weight_class=np.zeros(0, dtype=object),
        source=np.zeros(0, dtype=object),
        offset_s=np.zeros(0, np.float32),
        seed=np.zeros(0, np.int64),
    )


def _windows_table(windows: Windows, metadata: dict[str, str] | None) -> pa.Table:
    """The Arrow table of a shard's rows; spectrograms as fixed-size binary (zero-copy reads)."""
    n, frames, channels = windows.features.shape
    width = frames * channels * 2
    blob = np.ascontiguousarray(windows.features, dtype="<u2").reshape(-1)  # no copy if possible
    return pa.table(
        {
            "features": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(width), n, [None, pa.py_buffer(blob)]
            ),
            "label": pa.array(windows.label, pa.int8()),
            "weight_class": pa.array(windows.weight_class.astype(str), pa.string()),
            "source": pa.array(windows.source.astype(str), pa.string()),
            "offset_s": pa.array(windows.offset_s, pa.float32()),
            "seed": pa.array(windows.seed, pa.int64()),
            "score": pa.array(scores_or_nan(windows), pa.float32()),
        },
        metadata={**(metadata or {}), "frames": str(frames), "channels": str(channels)},
    )


# No dictionary for spectrograms: every row is unique, so it would only cost time.
_SHARD_WRITE_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": ["label", "weight_class", "source"],
}


def slice_windows(windows: Windows, start: int, stop: int) -> Windows:
    """Rows ``[start, stop)`` of ``windows`` (views, no copy)."""
    return Windows(
        features=windows.features[start:stop],
        label=windows.label[start:stop],
        weight_class=windows.weight_class[start:stop],
        source=windows.source[start:stop],
        offset_s=windows.offset_s[start:stop],
        seed=windows.seed[start:stop],
        score=scores_or_nan(windows)[start:stop],
    )


def write_windows(
    path: Path,
    windows: Windows,
    metadata: dict[str, str] | None = None,
    row_group_rows: int = 512,
) -> None:
    """Write one shard atomically; spectrograms as fixed-size binary (zero-copy reads).

    Args:
        path: The shard file.
        windows: Its rows.
        metadata: Extra string key/values stored in the Parquet schema (see ``shard_metadata``).
        row_group_rows: Rows per row group, the unit that streaming readers load at a time.
    """
    starts = range(0, len(windows), row_group_rows)
    parts = (slice_windows(windows, a, a + row_group_rows) for a in starts)
    write_windows_parts(path, parts, windows.features.shape[1], metadata, row_group_rows)


def write_windows_parts(
    path: Path,
    parts: Iterable[Windows],
    frames: int,
    metadata: dict[str, str] | None = None,
    row_group_rows: int = 512,
) -> int:
    """Write a shard atomically from its rows in consecutive parts, holding one part at a time.

    The file is byte for byte what ``write_windows`` writes for the parts joined when every
    part but the last has exactly ``row_group_rows`` rows (each part becomes one row group).

    Args:
        path: The shard file.
        parts: Its rows, in order, at most ``row_group_rows`` per part.
        frames: Frames per window (the width of the features column).
        metadata: Extra string key/values stored in the Parquet schema (see ``shard_metadata``).
        row_group_rows: Rows per row group.

    Returns:
        The number of rows written.

    Raises:
        ValueError: A part holds more than ``row_group_rows`` rows.
    """
    empty = _windows_table(empty_windows(frames), metadata)
    rows = 0
    with (
        atomic_path(path) as tmp,
        pq.ParquetWriter(tmp, empty.schema, **_SHARD_WRITE_OPTIONS) as out,
    ):
        for part in parts:
            if len(part) > row_group_rows:
                raise ValueError(f"{path}: a part of {len(part)} rows exceeds {row_group_rows}")
            if len(part):
                out.write_table(_windows_table(part, metadata), row_group_size=row_group_rows)
                rows += len(part)
        if not rows:  # like pq.write_table: an empty table still gets its (empty) row group
            out.write_table(empty)
    return rows


def open_parquet(source: Path | str) -> pq.ParquetFile:
    """A Parquet file from a local path or an fsspec URL (file://, memory://, s3://...)."""
    from mww_core.fsstore import parquet_source

    return pq.ParquetFile(parquet_source(source))


def shard_metadata(path: Path) -> tuple[int, dict[str, str]]:
    """Rows and schema metadata of a shard, read from its footer only."""
    meta = open_parquet(path).metadata
    raw = meta.metadata or {}
    return meta.num_rows, {k.decode(): v.decode() for k, v in raw.items()}


def _features_view(column: pa.ChunkedArray | pa.Array, frames: int) -> np.ndarray:
    """``[rows, frames, 40]`` uint16 view of a fixed-size-binary column (a copy only if chunked)."""
    col = column
    if isinstance(column, pa.ChunkedArray):  # combine_chunks copies, even a single chunk
        col = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    row = frames * NUM_CHANNELS
    data = np.frombuffer(col.buffers()[1], "<u2", count=len(col) * row, offset=col.offset * row * 2)
    return data.reshape(len(col), frames, NUM_CHANNELS)


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False).astype(object, copy=False)


def _table_to_windows(table: pa.Table, frames: int) -> Windows:
    return Windows(
        features=_features_view(table.column("features"), frames),
        label=table.column("label").to_numpy(),
        weight_class=_strings(table.column("weight_class")),
        source=_strings(table.column("source")),
        offset_s=table.column("offset_s").to_numpy(),
        seed=table.column("seed").to_numpy(),
        score=table.column("score").to_numpy(),
    )


def read_windows(paths: list[Path]) -> Windows:
    """Read shards back into one Windows (features without a per-row copy)."""
    parts = []
    frames = None
    for path in paths:
        table = open_parquet(path).read()
        frames = int((table.schema.metadata or {})[b"frames"])
        parts.append(_table_to_windows(table, frames))
    return Windows.concat(parts, frames or 0)


def _frames_of(path: Path) -> int:
    return int((open_parquet(path).schema_arrow.metadata or {})[b"frames"])


def _kind_codes(column: pa.ChunkedArray, where: str) -> np.ndarray:
    """Each row's weight class as an index into ``WEIGHT_CLASSES`` (int8)."""
    import pyarrow.compute as pc

    codes = pc.index_in(column, value_set=pa.array(WEIGHT_CLASSES))
    if codes.null_count:
        bad = sorted(set(pc.filter(column, pc.is_null(codes)).to_pylist()), key=str)
        raise ValueError(
            f"{where}: unknown weight_class {bad}; every row must be one of "
            f"{', '.join(WEIGHT_CLASSES)} (rewrite the shard with the features stage or importer)"
        )
    return codes.to_numpy(zero_copy_only=False).astype(np.int8)


def engine_codes(sources, prefixes: tuple[str, ...] | list[str]) -> np.ndarray:
    """Each source's engine as an index into ``prefixes`` (int8; -1: none of them).

    A source's engine is its file name's prefix before the first ``_``
    (``train/positive/piper_0001.wav`` is ``piper``'s).
    """
    table = {prefix: code for code, prefix in enumerate(prefixes)}
    names = (str(source).rsplit("/", 1)[-1].split("_", 1)[0] for source in sources)
    return np.fromiter((table.get(name, -1) for name in names), np.int8, len(sources))


@dataclass
class ShardIndex:
    """Where every row of some shards lives and what it is, read from two small columns.

    Rows are numbered across the shards in order, as ``read_windows`` returns them. Per row it
    keeps the label and the weight class (two bytes); per row group its shard, number and first
    row. Feature rows are then read a row group at a time (``read_group``, ``read_rows``).
    """

    paths: list
    frames: int
    label: np.ndarray  # int8 per row
    kind: np.ndarray  # int8 per row: index into WEIGHT_CLASSES
    group_file: np.ndarray  # int32 per row group: index into paths
    group_number: np.ndarray  # int32 per row group: its number within the shard
    group_start: np.ndarray  # int64, one more than row groups: first row of each, then the total
    engine: np.ndarray | None = None  # int8 per row, by ``engine_codes``, when asked for

    @classmethod
    def build(cls, paths: list, engine_prefixes: tuple[str, ...] | list[str] = ()) -> ShardIndex:
        """Read the label and weight class columns of every shard, one row group at a time.

        With ``engine_prefixes`` it reads the source column too, for each row's engine.

        Raises:
            ValueError: No shard, shards with different window lengths, or an unknown class.
        """
        if not paths:
            raise ValueError("the training store is empty: no shard files were given")
        labels, kinds, engines, files, numbers, sizes = [], [], [], [], [], []
        columns = ["label", "weight_class"] + (["source"] if engine_prefixes else [])
        frames = None
        for k, path in enumerate(paths):
            shard = open_parquet(path)
            width = int((shard.schema_arrow.metadata or {}).get(b"frames", b"0"))
            if frames is None:
                frames = width
            elif width != frames:
                raise ValueError(
                    f"{path}: windows of {width} frames, but {paths[0]} has {frames}; a training "
                    "store needs one window length (features.window_frames): rebuild or drop it"
                )
            for group in range(shard.metadata.num_row_groups):
                table = shard.read_row_group(group, columns=columns)
                if engine_prefixes:
                    sources = table.column("source").to_pylist()
                    engines.append(engine_codes(sources, engine_prefixes))
                labels.append(table.column("label").to_numpy().astype(np.int8, copy=False))
                kinds.append(_kind_codes(table.column("weight_class"), f"{path} row group {group}"))
                files.append(k)
                numbers.append(group)
                sizes.append(table.num_rows)
        return cls(
            paths=list(paths),
            frames=frames or 0,
            label=np.concatenate(labels) if labels else np.zeros(0, np.int8),
            kind=np.concatenate(kinds) if kinds else np.zeros(0, np.int8),
            group_file=np.asarray(files, np.int32),
            group_number=np.asarray(numbers, np.int32),
            group_start=np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]),
            engine=(
                (np.concatenate(engines) if engines else np.zeros(0, np.int8))
                if engine_prefixes
                else None
            ),
        )

    def __len__(self) -> int:
        return len(self.label)

    @property
    def groups(self) -> int:
        """Number of row groups."""
        return len(self.group_file)

    def group_of(self, rows: np.ndarray) -> np.ndarray:
        """The row group of each row."""
        return np.searchsorted(self.group_start, rows, side="right") - 1

    def read_group(self, group: int) -> np.ndarray:
        """Features ``[rows, frames, 40]`` (uint16) of one row group; safe to call from threads."""
        path, number = self.paths[self.group_file[group]], int(self.group_number[group])
        try:
            # A ParquetFile is not safe to share between threads: open one per read.
            table = open_parquet(path).read_row_group(
                number, columns=["features"], use_threads=False
            )
        except (OSError, pa.ArrowException) as exc:
            raise OSError(
                f"{path}: cannot read row group {number} ({exc}); check that the store is "
                "reachable and the shard intact (run the features stage again to rewrite it)"
            ) from exc
        return _features_view(table.column("features"), self.frames)

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        """Features of ``rows`` (in that order), reading each row group they fall in once."""
        rows = np.asarray(rows, np.int64)
        out = np.empty((len(rows), self.frames, NUM_CHANNELS), np.uint16)
        groups = self.group_of(rows)
        for group in np.unique(groups):
            where = np.flatnonzero(groups == group)
            out[where] = self.read_group(int(group))[rows[where] - self.group_start[group]]
        return out


def _row_groups(
    paths: list[Path],
    shuffle_seed: int | None,
    readahead: int,
    columns: list[str] | None = None,
    threads: int | None = None,
) -> Iterator[tuple[pa.Table, int]]:
    """``(row group table, frames)`` of every row group, in file or seeded random order.

    ``readahead`` row groups are decoded ahead in up to ``threads`` background threads
    (default: one per core; Parquet decoding releases the GIL, so this uses every core).
    """
    files = [open_parquet(p) for p in paths]
    order = [(i, g) for i, f in enumerate(files) for g in range(f.metadata.num_row_groups)]
    if shuffle_seed is not None:
        order = [order[k] for k in np.random.default_rng(shuffle_seed).permutation(len(order))]
    frames = [int((f.schema_arrow.metadata or {})[b"frames"]) for f in files]

    def read(item: tuple[int, int]) -> tuple[pa.Table, int]:
        i, group = item
        # A ParquetFile is not safe to share between threads: open one per read.
        table = open_parquet(paths[i]).read_row_group(group, columns=columns, use_threads=False)
        return table, frames[i]

    if readahead <= 0:
        yield from map(read, order)
        return
    with ThreadPoolExecutor(min(readahead, threads or _cores())) as pool:
        yield from _ahead(pool, read, order, readahead)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _ahead(pool: ThreadPoolExecutor, work: Callable, items: Iterable, ahead: int) -> Iterator:
    """``map(work, items)`` run in ``pool`` with up to ``ahead`` results computed in advance."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def iter_windows(
    paths: list[Path], shuffle_seed: int | None = None, readahead: int = 2
) -> Iterator[Windows]:
    """Yield the store one row group at a time, so memory holds a few row groups, not the store.

    Args:
        paths: Shard files.
        shuffle_seed: When given, row groups come in a seeded random order (across shards).
        readahead: Row groups decoded ahead in background threads.

    Yields:
        Windows of one row group each; features are a zero-copy view of the decoded column.
    """
    for table, frames in _row_groups(paths, shuffle_seed, readahead):
        yield _table_to_windows(table, frames)


_TRAINING_COLUMNS = ["features", "label", "weight_class"]


def _shuffle_buffers(
    paths: list[Path],
    batch_size: int,
    weights: dict[str, float],
    seed: int | None,
    shuffle_groups: int,
    readahead: int,
    threads: int | None = None,
) -> Iterator[tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]]:
    """``(features per row group, label, weight, order)`` of ``shuffle_groups`` row groups.

    ``order`` lists the buffer's rows batch after batch: a seeded permutation whose every
    ``batch_size`` slice is sorted (so each batch takes a contiguous run of rows from each row
    group). Only the three columns training needs are decoded; no Python runs per row.
    """
    rng = np.random.default_rng(seed)
    tables: list[tuple[pa.Table, int]] = []

    def buffer() -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        parts = [_features_view(t.column("features"), frames) for t, frames in tables]
        labels = pa.chunked_array([t.column("label") for t, _ in tables])
        kinds = pa.chunked_array([t.column("weight_class") for t, _ in tables])
        kinds = kinds.combine_chunks().dictionary_encode()
        by_kind = np.array([weights.get(k, 1.0) for k in kinds.dictionary.to_pylist()], "f4")
        n = len(labels)
        order = rng.permutation(n) if seed is not None else np.arange(n)
        full = n - n % batch_size
        order[:full] = np.sort(order[:full].reshape(-1, batch_size), axis=1).reshape(-1)
        order[full:] = np.sort(order[full:])
        return parts, labels.to_numpy(), by_kind[kinds.indices.to_numpy()], order

    for item in _row_groups(paths, seed, readahead, _TRAINING_COLUMNS, threads):
        tables.append(item)
        if len(tables) == shuffle_groups:
            yield buffer()
            tables = []
    if tables:
        yield buffer()


# Float32 features are never negative, and non-negative floats order like their int32 bits:
# capping the int32 view is exact and faster than a float minimum.
_CAP_BITS = np.float32(MAX_FEATURE_VALUE).view(np.int32)
# The largest raw value whose float is under the cap (665 x 0.0390625 = 25.98 < 26).
_RAW_UNCAPPED = int(np.floor(np.float32(MAX_FEATURE_VALUE) / np.float32(FEATURE_SCALE)))


def _gather_float(parts: list[np.ndarray], rows: np.ndarray, crop: int) -> np.ndarray:
    """Float features of the sorted buffer ``rows``: one gather per row group, one cast.

    Runs in the thread that hands batches out: allocating them in pool threads costs a page
    fault per 4 KiB (glibc gives pool threads' freed memory back to the system each time).
    """
    starts = np.cumsum([0] + [len(p) for p in parts])
    bounds = np.searchsorted(rows, starts)
    raw = np.empty((len(rows), *parts[0].shape[1:]), parts[0].dtype)
    for k, part in enumerate(parts):
        a, b = bounds[k], bounds[k + 1]
        if a < b:  # mode="clip": rows are in range; "raise" would gather via a temporary copy
            np.take(part, rows[a:b] - starts[k], axis=0, out=raw[a:b], mode="clip")
    out = np.multiply(raw[:, crop:], np.float32(FEATURE_SCALE), dtype=np.float32)
    if len(raw) and raw.max() > _RAW_UNCAPPED:  # rare (loud audio): one pass to find out
        bits = out.view(np.int32)
        np.minimum(bits, _CAP_BITS, out=bits)
    return out


def iter_batches(
    paths: list[Path],
    batch_size: int,
    class_weights: dict[str, float] | None = None,
    input_frames: int | None = None,
    seed: int | None = 0,
    shuffle_groups: int = 8,
    readahead: int | None = None,
    threads: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Training batches streamed from the store as numpy arrays (what a training step takes).

    Row groups are read in a seeded random order (``seed=None`` keeps file order) and rows are
    shuffled across ``shuffle_groups`` row groups at a time, so memory holds a few row groups
    whatever the store's size (shards follow sources, so one row group alone would be one kind).
    The batches are a pure function of the shards, ``batch_size`` and ``seed``: the number of
    threads and the readahead change only the speed.

    Decoding (zstd, most of the work) runs ``readahead`` row groups ahead (default: the next
    shuffle buffer, so it overlaps with batching the current one) in ``threads`` background
    threads (default: one per core; Parquet decoding releases the GIL); batches are cut in the
    calling thread, which costs about a fifth of the decoding.

    Args:
        paths: Shard files.
        batch_size: Rows per batch (the last batch of each buffer may be smaller).
        class_weights: Sample weight per weight class (default 1.0 for every row).
        input_frames: Keep the last this many frames of each window (default: all).
        seed: Shuffle seed.
        shuffle_groups: Row groups mixed together before batching.
        readahead: Row groups decoded ahead (0: decode in the calling thread).
        threads: Threads decoding row groups.

    Yields:
        ``(features float32 [b, frames, 40], label float32 [b], weight float32 [b])`` with
        float features as the model takes them (raw x 0.0390625, capped at 26).
    """
    if not paths:
        raise ValueError("the training store is empty: no shard files were given")
    frames = _frames_of(paths[0])
    crop = frames - (input_frames or frames)
    weights = dict(class_weights or {})
    readahead = shuffle_groups if readahead is None else readahead
    threads = threads or _cores()
    buffers = _shuffle_buffers(paths, batch_size, weights, seed, shuffle_groups, readahead, threads)
    for parts, label, weight, order in buffers:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            yield _gather_float(parts, rows, crop), label[rows].astype(np.float32), weight[rows]


def windows_dataset(
    paths: list[Path],
    batch_size: int,
    class_weights: dict[str, float] | None = None,
    input_frames: int | None = None,
    seed: int | None = 0,
    shuffle_groups: int = 8,
):
    """``iter_batches`` as a ``tf.data.Dataset`` (same batches, same order), prefetched.

    Returns:
        A dataset of ``(features float32 [b, frames, 40], label float32 [b], weight float32 [b])``.
    """
    import tensorflow as tf

    if not paths:
        raise ValueError("windows_dataset needs at least one shard; the store is empty")
    keep = input_frames or _frames_of(paths[0])
    spec = (
        tf.TensorSpec((None, keep, NUM_CHANNELS), tf.float32),
        tf.TensorSpec((None,), tf.float32),
        tf.TensorSpec((None,), tf.float32),
    )

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return iter_batches(paths, batch_size, class_weights, input_frames, seed, shuffle_groups)

    dataset = tf.data.Dataset.from_generator(batches, output_signature=spec)
    return dataset.prefetch(tf.data.AUTOTUNE)


# Streams are stored and read in chunks of this many frames (60 s, 480 KB), one row group each,
# so reading or scoring hours of ambient audio holds one chunk at a time.
STREAM_CHUNK_FRAMES = 6000


@dataclass
class Stream:
    """A long feature stream (an ambient file, or clips joined by gaps) and its clip spans."""

    features: np.ndarray  # uint16 [frames, 40]
    source: str
    kind: str  # positive | negative | ambient
    spans: list[tuple[int, int]]  # clip [start, end) in samples; empty for ambient

    @property
    def frames(self) -> int:
        """Feature frames in the stream."""
        return len(self.features)

    @property
    def duration_s(self) -> float:
        """Length of the audio the stream was computed from (10 ms per frame)."""
        return (self.frames + 2) * 0.01

    def chunks(self, frames: int = STREAM_CHUNK_FRAMES) -> Iterator[np.ndarray]:
        """The features in consecutive pieces of ``frames`` frames (views)."""
        for start in range(0, max(self.frames, 1), frames):
            yield self.features[start : start + frames]

    def load(self) -> Stream:
        """The stream itself (``StoredStream.load`` reads one into memory)."""
        return self


@dataclass
class StoredStream:
    """A stream in a streams file, read one chunk (row group) at a time: what ``Stream`` offers
    (``source``, ``kind``, ``spans``, ``frames``, ``duration_s``, ``chunks()``) without holding
    its features."""

    path: Path | str
    source: str
    kind: str
    spans: list[tuple[int, int]]
    frames: int
    row_groups: list[int]

    @property
    def duration_s(self) -> float:
        """Length of the audio the stream was computed from (10 ms per frame)."""
        return (self.frames + 2) * 0.01

    def chunks(self) -> Iterator[np.ndarray]:
        """The features, chunk by chunk, as written."""
        for group in self.row_groups:
            table = open_parquet(self.path).read_row_group(group, columns=["features"])
            (blob,) = table.column("features").to_pylist()
            yield np.frombuffer(blob, dtype="<u2").reshape(-1, NUM_CHANNELS)

    def load(self) -> Stream:
        """The whole stream in memory."""
        chunks = list(self.chunks())
        features = np.concatenate(chunks) if chunks else np.zeros((0, NUM_CHANNELS), np.uint16)
        return Stream(features, self.source, self.kind, list(self.spans))


_STREAMS_SCHEMA = pa.schema(
    [
        ("stream", pa.int32()),
        ("chunk", pa.int32()),
        ("frames", pa.int32()),
        ("features", pa.large_binary()),
        ("source", pa.string()),
        ("kind", pa.string()),
        ("spans", pa.list_(pa.int64())),
    ]
)


def write_streams(
    path: Path, streams: Iterable[Stream], chunk_frames: int = STREAM_CHUNK_FRAMES
) -> float:
    """Write streams to one Parquet file atomically, one row group per chunk of frames.

    ``streams`` may be a generator: one stream is held at a time. Returns their duration (s).
    """
    seconds = 0.0
    with (
        atomic_path(path) as tmp,
        pq.ParquetWriter(tmp, _STREAMS_SCHEMA, compression="zstd") as out,
    ):
        for number, stream in enumerate(streams):
            seconds += stream.duration_s
            spans = [int(v) for span in stream.spans for v in span]
            for k, chunk in enumerate(stream.chunks(chunk_frames)):
                row = {
                    "stream": [number],
                    "chunk": [k],
                    "frames": [len(chunk)],
                    "features": [np.ascontiguousarray(chunk, dtype="<u2").tobytes()],
                    "source": [stream.source],
                    "kind": [stream.kind],
                    "spans": [spans if k == 0 else []],  # on the first chunk only
                }
                out.write_table(pa.table(row, schema=_STREAMS_SCHEMA))
    return seconds


def open_streams(path: Path | str) -> list[StoredStream]:
    """The streams of a file, to read chunk by chunk (only their descriptions are read here).

    Files written before streams were chunked (one row per stream) are read whole instead.
    """
    streams_file = open_parquet(path)
    if "chunk" not in streams_file.schema_arrow.names:
        return read_streams(path)  # type: ignore[return-value]
    table = streams_file.read(columns=["stream", "frames", "source", "kind", "spans"])
    sizes = [streams_file.metadata.row_group(g).num_rows for g in range(table.num_rows)]
    if any(n != 1 for n in sizes):
        raise ValueError(f"{path}: expected one chunk per row group; rewrite it with write_streams")
    found: dict[int, StoredStream] = {}
    columns = table.to_pydict()
    for group, number in enumerate(columns["stream"]):
        if number not in found:
            flat = columns["spans"][group]
            found[number] = StoredStream(
                path,
                columns["source"][group],
                columns["kind"][group],
                [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)],
                0,
                [],
            )
        found[number].row_groups.append(group)
        found[number].frames += columns["frames"][group]
    return [found[k] for k in sorted(found)]


def read_streams(path: Path | str) -> list[Stream]:
    """Read every stream of a file whole (``open_streams`` reads them chunk by chunk)."""
    if "chunk" in open_parquet(path).schema_arrow.names:
        return [stored.load() for stored in open_streams(path)]
    table = open_parquet(path).read()
    out = []
    for blob, source, kind, spans in zip(
        table.column("features").to_pylist(),
        table.column("source").to_pylist(),
        table.column("kind").to_pylist(),
        table.column("spans").to_pylist(),
        strict=True,
    ):
        feats = np.frombuffer(blob, dtype="<u2").reshape(-1, NUM_CHANNELS)
        pairs = [(spans[i], spans[i + 1]) for i in range(0, len(spans), 2)]
        out.append(Stream(features=feats, source=source, kind=kind, spans=pairs))
    return out
