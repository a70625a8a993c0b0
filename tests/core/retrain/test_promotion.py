"""Tests for mww_core.retrain.promotion: the gate and the round's report."""

from mww_core.config import RetrainConfig
from mww_core.retrain.promotion import decide_promotion, round_report


def test_decide_promotion_tolerances():
    tol = RetrainConfig(recall_tolerance=0.05, fah_tolerance=0.5)
    ok, reason = decide_promotion({"recall": 0.9, "fah": 1.0}, {"recall": 0.86, "fah": 1.4}, tol)
    assert ok and reason.startswith("promoted")
    ok, reason = decide_promotion({"recall": 0.9, "fah": 1.0}, {"recall": 0.8, "fah": 1.0}, tol)
    assert not ok and "recall fell from 0.900 to 0.800" in reason
    ok, reason = decide_promotion({"recall": 0.9, "fah": 1.0}, {"recall": 0.9, "fah": 2.0}, tol)
    assert not ok and "FAH rose from 1.00 to 2.00" in reason


def test_round_report_compares_current_and_candidate():
    row = {"false_accepts": 3, "clips": 8, "fah": None, "cutoff": 0.9}
    summary = {
        "round": 2,
        "reason": "promoted: within the configured tolerances",
        "new_files": ["a.wav", "b.wav"],
        "version": "v0003",
        "comparison": {
            "current": {"test": {"recall": 0.9, "fah": 1.25}, "inbox": row},
            "candidate": {"test": {"recall": None, "fah": 0.5}, "inbox": {**row, "fah": 12.0}},
        },
    }
    report = round_report(summary, "evaluate/det.png")
    assert report.startswith("# Retraining round 2: promoted")
    assert "New clips: 2. Current model: `v0003`." in report
    assert "| current | 0.900 | 1.25 | 3/8 | n/a | 0.90 |" in report
    assert "| candidate | n/a | 0.50 | 3/8 | 12.0 | 0.90 |" in report
    assert report.endswith("![candidate DET curve](evaluate/det.png)\n")
    assert "|---|" not in round_report({**summary, "comparison": None}, None)
