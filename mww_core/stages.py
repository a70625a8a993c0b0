"""Stage fingerprints and ``stage.json`` manifests: what makes the flow skip and resume."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mww_core
from mww_core.atomic import atomic_write_text

log = logging.getLogger(__name__)

MANIFEST = "stage.json"
_DRY_RUN = contextvars.ContextVar("mww_dry_run", default=False)


class WouldRun(Exception):
    """Raised in a dry run by the first stage whose inputs changed (its name is the message)."""


@contextlib.contextmanager
def dry_run():
    """Within this block a stage that is not up to date raises ``WouldRun`` instead of running."""
    token = _DRY_RUN.set(True)
    try:
        yield
    finally:
        _DRY_RUN.reset(token)


def is_dry_run() -> bool:
    """Whether stages only check their fingerprints (see ``dry_run``)."""
    return _DRY_RUN.get()


IN_PROGRESS = "in_progress.json"


def fingerprint(*parts: Any) -> str:
    """Hash of JSON-serializable parts (config section hashes, upstream fingerprints, listings)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def file_listing(folder: Path) -> list[tuple[str, int, int]]:
    """``(relative path, size, mtime_ns)`` of every file below ``folder``, sorted."""
    if not folder.exists():
        return []
    return sorted(
        (p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )


def code_fingerprint(*modules: str) -> str:
    """Hash of the source of ``mww_core`` modules a stage runs, so code changes re-run it."""
    root = Path(mww_core.__file__).parent
    digest = hashlib.sha256()
    for name in sorted(modules):
        path = root / f"{name.replace('.', '/')}.py"
        if not path.exists():
            path = root / name.replace(".", "/") / "__init__.py"
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class StageRecord:
    """What a finished stage wrote: the contents of its ``stage.json``."""

    name: str
    fingerprint: str
    outputs: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0
    skipped: bool = False

    def to_dict(self) -> dict:
        """Plain dict (JSON-serializable)."""
        return asdict(self)


def completed_record(stage_dir: Path, expected: str) -> StageRecord | None:
    """The stage's record if it finished with the ``expected`` fingerprint and outputs exist."""
    path = stage_dir / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        record = StageRecord(**data)
    except (ValueError, TypeError) as exc:
        log.warning("%s: unreadable stage manifest (%s); the stage will run again", path, exc)
        return None
    if record.fingerprint != expected:
        return None
    missing = [p for p in _output_paths(record.outputs) if not _output_exists(p)]
    if missing:
        log.warning("%s: outputs missing (%s); the stage will run again", path, missing[:3])
        return None
    broken = [p for p in _output_paths(record.outputs) if not _output_is_valid(p)]
    if broken:
        log.warning("%s: outputs damaged (%s); the stage will run again", path, broken[:3])
        return None
    return record


def _output_exists(location: str) -> bool:
    """Whether an output is there: a local path, or a URL of the feature store (fsspec)."""
    if "://" in location:
        from mww_core import fsstore

        return fsstore.exists(location)
    return Path(location).exists()


def _output_is_valid(location: str) -> bool:
    """Whether an output reads back: Parquet footers and JSON parse; other files are trusted."""
    try:
        if location.endswith(".parquet"):
            import pyarrow.parquet as pq

            from mww_core import fsstore

            with fsstore.open_read(location) as handle:
                pq.read_metadata(handle)
        elif location.endswith(".json"):
            json.loads(Path(location).read_text())
    except (OSError, ValueError) as exc:
        log.debug("%s: %s", location, exc)
        return False
    return True


def _output_paths(outputs: Any) -> list[str]:
    """Every string in ``outputs`` that names a file or folder written by the stage."""
    if isinstance(outputs, dict):
        return [p for v in outputs.values() for p in _output_paths(v)]
    if isinstance(outputs, list | tuple):
        return [p for v in outputs for p in _output_paths(v)]
    if isinstance(outputs, str) and ("/" in outputs or outputs.endswith((".json", ".parquet"))):
        return [outputs]
    return []


def run_stage(
    stage_dir: Path,
    name: str,
    stage_fingerprint: str,
    compute: Callable[[Path], dict],
) -> StageRecord:
    """Skip the stage when its manifest matches, else run ``compute(stage_dir)`` and record it.

    ``compute`` returns ``{"outputs": ..., "metrics": ...}``. A folder left by an interrupted
    run with the same fingerprint is kept (so training resumes from its checkpoints); one made
    for other inputs is cleared first.
    """
    record = completed_record(stage_dir, stage_fingerprint)
    if record is not None:
        log.info("%s: inputs unchanged (fingerprint %s), skipped", name, stage_fingerprint)
        record.skipped = True
        return record
    if is_dry_run():
        raise WouldRun(name)
    marker = stage_dir / IN_PROGRESS
    previous = json.loads(marker.read_text()).get("fingerprint") if marker.exists() else None
    if stage_dir.exists() and previous != stage_fingerprint:
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, json.dumps({"fingerprint": stage_fingerprint}))
    started = time.time()
    result = compute(stage_dir)
    record = StageRecord(
        name=name,
        fingerprint=stage_fingerprint,
        outputs=result.get("outputs", {}),
        metrics=result.get("metrics", {}),
        started=started,
        finished=time.time(),
    )
    atomic_write_text(stage_dir / MANIFEST, json.dumps(record.to_dict(), indent=2, default=str))
    marker.unlink(missing_ok=True)
    log.info("%s: done in %.1f s", name, record.finished - started)
    return record
