"""Compare wake-word models on a demo data set's test split: at their own and at a matched cutoff.

    python -m bench.compare_models --data data/exp_h2 [--max-fah 1.0]
        [--max-near-miss-rate 0.05] [--near-miss-min-distance 2] [--through-rate HZ]
        [--noise-lead SECONDS] [--tempo FACTOR] [--json]
        MODEL [MODEL...]

MODEL is a run folder (``runs/ps_s42``: the one ESPHome manifest in its ``export/``) or a
manifest ``.json`` (``/work/shared/reference-models/hey_jarvis.json``, the official model).

Comparing models only at the cutoffs they ship with misleads: a model whose cutoff is lower
detects more wake words because it also spends more false activations (one recipe looked
+0.07 recall that way). So every model is measured twice on the same test streams, fired as
ESPHome fires:

- ``shipped``: at its manifest's ``probability_cutoff``;
- ``matched``: at the cutoff (0.30-0.99 in steps of 0.01, and the manifest's own) that detects
  the most test positives while keeping FAH <= ``--max-fah`` and the near-miss false accept
  rate <= ``--max-near-miss-rate``, the same limits for every model; of equal counts, the
  fewest activations, then the highest cutoff (the pipeline's own rule,
  ``evaluation.choose_cutoff``). When no cutoff stays within both limits, the output says so.

At each point the figures are: detected/total test positives per engine (generator), engines
the data set says only the test split holds labelled ``(never heard)`` (``demo.<engine>
_test_only``: training never heard that voice), per condition (clean, noisy, reverberant,
far_field, pitch_shifted, command: how ``dataset.json`` says the clip is heard), per wording
(``said``: fluent "hey jarvis", paused "hey, jarvis", exclaimed "hey jarvis!", or with a
request after it), and all of them; ``near misses x/n``, the test
negative clips (near-miss phrases and other speech) that fire, of those that are not slips;
``slips x/n``, the near misses closer to the wake word than ``--near-miss-min-distance``
phonemes ("kay jarvis", counted apart, ``mww_core.evaluation.slips``; 1: none are); ambient
activations in the test split's ambient recordings, with those on a slip said in them apart
(``+n slips``), and FAH, the activations outside slips per hour. The limits apply to the
figures without slips, as the pipeline's cutoff choice does.

Every model's streams are scored once (TFLite's optimized kernels: within ~11/256 of the
device's on a few outputs, the same for every model) and every cutoff is read from that one
scoring. The firing settings besides the manifest's sliding window are ``EvaluationConfig``'s
defaults. ``--json`` prints the same figures as one JSON object instead of the text.

``--through-rate 8000`` scores the test wake words as voices made at that sample rate
(resampled down and back, ``mww_core.augment.narrowband``, as training's
``augmentation.narrowband_probability`` makes them): diphone voices made at 8 kHz and phone
lines sound like this. The near misses and ambient audio stay as they are.

``--noise-lead 0.5`` scores the test wake words in the test's held-out noises (rain, music,
dishes, vacuum; 0-20 dB SNR over the speech, as the test's noisy condition), the noise starting
that many seconds before each clip. The noise under a clip is the same for every lead, so
comparing leads measures how much the frontend's state matters: its noise estimate adapts over
about half a second, so a noise that starts with the clip (0) reaches the model less
suppressed than one that has gone on for a while (3). Each point then gains a line per noise
and SNR band (``rain 0-10 dB 12/56``): which noises, how loud, a model loses its wake words in.

``--tempo 1.3`` scores the test wake words said 1.3 times as fast (0.8: slower), the pitch
kept: sox's ``tempo -s`` (WSOLA, tuned for speech), a method training never uses (its
``augmentation.tempo_*`` re-speaks windows with the WORLD vocoder), so a model cannot score
well by knowing the transform. People say a wake word in 0.5 to 1.5 s; this asks how far a
model's recall holds beyond the speaking rates its training voices had.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.generalization import clip_engine
from mww_core import evaluation
from mww_core.audio import list_audio_files, load_audio
from mww_core.augment import narrowband
from mww_core.config import EvaluationConfig
from mww_core.demo_data.conditions import (
    HELD_OUT_NOISES,
    NOISY_SNR_DB,
    held_out_noise,
    peak_gain,
    snr_gain,
)
from mww_core.frontend import SAMPLE_RATE_HZ
from mww_core.stages import MANIFEST as STAGE_RECORD

log = logging.getLogger(__name__)

DATASET = "dataset.json"
KINDS = ("positive", "negative", "ambient")
# The matched point's candidates; the manifest's own cutoff joins them (sweep_cutoffs).
MATCHED_CUTOFFS = [round(0.30 + 0.01 * i, 2) for i in range(70)]  # 0.30 ... 0.99
NEVER_HEARD = " (never heard)"


# --------------------------------------------------------------------------------------------
# Pure helpers: the matched point, engines, cutoffs


def operating_point(
    rows: list[dict[str, Any]], max_fah: float, max_near_miss_rate: float
) -> dict[str, Any] | None:
    """The sweep row the pipeline's own rule (``evaluation.choose_cutoff``) takes within both
    limits: the most detections at ``fah <= max_fah`` (a row without FAH, no ambient audio, is
    not within) and ``false_accept_rate <= max_near_miss_rate``, then the fewest activations,
    then the highest cutoff. None when no row is within both."""
    row, met = evaluation.choose_cutoff(rows, max_fah, max_near_miss_rate=max_near_miss_rate)
    return row if met else None


def lowest_swept(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """The lowest FAH and near-miss false accept rate any swept cutoff reaches (None: no row
    has one), to show how far a model is from the limits when no cutoff meets them."""
    fahs = [row["fah"] for row in rows if row.get("fah") is not None]
    rates = [row["false_accept_rate"] for row in rows if row.get("false_accept_rate") is not None]
    return {"fah": min(fahs, default=None), "near_miss_rate": min(rates, default=None)}


def sweep_cutoffs(shipped_cutoff: float) -> list[float]:
    """The cutoffs swept for a model: ``MATCHED_CUTOFFS`` and its manifest's cutoff, ascending."""
    return sorted({*MATCHED_CUTOFFS, round(float(shipped_cutoff), 4)})


