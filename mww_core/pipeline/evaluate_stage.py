"""The evaluate stage: quantize, stream validation (cutoff) and test (report) like the device."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mww_core import stages
from mww_core.atomic import atomic_write_text
from mww_core.config import FullConfig
from mww_core.stages import StageRecord, fingerprint, run_stage

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def representative_spectrograms(config: FullConfig, feats: StageRecord, model) -> list[np.ndarray]:
    """Float training windows that calibrate int8 quantization: a third positive, the rest
    negative (chosen with the seed).

    The positives are the windows ``model`` scores highest. The calibrated range of
    the last layer's logit caps the int8 model's output: calibrated on ordinary positives, the
    demo's model never scored above 0.973 (249/256) where the float model reached 0.999, so
    every cutoff above 0.97 was out of reach and those below it hardly told clips apart.
    """
    from mww_core.frontend import features_to_float
    from mww_core.store import ShardIndex

    # Only the chosen windows are read (their row groups), not the training store.
    index = ShardIndex.build([p for p, _ in feats.outputs["train_windows"].values()])
    rng = np.random.default_rng(config.training.seed)
    n = max(3, config.export.representative_samples // 50)
    pos = np.flatnonzero(index.label == 1)
    neg = np.flatnonzero(index.label == 0)
    n_pos = min(max(1, n // 3), len(pos))
    chosen = pos
    if len(pos) > n_pos:
        from mww_core.model import window_scores

        # Positives are scored a few thousand windows at a time (memory stays bounded).
        batches = (index.read_rows(pos[i : i + 4096]) for i in range(0, len(pos), 4096))
        scores = np.concatenate(
            [window_scores(model, config.model, features_to_float(b)) for b in batches]
        )
        chosen = pos[np.argsort(-scores, kind="stable")[:n_pos]]
    rows = np.concatenate([chosen, rng.choice(neg, min(n - n_pos, len(neg)), False)])
    return [features_to_float(window) for window in index.read_rows(rows)]


EQUAL_RECALL_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


def _evaluate_weights(
    config: FullConfig, feats: StageRecord, weights: str, model_path: Path, done: Callable
) -> dict:
    """Quantize one model, stream validation and test audio; sweeps and the scored streams."""
    from mww_core import evaluation, export
    from mww_core.features.streams import split_slips
    from mww_core.model import load_model
    from mww_core.store import open_streams
    from mww_core.training.trainer import score_feature_streams

    model = load_model(config.model, weights)
    tflite = export.convert_streaming_tflite(
        model, config.model, representative_spectrograms(config, feats, model)
    )
    export.atomic_write_bytes(model_path, tflite)
    runner = evaluation.StreamingTFLiteModel(model_path)
    sweeps, scored = {}, {}
    for split in ("validation", "test"):
        streams = open_streams(feats.outputs["streams"][split])
        slips = split_slips(config, split, streams, config.evaluation.near_miss_min_distance)
        scored[split] = score_feature_streams(runner, streams, runner.stride, slips)
        sweeps[split] = evaluation.sweep(
            scored[split], config.evaluation, evaluation.sweep_cutoffs(config.evaluation)
        )
        done()
    chosen, met = evaluation.manifest_cutoff(sweeps["validation"], config.evaluation)
    test_row = next(r for r in sweeps["test"] if r["cutoff"] == chosen["cutoff"])
    summary = {
        "cutoff": chosen["cutoff"],
        "target_met_on_validation": met,
        "validation": chosen,
        "test": test_row,
    }
    return {"summary": summary, "sweeps": sweeps, "scored": scored}


def _paused_near_misses(config: FullConfig, test, cutoff: float) -> dict:
    """``{"paused_near_misses": ...}``: the test's near misses said with a pause that fire at
    ``cutoff`` (``evaluation.paused_near_misses``); ``{}`` when the test has none, or its
    ``dataset.json`` does not describe the negative stream's clips."""
    from mww_core import evaluation
    from mww_core.features.streams import plan_stream_jobs

    manifest = config.data.data_dir / "dataset.json"
    jobs = plan_stream_jobs(config, "test")
    names = next((j.sources for j in jobs if j.kind == "negative"), ())
    if not manifest.exists() or len(names) != len(test.negative_spans):
        return {}
    files = json.loads(manifest.read_text()).get("files", {})
    entries = [files.get(n, {}) for n in names]
    said = evaluation.paused_near_misses_at(test, cutoff, config.evaluation, entries)
    if not said:
        return {}
    validation = [f for f in files.values() if f.get("split") == "validation"]
    said["validation_clips"] = sum(evaluation.said_with_a_pause(f) for f in validation)
    return {"paused_near_misses": said}


