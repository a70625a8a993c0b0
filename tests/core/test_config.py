"""Config loading: presets, and every problem reported at once with its field."""

import hashlib
import json
from pathlib import Path

import pytest

from mww_core.config import AugmentationConfig, ConfigError, DemoDataConfig, load_config


def test_presets_load():
    demo = load_config("configs/demo.yaml")
    full = load_config("full")
    assert [p.steps for p in full.training.phases] == [20000, 10000]
    assert [p.learning_rate for p in full.training.phases] == [0.001, 0.0001]
    assert full.training.batch_size == 128
    w = full.training.phases[0].class_weights
    assert (w.positive, w.negative, w.hard_negative) == (1.0, 20.0, 40.0)
    assert demo.run_dir.name == "demo"


def test_recipes_choose_the_best_model_at_the_manifest_target():
    """Every shipped recipe loads, and picks its best step and phase at evaluation's targets."""
    recipes = {path.stem: load_config(path) for path in sorted(Path("configs").glob("*.yaml"))}
    assert {"demo", "offline", "full"} <= set(recipes)
    for name, config in recipes.items():
        assert config.training.target_fah == config.evaluation.target_fah, name
        assert config.training.max_near_miss_rate == config.evaluation.max_near_miss_rate, name
    offline, demo = recipes["offline"], recipes["demo"]
    assert offline.run_dir != demo.run_dir and offline.data.data_dir != demo.data.data_dir
    assert offline.data.demo.piper_positives > demo.data.demo.piper_positives


def test_training_and_the_cutoff_targets_agree_or_are_reported(tmp_path):
    """By default training picks its best step at the cutoff's targets; a difference is named."""
    assert load_config().target_mismatches() == []
    path = tmp_path / "targets.yaml"
    path.write_text("evaluation: {target_fah: 0.5, max_near_miss_rate: 0.05}\n")
    lines = load_config(path).target_mismatches()
    assert len(lines) == 2
    assert lines[0].startswith("training.target_fah (1.0) differs from evaluation.target_fah (0.5)")
    assert "set training.max_near_miss_rate: 0.05" in lines[1]


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


def _problems(tmp_path, text: str) -> str:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    return str(err.value)


def test_field_and_cross_field_problems_in_one_go(tmp_path):
    # A bad value and a bad combination in the same phase, and a range out of order.
    text = _problems(
        tmp_path,
        "training:\n  phases:\n    - {steps: 0, learning_rate: 0.001, positive_fraction: 0.6,"
        " hard_negative_fraction: 0.5}\n    - {steps: 10, learning_rate: 0.001}\n"
        "augmentation:\n  gain_probability: 2\n  gain_db: [6, -12]\n",
    )
    assert "training.phases.0.steps" in text
    assert "positive_fraction (0.6) + hard_negative_fraction (0.5)" in text
    assert "augmentation.gain_probability" in text and "gain_db" in text
    assert "4 problem(s)" in text


def test_windows_shorter_than_the_model_are_refused_with_the_fix(tmp_path):
    text = _problems(tmp_path, "features:\n  window_frames: 100\n")
    assert "features.window_frames (100)" in text and "at least 149" in text


def test_cutoffs_and_jitter_are_checked(tmp_path):
    text = _problems(
        tmp_path, "evaluation:\n  cutoffs: [0.5, 1.5]\nfeatures:\n  end_jitter_ms: [300, 0]\n"
    )
    assert "evaluation" in text and "[1.5]" in text and "(0, 1]" in text
    assert "end_jitter_ms [300, 0]" in text


def test_every_field_has_a_description():
    from mww_core.config import explain_config

    rows = explain_config()
    assert len(rows) > 100
    assert [path for path, _, _, description in rows if not description] == []


def test_explain_config_prints_a_section(capsys):
    from mww_core.cli import train_main
    from mww_core.config import TrainingConfig, explain_config

    train_main(["--explain-config", "training"])
    out = capsys.readouterr().out
    for name in TrainingConfig.model_fields:
        assert f"training.{name}" in out
    assert {r[0] for r in explain_config("training")} >= {"training.phases[].learning_rate"}
    with pytest.raises(ConfigError, match="choose one of"):
        explain_config("trainig")


def test_explain_config_in_a_narrow_console_keeps_each_description_whole(monkeypatch, capsys):
    from mww_core import cli
    from mww_core.config import explain_config

    monkeypatch.setattr(cli, "console", cli.Console(width=80))
    cli.train_main(["--explain-config", "data"])
    out = capsys.readouterr().out
    lines, words = out.splitlines(), " ".join(out.split())
    for field, _, _, description in explain_config("data"):
        # Each field heads a paragraph and its description reads whole, wrapped at 80
        # columns, not folded into a column a word wide.
        assert any(line.startswith(f"{field}  ") for line in lines), field
        assert " ".join(description.split()) in words, field
    assert max(map(len, lines)) <= 80