def engine_label(name: str, described: dict[str, Any]) -> str:
    """The engine that said a test clip, ``"<engine> (never heard)"`` when only the test split
    holds it (``demo.<engine>_test_only`` in ``dataset.json``), ``"unknown"`` if unsaid."""
    engine = clip_engine(name, described.get("files", {}).get(name)) or "unknown"
    test_only = (described.get("demo") or {}).get(f"{engine}_test_only")
    return f"{engine}{NEVER_HEARD}" if test_only else engine


def hits_by_condition(
    hits: np.ndarray | list[bool], names: list[str], described: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Detected, clips and recall per test condition (``evaluation.clip_condition``: clean,
    noisy, reverberant, far_field, pitch_shifted, command), alphabetically."""
    files = described.get("files", {})
    labels = [evaluation.clip_condition(files.get(name, {})) for name in names]
    return evaluation.recall_by_group(list(hits), labels)


def hits_by_wording(
    hits: np.ndarray | list[bool], names: list[str], described: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Detected, clips and recall per wording of the test positives (``evaluation.clip_wording``:
    fluent, paused, exclaimed, request), alphabetically. A model that finds "hey, jarvis" but
    not "hey jarvis" leans on the engines' pause, while people mostly say a wake word in one
    breath."""
    files = described.get("files", {})
    wake_word = str(described.get("wake_word") or "")
    labels = [evaluation.clip_wording(files.get(name, {}), wake_word) for name in names]
    return evaluation.recall_by_group(list(hits), labels)


def hits_by_engine(
    hits: np.ndarray | list[bool], names: list[str], described: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Detected, clips and recall per engine label (``engine_label``) of the test positives.

    Engines training heard come first, then the never-heard ones, each alphabetically.
    """
    labels = [engine_label(name, described) for name in names]
    groups = evaluation.recall_by_group(list(hits), labels)
    return dict(sorted(groups.items(), key=lambda item: (item[0].endswith(NEVER_HEARD), item[0])))


# --------------------------------------------------------------------------------------------
# Models and the test split


@dataclasses.dataclass(frozen=True)
class Model:
    """A model to compare: as named on the command line, its manifest, model file and settings."""

    name: str
    manifest: Path
    tflite: Path
    micro: dict[str, Any]


def manifest_path(model: str | Path) -> Path:
    """A model's ESPHome manifest: the ``.json`` given, or the one in a run folder's ``export/``.

    Raises:
        SystemExit: The path is neither; or the run folder's ``export/`` holds no manifest, or
            several (the stage record ``stage.json`` is not one).
    """
    path = Path(model)
    if path.suffix == ".json":
        if not path.is_file():
            raise SystemExit(f"{path}: manifest not found; pass a model's .json manifest")
        return path
    if not path.is_dir():
        raise SystemExit(
            f"{path}: neither a run folder (runs/NAME) nor a manifest .json; pass one of them"
        )
    export = path / "export"
    found = sorted(p for p in export.glob("*.json") if p.name != STAGE_RECORD)
    if len(found) != 1:
        what = (
            "no manifest" if not found else f"{len(found)} manifests ({', '.join(map(str, found))})"
        )
        raise SystemExit(
            f"{path}: {export} holds {what}, expected one ESPHome .json manifest. Run the "
            "export stage for this run, or pass the manifest's .json path instead"
        )
    return found[0]


def load_model(spec: str) -> Model:
    """The model named on the command line, its manifest checked (``evaluation.load_manifest``)."""
    manifest = manifest_path(spec)
    try:
        tflite, micro = evaluation.load_manifest(manifest)
    except evaluation.ManifestError as exc:
        raise SystemExit(str(exc)) from None
    return Model(spec, manifest, tflite, micro)


@dataclasses.dataclass(frozen=True)
class SplitClips:
    """The test split of a demo data set: clip names per kind (relative to the data folder,
    sorted), their audio, ``dataset.json`` and the slips among the near misses (or None)."""

    data_dir: Path
    described: dict[str, Any]
    names: dict[str, list[str]]
    audio: dict[str, list[np.ndarray]]
    slips: evaluation.Slips | None
    # Per test wake word, the held-out noise it is heard in and its SNR band ("rain 0-10 dB"),
    # when ``in_noise`` put it there; None otherwise.
    noise_labels: list[str] | None = None

    @property
    def ambient_minutes(self) -> float:
        """Minutes of ambient audio, over which FAH counts."""
        return sum(len(a) for a in self.audio["ambient"]) / SAMPLE_RATE_HZ / 60


def read_dataset(data_dir: Path) -> dict[str, Any]:
    """A demo data set's ``dataset.json`` (it names each clip's engine and the test-only ones).

    Raises:
        SystemExit: It is missing or unreadable.
    """
    path = data_dir / DATASET
    if not path.is_file():
        raise SystemExit(
            f"{path} not found: --data must be a demo data set (make demo, or mww-demo-data "
            "--config ...), whose dataset.json says which engine said each test clip"
        )
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{path}: unreadable ({exc}); rebuild the demo data set") from None


def list_test_clips(data_dir: Path) -> dict[str, list[str]]:
    """The test split's audio files per kind, relative to ``data_dir`` and sorted.

    Raises:
        SystemExit: No test positives, or no test ambient audio (FAH needs it).
    """
    names = {}
    for kind in KINDS:
        folder = data_dir / "test" / kind
        files = list_audio_files(folder) if folder.is_dir() else []
        names[kind] = [p.relative_to(data_dir).as_posix() for p in files]
    for kind, why in (("positive", "recall"), ("ambient", "FAH")):
        if not names[kind]:
            raise SystemExit(
                f"{data_dir / 'test' / kind}: no audio files; the comparison needs test "
                f"{kind} clips for {why}. Pass --data a demo data set with a test split"
            )
    return names


def load_test_split(data_dir: Path, near_miss_min_distance: int) -> SplitClips:
    """Read the test split's clips (once, for every model) and mark its slips."""
    described = read_dataset(data_dir)
    names = list_test_clips(data_dir)
    audio = {kind: [load_audio(data_dir / name) for name in names[kind]] for kind in KINDS}
    slips = evaluation.find_slips(
        data_dir, near_miss_min_distance, names["negative"], names["ambient"]
    )
    return SplitClips(data_dir, described, names, audio, slips)


MAX_NOISE_LEAD_S = 10.0


def in_noise(split: SplitClips, lead_s: float, seed: int = 0) -> SplitClips:
    """The split with each wake word in one of the test's held-out noises (rain, music, dishes,
    vacuum in turn) at 0-20 dB SNR over its speech, the noise starting ``lead_s`` before it.

    The noise under each clip, its kind and level are the same whatever ``lead_s`` is (seeded
    by ``seed`` and the clip's place), so two leads differ only in how long the device's
    frontend has heard the noise when the clip starts.
    """
    lead = int(round(lead_s * SAMPLE_RATE_HZ))
    longest = int(MAX_NOISE_LEAD_S * SAMPLE_RATE_HZ)
    positives, labels = [], []
    for i, clip in enumerate(split.audio["positive"]):
        rng = np.random.default_rng([seed, i])
        kind = HELD_OUT_NOISES[i % len(HELD_OUT_NOISES)]
        snr_db = rng.uniform(*NOISY_SNR_DB)
        labels.append(noise_label(kind, snr_db))
        noise = held_out_noise(kind, rng, longest + len(clip))
        noise *= snr_gain(clip, noise[longest:], snr_db)  # the level under the clip
        heard = noise[longest - lead :]
        heard[lead:] += clip
        # The clip at its clean peak, as the test's noisy clips are, and the noise before it
        # at the same gain: every lead hears the same clip.
        heard *= peak_gain(heard[lead:], np.abs(clip).max())
        positives.append(heard.astype(np.float32))
    return dataclasses.replace(
        split, audio={**split.audio, "positive": positives}, noise_labels=labels
    )


def noise_label(kind: str, snr_db: float) -> str:
    """A wake word's noise and SNR band, ``"rain 0-10 dB"`` or ``"rain 10-20 dB"``: which noise
    and how loud a model loses its wake words in."""
    low, high = NOISY_SNR_DB
    middle = (low + high) / 2
    band = f"{low:g}-{middle:g}" if snr_db < middle else f"{middle:g}-{high:g}"
    return f"{kind} {band} dB"


def through_rate(split: SplitClips, rate_hz: float) -> SplitClips:
    """The split with its wake words as voices made at ``rate_hz`` (nothing above half of it)."""
    positives = [narrowband(clip, rate_hz) for clip in split.audio["positive"]]
    return dataclasses.replace(split, audio={**split.audio, "positive": positives})


TEMPO_RANGE = (0.5, 2.0)


def said_at_tempo(samples: np.ndarray, factor: float) -> np.ndarray:
    """``samples`` said ``factor`` times as fast, the pitch kept (sox ``tempo -s``: WSOLA).

    Raises:
        SystemExit: sox is missing or fails.
    """
    raw = ["-t", "raw", "-r", str(SAMPLE_RATE_HZ), "-e", "floating-point", "-b", "32", "-c", "1"]
    command = ["sox", *raw, "-", *raw, "-", "tempo", "-s", f"{factor:g}"]
    try:
        done = subprocess.run(
            command, input=samples.astype("<f4").tobytes(), capture_output=True, check=True
        )
    except FileNotFoundError:
        raise SystemExit("--tempo needs sox: run `make system-deps` (Debian's sox)") from None
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"sox tempo {factor:g} failed: {exc.stderr.decode().strip()}") from None
    return np.frombuffer(done.stdout, "<f4").astype(np.float32)


