"""Cross-engine generalization: train on one TTS engine's wake words, test on the other's.

    python -m bench.generalization [--config configs/demo.yaml] [--steps 1500,1000]
        [--data data/demo_by_engine] [--max-fah 1.0] [--negatives training-engine|all]
        [--directions espeak_to_piper piper_to_espeak] [--seeds 42,1,2] [--curves] [--json]

The demo's clips come from two engines, Piper (``piper_*.wav``) and espeak-ng
(``espeak_*.wav``), with ``data.demo.pico_positives`` a third, SVOX Pico (``pico_*.wav``), and
with ``data.demo.mbrola_positives`` a fourth, MBROLA (``mbrola_*.wav``), and with
``data.demo.rhvoice_positives`` a fifth, RHVoice (``rhvoice_*.wav``). For each direction
(espeak-ng -> Piper, Piper -> espeak-ng by default; with Pico also ``espeak_and_piper_to_pico``,
``espeak_and_pico_to_piper`` and ``piper_and_pico_to_espeak``: two engines trained on, the third
tested; with MBROLA too ``espeak_and_pico_and_mbrola_to_piper``,
``piper_and_pico_and_mbrola_to_espeak`` and ``espeak_and_piper_and_pico_to_mbrola``, and
likewise with RHVoice in MBROLA's place) a data folder of links is made under
``runs/generalization/<direction>/data``: training and validation positives of the training
engines only, test positives of the other engine only, and a ``dataset.json`` describing only
the linked files. Training hears no voice of the test engine at all, nor of any engine it
does not train on (``--negatives training-engine``, the default): their negative clips, ambient
recordings and mining recordings are left out, as the held-out voices of an independent check
are never heard. Otherwise the test engine's voice would be heard only in negatives, and the
model would learn "this voice is never the wake word" (``--negatives all`` keeps them, to show
that effect); a third engine heard only in negatives teaches the same about voices like it.
Validation and test keep every negative and ambient file: they choose and measure, they do not
train. Rooms and noise are kept as they are.

The bench's data set is the config's demo settings with each training ambient recording one
engine's talk (``data.demo.ambient_one_engine_each``), built in ``<data_dir>_by_engine`` when
missing (``bench_data_config``): the demo's own recordings mix every engine's talk, and a
direction would keep none of them.

The pipeline then runs on it without Prefect, and recall on the engine training never heard is
printed: at the cutoff chosen on validation, at the best test cutoff within ``--max-fah``, and
per test condition. With 48 test clips and 24 validation clips a direction's figure moves by
about 0.3 from one training seed to the next, so ``--seeds`` trains each direction once per seed
(in the same run folder: the features are computed once, training again for each seed) and
prints the mean and range over the seeds as well.

``--curves`` scores every step each phase validated (the weights training kept under
``train_phase_<n>/validated/``) on the unseen engine's test audio and prints a learning curve
per direction: validation's recall at its cutoff, the unseen engine's recall at that cutoff
and at its matched point (the best cutoff within ``--max-fah`` and training's near-miss limit).
With ``--steps`` longer than the recipe's, it shows where more steps stop helping on voices
training never heard. Phase 1 passes through the same weights at every step whatever its
length (its batches and constant learning rate depend on the step alone).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from mww_core.config import DataConfig, FullConfig, load_config
from mww_core.config.data import DEMO_ENGINE_PREFIXES as SHORT_NAMES

log = logging.getLogger(__name__)

# Engine name in dataset.json -> the prefix of its clips' file names (the demo builder's).
ENGINE_PREFIXES = {engine: f"{short}_" for engine, short in SHORT_NAMES.items()}
# (trained on, tested on); "a+b" trains on both engines' wake words. The first two run by default.
DIRECTIONS = (
    ("espeak-ng", "piper"),
    ("piper", "espeak-ng"),
    ("espeak-ng+piper", "pico"),
    ("espeak-ng+pico", "piper"),
    ("piper+pico", "espeak-ng"),
    ("espeak-ng+pico+mbrola", "piper"),
    ("piper+pico+mbrola", "espeak-ng"),
    ("espeak-ng+piper+pico", "mbrola"),
    ("espeak-ng+pico+rhvoice", "piper"),
    ("piper+pico+rhvoice", "espeak-ng"),
    ("espeak-ng+piper+pico", "rhvoice"),
)
DEFAULT_DIRECTIONS = DIRECTIONS[:2]
CONDITIONS = ("clean", "noisy", "reverberant", "far_field", "pitch_shifted", "command")
MANIFEST = "dataset.json"
RUNS_DIR = Path("runs/generalization")


def direction_name(train_engine: str, test_engine: str) -> str:
    """Run name of a direction: ``espeak_to_piper``, ``espeak_and_pico_to_piper`` (a run name
    is letters, digits, ``_.-``)."""
    trained = "_and_".join(SHORT_NAMES[e] for e in train_engine.split("+"))
    return f"{trained}_to_{SHORT_NAMES[test_engine]}"


def clip_engine(relative: str, entry: dict[str, Any] | None) -> str | None:
    """The engine that said a clip: ``generator`` in dataset.json, else its file-name prefix."""
    if entry and entry.get("generator") in ENGINE_PREFIXES:
        return entry["generator"]
    name = relative.rsplit("/", 1)[-1]
    return next((e for e, prefix in ENGINE_PREFIXES.items() if name.startswith(prefix)), None)


NEGATIVES = ("training-engine", "all")


def _speaks(entry: dict | None, engine: str) -> bool:
    """Whether a recording's listed utterances (``generator|voice|...``) hold ``engine``."""
    utterances = (entry or {}).get("utterances", [])
    return any(u.split("|", 1)[0] == engine for u in utterances)


