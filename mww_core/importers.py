"""Import microWakeWord's published feature sets (mmap_ninja RaggedMmap folders) into the store."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from mww_core import stages
from mww_core.config import FullConfig
from mww_core.frontend import FEATURE_SCALE, NUM_CHANNELS
from mww_core.store import Windows, write_windows

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
_MARKER = "shapes_are_flat.ninja"  # written by mmap_ninja in every RaggedMmap folder


def find_ragged_mmaps(folder: Path) -> list[Path]:
    """The RaggedMmap folders at or below ``folder`` (not their internal sub-maps).

    Raises:
        FileNotFoundError: ``folder`` is missing or holds no RaggedMmap.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: feature set folder not found; check data.feature_sets[].path"
        )
    found = sorted(
        d
        for d in [folder, *folder.rglob("*")]
        if d.is_dir() and (d / _MARKER).exists() and not (d.parent / _MARKER).exists()
    )
    if not found:
        raise FileNotFoundError(
            f"{folder}: no RaggedMmap folder (one holding {_MARKER}) inside; point at a folder "
            "of microWakeWord features such as negative_datasets/speech/training"
        )
    return found


def to_raw_features(spectrogram: np.ndarray, where: str = "spectrogram") -> np.ndarray:
    """microWakeWord's float features (raw frontend value x 0.0390625) to raw uint16 units.

    Integer input is taken as raw units already.

    Raises:
        ValueError: The array is not ``[frames, 40]``.
    """
    spec = np.asarray(spectrogram)
    if spec.ndim != 2 or spec.shape[1] != NUM_CHANNELS:
        raise ValueError(
            f"{where}: expected a [frames, {NUM_CHANNELS}] spectrogram, got shape {spec.shape}; "
            "only microWakeWord's 40-channel micro frontend features can be imported"
        )
    if np.issubdtype(spec.dtype, np.integer):
        return np.clip(spec, 0, 65535).astype(np.uint16)
    return np.clip(np.rint(spec.astype(np.float64) / FEATURE_SCALE), 0, 65535).astype(np.uint16)


def cut_windows(raw: np.ndarray, window_frames: int, hop_frames: int) -> tuple[np.ndarray, list]:
    """Windows of ``window_frames`` every ``hop_frames`` (the last one flush with the end).

    A spectrogram shorter than a window is padded with zeros at the front, so its end (the
    most recent audio, as the streaming model sees it) lines up with the window end.

    Returns:
        ``[n, window_frames, 40]`` uint16 and each window's start frame (negative when padded).
    """
    frames = len(raw)
    if frames < window_frames:
        out = np.zeros((1, window_frames, NUM_CHANNELS), np.uint16)
        out[0, window_frames - frames :] = raw
        return out, [frames - window_frames]
    starts = list(range(0, frames - window_frames + 1, hop_frames))
    if starts[-1] != frames - window_frames:
        starts.append(frames - window_frames)
    return np.stack([raw[s : s + window_frames] for s in starts]), starts


def _windows_of_mmap(
    mmap_dir: Path, window_frames: int, hop_frames: int, weight_class: str
) -> Iterator[Windows]:
    from mmap_ninja.ragged import RaggedMmap

    spectrograms = RaggedMmap(mmap_dir)
    for index in range(len(spectrograms)):
        raw = to_raw_features(spectrograms[index], f"{mmap_dir} entry {index}")
        feats, starts = cut_windows(raw, window_frames, hop_frames)
        n = len(feats)
        yield Windows(
            features=feats,
            label=np.zeros(n, np.int8),
            weight_class=np.full(n, weight_class, dtype=object),
            source=np.full(n, f"{mmap_dir.as_posix()}#{index}", dtype=object),
            offset_s=np.asarray(starts, np.float32) * 0.01,
            seed=np.full(n, -1, np.int64),
        )


