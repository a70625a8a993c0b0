"""The bad-input corpus: each file gets its documented outcome; a full disk corrupts nothing."""

from __future__ import annotations

import errno
import logging
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from mww_core.atomic import DiskFullError
from mww_core.audio import AudioError
from mww_core.features.stage import build_features
from mww_core.store import read_windows
from tests.core.features.test_stage import _config, _make_data

# name -> outcome: converted and cached, skipped and reported once, or ignored (not a file).
CONVERTED, SKIPPED, IGNORED = "converted", "skipped", "ignored"


def _write_corpus(folder) -> dict[str, bool]:
    rng = np.random.default_rng(5)
    tone = (0.3 * np.sin(np.arange(16000) * 0.05)).astype(np.float32)
    noise = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    outcome = {}

    def wav(name, data, rate=16000, subtype="PCM_16", fmt=None, expect=CONVERTED):
        sf.write(folder / name, data, rate, subtype=subtype, format=fmt)
        outcome[name] = expect

    wav("rate_8k.wav", noise[:8000], 8000)
    wav("rate_44k.wav", np.tile(noise, 3)[:44100], 44100)
    wav("rate_48k.wav", np.tile(noise, 3)[:48000], 48000)
    wav("bits_8.wav", noise, subtype="PCM_U8")
    wav("bits_24.wav", noise, subtype="PCM_24")
    wav("bits_32.wav", noise, subtype="PCM_32")
    wav("float_32.wav", noise, subtype="FLOAT")
    wav("stereo.wav", np.stack([noise, tone], axis=1))
    wav("silence.wav", np.zeros(16000, np.float32))
    wav("clipped.wav", np.clip(tone * 10, -1, 1))
    wav("speech.mp3", noise, fmt="MP3", subtype=None)
    nan = noise.copy()
    nan[100] = np.nan
    wav("nan.wav", nan, subtype="FLOAT", expect=SKIPPED)
    inf = noise.copy()
    inf[200] = np.inf
    wav("inf.wav", inf, subtype="FLOAT", expect=SKIPPED)
    wav("zero_length.wav", np.zeros(0, np.float32), expect=SKIPPED)
    (folder / "empty.wav").write_bytes(b"")
    outcome["empty.wav"] = SKIPPED
    whole = (folder / "rate_8k.wav").read_bytes()
    (folder / "truncated_header.wav").write_bytes(whole[:20])
    outcome["truncated_header.wav"] = SKIPPED
    (folder / "folder.wav").mkdir()
    outcome["folder.wav"] = IGNORED  # audio sources list files only
    locked = folder / "no_permission.wav"
    sf.write(locked, noise, 16000)
    locked.chmod(0)
    # root reads a file whatever its mode; anyone else cannot.
    outcome["no_permission.wav"] = CONVERTED if os.geteuid() == 0 else SKIPPED
    return outcome


def test_every_bad_input_gets_its_documented_outcome(tmp_path, caplog):
    root = _make_data(tmp_path / "data")
    folder = root / "train" / "negative"
    outcome = _write_corpus(folder)
    with caplog.at_level(logging.WARNING, logger="mww_core.features"):
        result = build_features(_config(root), tmp_path / "out")
    skipped = {b["path"].rsplit("/", 1)[1] for b in result["metrics"]["bad_files"]}
    assert skipped == {name for name, what in outcome.items() if what == SKIPPED}
    for bad in result["metrics"]["bad_files"]:
        assert bad["reason"]  # says what is wrong
        assert sum(bad["path"] in r.getMessage() for r in caplog.records) == 1  # once
    paths = [p for p, _ in result["outputs"]["train_windows"].values()]
    sources = set(read_windows(paths).source)
    for name, what in outcome.items():
        assert (f"train/negative/{name}" in sources) == (what == CONVERTED), name

    with pytest.raises(AudioError) as err:
        build_features(_config(root, strict=True), tmp_path / "strict")
    for name in skipped:
        assert name in str(err.value)


def test_disk_full_while_writing_a_shard_leaves_the_cache_valid(tmp_path, monkeypatch):
    root = _make_data(tmp_path / "data")
    reference = build_features(_config(root), tmp_path / "reference")
    expected = read_windows([p for p, _ in reference["outputs"]["train_windows"].values()])

    # Shards (and streams) are written a row group at a time through ParquetWriter.
    real_write = pq.ParquetWriter.write_table
    calls = {"n": 0}

    def fill_disk(writer, table, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second row group: part of a file, then no space left
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(writer, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", fill_disk)
    out = tmp_path / "out"
    with pytest.raises(DiskFullError, match="disk filled up"):
        build_features(_config(root), out, shard_dir=tmp_path / "shards")
    written = sorted((tmp_path / "shards").glob("*"))
    assert written and all(p.suffix == ".parquet" for p in written)  # no partial temp files
    for path in written:
        pq.read_metadata(path)  # every visible shard is complete

    monkeypatch.setattr(pq.ParquetWriter, "write_table", real_write)
    again = build_features(_config(root), out, shard_dir=tmp_path / "shards")
    got = read_windows([p for p, _ in again["outputs"]["train_windows"].values()])
    assert again["metrics"]["shards_reused"] >= 1
    order, ref_order = np.argsort(got.seed), np.argsort(expected.seed)
    np.testing.assert_array_equal(got.features[order], expected.features[ref_order])
