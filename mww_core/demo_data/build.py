"""Build the demo data set: the steps in order, the dataset.json manifest, the folder swap."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mww_core.config import DataConfig
from mww_core.demo_data.ambient import _AmbientPool, _speech_pools, _write_ambient, _write_noise
from mww_core.demo_data.clips import _write_clips
from mww_core.demo_data.clock import Progress, _StageClock
from mww_core.demo_data.conditions import (
    CONDITIONS,
    HELD_OUT_NOISES,
    VALIDATION_CONDITIONS,
    Hearing,
)
from mww_core.demo_data.corpus import near_miss_phrases
from mww_core.demo_data.plan import (
    MINING_POOL,
    PIPER_RANGES,
    SETTINGS_RANGES,
    SPLITS,
    _plan_clips,
    _rng,
    _settings_region,
    _split_espeak_voices,
    _split_fractions,
    _voice_rng,
    held_out_voices,
)
from mww_core.demo_data.rooms import (
    TRAIN_ROOM_M,
    _held_out_rooms,
    _write_rirs,
    validation_hearing,
)
from mww_core.demo_data.tts import _PiperRun, _render_in_threads, _require_espeak, require_engine

logger = logging.getLogger(__name__)

# Bump when the generated audio changes for the same config: it is part of the fingerprint.
# 2: near-miss speech in the ambient audio; 3: train/mining recordings; 4: generated near
# misses; 5: a test split of held-out voices, Piper settings, rooms and conditions; 6: the
# manifest marks near-miss clips ("near_miss": true) for augmentation.near_miss_copies; 7:
# every test condition hears every voice of Pico, MBROLA and RHVoice, and the test's pitch
# shifts are 4-5 semitones (beyond the demo's wider speed and pitch perturbation); 8: every
# test condition hears every wording (the texts no longer turn in lockstep with conditions); 9:
# Piper renders validation's and the test's clips in chunks of their own (tts.piper_chunks)
DEMO_DATA_VERSION = 9
MANIFEST_NAME = "dataset.json"


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
        RuntimeError: espeak-ng (or pico2wave, when the config asks for Pico) is missing or
            a synthesizer failed.
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
    threaded = [c for c in clips if c.generator != "piper"]  # espeak-ng's and the others'
    for engine in demo.engines_used():
        require_engine(engine)
    files: dict[str, dict[str, Any]] = {}
    with _PiperRun(piper_clips, demo.seed) as piper:
        rendered = _render_in_threads(threaded, clock)
        files.update(_write_rirs(root, demo.rirs, _rng(demo.seed, "rirs"), clock, demo.rir_rt60_s))
        test_rooms = _held_out_rooms(_rng(demo.seed, "test-rooms"))
        hearings = {"test": Hearing(rooms=test_rooms)}
        if demo.validation_conditions:  # rooms of their own: the others' draws stay as they were
            hearings["validation"] = validation_hearing(
                _rng(demo.seed, "validation-rooms"), demo.rir_rt60_s
            )
        rendered.update(piper.collect(clock))
    files.update(_write_clips(root, clips, rendered, hearings, clock))
    pools = {s: _AmbientPool(*_speech_pools(clips, rendered, s)) for s in (*SPLITS, MINING_POOL)}
    files.update(
        _write_noise(
            root,
            demo.noise_clips,
            pools["train"].speech,
            demo.seed,
            clock,
            more_kinds=demo.more_noise_kinds,
        )
    )
    minutes = {**demo.ambient_minutes, MINING_POOL: demo.mining_minutes}
    files.update(
        _write_ambient(
            root,
            minutes,
            pools,
            demo.seed,
            clock,
            demo.ambient_near_misses_per_minute,
            train_one_engine_each=demo.ambient_one_engine_each,
        )
    )
    manifest = _manifest(data, fingerprint, files, clock, time.perf_counter() - started)
    return {
        **manifest,
        "near_miss_phrases": [asdict(c) for c in near_miss],
        "held_out": _held_out_description(data, hearings),
    }


def _held_out_description(data: DataConfig, hearings: dict[str, Hearing]) -> dict:
    """What each split's speech and rooms are drawn from, and a one-line summary of the test's.

    ``hearings``: the conditions of the test's wake words and, with ``validation_conditions``,
    validation's (their noises, rooms and pitch shifts).
    """
    bases = held_out_voices(data)
    voices = _split_espeak_voices(
        _voice_rng(data), _split_fractions(data.demo.split_fractions), bases
    )
    out: dict[str, Any] = {}
    for split in SPLITS:
        out[split] = {
            "espeak_voices": bases[split],
            "espeak_variants": sorted({v.split("+", 1)[1] for v in voices[split]}),
            "piper": PIPER_RANGES[_settings_region(split)],
        }
        for engine in data.demo.engines_used():
            if not data.demo.test_only(engine):
                out[split][engine] = SETTINGS_RANGES[engine][_settings_region(split)]
    for engine in data.demo.engines_used():
        if data.demo.test_only(engine):
            out["test"][engine] = SETTINGS_RANGES[engine]["train"]  # its ordinary settings
    out["train"]["room_m"] = TRAIN_ROOM_M
    if "validation" in hearings:
        out["validation"].update(_conditions_description(hearings["validation"]),
                                 conditions=list(VALIDATION_CONDITIONS))  # fmt: skip
    test = PIPER_RANGES["test"]
    out["test"].update(
        _conditions_description(hearings["test"]),
        conditions=list(CONDITIONS),
        summary=(
            f"espeak-ng {', '.join(bases['test'])} with "
            f"{len(out['test']['espeak_variants'])} variants of their own; Piper at length_scale "
            f"{_spans(test['length_scale'])}, noise_scale {_spans(test['noise_scale'])}, "
            f"noise_w_scale {_spans(test['noise_w_scale'])}, formants shifted "
            f"x{_spans(test['formant_ratio'])}{_engine_summary(data)}; halls and small rooms "
            "outside the training "
            f"rooms' sizes; {', '.join(HELD_OUT_NOISES)} noise"
        ),
    )
    return out


def _conditions_description(hearing: Hearing) -> dict[str, Any]:
    """A split's rooms, noises and pitch shifts for its conditions, as the manifest lists them."""
    return {
        "rooms": [room.meta for use in hearing.rooms.values() for room in use],
        "noises": list(hearing.noises),
        "pitch_shift_semitones": list(hearing.pitch_semitones),
    }


# How the summary line names each engine after Piper and espeak-ng: its name, its test
# settings (pitch and speed spans), and its voices when the test alone hears them.
_SUMMARY_WORDS = {
    "pico": ("Pico", "pitch {} %, speed {} %", "SVOX Pico's two voices"),
    "mbrola": ("MBROLA", "pitch {}, {} words a minute", "MBROLA's four voices"),
    "rhvoice": ("RHVoice", "pitch {} %, rate {} %", "RHVoice's bdl and clb"),
}


def _engine_summary(data: DataConfig) -> str:
    """The test's Pico, MBROLA and RHVoice settings, or the engines it alone hears, for the
    summary line (empty without them)."""
    out = ""
    for engine in data.demo.engines_used():
        name, settings, voices = _SUMMARY_WORDS[engine]
        if data.demo.test_only(engine):
            out += f"; {voices}, an engine training and validation never hear"
            continue
        test = SETTINGS_RANGES[engine]["test"]
        said = settings.format(_spans(test["pitch"]), _spans(test["speed"]))
        out += f"; {name} at {said}, formants shifted x{_spans(test['formant_ratio'])}"
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


# --------------------------------------------------------------------------- the folder


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