def at_tempo(split: SplitClips, factor: float) -> SplitClips:
    """The split with its wake words said ``factor`` times as fast (``said_at_tempo``)."""
    positives = [said_at_tempo(clip, factor) for clip in split.audio["positive"]]
    return dataclasses.replace(split, audio={**split.audio, "positive": positives})


# --------------------------------------------------------------------------------------------
# Scoring and the figures of a point


def score_model(
    model: Model, split: SplitClips
) -> tuple[evaluation.ScoredStreams, EvaluationConfig]:
    """The model's outputs on every test stream, scored once, with the slips marked."""
    config = EvaluationConfig(sliding_window_size=model.micro["sliding_window_size"])
    runner = evaluation.StreamingTFLiteModel(model.tflite, reference_kernels=False)
    audio = split.audio
    scored = evaluation.score_streams(
        runner, audio["positive"], audio["negative"], audio["ambient"], config, runner.stride
    )
    if split.slips is not None:
        ambient_slips = [split.slips.ambient[name] for name in split.names["ambient"]]
        scored = dataclasses.replace(
            scored, negative_slips=split.slips.negative, ambient_slips=ambient_slips
        )
    return scored, config


def point_figures(
    row: dict[str, Any],
    scored: evaluation.ScoredStreams,
    config: EvaluationConfig,
    split: SplitClips,
) -> dict[str, Any]:
    """The figures printed for one cutoff: its sweep row's counts and the detections per engine."""
    detections = evaluation.detect_with_config(
        scored.positive_probs, row["cutoff"], config, scored.stride
    )
    hits = evaluation.clip_hits(detections, scored.positive_spans, scored.stride)
    slip_clips = row.get("slip_clips", 0)
    wordings = hits_by_wording(hits, split.names["positive"], split.described)
    files = split.described.get("files", {})
    entries = [files.get(name, {}) for name in split.names["negative"]]
    paused = evaluation.paused_near_misses_at(scored, row["cutoff"], config, entries)
    return {
        **({"paused_near_misses": paused} if paused else {}),
        "cutoff": row["cutoff"],
        "positives_detected": row["positives_detected"],
        "positive_clips": len(hits),
        "engines": hits_by_engine(hits, split.names["positive"], split.described),
        "conditions": hits_by_condition(hits, split.names["positive"], split.described),
        "wordings": wordings,
        "unpaused": evaluation.unpaused(wordings),
        **(
            {"noises": evaluation.recall_by_group(list(hits), split.noise_labels)}
            if split.noise_labels is not None
            else {}
        ),
        "false_accepts": row["false_accepts"],
        "near_miss_clips": len(split.names["negative"]) - slip_clips,
        "false_accept_rate": row["false_accept_rate"],
        "slip_false_accepts": row.get("slip_false_accepts", 0),
        "slip_clips": slip_clips,
        "ambient_activations": row["ambient_activations"],
        "slip_activations": row.get("slip_activations", 0),
        "fah": row["fah"],
    }


