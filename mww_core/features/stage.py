"""The features stage: train shards, validation/test streams, unusable files reported once."""

from __future__ import annotations

import concurrent.futures as cf
import logging
from pathlib import Path

from mww_core.audio import AudioError
from mww_core.config import FullConfig
from mww_core.features.plan import SPLITS
from mww_core.features.shards import Progress, build_train_windows, remove_stale_shards
from mww_core.features.streams import iter_streams
from mww_core.features.workers import worker_pool
from mww_core.store import write_streams

log = logging.getLogger(__name__)


def build_features(
    config: FullConfig,
    out_dir: Path,
    progress: Progress | None = None,
    shard_dir: Path | None = None,
) -> dict:
    """Run the whole features stage; returns outputs and metrics.

    Args:
        config: The pipeline config.
        out_dir: The stage folder (streams are written here).
        progress: ``progress(what, done, total)`` callback.
        shard_dir: Folder of content-addressed train shards kept between runs, so that only
            shards whose inputs changed are computed; default ``out_dir / "shards"``.
    """
    from mww_core.importers import import_feature_sets

    out_dir.mkdir(parents=True, exist_ok=True)
    shard_dir = shard_dir or out_dir / "shards"
    with worker_pool(config) as pool:
        shards, errors, counts = build_train_windows(config, shard_dir, progress, pool)
        shards.update(import_feature_sets(config, shard_dir, progress))
        remove_stale_shards(shard_dir, shards)
        return finish_features(config, out_dir, (shards, errors, counts), progress, pool)


def finish_features(
    config: FullConfig,
    out_dir: Path,
    train: tuple[dict[str, tuple[str, int]], dict[str, str], dict[str, int]],
    progress: Progress | None = None,
    pool: cf.ProcessPoolExecutor | None = None,
) -> dict:
    """Write the validation/test streams and return the stage's outputs and metrics.

    Args:
        config: The pipeline config.
        out_dir: The stage folder (streams are written here).
        train: What building the train shards returned: shards, unusable files, counts.
        progress: ``progress(what, done, total)`` callback.
        pool: Workers from ``worker_pool`` (default: the streams are made in this process).
    """
    shards, errors, counts = train
    streams: dict[str, str] = {}
    stream_seconds: dict[str, float] = {}
    for index, split in enumerate(SPLITS, 1):
        path = out_dir / split / "streams.parquet"
        # Written as they are computed: a split's hours of audio are never all in memory.
        stream_seconds[split] = write_streams(path, iter_streams(config, split, errors, pool))
        streams[split] = str(path)
        if progress:
            progress(f"streams {split}", index, len(SPLITS))
    bad = report_bad_files(config, errors)
    return {
        "outputs": {"train_windows": shards, "streams": streams},
        "metrics": {
            "train_windows": sum(n for _, n in shards.values()),
            "stream_seconds": stream_seconds,
            "bad_files": bad,
            "skipped_files": [f"{b['path']}: {b['reason']}" for b in bad],
            **counts,
        },
    }


def report_bad_files(config: FullConfig, errors: dict[str, str]) -> list[dict[str, str]]:
    """Log each unusable file once; raise naming all of them when ``features.strict`` is set.

    Returns:
        ``[{"path", "reason"}]`` sorted by path, for the stage metrics.

    Raises:
        AudioError: ``features.strict`` is set and there is at least one unusable file.
    """
    bad = []
    for name, message in sorted(errors.items()):
        path = (config.data.data_dir / name).as_posix()
        reason = message.removeprefix(f"{path}: ").removeprefix(f"{Path(path)}: ")
        bad.append({"path": path, "reason": reason})
        log.warning("skipped unusable audio %s: %s", path, reason)
    if bad and config.features.strict:
        lines = "\n".join(f"  - {b['path']}: {b['reason']}" for b in bad)
        raise AudioError(
            f"features.strict is set and {len(bad)} audio file(s) are unusable:\n{lines}\n"
            "Fix or delete them, or set features.strict: false to skip them."
        )
    return bad
