"""One Prefect task per pipeline stage; each loads the config, calls mww_core and reports."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE

from mww_core import pipeline, retrain
from mww_core.config import FullConfig, load_config
from mww_core.stages import StageRecord

# No Prefect result cache: each stage's stage.json fingerprint (inputs, config sections and the
# source of the mww_core modules it runs) decides whether it is skipped, so the run folder alone
# resumes a run, also after the Prefect database was deleted.

# Failures worth retrying: a killed feature worker, a TTS subprocess, a busy or network disk.
TRANSIENT = (
    concurrent.futures.process.BrokenProcessPool,
    subprocess.CalledProcessError,
    subprocess.TimeoutExpired,
    TimeoutError,
    ConnectionError,
    InterruptedError,
)


def retry_if_transient(task, task_run, state) -> bool:  # noqa: ARG001 (Prefect's signature)
    """Prefect retry condition: retry only failures that may pass on a second try."""
    try:
        state.result()
    except TRANSIENT:
        return True
    except Exception:  # a bad config or bad audio fails the same way every time
        return False
    return False


# Stages that may fail transiently (``TRANSIENT``: a crashed worker pool, a timed-out tool, a
# dropped connection) get two more tries; the run folder makes a retry continue, not restart.
TRANSIENT_RETRIES = {
    "cache_policy": NO_CACHE,
    "retries": 2,
    "retry_delay_seconds": 5,
    "retry_condition_fn": retry_if_transient,
}


def _inline_images(markdown_path: Path) -> str:
    """A markdown file's text with its local PNG images inlined, for a Prefect artifact."""

    def inline(match: re.Match) -> str:
        image = markdown_path.parent / match.group(2)
        if not image.is_file():
            return match.group(0)
        data = base64.b64encode(image.read_bytes()).decode()
        return f"![{match.group(1)}](data:image/png;base64,{data})"

    return re.sub(r"!\[([^\]]*)\]\(([^)]+\.png)\)", inline, markdown_path.read_text())


def _link_model(tflite: str, key: str, label: str) -> None:
    """A model artifact: a link when the model sits at a URL, else a table of where it is."""
    description = f"{label}: the ESPHome model and its manifest"
    if "://" in tflite and not tflite.startswith("file://"):
        create_link_artifact(tflite, link_text=label, key=key, description=description)
        return
    path = Path(tflite).resolve()
    row = {"model": label, "path": str(path), "bytes": path.stat().st_size}
    manifest = path.with_suffix(".json")
    if manifest.exists():
        micro = json.loads(manifest.read_text()).get("micro", {})
        row |= {"manifest": str(manifest), "probability_cutoff": micro.get("probability_cutoff"),
                "tensor_arena_size": micro.get("tensor_arena_size")}  # fmt: skip
    create_table_artifact([row], key=key, description=description)


def stage_config(config_path: str, run_name: str | None) -> FullConfig:
    """The run's config, with the run name overridden when given."""
    overrides = {"run_name": run_name} if run_name else {}
    return load_config(config_path, **overrides)


