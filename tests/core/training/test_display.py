"""TrainingProfiler figures, and both loggers rendering every training event."""

import logging
import time

from rich.console import Console

from mww_core.training.display import RichTrainingLogger, TrainingLogger
from mww_core.training.profiler import TrainingProfiler


def test_profiler_accumulates_sections():
    profiler = TrainingProfiler()
    for _ in range(3):
        with profiler.section("data"):
            time.sleep(0.01)
    profiler.add("train_step", 0.09)
    rows = {r["section"]: r for r in profiler.rows()}
    assert rows["data"]["calls"] == 3 and rows["data"]["seconds"] >= 0.03
    assert profiler.rows()[0]["section"] == "train_step"  # largest first
    share = profiler.share("data")
    assert 0.2 < share < 0.5 and abs(sum(r["share"] for r in rows.values()) - 1) < 1e-3
    disabled = TrainingProfiler(enabled=False)
    with disabled.section("data"):
        pass
    assert disabled.rows() == []


def _events(logger):
    logger.print_header({"run": "r", "model": "mixednet"})
    logger.log_phase_transition(0, {"steps": 10, "learning_rate": 0.001, "start_step": 4})
    logger.update_progress(0, 5, 10, {"loss": 0.25, "learning_rate": 0.001})
    logger.log_step_metrics(5, {"loss": 0.25, "accuracy": 0.9})
    logger.print_validation_results(
        5, {"recall": 0.875, "fah": 0.5, "cutoff": 0.7, "target_met": True, "is_best": True}
    )
    logger.print_confusion_matrix([[40, 2], [3, 21]])
    logger.log_checkpoint("/x/ckpt-5", 5)
    logger.print_mining_stats({"kept": 12})
    profiler = TrainingProfiler()
    profiler.add("data", 0.5)
    logger.print_profile(profiler)
    logger.log_warning("careful")
    logger.update_progress(0, 10, 10, {"loss": 0.2, "learning_rate": 0.001})
    logger.print_completion_summary({"steps": 10, "seconds": 3.0, "best": {"step": 5}})


def test_rich_logger_shows_every_event():
    console = Console(record=True, width=140, force_terminal=False)
    logger = RichTrainingLogger(console)
    _events(logger)
    text = console.export_text()
    for expected in ("mixednet", "phase 1", "resuming at step 4", "0.875", "validation",
                     "detected", "21", "checkpoint at step 5", "hard negatives", "careful",
                     "where training time goes", "training summary"):  # fmt: skip
        assert expected in text, expected
    assert logger.progress is None  # the display it started is stopped


def test_plain_logger_turns_events_into_log_lines(caplog):
    caplog.set_level(logging.INFO, logger="mww_core")
    logger = TrainingLogger(every_s=0.0)
    _events(logger)
    text = caplog.text
    for expected in ("phase 1", "step 5/10", "lr 0.001", "recall 0.875", "FAH 0.50",
                     "tp 21", "checkpoint at step 5", "mining", "careful", "profile"):  # fmt: skip
        assert expected in text, expected


def test_the_live_line_shows_how_often_the_engine_classifier_is_right():
    logger = TrainingLogger(every_s=0.0)
    plain = logger.status_line(3, 10, {"loss": 0.5, "learning_rate": 0.001})
    adversarial = logger.status_line(3, 10, {"loss": 0.5, "engine_accuracy": 0.412})
    assert "engines told apart" not in plain
    assert "engines told apart 0.41 " in adversarial
