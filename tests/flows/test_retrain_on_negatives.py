"""Retraining on new negatives: the promotion gate, and the flow end to end on a tiny run."""

from mww_core import retrain
from mww_core.config import RetrainConfig

NEAR_MISSES = ["hey jervis", "hey travis", "a jarvis", "hey harvest", "hey jarvish", "hey charvis"]


def test_decide_promotion_tolerances():
    tol = RetrainConfig(recall_tolerance=0.05, fah_tolerance=0.5)
    ok, reason = retrain.decide_promotion(
        {"recall": 0.9, "fah": 1.0}, {"recall": 0.86, "fah": 1.4}, tol
    )
    assert ok and reason.startswith("promoted")
    ok, reason = retrain.decide_promotion(
        {"recall": 0.9, "fah": 1.0}, {"recall": 0.8, "fah": 1.0}, tol
    )
    assert not ok and "recall fell from 0.900 to 0.800" in reason
    ok, reason = retrain.decide_promotion(
        {"recall": 0.9, "fah": 1.0}, {"recall": 0.9, "fah": 2.0}, tol
    )
    assert not ok and "FAH rose from 1.00 to 2.00" in reason