def compare_model(
    model: Model, split: SplitClips, max_fah: float, max_near_miss_rate: float
) -> dict[str, Any]:
    """A model's figures at its manifest cutoff (``shipped``) and at the matched point."""
    started = time.monotonic()
    scored, config = score_model(model, split)
    shipped_cutoff = float(model.micro["probability_cutoff"])
    rows = evaluation.sweep(scored, config, sweep_cutoffs(shipped_cutoff))
    shipped = next(r for r in rows if math.isclose(r["cutoff"], round(shipped_cutoff, 4)))
    matched = operating_point(rows, max_fah, max_near_miss_rate)
    return {
        "model": model.name,
        "manifest": str(model.manifest),
        "shipped": point_figures(shipped, scored, config, split),
        "matched": None if matched is None else point_figures(matched, scored, config, split),
        "lowest_swept": lowest_swept(rows),
        "seconds": round(time.monotonic() - started, 1),
    }


# --------------------------------------------------------------------------------------------
# Output


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_point(label: str, point: dict[str, Any] | None, limits: str, lowest: dict) -> str:
    """Four lines: cutoff, all positives, near misses, slips, activations, FAH; then per
    engine; then per condition; then per wording; with ``--noise-lead``, a fifth: per noise
    and SNR band.

    Without a point (no cutoff within the limits), one line saying so, with the lowest FAH and
    near-miss rate the sweep reached.
    """
    head = f"  {label:<9}"
    if point is None:
        return (
            f"{head}no cutoff swept keeps {limits} (lowest reached: FAH "
            f"{_fmt(lowest['fah'], 2)}, near-miss rate {_fmt(lowest['near_miss_rate'], 3)})"
        )
    apart = f" (slips {point['slip_false_accepts']}/{point['slip_clips']})"
    apart = apart if point["slip_clips"] else ""
    if point.get("paused_near_misses"):
        paused = point["paused_near_misses"]
        apart += f" (said with a pause {paused['false_accepts']}/{paused['clips']})"
    engines = "  ".join(f"{e} {g['detected']}/{g['clips']}" for e, g in point["engines"].items())
    conditions = "  ".join(
        f"{c} {g['detected']}/{g['clips']}" for c, g in point["conditions"].items()
    )
    wordings = "  ".join(f"{w} {g['detected']}/{g['clips']}" for w, g in point["wordings"].items())
    unpaused = point.get("unpaused")
    if unpaused:
        wordings += f"  (without a pause {unpaused['detected']}/{unpaused['clips']})"
    noises = "  ".join(
        f"{n} {g['detected']}/{g['clips']}" for n, g in point.get("noises", {}).items()
    )
    noises = f"\n{' ' * len(head)}in {noises}" if noises else ""
    return (
        f"{head}cutoff {point['cutoff']:.2f}  "
        f"all {point['positives_detected']}/{point['positive_clips']}  "
        f"near misses {point['false_accepts']}/{point['near_miss_clips']}"
        f"{apart}  "
        f"ambient activations {point['ambient_activations']} "
        f"(+{point['slip_activations']} slips)  FAH {_fmt(point['fah'], 2)}\n"
        f"{' ' * len(head)}{engines}\n"
        f"{' ' * len(head)}{conditions}\n"
        f"{' ' * len(head)}said {wordings}"
        f"{noises}"
    )