def _test_groups(config: FullConfig, hits: list[bool]) -> dict:
    """Test recall per voice group, speaker gender and condition, and what the test split holds
    out.

    Read from the data set's ``dataset.json``; ``{}`` unless it describes every test positive.
    """
    from mww_core import evaluation
    from mww_core.audio import list_audio_files

    data_dir = config.data.data_dir
    manifest = data_dir / "dataset.json"
    folder = data_dir / "test" / "positive"
    if not manifest.exists() or not folder.is_dir():
        return {}
    described = json.loads(manifest.read_text())
    files = described.get("files", {})
    names = [p.relative_to(data_dir).as_posix() for p in list_audio_files(folder)]
    if len(names) != len(hits) or not all(n in files for n in names):
        log.info("recall per voice group skipped: %s does not describe every test clip", manifest)
        return {}
    voices = [evaluation.voice_group(files[n]) for n in names]
    out = {"voice_groups": evaluation.recall_by_group(hits, voices)}
    if all(files[n].get("generator") for n in names):
        engines = [_engine_label(str(files[n]["generator"]), files) for n in names]
        out["engines"] = evaluation.recall_by_group(hits, engines)
    if all("gender" in files[n] for n in names):
        genders = [str(files[n]["gender"]) for n in names]
        out["speaker_genders"] = evaluation.recall_by_group(hits, genders)
    if any("condition" in files[n] for n in names):
        conditions = [evaluation.clip_condition(files[n]) for n in names]
        out["conditions"] = evaluation.recall_by_group(hits, conditions)
    if any("text" in files[n] for n in names):
        wake_word = str(described.get("wake_word") or config.data.wake_word)
        wordings = [evaluation.clip_wording(files[n], wake_word) for n in names]
        out["wordings"] = evaluation.recall_by_group(hits, wordings)
        out["unpaused"] = evaluation.unpaused(out["wordings"])
    summary = described.get("held_out", {}).get("test", {}).get("summary")
    return {**out, "test_held_out": summary} if summary else out


def _engine_label(engine: str, files: dict) -> str:
    """``engine``, marked "never heard in training" when no file of ``train/`` is its speech."""
    heard = any(
        name.startswith("train/") and isinstance(entry, dict) and entry.get("generator") == engine
        for name, entry in files.items()
    )
    return engine if heard else f"{engine} (never heard in training)"


def _evaluation_metrics(
    config: FullConfig, final: dict, first: dict | None, learned: dict | None = None
) -> dict:
    """The evaluate stage's metrics: final model at its cutoff, phase 1 beside it, comparisons.

    ``learned`` is phase 2's own best when the final model is phase 1's carried-over weights.
    """
    from mww_core import evaluation

    cfg = config.evaluation
    summary, scored = final["summary"], final["scored"]
    stride = scored["test"].stride
    test = scored["test"]
    detections = evaluation.detect_with_config(test.positive_probs, summary["cutoff"], cfg, stride)
    hits = [bool(h) for h in evaluation.clip_hits(detections, test.positive_spans, stride)]
    sweeps = {"phase 2": (learned or final)["sweeps"]}
    sweeps |= {"phase 1": first["sweeps"]} if first else {}
    # Fixed levels, plus every high recall either model reaches (where the models differ).
    reached = {r["recall"] for s in sweeps.values() for r in s["test"] if (r["recall"] or 0) >= 0.9}
    levels = sorted({*EQUAL_RECALL_LEVELS, summary["test"]["recall"] or 0.0, *reached})
    return {
        **summary,
        "target_fah": cfg.target_fah,
        "ambient_hours": {s: v.ambient_duration_s / 3600.0 for s, v in scored.items()},
        "clips": {
            s: {"positive": len(v.positive_spans), "negative": len(v.negative_spans)}
            for s, v in scored.items()
        },
        "confusion_matrix": evaluation.confusion_matrix(
            summary["test"], len(test.positive_spans), len(test.negative_spans)
        ),
        **_test_groups(config, hits),
        **_paused_near_misses(config, test, summary["cutoff"]),
        "firing": {
            "stride": stride,
            "sliding_window_size": cfg.sliding_window_size,
            "refractory_inferences": cfg.refractory_inferences,
            "ignore_first_inferences": evaluation.ignored_inferences(
                cfg.ignore_first_frames, stride
            ),
        },
        "phase_1": first["summary"] if first else None,
        "shipped": "phase 1" if learned else "phase 2",
        "phase_2": (learned or final)["summary"],
        "equal_recall": (
            evaluation.compare_at_equal_recall({n: s["test"] for n, s in sweeps.items()}, levels)
            if first
            else []
        ),
    }


