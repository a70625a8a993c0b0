"""The Parquet feature store: fixed-size training windows and long feature streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mww_core.atomic import atomic_path
from mww_core.frontend import NUM_CHANNELS

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
            score=np.concatenate([_scores(p) for p in parts]),
        )


def _scores(w: Windows) -> np.ndarray:
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


def write_windows(path: Path, windows: Windows) -> None:
    """Write one shard atomically; spectrograms as fixed-size binary (zero-copy reads)."""
    n, frames, channels = windows.features.shape
    width = frames * channels * 2
    blob = np.ascontiguousarray(windows.features, dtype="<u2").tobytes()
    table = pa.table(
        {
            "features": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(width), n, [None, pa.py_buffer(blob)]
            ),
            "label": pa.array(windows.label, pa.int8()),
            "weight_class": pa.array(windows.weight_class.astype(str), pa.string()),
            "source": pa.array(windows.source.astype(str), pa.string()),
            "offset_s": pa.array(windows.offset_s, pa.float32()),
            "seed": pa.array(windows.seed, pa.int64()),
            "score": pa.array(_scores(windows), pa.float32()),
        },
        metadata={"frames": str(frames), "channels": str(channels)},
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=1024)


def read_windows(paths: list[Path]) -> Windows:
    """Read shards back into one Windows (features without a per-row copy)."""
    parts = []
    frames = None
    for path in paths:
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        frames = int(meta[b"frames"])
        col = table.column("features").combine_chunks()
        data = np.frombuffer(col.buffers()[1], dtype="<u2", count=len(col) * frames * NUM_CHANNELS)
        parts.append(
            Windows(
                features=data.reshape(len(col), frames, NUM_CHANNELS),
                label=table.column("label").to_numpy(),
                weight_class=np.asarray(table.column("weight_class").to_pylist(), dtype=object),
                source=np.asarray(table.column("source").to_pylist(), dtype=object),
                offset_s=table.column("offset_s").to_numpy(),
                seed=table.column("seed").to_numpy(),
                score=table.column("score").to_numpy(),
            )
        )
    return Windows.concat(parts, frames or 0)


@dataclass
class Stream:
    """A long feature stream (an ambient file, or clips joined by gaps) and its clip spans."""

    features: np.ndarray  # uint16 [frames, 40]
    source: str
    kind: str  # positive | negative | ambient
    spans: list[tuple[int, int]]  # clip [start, end) in samples; empty for ambient

    @property
    def duration_s(self) -> float:
        """Length of the audio the stream was computed from (10 ms per frame)."""
        return (len(self.features) + 2) * 0.01


def write_streams(path: Path, streams: list[Stream]) -> None:
    """Write streams to one Parquet file atomically."""
    table = pa.table(
        {
            "features": pa.array(
                [np.ascontiguousarray(s.features, dtype="<u2").tobytes() for s in streams],
                pa.large_binary(),
            ),
            "source": pa.array([s.source for s in streams], pa.string()),
            "kind": pa.array([s.kind for s in streams], pa.string()),
            "spans": pa.array(
                [[int(v) for span in s.spans for v in span] for s in streams],
                pa.list_(pa.int64()),
            ),
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_streams(path: Path) -> list[Stream]:
    """Read the streams of one file."""
    table = pq.read_table(path)
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