def format_report(results: list[dict[str, Any]], split: SplitClips, limits: str) -> str:
    """The text output: what the test split holds, then a block per model."""
    slip_clips = 0 if split.slips is None else int(split.slips.negative.sum())
    lines = [
        f"test split of {split.data_dir}: {len(split.names['positive'])} positives, "
        f"{len(split.names['negative'])} near misses ({slip_clips} of them slips), "
        f"{split.ambient_minutes:.1f} min of ambient audio; matched: the most detections "
        f"with {limits}"
    ]
    for result in results:
        where = "" if result["manifest"] == result["model"] else f"{result['manifest']}, "
        lines.append(f"\n{result['model']} ({where}scored in {result['seconds']:.0f} s)")
        for label in ("shipped", "matched"):
            lines.append(format_point(label, result[label], limits, result["lowest_swept"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Score every model once on the test split and print its shipped and matched figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="MODEL", help="run folder or manifest .json")
    parser.add_argument("--data", required=True, help="demo data folder (with dataset.json)")
    parser.add_argument("--max-fah", type=float, default=1.0, help="FAH limit of the matched point")
    parser.add_argument(
        "--max-near-miss-rate",
        type=float,
        default=0.05,
        help="limit of the matched point on the share of near misses (slips apart) that fire",
    )
    parser.add_argument(
        "--near-miss-min-distance",
        type=int,
        default=2,
        help="near misses closer than this many phonemes are slips, counted apart (1: none)",
    )
    parser.add_argument(
        "--through-rate",
        type=float,
        metavar="HZ",
        help="score the test wake words as voices made at this sample rate (e.g. 8000)",
    )
    parser.add_argument(
        "--noise-lead",
        type=float,
        metavar="SECONDS",
        help="score the test wake words in held-out noise (0-20 dB SNR) that starts this long "
        "before each of them (0: with the clip, as a clip mixed over its own length)",
    )
    parser.add_argument(
        "--tempo",
        type=float,
        metavar="FACTOR",
        help="score the test wake words said this many times as fast, the pitch kept (sox "
        "tempo; 0.8 is slower)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.through_rate is not None and not 1000 <= args.through_rate < SAMPLE_RATE_HZ:
        raise SystemExit(
            f"--through-rate {args.through_rate:g}: give a sample rate of 1000-15999 Hz "
            "(16000 is the audio's own)"
        )
    if args.noise_lead is not None and not 0 <= args.noise_lead <= MAX_NOISE_LEAD_S:
        raise SystemExit(
            f"--noise-lead {args.noise_lead:g}: give 0-{MAX_NOISE_LEAD_S:g} seconds of noise "
            "before each wake word"
        )
    if args.tempo is not None and not TEMPO_RANGE[0] <= args.tempo <= TEMPO_RANGE[1]:
        raise SystemExit(
            f"--tempo {args.tempo:g}: give a factor of {TEMPO_RANGE[0]:g}-{TEMPO_RANGE[1]:g} "
            "(1.3 says the wake words 1.3 times as fast, 0.8 slower)"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("mww_core").setLevel(logging.WARNING)  # not a line per ambient recording
    started = time.monotonic()
    models = [load_model(spec) for spec in args.models]  # every manifest checked before scoring
    split = load_test_split(Path(args.data), args.near_miss_min_distance)
    if args.through_rate:
        split = through_rate(split, args.through_rate)
    if args.noise_lead is not None:
        split = in_noise(split, args.noise_lead)
    if args.tempo is not None:
        split = at_tempo(split, args.tempo)
    limits = f"FAH <= {args.max_fah:g} and near-miss rate <= {args.max_near_miss_rate:g}"
    results = []
    for model in models:
        log.info("scoring %s", model.manifest)
        results.append(compare_model(model, split, args.max_fah, args.max_near_miss_rate))
    seconds = round(time.monotonic() - started, 1)
    if not args.json:
        if args.through_rate:
            print(f"test wake words as voices made at {args.through_rate:g} Hz")
        if args.noise_lead is not None:
            print(f"test wake words in held-out noise from {args.noise_lead:g} s before each")
        if args.tempo is not None:
            print(f"test wake words said {args.tempo:g} times as fast (sox tempo)")
        print(format_report(results, split, limits))
        print(f"\nwall time {seconds:.0f} s")
        return
    summary = {
        "data": str(split.data_dir),
        "max_fah": args.max_fah,
        "max_near_miss_rate": args.max_near_miss_rate,
        "near_miss_min_distance": args.near_miss_min_distance,
        "through_rate_hz": args.through_rate,
        "noise_lead_s": args.noise_lead,
        "tempo": args.tempo,
        "cutoffs": [MATCHED_CUTOFFS[0], MATCHED_CUTOFFS[-1]],
        "ambient_minutes": round(split.ambient_minutes, 2),
        "seconds": seconds,
        "models": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
