"""Tests for mww_core.reports: the markdown report and the DET/ROC plots."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np

from mww_core.evaluation import compare_at_equal_recall, confusion_matrix
from mww_core.reports import _headline_levels, _verdict, fah_text, false_accepts_text, write_report


def sweep_rows(recalls: list[float], activations: list[int], false_accepts: list[int]) -> list:
    cutoffs = [0.3, 0.5, 0.7, 0.9]
    return [
        {
            "cutoff": c,
            "cutoff_uint8": int(c * 255),
            "positives_detected": round(r * 20),
            "recall": r,
            "false_accepts": fa,
            "false_accept_rate": fa / 10,
            "ambient_activations": a,
            "fah": a / 0.5,
        }
        for c, r, a, fa in zip(cutoffs, recalls, activations, false_accepts, strict=True)
    ]


def make_metrics() -> tuple[dict, dict]:
    final = {"validation": sweep_rows([1.0, 0.95, 0.9, 0.8], [3, 1, 0, 0], [4, 2, 1, 0]),
             "test": sweep_rows([1.0, 0.95, 0.9, 0.75], [2, 0, 0, 0], [5, 2, 1, 0])}  # fmt: skip
    first = {"validation": sweep_rows([1.0, 0.95, 0.85, 0.7], [9, 4, 2, 0], [8, 5, 3, 1]),
             "test": sweep_rows([1.0, 0.95, 0.9, 0.8], [8, 5, 1, 0], [7, 5, 2, 1])}  # fmt: skip
    sweeps = {"phase 2": final, "phase 1": first}
    metrics = {
        "cutoff": 0.5,
        "target_fah": 2.0,
        "target_met_on_validation": True,
        "validation": final["validation"][1],
        "test": final["test"][1],
        "ambient_hours": {"validation": 0.5, "test": 0.5},
        "clips": {s: {"positive": 20, "negative": 10} for s in ("validation", "test")},
        "confusion_matrix": confusion_matrix(final["test"][1], 20, 10),
        "voice_groups": {
            "piper joe": {"clips": 12, "detected": 12, "recall": 1.0},
            "espeak-ng en-us": {"clips": 8, "detected": 7, "recall": 0.875},
        },
        "engines": {
            "piper": {"clips": 12, "detected": 12, "recall": 1.0},
            "mbrola (never heard in training)": {"clips": 8, "detected": 2, "recall": 0.25},
        },
        "speaker_genders": {
            "male": {"clips": 16, "detected": 16, "recall": 1.0},
            "female": {"clips": 4, "detected": 3, "recall": 0.75},
        },
        "conditions": {
            "clean": {"clips": 10, "detected": 10, "recall": 1.0},
            "far_field": {"clips": 10, "detected": 9, "recall": 0.9},
        },
        "wordings": {
            "fluent": {"clips": 12, "detected": 7, "recall": 0.5833},
            "paused": {"clips": 8, "detected": 8, "recall": 1.0},
        },
        "unpaused": {"clips": 12, "detected": 7, "recall": 0.5833},
        "paused_near_misses": {"false_accepts": 3, "clips": 14},
        "test_held_out": "espeak-ng en-029 with 3 variants of their own",
        "firing": {
            "stride": 3,
            "sliding_window_size": 5,
            "refractory_inferences": 25,
            "ignore_first_inferences": 24,
        },  # fmt: skip
        "phase_1": {
            "cutoff": 0.7,
            "target_met_on_validation": True,
            "validation": first["validation"][2],
            "test": first["test"][2],
        },  # fmt: skip
        "equal_recall": compare_at_equal_recall(
            {"phase 1": first["test"], "phase 2": final["test"]}, [0.9, 0.95, 0.99]
        ),
    }
    return metrics, sweeps


def test_confusion_matrix_counts():
    row = {"cutoff": 0.5, "positives_detected": 18, "false_accepts": 3, "ambient_activations": 4}
    assert confusion_matrix(row, 20, 10) == {
        "cutoff": 0.5, "true_positives": 18, "false_negatives": 2, "false_positives": 3,
        "true_negatives": 7, "ambient_activations": 4,
    }  # fmt: skip


def test_equal_recall_comparison_picks_fewest_activations():
    metrics, _ = make_metrics()
    at_90, at_95, at_99 = metrics["equal_recall"]
    assert at_90["phase 1"] == {"fah": 2.0, "false_accepts": 2, "cutoff": 0.7, "recall": 0.9}
    assert at_90["phase 2"]["fah"] == 0.0 and at_90["phase 2"]["cutoff"] == 0.7
    assert at_95["phase 1"]["fah"] == 10.0 and at_95["phase 2"]["fah"] == 0.0
    assert at_99["phase 1"]["fah"] == 16.0 and at_99["phase 2"]["fah"] == 4.0


def test_fah_text_names_the_evidence():
    row = {"fah": 0.0, "ambient_activations": 0}
    assert fah_text(row, 0.5) == "0.00 (0 activations in 0.50 h)"
    assert fah_text({"fah": 2.0, "ambient_activations": 1}, 0.5) == "2.00 (1 activation in 0.50 h)"
    assert fah_text({"fah": None, "ambient_activations": 0}, 0.0).startswith("n/a")


def test_slips_are_shown_beside_the_false_accepts_they_are_kept_out_of():
    row = {"false_accepts": 2, "fah": 1.0, "ambient_activations": 1}
    assert false_accepts_text(row, 90) == "2/90"
    slipped = {**row, "slip_false_accepts": 3, "slip_clips": 18, "slip_activations": 2}
    assert false_accepts_text(slipped, 90) == "2/72; slips 3/18"
    assert fah_text(slipped, 1.0) == "1.00 (1 activation in 1.00 h; 2 more on slips)"


def test_write_report_files_and_content(tmp_path):
    metrics, sweeps = make_metrics()
    paths = write_report(tmp_path, metrics, sweeps)
    text = (tmp_path / "report.md").read_text()
    assert paths["report"] == str(tmp_path / "report.md")
    assert "Probability cutoff **0.50**" in text
    assert "0.00 (0 activations in 0.50 h)" in text  # zero FAH stated with its hours
    assert "| wake-word clips (20) | 19 (hit) | 1 (miss) |" in text
    assert "| near-miss clips (10) | 2 (false accept) | 8 (correct reject) |" in text
    assert "| 0.950 | 10.00, 5 (0.50) | 0.00, 2 (0.50) |" in text  # phase 1 vs phase 2
    # The headline comparison: the chosen cutoff's test recall first, then 0.9, with a verdict.
    headline = text.split("## Did mining help?")[1].split("\n## ")[0]
    assert (
        "| 0.950 (chosen cutoff's recall) | 10.00 (5 in 0.50 h; cutoff 0.50) | 5/10 "
        "| 0.00 (0 in 0.50 h; cutoff 0.50) | 2/10 | phase 2 lower FAH |"
    ) in headline
    assert "| 0.900 | 2.00 (1 in 0.50 h; cutoff 0.70) | 2/10 | 0.00 (0 in 0.50 h; cutoff 0.70)" in (
        headline
    )
    assert headline.count("\n| 0.") == 2
    assert "| espeak-ng en-us | 8 | 7 | 0.875 |" in text
    engines = text.split("## Recall per engine (test, cutoff 0.50)")[1].split("\n## ")[0]
    assert engines.index("| mbrola (never heard in training) | 8 | 2 | 0.250 |") < engines.index(
        "| piper | 12 | 12 |"
    )
    genders = text.split("## Recall per speaker gender (test, cutoff 0.50)")[1].split("\n## ")[0]
    assert genders.index("| female | 4 | 3 | 0.750 |") < genders.index("| male | 16 | 16 |")
    conditions = text.split("## Recall per condition (test, cutoff 0.50)")[1].split("\n## ")[0]
    assert conditions.index("| far_field | 10 | 9 | 0.900 |") < conditions.index("| clean |")
    wordings = text.split("## Recall per wording (test, cutoff 0.50)")[1].split("\n## ")[0]
    assert wordings.index("| fluent | 12 | 7 | 0.583 |") < wordings.index("| paused | 8 | 8 |")
    assert 'paused: "hey, jarvis"' in wordings
    assert wordings.rstrip().endswith("| **without a pause** (all but paused) | 12 | 7 | 0.583 |")
    paused = [line for line in text.splitlines() if "near misses said with a pause" in line]
    assert len(paused) == 1 and "Of the test's 14 near misses" in paused[0]
    assert "), 3 fired at the cutoff" in paused[0]
    assert "Validation's near misses, which chose the cutoff, are all said in one" in paused[0]
    held_out = [line for line in text.splitlines() if "never used in training" in line]
    assert held_out == [
        "The test split's voices, engine settings and rooms are never used in training or "
        "validation (espeak-ng en-029 with 3 variants of their own)."
    ]
    assert "| 0.50 **← chosen** |" in text
    assert text.count("\n| 0.") >= 4 + 3  # full cutoff table and comparison rows
    for name in ("det.png", "roc.png"):
        assert f"]({name})" in text
        image = mpimg.imread(tmp_path / name)
        assert image.shape[0] >= 500 and image.shape[1] >= 700  # readable size
        assert np.std(image[..., :3]) > 0.05  # not blank


def test_the_report_says_when_validation_holds_paused_near_misses_too(tmp_path):
    metrics, sweeps = make_metrics()
    paused = {"false_accepts": 3, "clips": 14, "validation_clips": 5}
    write_report(tmp_path, {**metrics, "paused_near_misses": paused}, sweeps)
    text = (tmp_path / "report.md").read_text()
    line = next(line for line in text.splitlines() if "near misses said with a pause" in line)
    assert "Validation holds 5 near misses said with a pause too" in line
    assert "all said in one breath" not in line


def test_verdict_compares_fah_then_false_accepts():
    def row(fah: float, fa: int) -> dict:
        return {"fah": fah, "false_accepts": fa, "cutoff": 0.5, "recall": 0.9}

    assert _verdict(row(2.0, 3), row(0.0, 5)) == "phase 2 lower FAH"
    assert _verdict(row(0.0, 3), row(2.0, 0)) == "phase 2 HIGHER FAH"
    assert _verdict(row(2.0, 3), row(2.0, 1)) == "phase 2 lower near-miss false accepts (FAH equal)"
    assert _verdict(row(2.0, 3), row(2.0, 3)) == "equal"
    assert _verdict(None, row(2.0, 3)) == "phase 1 does not reach it"
    assert _verdict(row(2.0, 3), None) == "phase 2 does not reach it"


def test_headline_skips_a_fixed_level_next_to_the_chosen_recall():
    metrics, _ = make_metrics()
    metrics["test"] = {**metrics["test"], "recall": 0.948}
    metrics["equal_recall"] = [{"recall": r} for r in (0.5, 0.9, 0.948, 0.95, 0.99)]
    levels = [(row["recall"], row["chosen"]) for row in _headline_levels(metrics)]
    assert levels == [(0.948, True), (0.9, False)]


def test_report_when_phase_2_kept_phase_1_weights(tmp_path):
    metrics, sweeps = make_metrics()
    # Phase 2 did not beat phase 1 on validation: phase 1's weights ship at phase 1's cutoff.
    learned = {"cutoff": 0.5, "validation": metrics["validation"], "test": metrics["test"]}
    metrics = {**metrics, **metrics["phase_1"], "shipped": "phase 1", "phase_2": learned}
    write_report(tmp_path, metrics, sweeps)
    text = (tmp_path / "report.md").read_text()
    assert "the shipped model is phase 1's weights" in text
    assert "| phase 1 (shipped) | test | 0.70 | 0.900 (18/20) |" in text
    assert "| phase 2 (not shipped) | test | 0.50 | 0.950 (19/20) |" in text
    assert "## Cutoff table (test, phase 1: the shipped model)" in text
    table = text.split("## Cutoff table")[1]
    assert "| 0.70 **← chosen** | 0.900 |" in table  # phase 1's rows, at phase 1's cutoff


def test_learning_curves_come_from_each_phase_history_into_the_report(tmp_path):
    import json

    from mww_core.pipeline.evaluate_stage import learning_curves
    from mww_core.stages import StageRecord

    def phase(name: str, rows: list[dict]) -> StageRecord:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(rows))
        return StageRecord(name=name, fingerprint=name, outputs={"history": str(path)})

    row = {"loss": 0.3, "fah": 1.0, "cutoff": 0.9, "false_accept_rate": 0.05, "target_met": True}
    first = phase("train_phase_1", [
        {"step": 500, "recall": 0.5, **row, "is_best": True},
        {"step": 1000, "recall": 0.4, **row, "is_best": False},
        {"step": 1100, "loss": 0.2},  # a training-only row: no validation
    ])  # fmt: skip
    second = phase("train_phase_2", [
        {"step": 500, "recall": 0.625, **row, "is_best": True, "restart": 1},
        {"step": 1500, "recall": 0.7, **row, "is_best": True, "restart": 2},
    ])  # fmt: skip
    curves = learning_curves(second, first)
    assert [r["step"] for r in curves["phase 1"]] == [500, 1000]
    assert curves["phase 2"][0]["recall"] == 0.625 and "loss" not in curves["phase 2"][0]
    assert list(learning_curves(first)) == ["phase 1"]

    metrics, sweeps = make_metrics()
    write_report(tmp_path, {**metrics, "learning_curve": curves}, sweeps)
    text = (tmp_path / "report.md").read_text()
    assert "## Learning curves (validation" in text
    assert "| phase 1 | 500 * | 0.500 | 1.00 | 0.90 | 0.050 |" in text
    assert "| phase 1 | 1000 | 0.400 |" in text
    assert "| phase 2, start 1 | 500 * | 0.625 |" in text
    assert "| phase 2, start 2 | 1500 * | 0.700 |" in text


def test_the_report_says_why_phase_2_ships_when_phase_1_validates_higher(tmp_path):
    metrics, sweeps = make_metrics()
    said = "Phase 2 ships though phase 1's validation recall is higher here"
    ahead = {**metrics["validation"], "recall": metrics["validation"]["recall"] + 0.04}
    behind = {**metrics["validation"], "recall": metrics["validation"]["recall"] - 0.04}
    for first, shipped, expected in [
        (ahead, "phase 2", True),
        (behind, "phase 2", False),
        (ahead, "phase 1", False),
    ]:
        case = {
            **metrics,
            "shipped": shipped,
            "phase_1": {**metrics["phase_1"], "validation": first},
            "phase_2": metrics["phase_1"],  # phase 2's own best, shown when phase 1 ships
        }
        write_report(tmp_path, case, sweeps)
        text = (tmp_path / "report.md").read_text()
        assert (said in text) is expected, (shipped, first["recall"])
        if expected:
            numbers = f"({ahead['recall']:.3f} against {metrics['validation']['recall']:.3f})"
            assert numbers in text


def test_the_report_names_the_packages_training_ran_with_and_what_evaluation_changed(tmp_path):
    metrics, sweeps = make_metrics()
    same = {"python": "3.11.7", "tensorflow-cpu": "2.21.0", "numpy": "2.4.6"}
    metrics["versions"] = {"trained": same, "evaluated": dict(same)}
    write_report(tmp_path, metrics, sweeps)
    text = (tmp_path / "report.md").read_text()
    assert "Trained with python 3.11.7, tensorflow-cpu 2.21.0, numpy 2.4.6." in text
    assert "evaluated with" not in text and "constraints.txt" in text
    metrics["versions"]["evaluated"]["numpy"] = "2.5.0"
    write_report(tmp_path, metrics, sweeps)
    text = (tmp_path / "report.md").read_text()
    assert "numpy 2.4.6; evaluated with numpy 2.5.0." in text
    metrics["versions"]["trained"] = {}  # a phase trained before versions were recorded
    write_report(tmp_path, metrics, sweeps)
    assert "does not record" in (tmp_path / "report.md").read_text()