def learning_curves(phase: StageRecord, first: StageRecord | None = None) -> dict[str, list]:
    """Each phase's validation at every evaluation step (from its ``history.json``).

    Validation holds voices and settings training never used, so these are learning curves on
    a held-back group: what recipe lengths are chosen from.
    """
    curves = {}
    for name, record in (("phase 1", first), (f"phase {1 + bool(first)}", phase)):
        path = record.outputs.get("history") if record is not None else None
        if not path or not Path(path).exists():
            continue
        curves[name] = [
            {k: row.get(k) for k in _CURVE_KEYS}
            for row in json.loads(Path(path).read_text())
            if row.get("recall") is not None
        ]
    return curves


_CURVE_KEYS = (
    "step", "restart", "recall", "fah", "cutoff", "false_accept_rate", "target_met", "is_best"
)  # fmt: skip


def run_evaluation(
    config: FullConfig,
    feats: StageRecord,
    phase: StageRecord,
    progress: Progress | None = None,
    phase_1: StageRecord | None = None,
) -> StageRecord:
    """Quantize the best model, stream validation (cutoff) and test (report) like the device.

    The phase-1 model (``phase_1``, when ``phase`` is a later phase) is evaluated the same way
    so the report shows what mining and phase 2 changed.
    """
    first = phase_1 if phase_1 is not None and phase_1.fingerprint != phase.fingerprint else None
    fp = fingerprint(
        feats.fingerprint,
        phase.fingerprint,
        first.fingerprint if first else None,
        config.evaluation.fingerprint(),
        config.export.representative_samples,
        stages.code_fingerprint(__name__),
    )

    def compute(stage_dir: Path) -> dict:
        from mww_core.reports import write_report

        # Here, not in training: a change to evaluation's targets alone re-runs this stage only.
        for line in config.target_mismatches():
            log.warning("%s", line)
        total = 4 if first else 2
        count = iter(range(1, total + 1))

        def done() -> None:
            if progress:
                progress("evaluate", next(count), total)

        model_path = stage_dir / "model.tflite"
        own = phase.outputs.get("own_best_weights")
        carried = bool(first and own and (phase.metrics.get("best") or {}).get("carried_over"))
        # A carried-over phase ships phase 1's weights: evaluate those once, and what it learned.
        shipped = first.outputs["best_weights"] if carried else phase.outputs["best_weights"]
        final = _evaluate_weights(config, feats, shipped, model_path, done)
        earlier = learned = None
        if first and carried:
            earlier = final
            learned = _evaluate_weights(
                config, feats, own, stage_dir / "phase_2_model.tflite", done
            )
        elif first:
            weights = first.outputs["best_weights"]
            earlier = _evaluate_weights(
                config, feats, weights, stage_dir / "phase_1_model.tflite", done
            )
        metrics = _evaluation_metrics(config, final, earlier, learned)
        metrics["learning_curve"] = learning_curves(phase, first)
        trained = first if carried else phase  # the phase whose weights ship
        metrics["versions"] = {"trained": trained.versions, "evaluated": stages.package_versions()}
        sweeps = {"phase 2": (learned or final)["sweeps"]}
        sweeps |= {"phase 1": earlier["sweeps"]} if earlier else {}
        metrics_path = stage_dir / "metrics.json"
        atomic_write_text(metrics_path, json.dumps({**metrics, "sweeps": sweeps}, indent=2))
        report = write_report(stage_dir, metrics, sweeps)
        log.info(
            "evaluation: cutoff %.2f, test recall %s, FAH %s",
            metrics["cutoff"], metrics["test"]["recall"], metrics["test"]["fah"],
        )  # fmt: skip
        return {
            "outputs": {"model": str(model_path), "metrics": str(metrics_path), **report},
            "metrics": metrics,
        }

    return run_stage(config.run_dir / "evaluate", "evaluate", fp, compute)