def keeps_file(
    relative: str,
    entry: dict | None,
    train_engine: str,
    test_engine: str,
    negatives: str = "training-engine",
) -> bool:
    """Whether a file of the data folder belongs in a direction's folder.

    Positives of ``train/`` and ``validation/`` only from the training engine (or engines,
    ``"espeak-ng+pico"``), of ``test/`` only from the test engine. With
    ``negatives="training-engine"``, ``train/`` also drops every other engine's negative clips
    and every ambient or mining recording that holds another engine's speech: training hears
    only the engines it trains on (a third engine heard only in negatives would teach "that
    kind of voice never says the wake word", which would count against the test engine too).
    Everything else (validation and test negatives and ambient, rirs, noise) is kept.
    """
    parts = relative.split("/")
    if len(parts) < 3:
        return True
    split, kind = parts[0], parts[1]
    if kind == "positive":
        wanted = {test_engine} if split == "test" else set(train_engine.split("+"))
        return clip_engine(relative, entry) in wanted
    if negatives == "all" or split != "train":
        return True
    others = set(ENGINE_PREFIXES) - set(train_engine.split("+"))
    if kind == "negative":
        return clip_engine(relative, entry) not in others
    if kind in ("ambient", "mining"):
        return not any(_speaks(entry, engine) for engine in others)
    return True


def _filtered_manifest(
    described: dict, kept: set[str], train_engine: str, test_engine: str, negatives: str
) -> dict:
    """``dataset.json`` of a direction's folder: only the kept files, counts redone."""
    files = {k: v for k, v in described.get("files", {}).items() if k in kept}
    counts = json.loads(json.dumps(described.get("counts", {})))
    for split, kinds in counts.items():
        if isinstance(kinds, dict):
            for kind in kinds:
                kinds[kind] = sum(1 for k in kept if k.startswith(f"{split}/{kind}/"))
    held_out = json.loads(json.dumps(described.get("held_out", {})))
    test = held_out.get("test")
    if isinstance(test, dict) and test.get("summary"):
        # The evaluate report prints this line as what the test holds out: the engine first.
        engines = f"{test_engine} wake words only (training and validation: {train_engine} only"
        engines += "; training hears no voice of it)" if negatives != "all" else ")"
        test["summary"] = f"{engines}; {test['summary']}"
    return {
        **described,
        "files": files,
        "counts": counts,
        "held_out": held_out,
        "generalization": {
            "train_engine": train_engine,
            "test_engine": test_engine,
            "negatives": negatives,
        },
    }


