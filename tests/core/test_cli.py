"""``mww-train``: every option explained, clear errors, and the live training display."""

import pytest
from rich.console import Console

from mww_core import cli
from tests.conftest import write_tiny_config


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as done:
        cli.train_main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--config", "--run-name", "--train-only"):
        assert option in text
    for words in ("preset name", "resumes from its last checkpoint", "skip evaluation and export",
                  "TensorBoard", "ETA"):  # fmt: skip
        assert words in text


def test_missing_config_exits_with_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        cli.train_main(["--config", str(tmp_path / "nope.yaml")])
    assert done.value.code == 2
    assert "config file not found" in capsys.readouterr().err


def test_an_error_prints_a_long_path_whole_and_as_written(tmp_path, capsys):
    config = tmp_path / ("deep-" * 20) / "[red]config.yaml"  # past 80 columns, with markup
    with pytest.raises(SystemExit):
        cli.train_main(["--config", str(config)])
    captured = capsys.readouterr()
    assert str(config) in captured.err and captured.out == ""


@pytest.mark.slow
def test_train_only_shows_phase_step_loss_lr_validation_and_eta(tmp_path, monkeypatch):
    config = write_tiny_config(tmp_path)
    console = Console(record=True, width=200, force_terminal=False)
    monkeypatch.setattr(cli, "console", console)
    cli.train_main(["--config", str(config), "--train-only"])
    text = console.export_text()
    for words in ("phase 1", "phase 2", "step 40/40", "loss", "lr 0.003", "val recall",
                  "FAH", "ETA", "validation", "training summary", "best_weights"):  # fmt: skip
        assert words in text, words
    assert (tmp_path / "runs" / "tiny" / "train_phase_2" / "tensorboard").is_dir()
    assert not (tmp_path / "runs" / "tiny" / "export").exists()
