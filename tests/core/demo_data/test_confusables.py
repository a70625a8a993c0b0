"""Tests for mww_core.demo_data.confusables: near misses from the CMU dictionary and espeak-ng."""

from __future__ import annotations

import re

import pronouncing
import pytest

from mww_core.demo_data.confusables import (
    EXTRA,
    PART,
    SUBSTITUTION,
    generate_confusables,
    spoken_phones,
    word_pronunciations,
)

WAKE_WORDS = ("hey jarvis", "okay computer", "ok nabu")  # "nabu" is not in the CMU dictionary


def _levenshtein(a: list[str], b: list[str]) -> int:
    """Edit distance written out again here, so the module's own cannot hide a mistake."""
    rows = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            rows[i][j] = min(
                rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
    return rows[-1][-1]


def _cmu(text: str) -> list[list[str]]:
    """Every CMU pronunciation of a phrase (stress removed); espeak-ng's for unknown words."""
    prons: list[list[str]] = [[]]
    for word in text.split():
        options = [re.sub(r"\d", "", p).split() for p in pronouncing.phones_for_word(word)]
        options = options or [list(spoken_phones([word])[0])]
        prons = [p + o for p in prons for o in options]
    return prons


@pytest.fixture(scope="module")
def generated() -> dict[str, list]:
    return {w: generate_confusables(w, max_distance=2, count=30, seed=5) for w in WAKE_WORDS}


def test_no_phrase_says_the_wake_word(generated):
    for wake, phrases in generated.items():
        wake_prons = [" ".join(p) for p in _cmu(wake)] + [" ".join(spoken_phones([wake])[0])]
        assert len(phrases) >= 20, wake
        for c in phrases:
            assert f" {wake} " not in f" {c.text} ", (wake, c.text)
            heard = [" ".join(p) for p in _cmu(c.text)] + [" ".join(c.phones)]
            assert not any(f" {w} " in f" {h} " for w in wake_prons for h in heard), c


def test_every_phrase_is_at_its_stated_distance(generated):
    for wake, phrases in generated.items():
        spoken_wake = list(spoken_phones([wake])[0])
        spoken = spoken_phones([c.text for c in phrases])
        for c, said in zip(phrases, spoken, strict=True):
            closest = min(_levenshtein(p, w) for p in _cmu(c.text) for w in _cmu(wake))
            assert c.distance == closest, c
            assert tuple(said) == c.phones
            assert c.spoken_distance == _levenshtein(list(said), spoken_wake), c
            if c.kind == SUBSTITUTION:
                assert 1 <= c.distance <= 2 and 1 <= c.spoken_distance <= 2, c
        kinds = [c.kind for c in phrases]
        assert kinds.count(PART) == 2 and kinds.count(SUBSTITUTION) == 30, wake
        assert {c.text for c in phrases if c.kind == PART} == set(wake.split())


def test_one_edit_limit_and_the_examples_of_the_issue():
    phrases = generate_confusables("okay computer", max_distance=1, count=500, seed=0)
    near = {c.text: c for c in phrases if c.kind == SUBSTITUTION}
    assert {"okay commuter", "okay compute", "okay computes"} <= set(near)
    assert all(c.distance == 1 and c.spoken_distance == 1 for c in near.values())
    wider = generate_confusables("okay computer", max_distance=2, count=500, seed=0)
    assert {"hey computer", "okay computed"} <= {c.text for c in wider}
    assert "ok computer" not in {c.text for c in wider}  # "ok" sounds like "okay": the wake word


def test_same_seed_same_phrases_other_seed_other_draw():
    first = generate_confusables("okay computer", count=25, seed=3)
    assert first == generate_confusables("okay computer", count=25, seed=3)
    other = generate_confusables("okay computer", count=25, seed=4)
    assert [c.text for c in first] != [c.text for c in other]


def test_extra_phrases_are_kept_unless_they_say_the_wake_word():
    phrases = generate_confusables(
        "hey jarvis", count=5, seed=1, extra=["hey travis", "Hey, Jarvis!", "say hey jarvis now"]
    )
    extra = [c for c in phrases if c.kind == EXTRA]
    assert [c.text for c in extra] == ["hey travis"]
    assert extra[0].distance == 3  # JH AA R V -> T R AE V: two substitutions and a deletion


def test_words_missing_from_the_dictionary_are_pronounced_by_espeak():
    assert not pronouncing.phones_for_word("nabu")
    assert word_pronunciations("nabu") == [("N", "AA", "B", "UW")]
    # espeak-ng's IPA maps onto the dictionary's phones for a word both know.
    assert spoken_phones(["okay computer"])[0] in {tuple(p) for p in _cmu("okay computer")}


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="max_distance"):
        generate_confusables("hey jarvis", max_distance=0)
    with pytest.raises(ValueError, match="no letters"):
        generate_confusables("?!")
