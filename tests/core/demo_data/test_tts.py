"""Tests for mww_core.demo_data.tts: the Piper voice's accents, SVOX Pico's, MBROLA's and
RHVoice's settings."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mww_core.config import DataConfig
from mww_core.demo_data.clips import wake_word_end
from mww_core.demo_data.clock import _StageClock
from mww_core.demo_data.corpus import speaker_gender
from mww_core.demo_data.plan import PIPER_ACCENT, _plan_clips
from mww_core.demo_data.tts import (
    _espeak_audio,
    _load_piper_voice,
    _mbrola_audio,
    _pico_audio,
    _piper_audio,
    _PiperRun,
    _rhvoice_audio,
    _speech_bounds,
    frame_levels_db,
    piper_chunks,
)
from tests.core.demo_data.test_build import TINY

# No noise: Piper is then deterministic, so any difference comes from the accent.
STILL = {"length_scale": 1.0, "noise_scale": 0.0, "noise_w_scale": 0.0}


def test_an_accent_changes_how_piper_says_the_wake_word_and_is_undone_after():
    voice = _load_piper_voice(ort_seed=0)
    # The planner leaves clips in the voice's own accent as plain "joe", and keeps that accent
    # out of the others: it must be the one the voice ships with.
    assert voice.config.espeak_voice == PIPER_ACCENT
    own = _piper_audio(voice, "Hey Jarvis", STILL, "joe")
    assert np.array_equal(own, _piper_audio(voice, "Hey Jarvis", STILL, "joe+en-us"))
    # Other phonemes ("eː dʒɑːvɪs" in Welsh English, "heː dʒaːrvɪs" in Scottish English), so
    # other sounds of other lengths.
    for accent in ("en-gb-x-gbcwmd", "en-gb-scotland"):
        spoken = _piper_audio(voice, "Hey Jarvis", STILL, f"joe+{accent}")
        assert abs(len(spoken) - len(own)) > 320, accent  # 20 ms at 16 kHz
    assert np.array_equal(own, _piper_audio(voice, "Hey Jarvis", STILL, "joe"))


def _median_pitch_hz(audio: np.ndarray, sr: int = 16_000) -> float:
    """Median autocorrelation pitch over the voiced 40 ms frames (70-400 Hz)."""
    frame, found = 640, []
    for start in range(0, len(audio) - frame, frame // 2):
        x = audio[start : start + frame] - audio[start : start + frame].mean()
        if np.sqrt((x**2).mean()) < 0.02:
            continue
        ac = np.correlate(x, x, "full")[frame - 1 :]
        low, high = sr // 400, sr // 70
        lag = low + int(np.argmax(ac[low:high]))
        if ac[lag] > 0.5 * ac[0]:
            found.append(sr / lag)
    return float(np.median(found))


def test_pico_says_the_wake_word_at_its_pitch_and_speed():
    plain = {"pitch": 100, "speed": 100}
    own = _pico_audio("en-US", "Hey Jarvis", plain)
    assert own.dtype == np.float32 and 0.4 < len(own) / 16_000 < 2.0
    assert np.array_equal(own, _pico_audio("en-US", "Hey Jarvis", plain))  # deterministic
    slow = _pico_audio("en-US", "Hey Jarvis", {"pitch": 100, "speed": 70})
    assert len(slow) > 1.2 * len(own)
    pitch = _median_pitch_hz(own)  # about 160 Hz

    def pitch_at(level: int) -> float:
        return _median_pitch_hz(_pico_audio("en-US", "Hey Jarvis", {**plain, "pitch": level}))

    assert pitch_at(150) / pitch > 1.3 and pitch_at(65) / pitch < 0.8
    # The other voice is another speaker; markup characters in a text are said, not parsed.
    assert not np.array_equal(own, _pico_audio("en-GB", "Hey Jarvis", plain))
    assert len(_pico_audio("en-GB", "Salt & pepper <now>", plain)) > 16_000 * 0.5
    assert speaker_gender("pico", "en-GB") == "female"


def _check_pitch_and_speakers(
    engine: str,
    say,
    voices: tuple[str, str],
    plain: dict,
    levels: tuple[int, int],
    bounds: tuple[float, float],
) -> None:
    """A man's voice of ``engine`` said at the low and high pitch levels of ``levels`` moves
    its median pitch below and above ``bounds`` (ratios to its pitch at ``plain``); the
    woman's voice speaks higher than the man's, and both have their gender."""
    man, woman = voices
    own = _median_pitch_hz(say(man, "Hey Jarvis", plain))
    low, high = (_median_pitch_hz(say(man, "Hey Jarvis", {**plain, "pitch": level})) / own
                 for level in levels)  # fmt: skip
    assert low < bounds[0] and high > bounds[1], (low, high)
    assert _median_pitch_hz(say(woman, "Hey Jarvis", plain)) > 1.3 * own
    assert speaker_gender(engine, woman) == "female" and speaker_gender(engine, man) == "male"


def test_mbrola_says_the_wake_word_in_four_voices_at_its_pitch_and_speed():
    plain = {"pitch": 50, "speed": 160}
    own = _mbrola_audio("mb-us2", "Hey Jarvis", plain)
    assert own.dtype == np.float32 and 0.4 < len(own) / 16_000 < 2.0
    assert np.array_equal(own, _mbrola_audio("mb-us2", "Hey Jarvis", plain))  # deterministic
    # Another kind of speech than espeak-ng's own voice: diphones of a recorded speaker.
    assert not np.array_equal(own[:4000], _espeak_audio("en-us", "Hey Jarvis", {**plain,
                              "word_gap": 0})[:4000])  # fmt: skip
    slow = _mbrola_audio("mb-us2", "Hey Jarvis", {**plain, "speed": 110})
    assert len(slow) > 1.2 * len(own)
    _check_pitch_and_speakers("mbrola", _mbrola_audio, ("mb-us2", "mb-us1"), plain, (12, 90),
                              (0.9, 1.15))  # fmt: skip
    assert speaker_gender("mbrola", "mb-en1") == "male"
    assert len(_mbrola_audio("mb-en1", "Turn on the lights", plain)) > 16_000 * 0.5


def test_rhvoice_says_the_wake_word_in_two_speakers_at_its_pitch_and_rate():
    plain = {"pitch": 100, "speed": 100}
    own = _rhvoice_audio("bdl", "Hey Jarvis", plain)
    assert own.dtype == np.float32 and 0.4 < len(own) / 16_000 < 2.0
    assert np.array_equal(own, _rhvoice_audio("bdl", "Hey Jarvis", plain))  # deterministic
    slow = _rhvoice_audio("bdl", "Hey Jarvis", {**plain, "speed": 65})
    fast = _rhvoice_audio("bdl", "Hey Jarvis", {**plain, "speed": 150})
    assert len(slow) > 1.3 * len(own) > 1.3 * 1.3 * len(fast)
    _check_pitch_and_speakers("rhvoice", _rhvoice_audio, ("bdl", "clb"), plain, (65, 145),
                              (0.8, 1.25))  # fmt: skip


def test_a_missing_engine_names_the_field_and_the_packages(monkeypatch, tmp_path):
    from mww_core.demo_data import tts

    for engine in ("pico", "mbrola", "rhvoice"):
        tts.require_engine(engine)  # installed by make system-deps
    # Voice folders without the voices. RHVoice-test would say a missing voice in its default
    # one, without a word: the build must stop first.
    monkeypatch.setattr(tts, "MBROLA_DIR", tmp_path)
    monkeypatch.setattr(tts, "RHVOICE_DIR", tmp_path)
    with pytest.raises(
        RuntimeError, match="mb-us1.*mbrola_positives.*make system-deps.*mbrola-us1"
    ):
        tts.require_engine("mbrola")
    with pytest.raises(RuntimeError, match="bdl, clb are.*make system-deps.*rhvoice-english"):
        tts.require_engine("rhvoice")
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without the programs
    with pytest.raises(RuntimeError, match="program pico2wave .*pico_share.*libttspico-utils"):
        tts.require_engine("pico")
    with pytest.raises(RuntimeError, match="program RHVoice-test is"):
        tts.require_engine("rhvoice")


def test_retiming_stays_inside_the_split_settings_it_was_drawn_from():
    from mww_core.demo_data.plan import PICO_RANGES, PIPER_RANGES, _Clip
    from mww_core.demo_data.tts import _retimed

    def clip(generator: str, split: str, params: dict) -> _Clip:
        return _Clip("x.wav", split, "positive", generator, "v", "hey", tuple(params.items()))

    # Pico: a higher speed level is faster; a test clip stays in the test span it came from.
    slow = clip("pico", "test", {"pitch": 150, "speed": 70, "formant_ratio": 0.9})
    assert _retimed(slow, dict(slow.params), faster=True)["speed"] == 73  # 84, held at 73
    assert _retimed(slow, dict(slow.params), faster=False)["speed"] == 65  # 59.5, held at 65
    train = clip("pico", "train", {"pitch": 100, "speed": 100})
    assert _retimed(train, dict(train.params), faster=True)["speed"] == 120
    assert PICO_RANGES["train"]["speed"] == ((80.0, 125.0),)
    # MBROLA (espeak-ng's words a minute): likewise.
    fast = clip("mbrola", "validation", {"pitch": 72, "speed": 205, "formant_ratio": 1.06})
    assert _retimed(fast, dict(fast.params), faster=True)["speed"] == 212  # 246, held at 212
    assert _retimed(fast, dict(fast.params), faster=False)["speed"] == 201  # 174, held at 201
    # A test clip drawn from training's settings (an engine heard in the test only) keeps them.
    unheard = replace(clip("mbrola", "test", {"pitch": 50, "speed": 190}), region="train")
    assert _retimed(unheard, dict(unheard.params), faster=True)["speed"] == 200  # 228, at 200
    # Piper: a longer length_scale is slower.
    piper = clip("piper", "validation", {"length_scale": 1.27, "noise_scale": 0.9})
    assert _retimed(piper, dict(piper.params), faster=True)["length_scale"] == 1.25
    assert _retimed(piper, dict(piper.params), faster=False)["length_scale"] == 1.3
    assert (1.25, 1.3) in PIPER_RANGES["validation"]["length_scale"]


@pytest.mark.parametrize("voice,speed", [("en-us+m3", 140), ("en-gb-x-rp+f2", 190)])
def test_the_end_of_a_wake_word_said_before_a_request_is_found(voice, speed):
    params = {"pitch": 50, "speed": speed, "word_gap": 0}
    alone = _espeak_audio(voice, "hey jarvis", params)
    said = _espeak_audio(voice, "hey jarvis, open the blinds", params)
    _, word_end = _speech_bounds(alone)
    start, _ = _speech_bounds(said)
    found = wake_word_end(said[start:])  # as written: the speech starts near the clip's start
    # Within 60 ms of where the wake word said alone ends (a comma shortens its last vowel).
    assert abs(found - (word_end - _speech_bounds(alone)[0]) / 16_000) < 0.06
    # It is the start of the pause before the request: the next 60 ms are quiet.
    levels = frame_levels_db(said[start:])
    at = int(round(found * 100))
    assert (levels[at : at + 6] < levels.max() - 35).all() and levels[at - 1] > levels.max() - 35


def test_a_change_to_the_tests_piper_clips_leaves_trainings_audio_alone():
    """Piper's noise runs on from clip to clip in a process: the test's clips are rendered
    apart, so a test clip said otherwise does not redraw the training clips after it."""
    piper = [c for c in _plan_clips(DataConfig(demo=TINY)) if c.generator == "piper"]
    train = [c for c in piper if c.split == "train"][:3]
    test = next(c for c in piper if c.split == "test")
    clips = [train[0], test, train[1], train[2]]  # interleaved: each chunk would hold a test clip
    assert {name: [c.split for c in chunk] for name, chunk in piper_chunks(clips)} == {
        "train 0": ["train", "train"], "train 1": ["train"], "test": ["test"]
    }  # fmt: skip

    def render(clips):
        with _PiperRun(clips, seed=7) as run:
            rendered = run.collect(_StageClock(None))
        return {name: clip.audio for name, clip in rendered.items()}

    before = render(clips)
    after = render([train[0], replace(test, text="hey jarvis, turn on the lights"), *train[1:]])
    assert len(after[test.name]) > len(before[test.name]) + 8000  # the test clip changed
    for clip in train:
        assert np.array_equal(before[clip.name], after[clip.name]), clip.name
