"""Tests for mww_core.demo_data.tts: the Piper voice's accents."""

from __future__ import annotations

import numpy as np

from mww_core.demo_data.plan import PIPER_ACCENT
from mww_core.demo_data.tts import _load_piper_voice, _piper_audio

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
