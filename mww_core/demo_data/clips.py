"""Spoken clips as written: cut with short margins, levelled, in a condition, over a floor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mww_core.audio import SAMPLE_RATE_HZ, write_wav
from mww_core.demo_data.clock import _StageClock
from mww_core.demo_data.conditions import Hearing, apply_condition
from mww_core.demo_data.corpus import speaker_gender
from mww_core.demo_data.plan import _MAX_MARGIN_S, _POOL_KINDS, _Clip, _rng, _utterance_key
from mww_core.demo_data.rooms import _at_level, _colored_noise, _fade
from mww_core.demo_data.tts import _Rendered, frame_levels_db

SR = SAMPLE_RATE_HZ

# Longest clip written, in seconds, by timing (the limits of its speech: tts._CORE_LIMITS_S);
# a positive is padded to at least _MIN_POSITIVE_S.
_MAX_CLIP_S = {
    "positive": 1.4, "negative": 3.0, "speech": 8.2, "confusable": 8.2, "command": 3.5,
}  # fmt: skip
_MIN_POSITIVE_S = 0.6
# Where a wake word said before a request ends (wake_word_end): the pause before the request
# starts this long after the speech does, and frames this far under the loudest are quiet.
_WAKE_WORD_S = (0.3, 1.3)
_QUIET_DB = -35.0


def _write_clips(
    root: Path,
    clips: list[_Clip],
    rendered: dict[str, _Rendered],
    hearings: dict[str, Hearing],
    clock: _StageClock,
) -> dict[str, dict[str, Any]]:
    """Write every planned clip but the ambient pools' (``hearings``: how each split with
    conditions hears them, the test's and, with ``validation_conditions``, validation's)."""
    files = {}
    written = [c for c in clips if c.kind not in _POOL_KINDS]
    with clock.stage("writing clips", len(written)) as tick:
        for clip in written:
            audio, condition = _finish_clip(clip, rendered[clip.name], hearings.get(clip.split))
            write_wav(root / clip.name, audio)
            files[clip.name] = _clip_meta(clip, rendered[clip.name], len(audio))
            if clip.condition == "command" and clip.split != "test":  # data.demo.command_share
                end = wake_word_end(audio) + clip.trail_s  # the margin a lone wake word has
                files[clip.name]["word_end_s"] = round(min(end, len(audio) / SR), 3)
            elif clip.condition:
                files[clip.name].update(condition=clip.condition, condition_params=condition)
            tick()
    return files


def _finish_clip(
    clip: _Clip, rendered: _Rendered, hearing: Hearing | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """The clip as written: cut, levelled, in its condition (if any), over a noise floor.

    Args:
        clip: The planned clip.
        rendered: Its synthesized speech.
        hearing: Its split's noises, rooms and pitch shifts (for its condition).

    Returns:
        The audio and the condition's parameters (empty without a condition).
    """
    out = _cut_clip(clip, rendered)
    params: dict[str, Any] = {}
    if clip.condition:
        out, params = apply_condition(
            clip.condition, out, _rng(clip.floor_seed, "condition"), hearing or Hearing()
        )
    floor = _colored_noise(np.random.default_rng(clip.floor_seed), len(out), 1.0)
    return (out + _at_level(floor, clip.floor_db)).astype(np.float32), params


def _cut_clip(clip: _Clip, rendered: _Rendered) -> np.ndarray:
    """Cut the speech with short margins (at most 100 ms each side) and set the peak level."""
    audio, start, end = rendered.audio, rendered.start, rendered.end
    max_core = int((_MAX_CLIP_S[clip.timing] - 0.04) * SR)
    end = min(end, start + max_core)
    core = end - start
    lead, trail = int(clip.lead_s * SR), int(clip.trail_s * SR)
    if clip.kind == "positive" and core + lead + trail < _MIN_POSITIVE_S * SR:
        missing = int(_MIN_POSITIVE_S * SR) - core - lead - trail
        lead = min(lead + missing // 2, int(_MAX_MARGIN_S * SR))
        trail = min(trail + missing - missing // 2, int(_MAX_MARGIN_S * SR))
    spare = int(_MAX_CLIP_S[clip.timing] * SR) - core
    if lead + trail > spare:
        lead, trail = lead * spare // (lead + trail), trail * spare // (lead + trail)
    left, right = start - lead, end + trail
    out = audio[max(0, left) : min(len(audio), right)].astype(np.float64)
    out = np.pad(out, (max(0, -left), max(0, right - len(audio))))
    out = _fade(out, int(0.005 * SR), int(0.03 * SR) if end < rendered.end else int(0.005 * SR))
    return out * (clip.peak / max(np.abs(out).max(), 1e-9))


def wake_word_end(audio: np.ndarray) -> float:
    """Seconds into ``audio`` (a wake word and a request said in one breath) where the wake
    word's speech ends: the start of the longest pause between ``_WAKE_WORD_S`` after the
    speech starts, or without a pause the quietest 10 ms there.

    The engines pause at the comma between the two (espeak-ng 100-260 ms up to 190 words a
    minute, Piper 150-280 ms, Pico 300-400 ms); pauses inside the wake word are shorter.
    """
    level = frame_levels_db(audio)
    quiet = level < level.max() + _QUIET_DB
    speech = np.flatnonzero(~quiet)
    if speech.size == 0:
        return len(audio) / SR
    first = int(speech[0])
    low, high = (first + round(s * 100) for s in _WAKE_WORD_S)
    high = min(high, len(level))
    best_start, best_len, run = -1, 0, 0
    for i in range(low, high):
        run = run + 1 if quiet[i] else 0
        if run > best_len:
            best_start, best_len = i - run + 1, run
    if best_len == 0:
        best_start = low + int(np.argmin(level[low:high])) if high > low else len(level)
    return best_start * (SR // 100) / SR


def _clip_meta(clip: _Clip, rendered: _Rendered, samples: int) -> dict[str, Any]:
    near_miss = {"near_miss": True} if clip.near_miss else {}
    return {
        "split": clip.split,
        "kind": clip.kind,
        "generator": clip.generator,
        "voice": clip.voice,
        "gender": speaker_gender(clip.generator, clip.voice),
        "text": clip.text,
        "params": rendered.params,
        "utterance": _utterance_key(clip.generator, clip.voice, rendered.params, clip.text),
        "seconds": round(samples / SR, 3),
        **near_miss,
    }
