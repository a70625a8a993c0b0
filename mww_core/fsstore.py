"""Files addressed by fsspec URL (file://, memory://, s3://, gs://...): read, atomic write, list."""

from __future__ import annotations

import contextlib
import errno
import logging
import posixpath
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import fsspec
from fsspec.core import url_to_fs

from mww_core.atomic import DiskFullError

log = logging.getLogger(__name__)


def to_url(location: str | Path) -> str:
    """A URL for a local path (``file:///abs/path``) or the URL itself when it has a scheme."""
    text = str(location)
    if "://" in text:
        return text.rstrip("/") if not text.endswith(":///") else text
    return Path(text).resolve().as_uri()


def filesystem(url: str | Path) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of ``url`` and the path inside it.

    Raises:
        ValueError: The URL's scheme has no installed fsspec backend (names the package).
    """
    try:
        return url_to_fs(to_url(url))
    except (ImportError, ValueError) as exc:
        raise ValueError(
            f"{url}: no fsspec filesystem for this URL ({exc}); install the backend "
            "(s3fs for s3://, gcsfs for gs://, adlfs for az://) or use a file:// URL"
        ) from exc


def local_path(url: str | Path) -> Path | None:
    """The local path of a ``file://`` URL or plain path; None for every other filesystem."""
    text = str(url)
    if "://" not in text:
        return Path(text)
    if text.startswith("file://"):
        fs, path = filesystem(text)
        return Path(path)
    return None


def join(url: str | Path, *names: str) -> str:
    """``url`` with ``names`` appended as path segments."""
    return posixpath.join(to_url(url), *names)


def exists(url: str | Path) -> bool:
    """Whether a file or folder exists at ``url``."""
    fs, path = filesystem(url)
    return fs.exists(path)


def makedirs(url: str | Path) -> None:
    """Create the folder ``url`` (no-op where folders are implicit, e.g. object stores)."""
    fs, path = filesystem(url)
    fs.makedirs(path, exist_ok=True)


def list_files(url: str | Path, suffix: str = "") -> list[str]:
    """URLs of the files directly in folder ``url`` whose names end with ``suffix``, sorted.

    Hidden names (temporary files of unfinished writes) are left out.
    """
    fs, path = filesystem(url)
    if not fs.exists(path):
        return []
    names = [posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)]
    return sorted(join(url, n) for n in names if n.endswith(suffix) and not n.startswith("."))


def remove(url: str | Path) -> None:
    """Delete the file at ``url`` (missing files are fine)."""
    fs, path = filesystem(url)
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(path)


@contextlib.contextmanager
def open_read(url: str | Path) -> Iterator[IO[bytes]]:
    """Open the file at ``url`` for binary reading (seekable; pyarrow reads it directly)."""
    fs, path = filesystem(url)
    with fs.open(path, "rb") as handle:
        yield handle


def read_bytes(url: str | Path) -> bytes:
    """The whole content of the file at ``url``."""
    fs, path = filesystem(url)
    return fs.cat_file(path)


def parquet_source(url: str | Path) -> str | IO[bytes]:
    """What ``pyarrow.parquet.ParquetFile`` should open: a local path (native, fast I/O) or
    an fsspec file object for any other filesystem (pyarrow reads it through seek/read)."""
    local = local_path(url)
    if local is not None:
        return str(local)
    fs, path = filesystem(url)
    return fs.open(path, "rb")


def _temp_url(url: str) -> str:
    folder, name = posixpath.split(to_url(url))
    return posixpath.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.tmp")


@contextlib.contextmanager
def atomic_write(url: str | Path) -> Iterator[IO[bytes]]:
    """Yield a binary file that appears at ``url`` only once it is complete.

    It is written under a hidden temporary name in the same folder and moved over ``url`` at
    the end (a rename on local disks; object stores make an object visible only when its
    upload completes). An exception removes the temporary file and leaves ``url`` as it was.

    Raises:
        DiskFullError: The local disk filled up while writing.
    """
    fs, path = filesystem(url)
    tmp_fs, tmp = filesystem(_temp_url(url))
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    try:
        with tmp_fs.open(tmp, "wb") as handle:
            yield handle
        fs.mv(tmp, path)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(
                f"{url}: the disk filled up while writing it; nothing was replaced. Free space "
                "and run the same command again: finished work is kept."
            ) from exc
        raise
    finally:
        with contextlib.suppress(FileNotFoundError, OSError):
            if fs.exists(tmp):
                fs.rm_file(tmp)


def upload_atomic(local: Path, url: str | Path) -> None:
    """Copy a finished local file to ``url`` so it appears there complete or not at all."""
    target = local_path(url)
    if target is not None and target.resolve() == Path(local).resolve():
        return
    with atomic_write(url) as out, open(local, "rb") as src:
        while chunk := src.read(1 << 22):
            out.write(chunk)
