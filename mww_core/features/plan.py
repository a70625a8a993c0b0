"""Plan the train windows: jobs for each clip copy and ambient hop, cut into shards."""

from __future__ import annotations

import hashlib
import json
from dataclasses import astuple, dataclass, replace
from pathlib import Path

import numpy as np

from mww_core import stages
from mww_core.audio import AudioError, list_audio_files
from mww_core.config import FullConfig
from mww_core.frontend import SAMPLE_RATE_HZ, samples_for_frames

SPLITS = ("train", "validation", "test")
KINDS = ("positive", "negative", "ambient")
# Long negative recordings that only hard-negative mining scans (``train/mining/``): no training
# windows are cut from them, so hours of them cost a scan, not a bigger training set.
MINING_KIND = "mining"
# The job kind of a mined window re-made with augmentation (``augment_mined_windows``).
MINED_KIND = "mined"
# Keeps a positive's continuation draw apart from its window's own draws (default_rng(seed)).
_CONTINUATION_STREAM = 1
# Code whose change invalidates cached shards.
SHARD_CODE = (
    "features.plan", "features.workers", "features.shards", "augment", "frontend", "audio",
    "store",
)  # fmt: skip


@dataclass(frozen=True, slots=True)  # one per training window: 100,000s of them
class WindowJob:
    """One training window to make: which audio, which augmented copy, where."""

    source: str  # relative to the data folder (absolute for sources outside it)
    kind: str
    copy: int
    offset_s: float  # start in the source (long ambient audio); 0 for clips
    seed: int
    follow: str = ""  # a positive's continuation: a negative clip said after the word
    word_end_s: float = 0.0  # a positive said before a request: where the word ends (0: at the end)


@dataclass(frozen=True)
class ShardPlan:
    """The jobs of one shard and the fingerprint that names its file."""

    kind: str
    jobs: tuple[WindowJob, ...]
    fingerprint: str

    @property
    def file_name(self) -> str:
        """``<kind>-<fingerprint>.parquet``: a shard with the same inputs has the same name."""
        return f"{self.kind}-{self.fingerprint}.parquet"


