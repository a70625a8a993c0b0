"""Stage fingerprints and ``stage.json`` manifests: what makes the flow skip and resume."""

from __future__ import annotations

import ast
import contextlib
import contextvars
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import re
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


class FileHashes:
    """Content hashes of files, remembered by (path, size, mtime) so a re-run hashes nothing.

    Fingerprints use a file's content, not its modification time: a data folder copied or
    rebuilt byte for byte reuses every stage. The memo lives in ``path`` (default
    ``$MWW_CACHE_DIR/file-hashes.json``, ``~/.cache/mww`` when unset) and is written atomically.
    """

    def __init__(self, path: Path):
        self.path = path
        self._dirty = False
        try:
            self._known: dict[str, str] = json.loads(path.read_text())
        except (OSError, ValueError):  # missing or torn: start afresh, it is only a memo
            self._known = {}

    def digest(self, file: Path) -> str:
        """The first 16 hex digits of the SHA-256 of the file's bytes."""
        st = file.stat()
        key = f"{file.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        found = self._known.get(key)
        if found is None:
            sha = hashlib.sha256()
            with open(file, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    sha.update(block)
            found = self._known[key] = sha.hexdigest()[:16]
            self._dirty = True
        return found

    def save(self) -> None:
        """Write the memo when something new was hashed (never fails the caller)."""
        if not self._dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(self._known))
            self._dirty = False
        except OSError as exc:
            log.warning("could not save the file hash memo %s: %s", self.path, exc)


_HASHES: dict[Path, FileHashes] = {}


def file_hashes() -> FileHashes:
    """This process's ``FileHashes`` (one per memo file)."""
    root = os.environ.get("MWW_CACHE_DIR") or Path.home() / ".cache" / "mww"
    path = Path(root) / "file-hashes.json"
    if path not in _HASHES:
        _HASHES[path] = FileHashes(path)
    return _HASHES[path]


def file_digest(path: Path) -> str:
    """Content hash of one file (see ``FileHashes``); ``"missing"`` when it cannot be read."""
    try:
        return file_hashes().digest(path)
    except OSError:
        return "missing"


def file_listing(folder: Path) -> list[tuple[str, int, str]]:
    """``(relative path, size, content hash)`` of every file below ``folder``, sorted."""
    if not folder.exists():
        return []
    hashes = file_hashes()
    listing = sorted(
        (p.relative_to(folder).as_posix(), p.stat().st_size, hashes.digest(p))
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    hashes.save()
    return listing


def module_path(module: str, root: Path | None = None) -> Path | None:
    """The source file of an ``mww_core`` module (``mww_core.x.y``), or None if there is none."""
    root = root or Path(mww_core.__file__).parent
    parts = module.split(".")[1:]
    for path in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
        if parts and path.is_file():
            return path
    return root / "__init__.py" if not parts else None


def _imported_modules(module: str, path: Path) -> set[str]:
    """``mww_core`` modules a module's source imports, at the top or inside functions."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x / from ..y import z
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            # ``from mww_core import evaluation``: the names may be modules themselves.
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # importlib.import_module("mww_core.evaluation.runner"): a lazy import.
            if re.fullmatch(r"mww_core(\.\w+)+", node.value):
                found.add(node.value)
    return {m for m in found if m == "mww_core" or m.startswith("mww_core.")}


def module_closure(*modules: str, root: Path | None = None) -> dict[str, Path]:
    """Every ``mww_core`` module the given ones reach through imports, transitively.

    Imports inside functions count: stages import their heavy modules lazily. A package's
    ``__init__`` counts only when something imports the package itself (``from mww_core.model
    import build_model``), not merely because a module inside it was imported.
    """
    seen: dict[str, Path] = {}
    todo = [m if m.startswith("mww_core") else f"mww_core.{m}" for m in modules]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_path(name, root)
        if path is None:  # an attribute such as mww_core.config.FullConfig, not a module
            continue
        seen[name] = path
        todo.extend(_imported_modules(name, path) - seen.keys())
    return seen


def code_fingerprint(*modules: str, root: Path | None = None) -> str:
    """Hash of the source of every ``mww_core`` module the given modules reach (imports,
    transitively), so that any code change a stage could run re-runs it."""
    digest = hashlib.sha256()
    for name, path in sorted(module_closure(*modules, root=root).items()):
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


# The packages whose releases change what a stage makes: the audio, the augmentation, the
# features, the training and the int8 model. Another release of any of them can train another
# model from the same config, data and seed; each stage.json records the ones it ran with.
RECORDED_PACKAGES = (
    "tensorflow-cpu", "tensorflow", "keras", "numpy", "scipy", "audiomentations", "librosa",
    "soxr", "pyworld", "praat-parselmouth", "pyroomacoustics", "pymicro-features",
    "ai-edge-litert", "onnxruntime", "piper-tts", "pymicro-wakeword",
)  # fmt: skip


def package_versions() -> dict[str, str]:
    """Python's version and those of ``RECORDED_PACKAGES`` that are installed."""
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


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
    versions: dict = field(default_factory=dict)  # package_versions() when it ran

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
        versions=package_versions(),
    )
    atomic_write_text(stage_dir / MANIFEST, json.dumps(record.to_dict(), indent=2, default=str))
    marker.unlink(missing_ok=True)
    log.info("%s: done in %.1f s", name, record.finished - started)
    return record