def import_ragged_mmap(
    folder: Path,
    out_dir: Path,
    window_frames: int,
    weight_class: str = "negative",
    hop_frames: int = 100,
    shard_rows: int = 2048,
    row_group_rows: int = 512,
) -> dict[str, tuple[str, int]]:
    """Import every RaggedMmap under ``folder`` as negative windows into Parquet shards.

    Shards are named by a fingerprint of the mmap's files and the settings, so importing the
    same set again reuses them.

    Returns:
        ``{shard name: (path, rows)}``.
    """
    shards: dict[str, tuple[str, int]] = {}
    for mmap_dir in find_ragged_mmaps(folder):
        fp = stages.fingerprint(
            mmap_dir.resolve().as_posix(),
            stages.file_listing(mmap_dir),
            [window_frames, weight_class, hop_frames, shard_rows, row_group_rows],
            stages.code_fingerprint("importers", "store", "frontend"),
        )
        if _entries(mmap_dir) == 0:
            log.warning("%s: RaggedMmap holds no spectrograms; nothing imported", mmap_dir)
            continue
        done = sorted(out_dir.glob(f"import-{fp}-*.parquet"))
        if done and _complete(done):
            shards.update(_listing(done))
            continue
        written = _write_import(
            _windows_of_mmap(mmap_dir, window_frames, hop_frames, weight_class),
            out_dir,
            f"import-{fp}",
            shard_rows,
            row_group_rows,
        )
        log.info("imported %s: %d windows", mmap_dir, sum(n for _, n in written.values()))
        shards.update(written)
    return shards


def _entries(mmap_dir: Path) -> int:
    from mmap_ninja.ragged import RaggedMmap

    return len(RaggedMmap(mmap_dir))


def _complete(paths: list[Path]) -> bool:
    # Names end in -<k>-of-<n>; the last shard is written last, so all n present = complete.
    total = int(paths[0].stem.rsplit("-of-", 1)[1])
    return len(paths) == total


def _listing(paths: list[Path]) -> dict[str, tuple[str, int]]:
    from mww_core.store import shard_metadata

    return {p.stem: (str(p), shard_metadata(p)[0]) for p in paths}


def _write_import(
    parts: Iterator[Windows], out_dir: Path, prefix: str, shard_rows: int, row_group_rows: int
) -> dict[str, tuple[str, int]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(f"{prefix}-*.parquet"):  # an interrupted import of the same set
        old.unlink()
    pending: list[Windows] = []
    staged: list[Path] = []
    rows = 0
    for part in parts:
        pending.append(part)
        rows += len(part)
        if rows >= shard_rows:
            staged.append(_stage(pending, out_dir, prefix, len(staged), row_group_rows))
            pending, rows = [], 0
    if pending or not staged:
        staged.append(_stage(pending, out_dir, prefix, len(staged), row_group_rows))
    # Final names carry the shard count; renaming in order makes the set complete last.
    final = []
    for k, path in enumerate(staged):
        target = out_dir / f"{prefix}-{k:05d}-of-{len(staged):05d}.parquet"
        path.replace(target)
        final.append(target)
    return _listing(final)


def _stage(pending: list[Windows], out_dir: Path, prefix: str, k: int, row_group_rows: int) -> Path:
    frames = pending[0].features.shape[1] if pending else 0
    path = out_dir / f".{prefix}-{k:05d}.staged"
    write_windows(path, Windows.concat(pending, frames), row_group_rows=row_group_rows)
    return path


def import_feature_sets(
    config: FullConfig, out_dir: Path, progress: Progress | None = None
) -> dict[str, tuple[str, int]]:
    """Import every ``data.feature_sets`` entry into ``out_dir``; returns their shards."""
    shards: dict[str, tuple[str, int]] = {}
    sets = config.data.feature_sets
    for done, feature_set in enumerate(sets, 1):
        shards.update(
            import_ragged_mmap(
                feature_set.path,
                out_dir,
                config.features.window_frames,
                feature_set.weight_class,
                feature_set.hop_frames,
                config.features.shard_rows,
                config.features.row_group_rows,
            )
        )
        if progress:
            progress("import feature sets", done, len(sets))
    return shards
