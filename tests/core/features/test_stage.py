"""Features stage: bad files reported once (or fatal when strict), incremental shards, seeds."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from mww_core.audio import AudioError, write_wav
from mww_core.config import FullConfig
from mww_core.features import place_clip
from mww_core.features.plan import plan_shards, plan_window_jobs
from mww_core.features.stage import build_features
from mww_core.features.streams import iter_streams, split_slips
from mww_core.store import read_streams, read_windows
from tests.conftest import SMALL_MODEL


def _noise(rng, seconds, rate=16000):
    return (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32)


def _make_data(root, n_pos=4, n_neg=6, seed=0):
    """A small data folder of noise "clips" and one long recording per split."""
    rng = np.random.default_rng(seed)
    for split in ("train", "validation", "test"):
        for kind, n in (("positive", n_pos), ("negative", n_neg)):
            for i in range(n if split == "train" else 2):
                write_wav(root / split / kind / f"{kind}_{i:03d}.wav", _noise(rng, 1.0))
        write_wav(root / split / "ambient" / "room.wav", _noise(rng, 4.0))
    return root


def _config(root, **features):
    return FullConfig.model_validate(
        {
            "data": {"data_dir": str(root), "build_demo": False},
            "augmentation": {"positive_copies": 2, "negative_copies": 1},
            "features": {"window_frames": 60, "shard_rows": 8, "num_workers": 1, **features},
            "model": SMALL_MODEL,
        }
    )


def _add_bad_and_odd_files(folder):
    rng = np.random.default_rng(1)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all" * 8)
    (folder / "empty.wav").write_bytes(b"")
    sf.write(folder / "rate_8k.wav", _noise(rng, 1.0, 8000), 8000, subtype="PCM_16")
    stereo = np.stack([_noise(rng, 1.0, 44100), _noise(rng, 1.0, 44100)], axis=1)
    sf.write(folder / "stereo_24bit.wav", stereo, 44100, subtype="PCM_24")
    sf.write(folder / "speech.mp3", _noise(rng, 1.0, 22050), 22050, format="MP3")


def test_bad_files_are_reported_once_and_good_ones_cached(tmp_path, caplog):
    root = _make_data(tmp_path / "data")
    _add_bad_and_odd_files(root / "train" / "negative")
    config = _config(root)
    with caplog.at_level(logging.WARNING, logger="mww_core.features"):
        result = build_features(config, tmp_path / "out")
    bad = result["metrics"]["bad_files"]
    assert [b["path"] for b in bad] == [
        str(root / "train/negative/corrupt.wav"),
        str(root / "train/negative/empty.wav"),
    ]
    assert "empty" in bad[1]["reason"] and "corrupt" in bad[0]["reason"]
    for b in bad:  # one log line per bad file, naming it
        assert sum(b["path"] in r.getMessage() for r in caplog.records) == 1
    paths = [p for p, _ in result["outputs"]["train_windows"].values()]
    sources = set(read_windows(paths).source)
    for converted in ("rate_8k.wav", "stereo_24bit.wav", "speech.mp3"):
        assert f"train/negative/{converted}" in sources
    assert not any("corrupt" in s or "empty" in s for s in sources)


def test_strict_fails_naming_every_bad_file(tmp_path):
    root = _make_data(tmp_path / "data")
    _add_bad_and_odd_files(root / "train" / "negative")
    (root / "test" / "ambient" / "broken.flac").write_bytes(b"fLaC garbage")
    with pytest.raises(AudioError) as info:
        build_features(_config(root, strict=True), tmp_path / "out")
    message = str(info.value)
    for name in ("corrupt.wav", "empty.wav", "broken.flac"):
        assert name in message
    assert "rate_8k" not in message and "speech.mp3" not in message


def test_adding_ten_negatives_recomputes_only_their_shards(tmp_path):
    root = _make_data(tmp_path / "data", n_pos=4, n_neg=40)
    config = _config(root, shard_rows=6)
    first = build_features(config, tmp_path / "out")
    before = set(first["outputs"]["train_windows"])
    assert first["metrics"]["shards_reused"] == 0

    rng = np.random.default_rng(7)
    for i in range(10):
        write_wav(root / "train" / "negative" / f"new_{i:02d}.wav", _noise(rng, 1.0))
    second = build_features(config, tmp_path / "out")
    after = set(second["outputs"]["train_windows"])

    plans = plan_shards(config, plan_window_jobs(config))
    computed = second["metrics"]["shards_computed"]
    # Each new file lands in one old shard, which is replaced (split in two when the new
    # file starts a shard); every other shard is reused as it was.
    assert computed == len(after - before)
    assert 0 < len(before - after) <= 10 and computed <= len(before - after) + 10
    assert second["metrics"]["shards_reused"] == len(plans) - computed == len(before & after)
    assert len(before & after) > len(plans) // 2
    new_rows = sum(len(p.jobs) for p in plans if p.file_name[:-8] in after - before)
    assert new_rows < second["metrics"]["train_windows"] // 2
    assert second["metrics"]["train_windows"] == first["metrics"]["train_windows"] + 10
    # No leftovers: the shard folder holds exactly the current shards.
    assert {p.stem for p in (tmp_path / "out" / "shards").glob("*.parquet")} == after


def test_features_do_not_depend_on_worker_count(tmp_path):
    root = _make_data(tmp_path / "data", n_pos=3, n_neg=3)
    one = build_features(_config(root, num_workers=1), tmp_path / "a")
    two = build_features(_config(root, num_workers=2), tmp_path / "b")
    a = read_windows([p for p, _ in one["outputs"]["train_windows"].values()])
    b = read_windows([p for p, _ in two["outputs"]["train_windows"].values()])
    np.testing.assert_array_equal(a.features, b.features)
    assert list(a.source) == list(b.source) and a.features.any()
    for split in ("train", "validation", "test"):  # streams: made in the workers, or not
        pooled = read_streams(two["outputs"]["streams"][split])
        here = list(iter_streams(_config(root), split))
        assert [s.source for s in pooled] == [s.source for s in here] and len(here) == 3
        for p, h in zip(pooled, here, strict=True):
            np.testing.assert_array_equal(p.features, h.features)
            assert p.spans == h.spans and p.features.any()


def test_place_clip_fills_the_gap_after_the_word_with_the_continuation():
    word, after = np.full(500, 0.5, np.float32), np.arange(1, 801, dtype=np.float32)
    plain = place_clip(word, 1000, 300)
    followed = place_clip(word, 1000, 300, after)
    np.testing.assert_array_equal(followed[:700], plain[:700])  # the word ends where it did
    assert (plain[700:] == 0).all()
    np.testing.assert_array_equal(followed[700:], after[:300])  # as far as the gap reaches
    np.testing.assert_array_equal(place_clip(word, 1000, 0, after), place_clip(word, 1000, 0))


def test_continuations_follow_a_seeded_share_of_positives_with_the_splits_negatives(tmp_path):
    root = _make_data(tmp_path / "data", n_pos=40, n_neg=6)
    plain = plan_window_jobs(_config(root))
    jobs = plan_window_jobs(_config(root, continuation_probability=0.5))
    assert not any(j.follow for j in plain)
    followed = [j for j in jobs if j.follow]
    assert all(j.kind == "positive" for j in followed)
    assert 25 <= len(followed) <= 55  # half of 80 positive windows (40 clips x 2 copies)
    negatives = {j.source for j in jobs if j.kind == "negative"}
    assert {j.follow for j in followed} <= negatives and len({j.follow for j in followed}) > 3
    assert jobs == plan_window_jobs(_config(root, continuation_probability=0.5))
    # Apart from the continuation, every job is the one planned without it.
    assert [replace(j, follow="") for j in jobs] == plain


def test_continued_positives_differ_only_after_the_word(tmp_path):
    root = _make_data(tmp_path / "data", n_pos=4, n_neg=3)
    quiet = np.zeros(16000, np.float32)  # positives end in silence: a continuation shows
    for path in (root / "train" / "positive").glob("*.wav"):
        write_wav(path, np.concatenate([_noise(np.random.default_rng(5), 0.5), quiet[:100]]))

    def config(**features):  # unaugmented: levels and noise depend on the whole window
        made = _config(root, end_jitter_ms=(200, 300), **features)
        plain_audio = made.augmentation.model_copy(update={"enabled": False})
        return made.model_copy(update={"augmentation": plain_audio})

    plain = build_features(config(), tmp_path / "a")
    followed = build_features(config(continuation_probability=1.0), tmp_path / "b")
    a = read_windows([p for p, _ in plain["outputs"]["train_windows"].values()])
    b = read_windows([p for p, _ in followed["outputs"]["train_windows"].values()])
    assert list(a.source) == list(b.source)
    positive = a.label == 1
    # The frontend is causal: up to the word's end (200-300 ms before the end of the 600 ms
    # window) every frame is the same; the continuation is heard at most 100 ms after it.
    np.testing.assert_array_equal(a.features[positive, :27], b.features[positive, :27])
    assert (a.features[positive, 52:] != b.features[positive, 52:]).any(axis=(1, 2)).all()
    np.testing.assert_array_equal(a.features[~positive], b.features[~positive])


def test_a_wake_word_said_before_a_request_ends_its_windows_at_the_word(tmp_path):
    # Each positive is a word (0.5 s of noise), a pause and a request (0.4 s of louder noise);
    # dataset.json gives the first two their word ends, the others none.
    root = _make_data(tmp_path / "data", n_pos=4, n_neg=2)
    rng = np.random.default_rng(9)
    word, request = _noise(rng, 0.5), 3 * _noise(rng, 0.4)
    alone = tmp_path / "alone"  # the same data set with each positive the word alone
    shutil.copytree(root, alone)
    for path in sorted((root / "train" / "positive").glob("*.wav")):
        write_wav(path, np.concatenate([word, np.zeros(1600, np.float32), request]))
        write_wav(alone / "train" / "positive" / path.name, word)
    ended = {f"train/positive/positive_00{i}.wav": {"word_end_s": 0.5} for i in (0, 1)}
    (root / "dataset.json").write_text(json.dumps({"files": ended}))
    jobs = plan_window_jobs(_config(root))
    assert {j.source: j.word_end_s for j in jobs if j.kind == "positive"} == {
        **dict.fromkeys(ended, 0.5),
        "train/positive/positive_002.wav": 0.0,
        "train/positive/positive_003.wav": 0.0,
    }

    def positives(folder, gap_ms):  # unaugmented: levels and noise depend on the whole window
        made = _config(folder, end_jitter_ms=(gap_ms, gap_ms))
        plain = made.augmentation.model_copy(update={"enabled": False})
        out = build_features(
            made.model_copy(update={"augmentation": plain}), tmp_path / f"{folder.name}{gap_ms}"
        )
        got = read_windows([p for p, _ in out["outputs"]["train_windows"].values()])
        return {s: got.features[i] for i, s in enumerate(got.source) if "positive" in s}

    bad = {**ended, "train/positive/positive_002.wav": {"word_end_s": "0.5 s"}}
    (root / "dataset.json").write_text(json.dumps({"files": bad}))
    with pytest.raises(AudioError, match=r"word_end_s of train/positive/positive_002.wav is '0.5"):
        plan_window_jobs(_config(root))
    (root / "dataset.json").write_text(json.dumps({"files": ended}))

    marked, unmarked = "train/positive/positive_000.wav", "train/positive/positive_002.wav"
    # With no gap after the word, a marked clip's window is the word's alone; an unmarked
    # clip's window ends with the request.
    said, word_alone = positives(root, 0), positives(alone, 0)
    np.testing.assert_array_equal(said[marked], word_alone[marked])
    assert (said[unmarked] != word_alone[unmarked]).any()
    # 250 ms after the word, the window hears the request: louder than the word's silence.
    said, word_alone = positives(root, 250), positives(alone, 250)
    tail, quiet = said[marked][-10:].astype(float), word_alone[marked][-10:].astype(float)
    assert tail.mean() > quiet.mean() + 5


def test_an_unusable_continuation_leaves_the_positive_and_is_reported_once(tmp_path):
    root = _make_data(tmp_path / "data", n_pos=6, n_neg=1)
    _add_bad_and_odd_files(root / "train" / "negative")
    config = _config(root, continuation_probability=1.0)
    assert any(j.follow.endswith(("corrupt.wav", "empty.wav")) for j in plan_window_jobs(config))
    result = build_features(config, tmp_path / "out")
    assert sorted(b["path"] for b in result["metrics"]["bad_files"]) == [
        str(root / "train/negative/corrupt.wav"),
        str(root / "train/negative/empty.wav"),
    ]
    windows = read_windows([p for p, _ in result["outputs"]["train_windows"].values()])
    assert (windows.label == 1).sum() == 6 * 2  # every positive copy, continued or not


def test_near_miss_copies_apply_to_the_clips_the_manifest_marks(tmp_path):
    root = _make_data(tmp_path / "data", n_pos=2, n_neg=4)
    marked = ["train/negative/negative_001.wav", "train/negative/negative_003.wav"]
    files = {name: {"kind": "negative", "near_miss": True} for name in marked}
    files["train/negative/negative_000.wav"] = {"kind": "negative"}
    (root / "dataset.json").write_text(json.dumps({"files": files}))

    def copies(config):
        jobs = [j for j in plan_window_jobs(config) if j.kind != "ambient"]
        return {j.source: sum(k.source == j.source for k in jobs) for j in jobs}

    base = _config(root)
    boosted = base.model_copy(
        update={"augmentation": base.augmentation.model_copy(update={"near_miss_copies": 5})}
    )
    assert set(copies(base).values()) == {1, 2}  # negatives 1, positives 2: unset, no boost
    got = copies(boosted)
    assert {s for s, n in got.items() if n == 5} == set(marked)
    assert got["train/negative/negative_000.wav"] == 1
    assert got["train/positive/positive_000.wav"] == 2
    for broken in ("{not json", '{"files": ["train/negative/negative_001.wav"]}'):
        (root / "dataset.json").write_text(broken)
        with pytest.raises(AudioError, match="dataset.json: cannot read what it says of each"):
            plan_window_jobs(boosted)


def test_slips_are_marked_on_the_split_streams_clips_in_stream_order(tmp_path):
    root = _make_data(tmp_path / "data", n_pos=2, n_neg=2)
    rng = np.random.default_rng(3)
    write_wav(root / "validation" / "negative" / "negative_002.wav", _noise(rng, 1.0))
    said = {
        "negative_000": "kay jarvis",  # one phoneme from the wake word: a slip
        "negative_001": "The bus was late.",
        "negative_002": "hey travis",
    }
    files = {
        f"validation/negative/{stem}.wav": {
            "text": text,
            "near_miss": "jarvis" in text or "travis" in text,
        }
        for stem, text in said.items()
    }
    files["validation/ambient/room.wav"] = {
        "near_misses": [{"start_s": 1.0, "seconds": 1.5, "text": "Kay Jarvis, look."}]
    }
    phrases = [
        {"text": "kay jarvis", "spoken_distance": 1},
        {"text": "hey travis", "spoken_distance": 3},
    ]
    (root / "dataset.json").write_text(json.dumps({"near_miss_phrases": phrases, "files": files}))
    config = _config(root)
    streams = list(iter_streams(config, "validation"))

    slips = split_slips(config, "validation", streams, 2)
    assert slips.negative.tolist() == [True, False, False]
    assert slips.ambient == {"validation/ambient/room.wav": [(8000, 56000)]}
    assert split_slips(config, "validation", streams, 1) is None
    # An unusable clip leaves the stream one clip short: nothing is marked, not the wrong clips.
    (root / "validation" / "negative" / "negative_001.wav").write_bytes(b"not audio")
    short = list(iter_streams(config, "validation", errors={}))
    assert split_slips(config, "validation", short, 2) is None
