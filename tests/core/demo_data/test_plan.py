"""Tests for mww_core.demo_data.plan: voices held out per split, near misses in the plan."""

from __future__ import annotations

import pytest

from mww_core.config import DataConfig
from mww_core.demo_data.confusables import normalize
from mww_core.demo_data.corpus import ESPEAK_VOICES, NEAR_MISS_PHRASES
from mww_core.demo_data.plan import _plan_clips, held_out_voices
from tests.core.demo_data.test_build import TINY


def test_held_out_voices_are_checked():
    def voices(**changes) -> dict:
        return held_out_voices(DataConfig(demo=TINY.model_copy(update=changes)))

    assert voices()["test"] == TINY.test_espeak_voices
    with pytest.raises(ValueError, match="test_espeak_voices names 'en-xx'"):
        voices(test_espeak_voices=["en-xx"])
    with pytest.raises(ValueError, match="en-029 named in both"):
        voices(validation_espeak_voices=["en-029"], test_espeak_voices=["en-029"])
    with pytest.raises(ValueError, match="leave at least one for training"):
        voices(validation_espeak_voices=[], test_espeak_voices=list(ESPEAK_VOICES))
    unnamed = voices(test_espeak_voices=[])  # the test keeps variants of its own only
    assert unnamed["test"] == unnamed["train"]


def test_hey_jarvis_near_misses_are_hand_written_and_generated():
    data = DataConfig(demo=TINY.model_copy(update={"near_miss_negatives": 200}))
    clips = _plan_clips(data)
    said = {c.text for c in clips if c.kind == "negative"}
    assert set(NEAR_MISS_PHRASES) <= said
    confusable = " ".join(normalize(c.text) for c in clips if c.kind == "confusable")
    assert "jarvis" in confusable and "hey jarvis" not in confusable
    assert len(said - set(NEAR_MISS_PHRASES)) >= TINY.near_miss_phrases
    assert not any("hey jarvis" in normalize(t) for t in said)


def test_validation_extras_are_added_to_validation_and_leave_every_other_clip_alone():
    before = _plan_clips(DataConfig(demo=TINY))
    extras = {"validation_extra_positives": 5, "validation_extra_near_misses": 7}
    after = _plan_clips(DataConfig(demo=TINY.model_copy(update=extras)))
    assert after[: len(before)] == before  # names, voices, texts and draws unchanged
    added = after[len(before) :]
    assert {c.split for c in added} == {"validation"}
    positives = [c for c in added if c.kind == "positive"]
    near_misses = [c for c in added if c.kind == "negative"]
    assert len(positives) == 5 and len(near_misses) == 7
    assert {c.generator for c in added} == {"piper", "espeak-ng"}
    assert all(c.near_miss for c in near_misses) and not any(c.near_miss for c in positives)
    assert not any("hey jarvis" in normalize(c.text) for c in near_misses)
    training_voices = {c.voice for c in before if c.split == "train" and c.generator != "piper"}
    assert not {c.voice for c in added if c.generator != "piper"} & training_voices
    names = [c.name for c in after]
    assert len(names) == len(set(names))
