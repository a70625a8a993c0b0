"""Training events shown to people: log lines (TrainingLogger) or a Rich display (Rich...)."""

from __future__ import annotations

import logging
import time
from typing import Any

from mww_core.training.profiler import TrainingProfiler

log = logging.getLogger(__name__)


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _eta(done: int, total: int, elapsed_s: float) -> str:
    if done <= 0 or done >= total:
        return "0s" if done >= total else "?"
    left = elapsed_s / done * (total - done)
    return f"{int(left // 60)}m{int(left % 60):02d}s" if left >= 60 else f"{left:.0f}s"


class TrainingLogger:
    """Every training event as a log line; inside a Prefect task these reach the run log.

    The Trainer calls these methods; ``RichTrainingLogger`` renders the same events for a
    terminal. ``every_s`` rate-limits progress lines.
    """

    def __init__(self, every_s: float = 30.0):
        self.every_s = every_s
        self._last_line = 0.0
        self._phase_started = time.monotonic()
        self._start_step = 0
        self.last_validation: dict | None = None

    def print_header(self, info: dict) -> None:
        """Run, model and data summary at the start of training."""
        log.info("training: %s", ", ".join(f"{k}={v}" for k, v in info.items()))

    def log_phase_transition(self, phase_index: int, settings: dict) -> None:
        """A phase starts (or resumes) with these settings."""
        self._phase_started = time.monotonic()
        self._start_step = settings.get("start_step", 0)
        log.info(
            "phase %d: %d steps at learning rate %g (from step %d)",
            phase_index + 1, settings["steps"], settings["learning_rate"], self._start_step,
        )  # fmt: skip

    def update_progress(self, phase_index: int, step: int, total: int, metrics: dict) -> None:
        """Called every step: phase, step, loss, learning rate, last validation, ETA."""
        now = time.monotonic()
        if step < total and now - self._last_line < self.every_s:
            return
        self._last_line = now
        log.info("phase %d %s", phase_index + 1, self.status_line(step, total, metrics))

    def status_line(self, step: int, total: int, metrics: dict) -> str:
        """``step s/n, loss, lr, [engines told apart,] val recall/FAH, ETA`` as one line."""
        val = self.last_validation or {}
        done = step - self._start_step
        eta = _eta(done, total - self._start_step, time.monotonic() - self._phase_started)
        engine = metrics.get("engine_accuracy")  # with a phase's engine_adversarial
        return (
            f"step {step}/{total} loss {_fmt(metrics.get('loss'), '.4f')} "
            f"lr {_fmt(metrics.get('learning_rate'), '.2g')} "
            + ("" if engine is None else f"engines told apart {_fmt(engine, '.2f')} ")
            + f"val recall {_fmt(val.get('recall'))} FAH {_fmt(val.get('fah'), '.2f')} ETA {eta}"
        )

    def log_step_metrics(self, step: int, metrics: dict) -> None:
        """Training metrics at a validation step (loss, accuracy, ...)."""
        log.info(
            "step %d: %s", step, ", ".join(f"{k} {_fmt(v, '.4g')}" for k, v in metrics.items())
        )

    def print_validation_results(self, step: int, metrics: dict) -> None:
        """Validation recall, FAH, cutoff and whether the target is met."""
        self.last_validation = metrics
        log.info(
            "step %d validation: recall %s at FAH %s (cutoff %s, target %s)%s",
            step, _fmt(metrics.get("recall")), _fmt(metrics.get("fah"), ".2f"),
            _fmt(metrics.get("cutoff"), ".2f"), "met" if metrics.get("target_met") else "missed",
            " -> new best" if metrics.get("is_best") else "",
        )  # fmt: skip

    def print_confusion_matrix(self, matrix: list[list[int]], title: str = "clips") -> None:
        """``[[tn, fp], [fn, tp]]``."""
        (tn, fp), (fn, tp) = matrix
        log.info("confusion (%s): tp %d, fn %d, fp %d, tn %d", title, tp, fn, fp, tn)

    def log_checkpoint(self, path: str, step: int) -> None:
        """A checkpoint was written."""
        log.info("checkpoint at step %d: %s", step, path)

    def print_mining_stats(self, stats: dict) -> None:
        """Hard negatives kept, per source."""
        log.info("mining: %s", stats)

    def print_completion_summary(self, summary: dict) -> None:
        """End of a phase or of training: best metrics, time."""
        best = summary.get("best") or {}
        log.info(
            "training done: %s steps in %.0f s; best step %s recall %s FAH %s",
            summary.get("steps"), summary.get("seconds", 0.0), best.get("step"),
            _fmt(best.get("recall")), _fmt(best.get("fah"), ".2f"),
        )  # fmt: skip

    def print_profile(self, profiler: TrainingProfiler) -> None:
        """Where training time went."""
        for row in profiler.rows():
            log.info(
                "profile %-12s %8.2f s %6d calls %8.2f ms/call %5.1f%%",
                row["section"], row["seconds"], row["calls"], row["ms_per_call"],
                100 * row["share"],
            )  # fmt: skip

    def log_warning(self, message: str) -> None:
        """Something the user should look at."""
        log.warning(message)