def _group(relative: str) -> str:
    """``train/positive`` for a clip, ``rirs`` for a file one level down."""
    parts = relative.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def derive_data(
    source: Path,
    target: Path,
    train_engine: str,
    test_engine: str,
    negatives: str = "training-engine",
) -> dict:
    """Make ``target`` a folder of symlinks to ``source``'s files for one direction.

    ``target`` is made afresh each time; stages fingerprint file contents, not links or
    modification times, so an unchanged folder re-uses every stage of an earlier run.

    Returns:
        The number of linked files per ``split/kind`` (and per other folder: ``rirs``...).
    """
    source = source.resolve()
    manifest = source / MANIFEST
    described = json.loads(manifest.read_text()) if manifest.exists() else {}
    entries = described.get("files", {})
    if target.exists():
        shutil.rmtree(target)  # removes the links, never what they point to
    kept: set[str] = set()
    counts: dict[str, int] = {}
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if not path.is_file() or path.name.startswith(".") or relative == MANIFEST:
            continue
        if not keeps_file(relative, entries.get(relative), train_engine, test_engine, negatives):
            continue
        link = target / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(path, link)
        kept.add(relative)
        counts[_group(relative)] = counts.get(_group(relative), 0) + 1
    for folder in sorted(source.glob("*/*/")):  # a folder left empty stays (train/ambient...)
        (target / folder.relative_to(source)).mkdir(parents=True, exist_ok=True)
    if described:
        filtered = _filtered_manifest(described, kept, train_engine, test_engine, negatives)
        (target / MANIFEST).write_text(json.dumps(filtered, indent=1))
    return counts


def check_direction(
    name: str, linked: dict[str, int], source: Path, train_engine: str, test_engine: str
) -> None:
    """Refuse a direction whose data has no wake words of an engine it trains or tests on."""
    missing = [
        f"no {engine} wake words in {split}/"
        for split, engines in (("train", train_engine), ("test", test_engine))
        for engine in engines.split("+")
        if not linked.get(f"{split}/positive")
        or (split == "train" and not _has_engine(source, "train", engine))
    ]
    if missing:
        both = ("piper", "espeak-ng")  # every demo data set has these two
        added = [e for e in (*train_engine.split("+"), test_engine) if e not in both]
        fields = " and ".join(f"data.demo.{e}_positives (and {e}_share)" for e in added)
        need = f". This direction needs a demo data set built with {fields} set" if added else ""
        raise SystemExit(f"{name}: the data set {source} has {'; '.join(missing)}{need}")


def _has_engine(source: Path, split: str, engine: str) -> bool:
    prefix = ENGINE_PREFIXES[engine]
    return any(p.name.startswith(prefix) for p in (source / split / "positive").glob("*.wav"))


def direction_config(
    config: FullConfig,
    data_dir: Path,
    run_name: str,
    steps: list[int] | None,
    seed: int | None = None,
) -> FullConfig:
    """The config of one direction: its data folder, run name, runs folder, phase steps, seed."""
    raw = config.model_dump()
    raw["data"] |= {"data_dir": data_dir, "build_demo": False}
    raw |= {"run_name": run_name, "runs_dir": RUNS_DIR}
    if seed is not None:
        raw["training"]["seed"] = seed
    if steps is not None:
        if len(steps) != len(raw["training"]["phases"]):
            raise SystemExit(
                f"--steps has {len(steps)} counts, the config has "
                f"{len(raw['training']['phases'])} phases"
            )
        for phase, count in zip(raw["training"]["phases"], steps, strict=True):
            phase["steps"] = count
    return FullConfig.model_validate(raw)


def best_within_fah(rows: list[dict], max_fah: float) -> dict | None:
    """The sweep row with the highest recall at FAH <= ``max_fah``, or None if none gets there."""
    from mww_core.evaluation import choose_cutoff

    if not any(r.get("fah") is not None and r["fah"] <= max_fah for r in rows):
        return None
    return choose_cutoff(rows, max_fah)[0]


def direction_figures(metrics_path: Path, max_fah: float) -> dict:
    """The figures of one direction from its evaluate stage's ``metrics.json``."""
    metrics = json.loads(metrics_path.read_text())
    shipped = metrics["sweeps"][metrics.get("shipped", "phase 2")]
    best = best_within_fah(shipped["test"], max_fah)
    return {
        "shipped": metrics.get("shipped"),
        "cutoff": metrics["cutoff"],
        "validation_recall": metrics["validation"]["recall"],
        "validation_fah": metrics["validation"]["fah"],
        "test_recall": metrics["test"]["recall"],
        "test_fah": metrics["test"]["fah"],
        "test_false_accept_rate": metrics["test"]["false_accept_rate"],
        "test_clips": metrics["clips"]["test"]["positive"],
        "best_cutoff": best["cutoff"] if best else None,
        "best_recall": best["recall"] if best else None,
        "best_fah": best["fah"] if best else None,
        "conditions": {k: v["recall"] for k, v in metrics.get("conditions", {}).items()},
        "condition_clips": {k: v["clips"] for k, v in metrics.get("conditions", {}).items()},
        "voice_groups": {k: v["recall"] for k, v in metrics.get("voice_groups", {}).items()},
    }