def test_a_field_added_later_leaves_the_fingerprint_alone_while_off():
    """data.demo.validation_conditions, training_paused_share, training_min_phrase_distance,
    the paused near misses' fields, more_noise_kinds and ambient_one_engine_each came after
    demo data sets were built: off, the data set is the one built before them, and its
    fingerprint must not ask for a rebuild."""
    off = DemoDataConfig()
    before = off.model_dump(mode="json")
    del before["validation_conditions"], before["training_paused_share"]
    del before["training_min_phrase_distance"], before["training_paused_near_miss_share"]
    del before["training_paused_sentence_share"], before["test_paused_near_misses"]
    del before["validation_paused_near_misses"], before["training_espeak_speed"]
    del before["more_noise_kinds"], before["ambient_one_engine_each"]
    text = json.dumps(before, sort_keys=True)
    assert off.fingerprint() == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert DemoDataConfig(validation_conditions=True).fingerprint() != off.fingerprint()
    assert DemoDataConfig(training_paused_share=0.1).fingerprint() != off.fingerprint()
    assert DemoDataConfig(training_min_phrase_distance=2).fingerprint() != off.fingerprint()
    paused = DemoDataConfig(training_paused_near_miss_share=0.3)
    assert paused.fingerprint() != off.fingerprint()
    assert DemoDataConfig(training_paused_sentence_share=0.3).fingerprint() != off.fingerprint()
    assert DemoDataConfig(test_paused_near_misses=10).fingerprint() != off.fingerprint()
    assert DemoDataConfig(validation_paused_near_misses=10).fingerprint() != off.fingerprint()
    assert DemoDataConfig(training_espeak_speed=(140, 280)).fingerprint() != off.fingerprint()
    assert DemoDataConfig(more_noise_kinds=True).fingerprint() != off.fingerprint()
    assert DemoDataConfig(ambient_one_engine_each=True).fingerprint() != off.fingerprint()
    assert DemoDataConfig(seed=2).fingerprint() != off.fingerprint()  # every other field counts


def test_augmentation_fields_added_later_leave_the_fingerprint_alone_while_off():
    """background_onset_*, background_snr_reference, tempo_* and the vocoder's envelope fields
    came after feature caches were made: off, the windows are the ones made before them, and
    the augmentation fingerprint must not ask for new ones."""
    off = AugmentationConfig()
    before = off.model_dump(mode="json")
    later = ("background_onset_probability", "background_onset_s", "background_snr_reference",
             "tempo_probability", "tempo_factor", "vocoder_formant_shift",
             "vocoder_tilt_db_per_octave")  # fmt: skip
    for name in later:
        del before[name]
    text = json.dumps(before, sort_keys=True)
    assert off.fingerprint() == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert AugmentationConfig(tempo_probability=0.5).fingerprint() != off.fingerprint()
    assert AugmentationConfig(background_onset_probability=0.5).fingerprint() != off.fingerprint()
    speech = AugmentationConfig(background_snr_reference="speech")
    assert speech.fingerprint() != off.fingerprint()
    shifted = AugmentationConfig(vocoder_formant_shift=(0.9, 1.1))
    assert shifted.fingerprint() != off.fingerprint()
    tilted = AugmentationConfig(vocoder_tilt_db_per_octave=(-3.0, 3.0))
    assert tilted.fingerprint() != off.fingerprint()


def test_a_phase_field_added_later_leaves_the_training_fingerprint_alone_while_off():
    """training.phases[i].weight_decay, cosine_decay_to, engine_adversarial (with
    training.engine_prefixes), focal_gamma, keep and mixup_alpha came after models were
    trained: at 0, None, 0, 0, best and 0 they train the same model, so neither a phase's
    fingerprint nor the whole training section's may change."""
    demo = load_config("configs/demo.yaml")
    phases = [p.model_copy(update={"keep": "best"}) for p in demo.training.phases]
    config = demo.model_copy(
        update={"training": demo.training.model_copy(update={"phases": phases})}
    )
    phase = config.training.phases[0]
    before = phase.model_dump(mode="json")
    later = (
        "weight_decay",
        "cosine_decay_to",
        "engine_adversarial",
        "focal_gamma",
        "keep",
        "mixup_alpha",
    )
    for name in later:
        del before[name]
    text = json.dumps(before, sort_keys=True)
    assert phase.fingerprint() == hashlib.sha256(text.encode()).hexdigest()[:16]
    whole = config.training.model_dump(mode="json")
    for dumped in whole["phases"]:
        for name in later:
            del dumped[name]
    del whole["engine_prefixes"]
    text = json.dumps(whole, sort_keys=True)
    assert config.training.fingerprint() == hashlib.sha256(text.encode()).hexdigest()[:16]
    decayed = phase.model_copy(update={"weight_decay": 0.1})
    assert decayed.fingerprint() != phase.fingerprint()
    assert phase.model_copy(update={"cosine_decay_to": 0.1}).fingerprint() != phase.fingerprint()
    adversarial = phase.model_copy(update={"engine_adversarial": 0.3})
    assert adversarial.fingerprint() != phase.fingerprint()
    assert phase.model_copy(update={"focal_gamma": 2.0}).fingerprint() != phase.fingerprint()
    assert phase.model_copy(update={"keep": "last"}).fingerprint() != phase.fingerprint()
    assert phase.model_copy(update={"mixup_alpha": 0.3}).fingerprint() != phase.fingerprint()
    renamed = config.training.model_copy(update={"engine_prefixes": ["alice", "bob"]})
    assert renamed.fingerprint() != config.training.fingerprint()
    training = config.training.model_copy(update={"phases": [decayed, *config.training.phases[1:]]})
    assert training.fingerprint() != config.training.fingerprint()