def job_seed(base: int, source: str, copy: int, offset_s: float) -> int:
    """Seed of one window, independent of which worker makes it or in which order."""
    digest = hashlib.sha256(f"{base}|{source}|{copy}|{offset_s:.3f}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFFFFFFFFFFFFFF


def source_folders(config: FullConfig, split: str) -> list[tuple[Path, str, int]]:
    """``(folder, kind, copies)`` of every audio folder of ``split``: the data layout + sources.

    Raises:
        AudioError: A configured extra source folder does not exist.
    """
    aug = config.augmentation
    default = {"positive": aug.positive_copies, "negative": aug.negative_copies}
    kinds = KINDS + ((MINING_KIND,) if split == "train" else ())
    found = [
        (config.data.data_dir / split / kind, kind, default.get(kind, aug.negative_copies))
        for kind in kinds
        if (config.data.data_dir / split / kind).is_dir()
    ]
    for source in config.data.sources:
        if source.split != split:
            continue
        if not source.path.is_dir():
            raise AudioError(
                f"{source.path}: data.sources entry is not a folder; fix the path or remove it"
            )
        copies = source.copies or default.get(source.kind, aug.negative_copies)
        found.append((source.path, source.kind, copies))
    return found


def source_name(config: FullConfig, path: Path) -> str:
    """How a file is named in the store: relative to the data folder when inside it."""
    try:
        return path.relative_to(config.data.data_dir).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def plan_window_jobs(config: FullConfig, split: str = "train") -> list[WindowJob]:
    """Every training window of ``split``: copies of each clip, hops through long audio."""
    jobs: list[WindowJob] = []
    window_s = samples_for_frames(config.features.window_frames) / SAMPLE_RATE_HZ
    seen: set[str] = set()
    described = manifest_files(config)
    near_misses = marked_near_misses(config, described)
    for folder, kind, folder_copies in source_folders(config, split):
        if kind == MINING_KIND:  # scanned by mining only (see plan_stream_jobs)
            continue
        for path in list_audio_files(folder):
            name = source_name(config, path)
            if name in seen:  # a configured source may overlap the data layout
                continue
            seen.add(name)
            copies = folder_copies
            if kind == "negative" and name in near_misses:
                copies = config.augmentation.near_miss_copies
            offsets = [0.0]
            if kind == "ambient":
                end = max(_duration_s(path) - window_s, 0.0) + 1e-9
                offsets = np.arange(0.0, end, config.features.ambient_hop_s).tolist()
            word_end = _word_end(config, name, described) if kind == "positive" else 0.0
            for offset in offsets:
                for copy in range(copies):
                    seed = job_seed(config.augmentation.seed, name, copy, float(offset))
                    jobs.append(WindowJob(name, kind, copy, float(offset), seed, "", word_end))
    return _with_continuations(config, jobs)


def manifest_files(config: FullConfig) -> dict[str, dict]:
    """What the data set's ``dataset.json`` says of each file (``{}`` without one).

    Raises:
        AudioError: The manifest exists but cannot be read.
    """
    manifest = config.data.data_dir / "dataset.json"
    if not manifest.is_file():
        return {}
    try:
        files = json.loads(manifest.read_text())["files"]
        if not isinstance(files, dict):
            raise TypeError(f"'files' is a {type(files).__name__}, not a mapping")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AudioError(
            f"{manifest}: cannot read what it says of each file ({exc}); fix or delete it (a "
            "demo data set is rebuilt without it)"
        ) from exc
    return files


def _word_end(config: FullConfig, name: str, files: dict[str, dict]) -> float:
    """A positive's ``word_end_s`` in ``dataset.json`` (0 when it gives none).

    Raises:
        AudioError: The value is not a number of seconds (0 or more).
    """
    value = files.get(name, {}).get("word_end_s", 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise AudioError(
            f"{config.data.data_dir / 'dataset.json'}: word_end_s of {name} is {value!r}; give "
            "the seconds from the clip's start to the end of the wake word, or remove it"
        )
    return float(value)


def marked_near_misses(config: FullConfig, files: dict[str, dict] | None = None) -> set[str]:
    """Names of the clips the data set's ``dataset.json`` (or ``files``, what it says) marks
    as near misses (none when ``augmentation.near_miss_copies`` is unset)."""
    if config.augmentation.near_miss_copies is None:
        return set()
    files = manifest_files(config) if files is None else files
    return {name for name, meta in files.items() if meta.get("near_miss")}


def _with_continuations(config: FullConfig, jobs: list[WindowJob]) -> list[WindowJob]:
    """Give ``features.continuation_probability`` of the positive jobs a negative clip of the
    same split to follow the word, drawn from each job's own seed (so a job's continuation does
    not depend on the other jobs)."""
    share = config.features.continuation_probability
    clips = sorted({j.source for j in jobs if j.kind == "negative"})
    if share == 0 or not clips:
        return jobs
    out = []
    for job in jobs:
        if job.kind == "positive":
            rng = np.random.default_rng([job.seed, _CONTINUATION_STREAM])
            if rng.random() < share:
                job = replace(job, follow=clips[int(rng.integers(len(clips)))])
        out.append(job)
    return out


def _duration_s(path: Path) -> float:
    import soundfile as sf

    try:
        return sf.info(str(path)).duration
    except Exception:  # unreadable files are reported when a worker loads them
        return 0.0


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def group_into_shards(config: FullConfig, jobs: list[WindowJob]) -> list[list[WindowJob]]:
    """Cut jobs into shards that depend only on each source's own name, not on its neighbours.

    Clips: sources in path order; a new shard starts at a source whose name hashes to a
    boundary (content-defined chunking, on average ``shard_rows`` rows per shard), so adding
    files changes only the shards they fall into. Long recordings: each file on its own,
    cut every ``shard_rows`` windows.
    """
    rows = config.features.shard_rows
    by_source: dict[tuple[str, str], list[WindowJob]] = {}
    for job in jobs:
        by_source.setdefault((job.kind, job.source), []).append(job)
    shards: list[list[WindowJob]] = []
    for kind in KINDS:
        names = sorted(s for k, s in by_source if k == kind)
        if kind == "ambient":
            for name in names:
                own = sorted(by_source[(kind, name)], key=lambda j: (j.offset_s, j.copy))
                shards += [own[i : i + rows] for i in range(0, len(own), rows)]
            continue
        copies = (
            max(1, round(np.median([len(by_source[(kind, n)]) for n in names]))) if names else 1
        )
        every = max(1, rows // copies)
        current: list[WindowJob] = []
        for name in names:
            if current and _stable_hash(name) % every == 0:
                shards.append(current)
                current = []
            current += sorted(by_source[(kind, name)], key=lambda j: j.copy)
        if current:
            shards.append(current)
    return shards


def plan_shards(config: FullConfig, jobs: list[WindowJob]) -> list[ShardPlan]:
    """Shards with fingerprints of everything their rows depend on (sources, config, code)."""
    data_dir = config.data.data_dir
    common = stages.fingerprint(
        config.augmentation.fingerprint() if config.augmentation.enabled else "off",
        config.features.window_frames,
        list(config.features.end_jitter_ms),
        list(config.features.continuation_pause_ms),
        stages.file_listing(data_dir / "rirs"),
        stages.file_listing(data_dir / "noise"),
        stages.code_fingerprint(*SHARD_CODE),
    )
    plans = []
    for shard in group_into_shards(config, jobs):
        sources = sorted({j.source for j in shard} | {j.follow for j in shard if j.follow})
        stats = [(s, stages.file_digest(data_dir / s)) for s in sources]
        fp = stages.fingerprint(common, stats, [astuple(j) for j in shard])
        plans.append(ShardPlan(shard[0].kind, tuple(shard), fp))
    stages.file_hashes().save()
    return plans
