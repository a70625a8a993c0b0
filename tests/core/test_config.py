"""Config loading: presets, and every problem reported at once with its field."""

import pytest

from mww_core.config import ConfigError, load_config


def test_presets_load():
    demo = load_config("configs/demo.yaml")
    full = load_config("full")
    assert [p.steps for p in full.training.phases] == [20000, 10000]
    assert [p.learning_rate for p in full.training.phases] == [0.001, 0.0001]
    assert full.training.batch_size == 128
    w = full.training.phases[0].class_weights
    assert (w.positive, w.negative, w.hard_negative) == (1.0, 20.0, 40.0)
    assert demo.run_dir.name == "demo"


def test_every_problem_listed(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "training:\n  phases:\n    - {steps: 0, learning_rate: 0.001}\n"
        "    - {steps: 10, learning_rate: -1}\nmodel:\n  name: resnet\nfeatures:\n  colour: red\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    text = str(err.value)
    assert str(bad) in text
    for field in ("training.phases.0.steps", "training.phases.1.learning_rate", "model.name",
                  "features.colour"):  # fmt: skip
        assert field in text


def test_missing_file_names_presets(tmp_path):
    with pytest.raises(ConfigError, match="demo"):
        load_config(tmp_path / "nope.yaml")