def log_progress(stage: str, every_s: float = 10.0) -> Callable[[str, int, int], None]:
    """A progress callback that turns mww_core's progress into Prefect log lines."""
    logger = get_run_logger()
    last = {"t": 0.0, "what": ""}

    def report(what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or what != last["what"] or now - last["t"] >= every_s:
            logger.info(
                "%s: %s %d/%d (%.0f%%)", stage, what, done, total, 100 * done / max(total, 1)
            )
            last.update(t=now, what=what)

    return report


def _finish(record: StageRecord) -> dict:
    logger = get_run_logger()
    if record.skipped:
        logger.info("%s: inputs unchanged, reused %s", record.name, record.fingerprint)
    else:
        logger.info("%s: finished in %.1f s", record.name, record.finished - record.started)
    return record.to_dict()


class FeatureProgress:
    """The features stage's progress as log lines and the ``features-progress`` artifact.

    Train windows fill 0-90 %, the validation/test streams the rest; updated at most every
    2 s or 5 points, and set to 100 when the stage is done (or was reused).
    """

    def __init__(self) -> None:
        from prefect.artifacts import create_progress_artifact

        self.log = log_progress("features")
        self.artifact = create_progress_artifact(
            0.0, key="features-progress", description="features: share of windows and streams done"
        )
        self.last = {"t": time.monotonic(), "pct": 0.0}

    def __call__(self, what: str, done: int, total: int) -> None:
        from prefect.artifacts import update_progress_artifact

        self.log(what, done, total)
        share = done / max(total, 1)
        pct = self.last["pct"]  # other steps (importing feature sets) hold the bar
        if what == "train windows":
            pct = 90.0 * share
        elif what.startswith("streams"):
            pct = 90.0 + 10.0 * share
        now = time.monotonic()
        if pct >= self.last["pct"] + 5.0 or (pct > self.last["pct"] and now - self.last["t"] >= 2):
            message = f"features: {what} {done}/{total}"
            update_progress_artifact(self.artifact, round(pct, 1), message)
            self.last.update(t=now, pct=pct)

    def close(self) -> None:
        """Mark the stage done."""
        from prefect.artifacts import update_progress_artifact

        update_progress_artifact(self.artifact, 100.0, "features: done")


def _rounded(row: dict) -> dict:
    """A metrics row as the report shows it: rates to 3 places, FAH to 2, the rest as is."""
    out = {}
    for key, value in row.items():
        if isinstance(value, float):
            value = round(value, 2 if key in ("fah", "cutoff") else 3)
        out[key] = value
    return out


def publish_features(record: StageRecord) -> None:
    """Warn about every audio file the features stage skipped."""
    for bad in record.metrics.get("bad_files", []):
        get_run_logger().warning("features: skipped %s", bad)


def publish_evaluation(record: StageRecord) -> None:
    """The report and a metrics table (published on every run, also when the stage was reused,
    so each flow run shows its model)."""
    create_markdown_artifact(
        _inline_images(Path(record.outputs["report"])),
        key="evaluation-report",
        description="Streaming evaluation as the device fires: recall, FAH, cutoff table, DET",
    )
    shipped = record.metrics.get("shipped", "phase 2")
    rows = [{"model": f"{shipped} (shipped)", "split": s, **record.metrics[s]} for s in SPLITS]
    if shipped != "phase 2":  # phase 1's weights ship: show what phase 2 learned beside them
        learned = record.metrics["phase_2"]
        rows += [{"model": "phase 2 (not shipped)", "split": s, **learned[s]} for s in SPLITS]
    create_table_artifact(
        [_rounded(r) for r in rows],
        key="evaluation-metrics",
        description="Validation and test figures at the chosen cutoff",
    )


def publish_export(record: StageRecord) -> None:
    """Where the exported model is, its size, cutoff and tensor arena."""
    _link_model(record.outputs["tflite"], "wakeword-model", "exported ESPHome model")


SPLITS = ("validation", "test")
# What each stage publishes besides its log lines.
PUBLISH: dict[str, Callable[[StageRecord], None]] = {
    "features": publish_features,
    "evaluate": publish_evaluation,
    "export": publish_export,
}


@task(name="stage", cache_policy=NO_CACHE, retry_condition_fn=retry_if_transient)
def run_stage_task(config_path: str, run_name: str | None, stage_name: str, inputs: dict) -> dict:
    """Run (or reuse) one stage of the graph on its input records; publish its artifacts."""
    cfg = stage_config(config_path, run_name)
    stage = next(s for s in pipeline.stage_graph(cfg) if s.name == stage_name)
    records = {name: StageRecord(**record) for name, record in inputs.items()}
    progress = FeatureProgress() if stage.name == "features" else log_progress(stage.label, 15.0)
    record = stage(cfg, records, pipeline.Hooks(progress))
    if isinstance(progress, FeatureProgress):
        progress.close()
    if stage.name in PUBLISH:
        PUBLISH[stage.name](record)
    return _finish(record)


def stage_task(stage: pipeline.Stage):
    """The Prefect task of one stage, named as the logs and folders name it (train-phase-1)."""
    name = stage.label.replace(" ", "-")
    return run_stage_task.with_options(
        name=name, task_run_name=name, retries=stage.retries, retry_delay_seconds=5
    )


# --- retraining on new negatives ----------------------------------------------------------------


def _publish_current(current: dict, summary: dict | None) -> None:
    """Table, report and model link of a retraining flow run (published on every run)."""
    rows = [{"model": current["version"], "cutoff": current["cutoff"], **current["test"]}]
    if summary and summary.get("comparison"):
        rows = [
            {"model": label, "cutoff": row["inbox"]["cutoff"], **row["test"],
             "inbox_false_accepts": row["inbox"]["false_accepts"], "inbox_fah": row["inbox"]["fah"]}
            for label, row in summary["comparison"].items()
        ]  # fmt: skip
    create_table_artifact(rows, key="retrain-metrics")
    if summary:
        create_markdown_artifact(_inline_images(Path(summary["report"])), key="retrain-report")
    _link_model(current["tflite"], "retrain-current-model", f"current model {current['version']}")


@task(name="scan-negatives-inbox", **TRANSIENT_RETRIES)
def scan_negatives_inbox(config_path: str, run_name: str | None = None) -> dict:
    """Hash the inbox; report the current model when nothing new has arrived."""
    cfg = stage_config(config_path, run_name)
    scan = retrain.scan_inbox(cfg)
    current = retrain.current_version(cfg)
    get_run_logger().info(
        "inbox %s: %d clips, %d new (%.2f s); current model %s",
        scan.inbox_dir, scan.total_files, len(scan.new_files), scan.seconds, current["version"],
    )  # fmt: skip
    if not scan.new_files:
        create_markdown_artifact(
            f"# No new negatives\n\n{scan.total_files} clips in `{scan.inbox_dir}`, all seen "
            f"before (fingerprint `{scan.fingerprint}`); model `{current['version']}` stays.\n",
            key="retrain-report",
        )
        _publish_current(current, None)
    return scan.to_dict()


@task(name="inbox-features", **TRANSIENT_RETRIES)
def inbox_features(config_path: str, run_name: str | None, scan: dict) -> dict:
    """Frontend features of the new inbox clips only."""
    cfg = stage_config(config_path, run_name)
    return _finish(retrain.run_inbox_features(cfg, retrain.InboxScan(**scan)))


@task(name="mine-inbox-hard-negatives", cache_policy=NO_CACHE)
def mine_inbox_hard_negatives(
    config_path: str, run_name: str | None, scan: dict, inbox: dict
) -> dict:
    """Windows of the new clips that the current model falsely accepts."""
    cfg = stage_config(config_path, run_name)
    current = retrain.current_version(cfg)
    record = retrain.run_inbox_mining(
        cfg,
        retrain.InboxScan(**scan),
        StageRecord(**inbox),
        current,
        log_progress("mine inbox", every_s=15.0),
    )
    get_run_logger().info(
        "model %s fires on %d new windows", current["version"], record.metrics["kept"]
    )
    return _finish(record)


@task(
    name="fine-tune",
    cache_policy=NO_CACHE,
    retries=1,  # a retry resumes from the last checkpoint
    retry_condition_fn=retry_if_transient,
)
def fine_tune(config_path: str, run_name: str | None, scan: dict, mined: dict) -> dict:
    """Fine-tune the current model with the new hard negatives."""
    cfg = stage_config(config_path, run_name)
    record = retrain.run_fine_tune(
        cfg,
        retrain.InboxScan(**scan),
        StageRecord(**mined),
        retrain.current_version(cfg),
        log_progress("fine-tune", every_s=15.0),
    )
    return _finish(record)


@task(name="evaluate-candidate", cache_policy=NO_CACHE)
def evaluate_candidate(
    config_path: str, run_name: str | None, scan: dict, tuned: dict, inbox: dict
) -> dict:
    """Evaluate and export the fine-tuned model; score old and new model on the new clips."""
    cfg = stage_config(config_path, run_name)
    return retrain.evaluate_candidate(
        cfg,
        retrain.InboxScan(**scan),
        StageRecord(**tuned),
        StageRecord(**inbox),
        retrain.current_version(cfg),
    )


@task(name="promote-or-keep", cache_policy=NO_CACHE)
def promote_or_keep(
    config_path: str, run_name: str | None, scan: dict, result: dict | None, reason: str = ""
) -> dict:
    """Promote the candidate if it does not regress beyond the tolerances; publish the round."""
    cfg = stage_config(config_path, run_name)
    promote = False
    if result is not None:
        promote, reason = retrain.decide_promotion(
            result["current"]["test"], result["candidate"]["test"], cfg.retrain
        )
    summary = retrain.finish_round(cfg, retrain.InboxScan(**scan), result, promote, reason)
    get_run_logger().info("round %d: %s", summary["round"], reason)
    _publish_current(retrain.current_version(cfg), summary)
    return summary
