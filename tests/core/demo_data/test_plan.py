"""Tests for mww_core.demo_data.plan: voices held out per split, near misses in the plan."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mww_core.config import DataConfig, DemoDataConfig
from mww_core.demo_data.conditions import CONDITIONS, VALIDATION_CONDITIONS
from mww_core.demo_data.confusables import normalize
from mww_core.demo_data.corpus import (
    COMMANDS,
    ESPEAK_VOICES,
    NEAR_MISS_PHRASES,
    TRAINING_COMMANDS,
    _wake_word_variants,
    near_miss_phrases,
)
from mww_core.demo_data.plan import MINING_POOL, _plan_clips, held_out_voices
from mww_core.evaluation.slips import said_distance
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


def test_piper_accents_are_training_voices_and_leave_validation_and_test_alone():
    update = {"piper_accent_share": 0.5, "piper_positives": 60, "mining_minutes": 2.0}
    before = _plan_clips(
        DataConfig(demo=TINY.model_copy(update={**update, "piper_accent_share": 0}))
    )
    after = _plan_clips(DataConfig(demo=TINY.model_copy(update=update)))
    assert len(after) == len(before)
    piper = [c for c in after if c.generator == "piper"]
    assert {c.voice for c in piper if c.split in ("validation", "test")} == {"joe"}
    trained = [c.voice for c in piper if c.split in ("train", MINING_POOL)]
    assert 0.3 < trained.count("joe") / len(trained) < 0.7  # about half in the voice's own
    accents = {v.partition("+")[2] for v in trained} - {""}
    train_voices = held_out_voices(DataConfig(demo=TINY))["train"]
    assert len(accents) > 1 and accents <= set(train_voices) - {"en-us"}
    assert not accents & {*TINY.test_espeak_voices, *TINY.validation_espeak_voices}
    # Every other choice is the one made without accents.
    plain = [replace(c, voice="joe") if c.generator == "piper" else c for c in after]
    assert plain == before


# TINY without its third and fourth engines: Piper and espeak-ng only.
TWO_ENGINES = {
    "pico_positives": 0, "pico_share": 0.0, "mbrola_positives": 0, "mbrola_share": 0.0,
    "rhvoice_positives": 0, "rhvoice_share": 0.0,
}  # fmt: skip


def test_mining_piper_share_moves_mining_utterances_to_piper_only():
    before = _plan_clips(DataConfig(demo=TINY.model_copy(update=TWO_ENGINES)))
    after = _plan_clips(
        DataConfig(demo=TINY.model_copy(update={**TWO_ENGINES, "mining_piper_share": 0.5}))
    )

    def mining(clips, generator):
        return [c for c in clips if c.split == MINING_POOL and c.generator == generator]

    assert [c for c in after if c.split != MINING_POOL] == [
        c for c in before if c.split != MINING_POOL
    ]
    total = len(mining(before, "espeak-ng"))
    assert not mining(before, "piper")
    assert len(mining(after, "piper")) == pytest.approx(total / 2, abs=2)
    assert len(mining(after, "piper")) + len(mining(after, "espeak-ng")) == total
    assert {c.kind for c in mining(after, "piper")} == {"speech", "confusable"}
    with pytest.raises(ValueError, match="mining_piper_share"):
        DemoDataConfig(mining_piper_share=1.5)


def test_espeak_female_share_swaps_training_voices_only():
    from mww_core.demo_data.corpus import _female_variants

    female = _female_variants()
    assert {"f1", "f3", "Alicia", "linda"} <= female and not {"m1", "klatt", "adam"} & female

    def is_female(clip):
        return clip.voice.partition("+")[2] in female

    update = {"espeak_positives": 200, "mining_minutes": 2.0}
    before = _plan_clips(DataConfig(demo=TINY.model_copy(update=update)))
    after = _plan_clips(
        DataConfig(demo=TINY.model_copy(update={**update, "espeak_female_share": 0.6}))
    )
    assert len(after) == len(before)
    trained = [c for c in after if c.generator == "espeak-ng" and c.split in ("train", MINING_POOL)]
    dealt = [c for c in before if c.generator == "espeak-ng" and c.split in ("train", MINING_POOL)]
    assert sum(map(is_female, dealt)) / len(dealt) < 0.35  # as dealt: about a fifth
    assert 0.5 < sum(map(is_female, trained)) / len(trained) < 0.7

    # Training's own voices only; validation, test and every other choice as before.
    def variants(clips):
        return {c.voice.partition("+")[2] for c in clips if c.generator == "espeak-ng"}

    held_out = variants(c for c in before if c.split in ("validation", "test"))
    assert held_out and not variants(trained) & held_out
    assert [replace(c, voice="") for c in after] == [replace(c, voice="") for c in before]
    assert [c for c in after if c.split in ("validation", "test")] == [
        c for c in before if c.split in ("validation", "test")
    ]
    with pytest.raises(ValueError, match="espeak_female_share"):
        DemoDataConfig(espeak_female_share=1.2)


ENGINES_ADDED = {
    "pico": {"en-US", "en-GB"}, "mbrola": {"mb-us1", "mb-us2", "mb-us3", "mb-en1"},
    "rhvoice": {"bdl", "clb"},  # never slt or alan: flite's and festival's speakers
}  # fmt: skip


@pytest.mark.parametrize("engine", sorted(ENGINES_ADDED))
def test_an_added_engine_brings_its_voices_and_leaves_every_other_wake_word_alone(engine):
    update = {f"{engine}_positives": 40, f"{engine}_share": 0.25, "mining_minutes": 2.0}
    off = {**TWO_ENGINES, "mining_minutes": 2.0}
    before = _plan_clips(DataConfig(demo=TINY.model_copy(update=off)))
    assert not any(c.generator == engine for c in before)
    after = _plan_clips(DataConfig(demo=TINY.model_copy(update={**off, **update})))

    def wake_words(clips, generator=None):
        return [c for c in clips if c.kind == "positive" and generator in (None, c.generator)]

    # Piper's and espeak-ng's wake words are the same clips, in every split.
    assert wake_words(after)[: len(wake_words(before))] == wake_words(before)
    added = [c for c in after if c.generator == engine]
    assert len(wake_words(added)) == 40
    assert {c.split for c in wake_words(added)} == {"train", "validation", "test"}
    assert {c.voice for c in added} == ENGINES_ADDED[engine]
    assert all(c.name.split("/")[-1].startswith(f"{engine}_") for c in added)
    # It says its share of the negatives, the ambient talk and the mining corpus too.
    for kind in ("negative", "speech", "confusable"):
        said = [c for c in after if c.kind == kind]
        share = sum(c.generator == engine for c in said) / len(said)
        assert 0.1 < share < 0.4, kind
    assert any(c.split == MINING_POOL for c in added)
    near = [c for c in added if c.kind == "negative" and c.near_miss]
    assert near and not any("hey jarvis" in normalize(c.text) for c in near)


def test_pico_mbrola_and_rhvoice_share_the_negatives():
    three = {"pico_positives": 40, "pico_share": 0.3, "mbrola_positives": 40,
             "mbrola_share": 0.2, "rhvoice_positives": 40, "rhvoice_share": 0.15,
             "mining_minutes": 2.0}  # fmt: skip
    clips = _plan_clips(DataConfig(demo=TINY.model_copy(update=three)))
    for kind in ("negative", "speech"):
        said = [c.generator for c in clips if c.kind == kind]
        assert abs(said.count("pico") / len(said) - 0.3) < 0.05, kind
        assert abs(said.count("mbrola") / len(said) - 0.2) < 0.05, kind
        assert abs(said.count("rhvoice") / len(said) - 0.15) < 0.05, kind
        assert said.count("espeak-ng") and said.count("piper"), kind
    with pytest.raises(ValueError, match="pico_share.*mbrola_share.*rhvoice_share.*more than 1"):
        DemoDataConfig(pico_share=0.5, mbrola_share=0.3, rhvoice_share=0.3)
    with pytest.raises(ValueError, match="rhvoice_positives is 10 but data.demo.rhvoice_share"):
        DemoDataConfig(rhvoice_positives=10)


@pytest.mark.parametrize("engine", sorted(ENGINES_ADDED))
def test_settings_of_validation_and_test_are_never_heard_in_training(engine):
    from mww_core.demo_data.plan import SETTINGS_RANGES

    update = {f"{engine}_positives": 200, f"{engine}_share": 0.3, "mining_minutes": 2.0}
    clips = [c for c in _plan_clips(DataConfig(demo=TINY.model_copy(update=update)))
             if c.generator == engine]  # fmt: skip
    drawn = {s: [dict(c.params) for c in clips if c.split == s] for s in ("train", "validation",
             "test", MINING_POOL)}  # fmt: skip
    assert not any("formant_ratio" in p for p in drawn["train"] + drawn[MINING_POOL])
    for held_out, heard in [("validation", ["train", MINING_POOL]),
                            ("test", ["train", MINING_POOL, "validation"])]:  # fmt: skip
        seen = [p for split in heard for p in drawn[split]]
        for name in ("pitch", "speed", "formant_ratio"):
            values = [p[name] for p in seen if name in p]
            if values:
                low, high = min(values), max(values)
                assert all(not low <= p[name] <= high for p in drawn[held_out]), (held_out, name)
    # Pitch and speed are whole numbers, inside their split's ranges.
    for split, params in drawn.items():
        ranges = SETTINGS_RANGES[engine]["train" if split == MINING_POOL else split]
        for p in params:
            assert p["pitch"] == int(p["pitch"]) and p["speed"] == int(p["speed"])
            for name, spans in ranges.items():
                assert any(lo <= p[name] <= hi for lo, hi in spans), (split, name, p[name])


@pytest.mark.parametrize("engine", ["mbrola", "rhvoice"])
def test_a_test_only_engine_is_never_heard_and_changes_no_other_clip(engine):
    from mww_core.demo_data.plan import SETTINGS_RANGES

    update = {f"{engine}_positives": 24, f"{engine}_share": 0.25, f"{engine}_test_only": True}
    two = {**TWO_ENGINES, "near_miss_negatives": 60}
    before = _plan_clips(DataConfig(demo=TINY.model_copy(update=two)))
    after = _plan_clips(DataConfig(demo=TINY.model_copy(update={**two, **update})))
    # Every clip of before, in every split, test included, is the same: the engine's come after.
    assert after[: len(before)] == before
    unheard = after[len(before) :]
    assert {c.generator for c in unheard} == {engine} and {c.split for c in unheard} == {"test"}
    wake = [c for c in unheard if c.kind == "positive"]
    assert len(wake) == 24 and {c.voice for c in wake} == ENGINES_ADDED[engine]
    assert {c.condition for c in wake} == set(CONDITIONS)  # 4 clips in each condition
    # Its share of the test's negatives, ambient talk and ambient near misses.
    for kind in ("negative", "speech", "confusable"):
        others = sum(c.kind == kind and c.split == "test" for c in before)
        said = sum(c.kind == kind for c in unheard)
        assert said == pytest.approx(others * 0.25, abs=1.5), kind
    assert any(c.near_miss for c in unheard)
    # At its voices' ordinary settings (training's ranges), no formant shift, and re-timed
    # within them.
    for clip in unheard:
        params = dict(clip.params)
        assert clip.region == "train" and "formant_ratio" not in params
        for name, spans in SETTINGS_RANGES[engine]["train"].items():
            assert any(lo <= params[name] <= hi for lo, hi in spans), (name, params)


def test_every_condition_hears_every_voice_of_an_engine_with_a_few():
    update = {"pico_positives": 120, "pico_share": 0.2, "mbrola_positives": 48,
              "mbrola_share": 0.2, "mbrola_test_only": True, "rhvoice_positives": 48,
              "rhvoice_share": 0.2, "rhvoice_test_only": True}  # fmt: skip
    clips = _plan_clips(DataConfig(demo=TINY.model_copy(update=update)))
    for engine in ("pico", "mbrola", "rhvoice"):
        wake = [c for c in clips if c.generator == engine and c.kind == "positive"]
        test = [c for c in wake if c.split == "test"]
        for condition in CONDITIONS:
            said = {c.voice for c in test if c.condition == condition}
            assert said == ENGINES_ADDED[engine], (engine, condition, said)
        # Training's voices still take turns.
        train = [c.voice for c in wake if c.split == "train"]
        assert all(a != b for a, b in zip(train, train[1:], strict=False)), engine


def test_every_test_condition_hears_every_wording_of_every_engine():
    """Texts and conditions do not turn in lockstep: an engine's noisy wake words are not all
    "hey, jarvis", nor its clean ones all "hey jarvis"."""
    update = {"piper_positives": 100, "espeak_positives": 100, "pico_positives": 120,
              "pico_share": 0.2, "mbrola_positives": 48, "mbrola_share": 0.2,
              "mbrola_test_only": True}  # fmt: skip
    clips = _plan_clips(DataConfig(demo=TINY.model_copy(update=update)))
    wordings = set(_wake_word_variants("hey jarvis"))
    assert len(wordings) == 3
    for engine in ("espeak-ng", "piper", "pico", "mbrola"):
        test = [c for c in clips if c.generator == engine and c.kind == "positive"
                and c.split == "test" and c.condition != "command"]  # fmt: skip
        for condition in set(CONDITIONS) - {"command"}:
            said = {c.text for c in test if c.condition == condition}
            assert said == wordings, (engine, condition, said)


def test_two_test_only_engines_leave_each_other_alone():
    two = {**TWO_ENGINES, "near_miss_negatives": 60}
    mbrola = {"mbrola_positives": 24, "mbrola_share": 0.25, "mbrola_test_only": True}
    rhvoice = {"rhvoice_positives": 16, "rhvoice_share": 0.2, "rhvoice_test_only": True}
    one = _plan_clips(DataConfig(demo=TINY.model_copy(update={**two, **mbrola})))
    both = _plan_clips(DataConfig(demo=TINY.model_copy(update={**two, **mbrola, **rhvoice})))
    assert both[: len(one)] == one  # RHVoice's come after MBROLA's, which are as they were
    added = both[len(one) :]
    assert {c.generator for c in added} == {"rhvoice"} and {c.split for c in added} == {"test"}
    assert sum(c.kind == "positive" for c in added) == 16


@pytest.mark.parametrize("engine", sorted(ENGINES_ADDED))
def test_an_engines_wake_words_need_its_negatives(engine):
    with pytest.raises(ValueError, match=f"{engine}_share is 0"):
        DemoDataConfig(**{f"{engine}_positives": 10})
    with pytest.raises(ValueError, match=f"{engine}_share"):
        DemoDataConfig(**{f"{engine}_positives": 10, f"{engine}_share": 1.5})
    demo = DemoDataConfig(**{f"{engine}_positives": 10, f"{engine}_share": 0.2})
    assert demo.engines_used() == [engine] and demo.uses(engine)
    with pytest.raises(ValueError, match="add up to more than 1"):
        DemoDataConfig(pico_share=0.6, mbrola_share=0.5)


def test_a_test_only_engines_share_comes_on_top_of_the_others():
    # Pico takes 0.7 of the negatives; the test-only engines add theirs to the test's.
    DemoDataConfig(pico_share=0.7, mbrola_share=0.2, mbrola_test_only=True, rhvoice_share=0.2,
                   rhvoice_test_only=True)  # fmt: skip
    with pytest.raises(ValueError, match="pico_share \\(0.7\\), rhvoice_share \\(0.4\\)"):
        DemoDataConfig(pico_share=0.7, mbrola_share=0.2, mbrola_test_only=True, rhvoice_share=0.4)


def test_the_planner_and_the_config_know_the_same_engines_in_the_same_order():
    from mww_core.config.data import ADDED_ENGINES
    from mww_core.demo_data.plan import EXTRA_ENGINE_VOICES

    assert list(EXTRA_ENGINE_VOICES) == list(ADDED_ENGINES)


def test_command_share_gives_training_and_validation_wake_words_requests_of_their_own():
    def plan(share: float):
        demo = TINY.model_copy(update={"espeak_positives": 60, "command_share": share})
        return _plan_clips(DataConfig(demo=demo))

    before, after = plan(0.0), plan(0.5)
    assert [c.name for c in after] == [c.name for c in before]
    changed = [(b, a) for b, a in zip(before, after, strict=True) if a != b]
    said = [a for _, a in changed]
    assert said and all(a.kind == "positive" and a.split in ("train", "validation") for a in said)
    assert all(a.condition == "command" for a in said)
    # Every one says the wake word and then a training request, never one of the test's.
    requests = {f"hey jarvis, {r}" for r in TRAINING_COMMANDS}
    assert {a.text for a in said} <= requests
    assert not requests & {f"hey jarvis, {c}" for c in COMMANDS}
    # About half of training's wake words; only its text (and espeak-ng's speed) differ.
    trained = [c for c in after if c.kind == "positive" and c.split == "train"]
    assert 0.3 < sum(c.condition == "command" for c in trained) / len(trained) < 0.7
    for b, a in changed:
        assert replace(a, text=b.text, condition="", params=b.params) == b
        speed = dict(a.params).get("speed", 0)
        assert a.generator != "espeak-ng" or speed == min(dict(b.params)["speed"], 190)
    # The test's wake words, with their own requests, are the same clips.
    assert [c for c in after if c.split == "test"] == [c for c in before if c.split == "test"]


def test_validation_conditions_reach_validations_wake_words_and_change_nothing_else():
    def plan(on: bool):
        update = {"espeak_positives": 60, "command_share": 0.0, "validation_conditions": on}
        demo = TINY.model_copy(update=update)
        return _plan_clips(DataConfig(demo=demo))

    before, after = plan(False), plan(True)
    changed = [(b, a) for b, a in zip(before, after, strict=True) if a != b]
    assert len(after) == len(before) and changed
    # Only validation's wake words change, and only their condition: voices, texts, settings
    # and every draw of every other clip stay as they were.
    for b, a in changed:
        assert (a.kind, a.split) == ("positive", "validation")
        assert replace(a, condition=b.condition) == b
    validation = [c for c in after if c.kind == "positive" and c.split == "validation"]
    said = [c.condition for c in validation]
    assert set(said) == set(VALIDATION_CONDITIONS) and "command" not in VALIDATION_CONDITIONS
    counts = [said.count(c) for c in VALIDATION_CONDITIONS]  # in turn
    assert max(counts) - min(counts) <= 1
    assert [c for c in after if c.split == "test"] == [c for c in before if c.split == "test"]


@pytest.mark.parametrize("share", [0.1, 0.6])
def test_training_paused_share_changes_training_wordings_only(share):
    def plan(paused_share):
        update = {"espeak_positives": 60, "training_paused_share": paused_share}
        return _plan_clips(DataConfig(demo=TINY.model_copy(update=update)))

    before, after = plan(None), plan(share)
    assert plan(share) == after  # reproducible from the seed
    changed = [(b, a) for b, a in zip(before, after, strict=True) if a != b]
    assert changed
    # Only training's wake words said alone change, and only their text.
    for b, a in changed:
        assert (a.kind, a.split, a.condition) == ("positive", "train", "")
        assert replace(a, text=b.text) == b
        assert {a.text, b.text} == {"hey jarvis", "hey, jarvis"}

    def said(clips, text):
        alone = [c for c in clips if (c.kind, c.split, c.condition) == ("positive", "train", "")]
        return sum(c.text == text for c in alone), len(alone)

    paused, alone = said(after, "hey, jarvis")
    assert paused == round(share * alone)
    assert said(after, "hey jarvis!") == said(before, "hey jarvis!")  # exclaimed: as before


def test_training_min_phrase_distance_keeps_slips_out_of_training_only():
    def plan(min_distance):
        update = {"near_miss_negatives": 200, "training_min_phrase_distance": min_distance}
        return DataConfig(demo=TINY.model_copy(update=update))

    data = plan(2)
    distance = {normalize(c.text): c.spoken_distance for c in near_miss_phrases(data)}

    def closest(text):  # what the evaluation calls a slip is what training must not say
        return said_distance(text, distance)

    before, after = _plan_clips(plan(None)), _plan_clips(data)
    assert _plan_clips(data) == after  # reproducible from the seed
    changed = [(b, a) for b, a in zip(before, after, strict=True) if a != b]
    assert changed
    for b, a in changed:  # only training's near misses change, and only their text
        assert a.split in ("train", MINING_POOL) and (a.near_miss or a.kind == "confusable")
        assert replace(a, text=b.text) == b
        assert closest(b.text) == 1 and closest(a.text) >= 2
    trained = [c for c in after if c.split in ("train", MINING_POOL)]
    said = [closest(c.text) for c in trained if c.near_miss or c.kind == "confusable"]
    assert said and all(d >= 2 for d in said)
    held_out = [c for c in after if c.split == "test" and c.near_miss]
    assert any(closest(c.text) == 1 for c in held_out)  # the test still says slips
    with pytest.raises(ValueError, match="training_min_phrase_distance is 9"):
        _plan_clips(plan(9))


def test_training_paused_near_miss_share_pauses_training_near_misses_only():
    def plan(share):
        update = {"near_miss_negatives": 200, "training_paused_near_miss_share": share}
        return _plan_clips(DataConfig(demo=TINY.model_copy(update=update)))

    before, after = plan(None), plan(0.5)
    assert plan(0.5) == after  # reproducible from the seed
    changed = [(b, a) for b, a in zip(before, after, strict=True) if a != b]
    for b, a in changed:  # training's near-miss clips, their first word followed by a comma
        assert (a.split, a.kind, a.near_miss) == ("train", "negative", True)
        first, rest = b.text.split(maxsplit=1)
        assert replace(a, text=b.text) == b and a.text == f"{first}, {rest}"
    several = [c for c in before if c.split == "train" and c.near_miss and " " in c.text]
    assert len(changed) == round(0.5 * len(several)) > 0
    assert not [c for c in plan(0.0) if "," in c.text and c.near_miss and c.split == "train"]


def test_training_paused_sentence_share_pauses_training_near_miss_sentences_only():
    def plan(share):
        update = {"training_paused_sentence_share": share}
        return _plan_clips(DataConfig(demo=TINY.model_copy(update=update)))

    before, after = plan(None), plan(0.5)
    assert plan(0.5) == after  # reproducible from the seed
    changed = [(b, a) for b, a in zip(before, after, strict=True) if a != b]
    sentences = [c for c in before if c.kind == "confusable" and c.split in ("train", MINING_POOL)]
    assert changed and len(changed) <= round(0.5 * len(sentences))
    for b, a in changed:  # a comma after the near miss's first word, nothing else
        assert a.kind == "confusable" and a.split in ("train", MINING_POOL)
        assert replace(a, text=b.text) == b
        assert a.text.replace(",", "", 1) == b.text and normalize(a.text) == normalize(b.text)


def test_training_espeak_speed_moves_training_espeak_rates_only():
    def plan(speeds):
        update = {"training_espeak_speed": speeds}
        return _plan_clips(DataConfig(demo=TINY.model_copy(update=update)))

    def speed(clip):
        return dict(clip.params)["speed"]

    before, after = plan(None), plan((140, 280))
    assert plan((140, 280)) == after  # reproducible from the seed
    changed = [(b, a) for b, a in zip(before, after, strict=True) if a != b]
    assert changed
    for b, a in changed:  # training's (and the mining corpus's) espeak-ng clips, rate alone
        assert a.split in ("train", MINING_POOL) and a.generator == "espeak-ng"
        assert replace(a, params=b.params) == b
        assert speed(a) == 140 + 2 * (speed(b) - 140)

    def trained(clips):
        return [speed(c) for c in clips if c.split == "train" and c.generator == "espeak-ng"]

    assert max(trained(before)) <= 210 < max(trained(after))
    with pytest.raises(ValueError, match="training_espeak_speed"):
        DemoDataConfig(training_espeak_speed=(200, 150))


@pytest.mark.parametrize("split", ["test", "validation"])
def test_paused_near_misses_come_after_every_other_clip(split):
    def plan(test, validation=0):
        update = {"near_miss_negatives": 60, "test_paused_near_misses": test,
                  "validation_paused_near_misses": validation}  # fmt: skip
        return _plan_clips(DataConfig(demo=TINY.model_copy(update=update)))

    # Validation's come after the test's: each keeps the other's clips as they were.
    before = plan(0) if split == "test" else plan(12)
    after = plan(20) if split == "test" else plan(12, 20)
    assert after[: len(before)] == before  # every other clip keeps its draws and name
    added = after[len(before) :]
    assert len(added) == 20 and {c.generator for c in added} == {"piper", "espeak-ng"}
    phrases = {normalize(p.text) for p in near_miss_phrases(DataConfig(demo=TINY))}
    for clip in added:
        assert (clip.split, clip.kind, clip.near_miss) == (split, "negative", True)
        first, rest = clip.text.split(", ", 1)  # said with a pause after the first word
        assert f"{first} {rest}" in phrases
    own = held_out_voices(DataConfig(demo=TINY))[split]
    assert {c.voice.split("+")[0] for c in added if c.generator == "espeak-ng"} <= set(own)