def _log_progress(what: str, done: int, total: int) -> None:
    if done == total:
        log.info("%s: %d/%d done", what, done, total)


def run_direction(
    config: FullConfig,
    source: Path,
    train_engine: str,
    test_engine: str,
    steps: list[int] | None,
    max_fah: float,
    negatives: str = "training-engine",
    seed: int | None = None,
    curves: bool = False,
) -> dict:
    """Link the direction's data, run every stage in this process and read its figures.

    With ``curves``, every step each phase validated is also scored on the unseen engine's
    test audio (``mww_core.pipeline.curves``): the learning curve on the generalization check.
    """
    from mww_core.lock import run_lock
    from mww_core.pipeline import Hooks, run_all

    name = direction_name(train_engine, test_engine)
    data_dir = RUNS_DIR / name / "data"
    linked = derive_data(source, data_dir, train_engine, test_engine, negatives)
    check_direction(name, linked, source, train_engine, test_engine)
    log.info("%s: linked %s", name, json.dumps(linked))
    cfg = direction_config(config, data_dir, name, steps, seed)
    started = time.monotonic()
    with run_lock(cfg.run_dir):
        records = run_all(cfg, Hooks(progress=_log_progress))
    figures = direction_figures(Path(records["evaluate"].outputs["metrics"]), max_fah)
    if curves:
        from mww_core.pipeline.curves import run_curves

        figures["curves"] = run_curves(cfg, "test", max_fah)
    return {
        "direction": name,
        "train_engine": train_engine,
        "test_engine": test_engine,
        "negatives": negatives,
        "seed": cfg.training.seed,
        "linked": linked,
        "seconds": round(time.monotonic() - started, 1),
        **figures,
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _condition_cell(result: dict, condition: str) -> str:
    clips = result["condition_clips"].get(condition, 0)
    return f"{_fmt(result['conditions'].get(condition))} ({clips})"


def _training_negatives(result: dict) -> str:
    linked = result.get("linked", {})
    kinds = ("negative", "ambient", "mining")
    return " / ".join(str(linked.get(f"train/{kind}", 0)) for kind in kinds)


def format_table(results: list[dict], max_fah: float) -> str:
    """A plain-text table: one column per direction (and seed), a row per figure and condition."""
    figures = [
        ("trained on -> tested on", lambda r: f"{r['train_engine']} -> {r['test_engine']}"),
        ("training seed", lambda r: str(r.get("seed", "-"))),
        ("test positives (unseen engine)", lambda r: str(r["test_clips"])),
        ("training negative / ambient / mining files", _training_negatives),
        ("cutoff chosen on validation", lambda r: _fmt(r["cutoff"], 2)),
        ("  test recall there", lambda r: _fmt(r["test_recall"])),
        ("  test FAH there", lambda r: _fmt(r["test_fah"], 2)),
        (f"best test cutoff at FAH <= {max_fah:g}", lambda r: _fmt(r["best_cutoff"], 2)),
        ("  test recall there", lambda r: _fmt(r["best_recall"])),
        ("  test FAH there", lambda r: _fmt(r["best_fah"], 2)),
    ]
    for condition in CONDITIONS:
        if any(condition in r["conditions"] for r in results):
            label = f"recall {condition} (clips), chosen cutoff"
            figures.append((label, lambda r, c=condition: _condition_cell(r, c)))
    figures.append(("wall time (s)", lambda r: f"{r['seconds']:.0f}"))
    rows = [(label, [cell(r) for r in results]) for label, cell in figures]
    width = max(len(label) for label, _ in rows)
    columns = [max(len(values[i]) for _, values in rows) for i in range(len(results))]
    return "\n".join(
        f"{label:<{width}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(values, columns, strict=True))
        for label, values in rows
    )


def curve_points(result: dict) -> list[tuple[str, dict]]:
    """``(label, point)`` of a direction's curves in order: ``1:250`` is phase 1's step 250."""
    return [
        (f"{phase.rsplit('_', 1)[-1]}:{point['step']}", point)
        for phase, points in result.get("curves", {}).items()
        for point in points
    ]


def format_curves(results: list[dict], max_fah: float, audio: str = "unseen engine's") -> str:
    """Per direction, a row per validated step: validation's recall and cutoff, the unseen
    engine's (``audio``'s) recall there and at its matched point, each seed's and (with
    several) the mean."""
    blocks = []
    for name in dict.fromkeys(r["direction"] for r in results if r.get("curves")):
        runs = [r for r in results if r["direction"] == name and r.get("curves")]
        labels = list(dict.fromkeys(label for r in runs for label, _ in curve_points(r)))
        by_run = [dict(curve_points(r)) for r in runs]
        lines = [
            f"{name}: learning curve (phase:step; per seed {[r.get('seed') for r in runs]}: "
            f"validation recall @ its cutoff | {audio} recall there | {audio} recall matched "
            f"at FAH <= {max_fah:g}; in the means a seed with none counts 0)"
        ]
        for label in labels:
            cells, there, matched = [], [], []
            for points in by_run:
                p = points.get(label)
                if p is None:
                    cells.append("-")
                    continue
                there.append(p["recall"] or 0.0)
                matched.append(p["matched_recall"] or 0.0)
                cells.append(
                    f"{_fmt(p['validation_recall'], 2)}@{_fmt(p['validation_cutoff'], 2)}"
                    f"{'*' if p.get('is_best') else ' '} | {_fmt(p['recall'], 2)} | "
                    f"{_fmt(p['matched_recall'], 2)}"
                )
            mean = ""
            if len(by_run) > 1 and there:
                mean = f"   mean {sum(there) / len(there):.3f} | {sum(matched) / len(matched):.3f}"
            lines.append(f"  {label:>7}  " + "   ".join(cells) + mean)
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


SUMMARIZED = ("test_recall", "best_recall", "test_fah", "test_false_accept_rate")


def seed_summary(results: list[dict]) -> dict[str, dict]:
    """Per direction, the mean, lowest and highest of each figure in ``SUMMARIZED`` over seeds.

    A seed whose test never reached the FAH bound (``best_recall`` None) counts as recall 0.
    """
    summary: dict[str, dict] = {}
    for name in dict.fromkeys(r["direction"] for r in results):
        runs = [r for r in results if r["direction"] == name]
        figures: dict = {"seeds": [r.get("seed") for r in runs]}
        for key in SUMMARIZED:
            values = [float(r[key] or 0.0) for r in runs]
            figures[key] = {
                "mean": sum(values) / len(values),
                "min": min(values),
                "max": max(values),
            }
        summary[name] = figures
    return summary


def format_summary(summary: dict[str, dict], max_fah: float) -> str:
    """One line per direction: mean (range) of test recall at the chosen and the best cutoff."""

    def cell(figure: dict) -> str:
        return f"{figure['mean']:.3f} ({figure['min']:.3f}-{figure['max']:.3f})"

    return "\n".join(
        f"{name}, {len(f['seeds'])} seeds {f['seeds']}: test recall at the chosen cutoff "
        f"{cell(f['test_recall'])}, best at FAH <= {max_fah:g} {cell(f['best_recall'])}"
        for name, f in summary.items()
    )


def bench_data_config(config: FullConfig) -> DataConfig:
    """The data set the bench trains from: the config's demo settings with each training
    ambient recording one engine's talk (``data.demo.ambient_one_engine_each``), in
    ``<data_dir>_by_engine``.

    The demo's own training recordings mix every engine's talk, so a direction that trains on
    one engine would keep none of them, and its phase 1 would hear almost no talk (204
    negative windows against the demo's 2,988): it then fires on any talk, the unseen
    engine's included. Grouped by engine, the talk is the same utterances; the other splits,
    the clips, the mining corpus, rooms and noises are the demo's, byte for byte.
    """
    demo = config.data.demo.model_copy(update={"ambient_one_engine_each": True})
    folder = Path(f"{config.data.data_dir}_by_engine")
    return config.data.model_copy(update={"demo": demo, "data_dir": folder})


def _data_folder(config: FullConfig, data: str | None, config_path: str = "") -> Path:
    """The source data folder: ``--data``, or ``bench_data_config``'s, built when missing.

    A demo data set built with other settings (or by another version of the builder) is used
    as it is, with a warning: rebuilding it could overwrite an experiment's data set.
    """
    from mww_core.demo_data import build_demo_dataset, demo_fingerprint

    wanted_data = bench_data_config(config)
    folder = Path(data) if data else wanted_data.data_dir
    if not (folder / MANIFEST).exists() and not (folder / "train").is_dir():
        log.info("%s is missing: building the bench's demo data set there", folder)
        build_demo_dataset(wanted_data.model_copy(update={"data_dir": folder}))
        return folder
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return folder  # not a demo data set: the user's own audio
    built, wanted = manifest.get("fingerprint"), demo_fingerprint(wanted_data)
    if built and built != wanted:
        fix = (
            "move it away and run the bench again: it builds it afresh"
            if folder == wanted_data.data_dir
            else f"leave out --data: the bench builds and uses {wanted_data.data_dir}"
        )
        log.warning(
            "%s was built with other demo settings than the bench's (%s with "
            "data.demo.ambient_one_engine_each: true; fingerprint %s, not %s): the figures "
            "are of that data set. For the bench's own, %s",
            folder, config_path or "the config", built, wanted, fix,
        )  # fmt: skip
    if built and not manifest.get("demo", {}).get("ambient_one_engine_each"):
        log.warning(
            "%s's training ambient recordings mix every engine's talk: a direction that "
            "trains on fewer engines keeps almost none of them, and its model hears little "
            "talk. Build the data set with data.demo.ambient_one_engine_each: true",
            folder,
        )
    return folder


def main(argv: list[str] | None = None) -> None:
    """Run both directions and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--steps", help="steps per phase, e.g. 1500,1000 (default: the config's)")
    parser.add_argument(
        "--data",
        help="source data folder (default: <the config's data_dir>_by_engine, built from the "
        "config's demo settings with data.demo.ambient_one_engine_each when missing)",
    )
    parser.add_argument("--max-fah", type=float, default=1.0, help="FAH bound of the best cutoff")
    parser.add_argument(
        "--negatives",
        choices=NEGATIVES,
        default="training-engine",
        help="training-engine: training hears only the engines it trains on (default); "
        "all: its negatives, ambient and mining audio stay in training",
    )
    parser.add_argument(
        "--directions",
        nargs="+",
        choices=[direction_name(a, b) for a, b in DIRECTIONS],
        help="run these directions (default: espeak_to_piper piper_to_espeak; the Pico, "
        "MBROLA and RHVoice directions need a data set with data.demo.pico_positives, "
        "data.demo.mbrola_positives and data.demo.rhvoice_positives)",
    )
    parser.add_argument(
        "--seeds",
        help="training seeds, e.g. 42,1,2: each direction is trained once per seed and the "
        "mean and range are printed (default: the config's training.seed)",
    )
    parser.add_argument(
        "--curves",
        action="store_true",
        help="also score every validated step on the unseen engine's test audio and print the "
        "learning curves (the recipe's length is chosen from them; use --steps longer than the "
        "recipe's to see past it)",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = load_config(args.config)
    steps = [int(s) for s in args.steps.split(",")] if args.steps else None
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [config.training.seed]
    source = _data_folder(config, args.data, args.config)
    started = time.monotonic()
    wanted = args.directions or [direction_name(a, b) for a, b in DEFAULT_DIRECTIONS]
    results = [
        run_direction(
            config, source, train, test, steps, args.max_fah, args.negatives, seed, args.curves
        )
        for train, test in DIRECTIONS
        if direction_name(train, test) in wanted
        for seed in seeds
    ]
    summary_by_direction = seed_summary(results)
    seconds = round(time.monotonic() - started, 1)
    used = steps or [p.steps for p in config.training.phases]
    if not args.json:
        print(
            f"steps per phase: {used}; data: {source}; negatives: {args.negatives}; "
            f"wall time {seconds:.0f} s"
        )
        print(format_table(results, args.max_fah))
        if len(seeds) > 1:
            print(format_summary(summary_by_direction, args.max_fah))
        if args.curves:
            print(format_curves(results, args.max_fah))
    summary = {
        "steps": used, "data": str(source), "negatives": args.negatives, "seconds": seconds,
        "seeds": seeds, "directions": results, "over_seeds": summary_by_direction,
    }  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
