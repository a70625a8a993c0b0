"""Console scripts: ``mww-train`` (the pipeline without Prefect) and ``mww-demo-data``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from mww_core import pipeline
from mww_core.audio import AudioError
from mww_core.config import ConfigError, load_config
from mww_core.lock import RunLockedError, run_lock

# TensorFlow is imported later, inside the commands: keep its C++ info lines off the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

console = Console()


def print_error(exc: BaseException) -> None:
    """``error: MESSAGE`` on stderr, as written: never wrapped (a long path stays one piece to
    copy) and never read as Rich markup (a ``[`` in a file name stays)."""
    Console(stderr=True, soft_wrap=True).print(Text.assemble(("error:", "red"), f" {exc}"))


class RichProgress:
    """Renders mww_core's ``progress(what, done, total)`` callbacks as Rich progress bars."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        if what not in self.tasks:
            self.tasks[what] = self.progress.add_task(what, total=total)
        self.progress.update(self.tasks[what], completed=done, total=total)


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console)]
    )


def progress_bars(on: Console | None = None) -> Progress:
    """Rich progress bars on ``on`` (default: the CLI's console, stdout)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=on or console,
    )


def run_pipeline(config_path: str, run_name: str | None = None) -> dict:
    """Every stage in order, in this process, with Rich progress bars; returns a summary."""
    from mww_core.training.display import RichTrainingLogger

    cfg = load_config(config_path, **({"run_name": run_name} if run_name else {}))
    with run_lock(cfg.run_dir), progress_bars() as bars:
        logger = RichTrainingLogger(console, bars)
        records = pipeline.run_all(cfg, pipeline.Hooks(RichProgress(bars), logger))
    evaluated, exported = records["evaluate"], records["export"]
    return {
        "model": exported.outputs["tflite"],
        "manifest": exported.outputs["manifest"],
        "cutoff": evaluated.metrics["cutoff"],
        "test": evaluated.metrics["test"],
        "export": exported.metrics,
    }


def run_training(config_path: str, run_name: str | None = None) -> dict:
    """The stages up to the last training phase (no evaluation or export); its record."""
    from mww_core.training.display import RichTrainingLogger

    cfg = load_config(config_path, **({"run_name": run_name} if run_name else {}))
    with run_lock(cfg.run_dir), progress_bars() as bars:
        hooks = pipeline.Hooks(RichProgress(bars), RichTrainingLogger(console, bars))
        record = pipeline.train(cfg, hooks)
    return {"best_weights": record.outputs["best_weights"], "best": record.metrics["best"]}


def train_parser() -> argparse.ArgumentParser:
    """``mww-train``'s options."""
    parser = argparse.ArgumentParser(
        prog="mww-train",
        description="Train a wake-word model end to end (the same stages as the Prefect flow, "
        "run in this process): data, features, training phase 1, hard-negative mining, the "
        "later phases, evaluation and export. Stages whose inputs are unchanged are skipped; an "
        "interrupted training phase resumes from its last checkpoint. Training shows a live "
        "line per phase (step, loss, learning rate, last validation recall/FAH, ETA), a "
        "validation table at every evaluation and writes TensorBoard scalars to "
        "<run>/train_phase_<n>/tensorboard.",
    )
    parser.add_argument(
        "--config",
        default="configs/demo.yaml",
        help="YAML config file, or a preset name from configs/ (demo, offline, full); "
        "default: %(default)s",
    )
    parser.add_argument(
        "--run-name",
        default=None,
        help="folder under runs_dir for this run (default: the config's run_name)",
    )
    parser.add_argument(
        "--explain-config",
        nargs="?",
        const="",
        metavar="SECTION",
        help="print every config field (or one section's: training, data...) with its type, "
        "default and description, then exit",
    )
    parser.add_argument(
        "--train-only",
        action="store_true",
        help="stop after the last training phase: skip evaluation and export",
    )
    return parser


def train_main(argv: list[str] | None = None) -> None:
    """``mww-train``: train a wake-word model end to end without a Prefect server."""
    args = train_parser().parse_args(argv)
    if args.explain_config is not None:
        _explain(args.explain_config or None)
        return
    _setup_logging()
    try:
        if args.train_only:
            summary = run_training(args.config, args.run_name)
        else:
            summary = run_pipeline(args.config, args.run_name)
    except (ConfigError, FileNotFoundError, AudioError, RunLockedError) as exc:
        print_error(exc)
        sys.exit(2)
    console.print_json(json.dumps(summary))


# Narrower consoles (80 columns when piped) get one field per paragraph instead of a table.
_TABLE_MIN_WIDTH = 140


def _explain(section: str | None) -> None:
    """``mww-train --explain-config [SECTION]``: the config fields as a table."""
    from rich.padding import Padding
    from rich.table import Table

    from mww_core.config import explain_config

    try:
        rows = explain_config(section)
    except ConfigError as exc:
        print_error(exc)
        sys.exit(2)
    if console.width < _TABLE_MIN_WIDTH:  # a table would leave descriptions a word wide
        for field, kind, default, description in rows:
            console.print(Text.assemble((field, "bold"), f"  {kind} = {default}"))
            console.print(Padding(Text(description), (0, 0, 0, 4), expand=False))
            console.print()
        return
    table = Table(title=f"config: {section or 'every section'}", show_lines=False)
    table.add_column("field", no_wrap=True)
    for column in ("type", "default"):
        table.add_column(column, overflow="fold", max_width=32)
    table.add_column("description", overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def demo_data_main(argv: list[str] | None = None) -> None:
    """``mww-demo-data``: build the offline demo data set named by a config."""
    parser = argparse.ArgumentParser(
        prog="mww-demo-data", description="Build the bundled 'hey jarvis' demo data set."
    )
    parser.add_argument("--config", default="configs/demo.yaml", help="YAML config or preset")
    args = parser.parse_args(argv)
    _setup_logging()
    cfg = load_config(args.config)
    from mww_core.demo_data import build_demo_dataset

    with Progress(console=console) as bars:
        path = build_demo_dataset(cfg.data, RichProgress(bars))
    console.print(f"demo data set ready in {path}")
