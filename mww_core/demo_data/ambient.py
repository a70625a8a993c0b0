"""Background audio from the speech pools: noise clips, ambient recordings, the mining corpus."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import fftconvolve

from mww_core.audio import SAMPLE_RATE_HZ, write_wav
from mww_core.demo_data.clock import _StageClock
from mww_core.demo_data.conditions import HELD_OUT_NOISES, held_out_noise
from mww_core.demo_data.household import HOUSEHOLD_KINDS, MORE_NOISE_KINDS, household_noise
from mww_core.demo_data.plan import (
    _POOL_KINDS,
    EXTRA_ENGINE_VOICES,
    MINING_POOL,
    SPLITS,
    _Clip,
    _rng,
    _utterance_key,
)
from mww_core.demo_data.rooms import (
    COLOURED_NOISES,
    _at_level,
    _colored_noise,
    _fade,
    _held_out_rooms,
    _limit,
    _simulate_rir,
    training_noise,
)
from mww_core.demo_data.tts import _Rendered

SR = SAMPLE_RATE_HZ

_AMBIENT_FILE_S = 60.0
# "music" is a music bed, half the time with talk over it (TV or radio); "household" is
# appliances, knocks and beeps (household.py). The test split's music and household segments
# are its held-out noises instead (conditions.HELD_OUT_NOISES), kinds training never hears.
_AMBIENT_KINDS = ("speech", "babble", "noise", "quiet", "music", "household")
_AMBIENT_WEIGHTS = (0.3, 0.2, 0.15, 0.15, 0.1, 0.1)
# A living room hears near misses too ("Hey Travis, dinner is ready."): without them the
# ambient audio holds nothing a wake-word model confuses, so its false activations per hour
# say nothing and mining finds nothing. Utterances per ambient minute said in the room, unless
# data.demo.ambient_near_misses_per_minute says otherwise for the split (the distinct ones
# synthesized: plan._CONFUSABLE_POOL_PER_MINUTE per sentence said).
_CONFUSABLE_PER_MINUTE = 1.0
_CONFUSABLE_LEVEL_DB = (-30.0, -16.0)
# The mining corpus (train/mining/): talk-heavy recordings in the train voices with utterances
# of their own, standing in for the hours of podcasts and TV a user lets mining scan. It is
# synthesized by espeak-ng, by Piper for data.demo.mining_piper_share of it (Piper is the
# slow part of the build) and by SVOX Pico for data.demo.pico_share; each recording is one
# engine's talk.
_MINING_WEIGHTS = (0.5, 0.15, 0.05, 0.05, 0.15, 0.1)  # in the order of _AMBIENT_KINDS
_MINING_CONFUSABLE_PER_MINUTE = 2.0


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


def _write_noise(
    root: Path, count: int, pool: list, seed: int, clock: _StageClock, more_kinds: bool = False
) -> dict[str, dict[str, Any]]:
    rng = _rng(seed, "noise")
    rooms = [_simulate_rir(rng, (0.3, 0.8))[0] for _ in range(2 if count else 0)]
    order = [*COLOURED_NOISES, "babble", *HOUSEHOLD_KINDS]
    order += MORE_NOISE_KINDS if more_kinds else ()
    files = {}
    with clock.stage("noise clips", count) as tick:
        for i in range(count):
            kind = order[i % len(order)]
            n = int(rng.uniform(5.0, 10.0) * SR)
            if kind == "babble" and pool:
                x, _ = _babble(rng, n, pool, rooms)
            else:
                kind = "pink" if kind == "babble" else kind  # no talk to make babble of
                x = training_noise(kind, rng, n)
            name = f"noise/{kind}_{i:03d}.wav"
            write_wav(root / name, _limit(_at_level(x, -20.0)))
            files[name] = {"kind": kind, "seconds": round(n / SR, 3)}
            tick()
    return files


def _write_ambient(
    root: Path,
    minutes: dict[str, float],
    pools: dict,
    seed: int,
    clock: _StageClock,
    near_misses: dict[str, float] | None = None,
    train_one_engine_each: bool = False,
) -> dict[str, dict[str, Any]]:
    """Long recordings of each split, and of the mining corpus (key ``MINING_POOL``).

    ``near_misses``: near-miss sentences per minute in each split's recordings (default
    ``_CONFUSABLE_PER_MINUTE``); the mining corpus says ``_MINING_CONFUSABLE_PER_MINUTE``.
    Each mining recording is one engine's talk, and with ``train_one_engine_each`` each
    training recording too.
    """
    near_misses = near_misses or {}
    jobs = []
    for split in (*SPLITS, MINING_POOL):
        total_s = 60.0 * minutes.get(split, 0.0)
        n_files = max(1, round(total_s / _AMBIENT_FILE_S)) if total_s > 0 else 0
        jobs += [(split, i, total_s / n_files) for i in range(n_files)]
    rooms = {
        s: _ambient_rooms(seed, s) for s in (*SPLITS, MINING_POOL) if any(j[0] == s for j in jobs)
    }
    one_engine = [MINING_POOL, *(["train"] if train_one_engine_each else [])]
    pools_of = {}  # split -> the pool of each of its recordings, when one engine's each
    for split in one_engine:
        n_files = sum(1 for job in jobs if job[0] == split)
        pools_of[split] = _one_engine_each(pools[split], n_files) if n_files else []
    files = {}
    with clock.stage("ambient audio", len(jobs)) as tick:
        for split, i, seconds in jobs:
            rng = _rng(seed, f"ambient-{split}-{i}")
            if split == MINING_POOL:
                mix = {
                    "weights": _MINING_WEIGHTS,
                    "near_misses": _MINING_CONFUSABLE_PER_MINUTE,
                    "min_near_misses": 1,  # mining's recordings are there for their near misses
                }
                name, meta = f"train/mining/mining_{i:03d}.wav", {"split": "train"}
            else:
                mix = {"near_misses": near_misses.get(split, _CONFUSABLE_PER_MINUTE)}
                name, meta = f"{split}/ambient/ambient_{i:03d}.wav", {"split": split}
            audio, made = _compose_ambient(
                rng,
                int(seconds * SR),
                pools_of[split][i] if split in pools_of else pools[split],
                rooms[split],
                **mix,
                held_out_noises=split == "test",
            )
            write_wav(root / name, audio)
            files[name] = {**meta, "kind": name.split("/")[1], **made}
            tick()
    return files


def _one_engine_each(pool: _AmbientPool, n_files: int) -> list[_AmbientPool]:
    """The pool of each of ``n_files`` recordings: one engine's utterances each.

    A show has its own voices: each recording is talk by one engine, Piper's recordings
    first, then Pico's, MBROLA's and RHVoice's, each as many as its share of the talk (at
    least one), and espeak-ng's the rest. bench.generalization can then keep the training
    engines' recordings whole.
    """
    said = [key.split("|", 1)[0] for key, _ in pool.speech]
    engines = [e for e in ("piper", *EXTRA_ENGINE_VOICES, "espeak-ng") if e in said]
    if len(engines) < 2:
        return [pool] * n_files

    def said_by(engine: str) -> _AmbientPool:
        return _AmbientPool(
            speech=[u for u in pool.speech if u[0].startswith(f"{engine}|")],
            confusable=[u for u in pool.confusable if u[0].startswith(f"{engine}|")],
        )

    out: list[_AmbientPool] = []
    for i, engine in enumerate(engines[:-1]):
        left = n_files - len(out) - (len(engines) - 1 - i)  # keep one for each engine after
        n = max(0, min(left, max(1, round(said.count(engine) / len(said) * n_files))))
        out += [said_by(engine)] * n
    return out + [said_by(engines[-1])] * (n_files - len(out))


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
    held_out_noises: bool = False,
    min_near_misses: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Segments of 10-30 s (speech, babble, coloured noise, quiet room, music, household
    noise) over a room floor, with near-miss sentences said in the room on top.

    Args:
        rng: The recording's generator.
        n: Length in samples.
        pools: Utterances to say.
        rooms: Room impulse responses.
        weights: Chance of each of ``_AMBIENT_KINDS`` per segment.
        near_misses: Near-miss sentences per minute (a Poisson count, at least
            ``min_near_misses``).
        held_out_noises: Music and household segments from the test's held-out noises.
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
        made = {"kind": kind, "start_s": round(pos / SR, 2), "seconds": length / SR}
        if kind in ("music", "household"):
            segment, keys, made["source"] = _home_segment(
                rng, length, pool, rooms, kind, held_out_noises
            )
        else:
            segment, keys = _SEGMENT_MAKERS[kind](rng, length, pool, rooms)
        out[pos : pos + length] += _fade(segment, int(0.25 * SR), int(0.25 * SR))
        segments.append(made)
        used |= keys
        pos += length
    events = _add_near_misses(rng, out, pools.confusable, rooms, near_misses, min_near_misses)
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
    minimum: int = 0,
) -> list[dict[str, Any]]:
    """Say near-miss sentences in the room (in place), one per slot of ``out``.

    About ``per_minute`` (a Poisson count per recording, at least ``minimum``), at
    conversational level, mostly reverberant, anywhere over the background.

    Returns:
        Per sentence: ``start_s``, ``seconds``, ``text`` and ``utterance`` (its key).
    """
    if not pool:
        return []
    count = max(minimum, int(rng.poisson(per_minute * len(out) / SR / 60.0)))
    if count == 0:
        return []
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


def _home_segment(
    rng, n, pool, rooms, kind: str, held_out: bool
) -> tuple[np.ndarray, set[str], str]:
    """Music (half the time with talk over it, like a TV) or a household noise, in the room.

    ``held_out`` takes the sound from ``conditions.HELD_OUT_NOISES`` (the test split's).
    Returns the segment, the utterances said in it and the sound's name.
    """
    make, kinds = (
        (held_out_noise, HELD_OUT_NOISES) if held_out else (household_noise, HOUSEHOLD_KINDS)
    )
    source = "music" if kind == "music" else str(rng.choice([k for k in kinds if k != "music"]))
    x = make(source, rng, n)
    x = _reverberate(rng, _at_level(x, rng.uniform(-42.0, -22.0)), rooms)
    keys: set[str] = set()
    if kind == "music" and pool and rng.random() < 0.5:
        talk, keys = _speech_stream(rng, n, pool, (0.3, 2.0), rng.uniform(-34.0, -20.0))
        x += talk
    return x, keys, source


_SEGMENT_MAKERS = {
    "speech": _speech_segment,
    "babble": _babble_segment,
    "noise": _noise_segment,
    "quiet": _quiet_segment,
}