class RichTrainingLogger(TrainingLogger):
    """The same events on a terminal: a live bar per phase, tables for validation and profile.

    Pass the CLI's ``rich.progress.Progress`` to share its live display; otherwise one is
    started at the first phase and stopped at the completion summary.
    """

    def __init__(self, console=None, progress=None):
        super().__init__()
        from rich.console import Console

        self.console = console or Console()
        self.progress = progress
        self._own_progress = progress is None
        self._tasks: dict[int, Any] = {}

    def _table(self, title: str, columns: list[str], rows: list[list[Any]]):
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, justify="right" if column != columns[0] else "left")
        for row in rows:
            table.add_row(*[str(v) for v in row])
        return table

    def print_header(self, info: dict) -> None:
        """A panel with the run, model and data summary."""
        from rich.panel import Panel

        body = "\n".join(f"[bold]{k}[/bold]: {v}" for k, v in info.items())
        self.console.print(Panel(body, title="mww training", expand=False))

    def log_phase_transition(self, phase_index: int, settings: dict) -> None:
        """A rule naming the phase, then a progress bar for it."""
        super().log_phase_transition(phase_index, settings)
        self.console.rule(
            f"phase {phase_index + 1}: {settings['steps']} steps, lr {settings['learning_rate']:g}"
            + (f", resuming at step {settings['start_step']}" if settings.get("start_step") else "")
        )
        if self.progress is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                console=self.console,
            )  # fmt: skip
            self.progress.start()
        self._tasks[phase_index] = self.progress.add_task(
            f"phase {phase_index + 1}",
            total=settings["steps"],
            completed=settings.get("start_step", 0),
        )

    def update_progress(self, phase_index: int, step: int, total: int, metrics: dict) -> None:
        """Bar text: phase, step, loss, learning rate, last validation recall/FAH, ETA."""
        task = self._tasks.get(phase_index)
        if task is None:
            return
        self.progress.update(
            task,
            completed=step,
            description=f"[bold]phase {phase_index + 1}[/bold] "
            + self.status_line(step, total, metrics),
        )

    def log_step_metrics(self, step: int, metrics: dict) -> None:
        """One line of training metrics."""
        text = ", ".join(f"{k} {_fmt(v, '.4g')}" for k, v in metrics.items())
        self.console.print(f"[dim]step {step}:[/dim] {text}")

    def print_validation_results(self, step: int, metrics: dict) -> None:
        """Validation table: recall, FAH, cutoff, target, best."""
        self.last_validation = metrics
        row = [
            step, _fmt(metrics.get("recall")), _fmt(metrics.get("fah"), ".2f"),
            _fmt(metrics.get("cutoff"), ".2f"), _fmt(metrics.get("false_accept_rate")),
            "yes" if metrics.get("target_met") else "no", "*" if metrics.get("is_best") else "",
        ]  # fmt: skip
        columns = ["step", "recall", "FAH", "cutoff", "false accepts", "target met", "best"]
        self.console.print(self._table("validation", columns, [row]))

    def print_confusion_matrix(self, matrix: list[list[int]], title: str = "clips") -> None:
        """2x2 table: rows are the truth, columns the prediction."""
        (tn, fp), (fn, tp) = matrix
        rows = [["wake word", tp, fn], ["not wake word", fp, tn]]
        self.console.print(
            self._table(f"confusion ({title})", ["truth", "detected", "missed"], rows)
        )

    def log_checkpoint(self, path: str, step: int) -> None:
        """A dim line per checkpoint."""
        self.console.print(f"[dim]checkpoint at step {step}[/dim]")

    def print_mining_stats(self, stats: dict) -> None:
        """Hard negatives per source."""
        rows = [[k, v] for k, v in stats.items()]
        self.console.print(self._table("hard negatives", ["source", "kept"], rows))

    def print_completion_summary(self, summary: dict) -> None:
        """Best metrics and time; stops a display this logger started."""
        best = summary.get("best") or {}
        rows = [
            ["steps", summary.get("steps")], ["seconds", f"{summary.get('seconds', 0.0):.1f}"],
            ["best step", best.get("step")], ["best recall", _fmt(best.get("recall"))],
            ["best FAH", _fmt(best.get("fah"), ".2f")], ["cutoff", _fmt(best.get("cutoff"), ".2f")],
        ]  # fmt: skip
        self.console.print(self._table("training summary", ["", "value"], rows))
        if self._own_progress and self.progress is not None:
            self.progress.stop()
            self.progress = None
            self._tasks.clear()

    def print_profile(self, profiler: TrainingProfiler) -> None:
        """Where training time went, largest first."""
        rows = [
            [r["section"], f"{r['seconds']:.2f}", r["calls"], f"{r['ms_per_call']:.2f}",
             f"{100 * r['share']:.1f}%"]
            for r in profiler.rows()
        ]  # fmt: skip
        columns = ["section", "seconds", "calls", "ms/call", "share"]
        self.console.print(self._table("where training time goes", columns, rows))

    def log_warning(self, message: str) -> None:
        """A yellow warning line."""
        self.console.print(f"[yellow]warning:[/yellow] {message}")
