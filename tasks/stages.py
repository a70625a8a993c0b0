"""One Prefect task per pipeline stage; each loads the config, calls mww_core and reports."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from mww_core import pipeline
from mww_core.config import FullConfig, load_config
from mww_core.stages import StageRecord


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


@task(name="prepare-data", cache_policy=NO_CACHE)
def prepare_data(config_path: str, run_name: str | None = None) -> dict:
    """Build (demo) or check the audio data folder."""
    cfg = stage_config(config_path, run_name)
    return _finish(pipeline.prepare_data(cfg, log_progress("data")))


@task(name="features", cache_policy=NO_CACHE)
def features(config_path: str, run_name: str | None, data: dict) -> dict:
    """Augment and featurize audio into the Parquet store."""
    cfg = stage_config(config_path, run_name)
    return _finish(pipeline.run_features(cfg, StageRecord(**data), log_progress("features")))


@task(name="train-phase", cache_policy=NO_CACHE, task_run_name="train-phase-{phase_index}")
def train_phase(
    config_path: str,
    run_name: str | None,
    phase_index: int,
    feats: dict,
    previous: dict | None = None,
    mined: dict | None = None,
) -> dict:
    """Train one phase (resumes from its last checkpoint after a crash)."""
    cfg = stage_config(config_path, run_name)
    record = pipeline.run_train_phase(
        cfg,
        phase_index,
        StageRecord(**feats),
        StageRecord(**previous) if previous else None,
        StageRecord(**mined) if mined else None,
        log_progress(f"train phase {phase_index + 1}", every_s=15.0),
    )
    return _finish(record)


@task(name="mine-hard-negatives", cache_policy=NO_CACHE)
def mine_hard_negatives(config_path: str, run_name: str | None, feats: dict, phase: dict) -> dict:
    """Keep the negative windows the phase-1 model falsely accepts."""
    cfg = stage_config(config_path, run_name)
    record = pipeline.run_mining(cfg, StageRecord(**feats), StageRecord(**phase))
    get_run_logger().info("mining: %s", record.metrics.get("kept"))
    return _finish(record)


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(config_path: str, run_name: str | None, feats: dict, phase: dict) -> dict:
    """Stream the quantized model over validation and test audio; publish the report."""
    cfg = stage_config(config_path, run_name)
    record = pipeline.run_evaluation(cfg, StageRecord(**feats), StageRecord(**phase))
    if not record.skipped:
        create_markdown_artifact(
            Path(record.outputs["report"]).read_text(), key="evaluation-report"
        )
        rows = [{"split": s, **record.metrics[s]} for s in ("validation", "test")]
        create_table_artifact(rows, key="evaluation-metrics")
    return _finish(record)


@task(name="export", cache_policy=NO_CACHE)
def export(config_path: str, run_name: str | None, evaluated: dict) -> dict:
    """Write the ESPHome model and manifest."""
    cfg = stage_config(config_path, run_name)
    return _finish(pipeline.run_export(cfg, StageRecord(**evaluated)))
