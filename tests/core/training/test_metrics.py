"""EvaluationMetrics against numbers computed by hand."""

import numpy as np
import pytest

from mww_core.training.metrics import EvaluationMetrics, roc_auc

# Three positives, four negatives (all from ambient audio, 900 s each = one hour).
Y_TRUE = [1, 1, 1, 0, 0, 0, 0]
Y_PROB = [0.9, 0.6, 0.3, 0.7, 0.2, 0.1, 0.4]
AMBIENT = [False, False, False, True, True, True, True]


def _metrics(cutoffs=(0.25, 0.5, 0.8)):
    m = EvaluationMetrics(cutoffs=cutoffs, ambient_hop_s=900.0)
    # Two batches: accumulation must equal one big update.
    m.update(Y_TRUE[:4], Y_PROB[:4], AMBIENT[:4])
    m.update(np.array(Y_TRUE[4:]), np.array(Y_PROB[4:]), AMBIENT[4:])
    return m


def test_metrics_at_half():
    got = _metrics().compute_metrics(0.5)
    # Detected: 0.9, 0.6 (tp=2), 0.7 (fp=1); missed 0.3 (fn=1); tn = 0.2, 0.1, 0.4.
    assert got["confusion_matrix"] == [[3, 1], [1, 2]]
    assert got["accuracy"] == pytest.approx(5 / 7)
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 / 3)
    # Pairs (pos > neg) of 12: 0.9 beats 4, 0.6 beats 3, 0.3 beats 2 -> 9/12.
    assert got["auc"] == pytest.approx(0.75)
    assert got["samples"] == 7


def test_sweep_of_recall_and_fah():
    sweep = _metrics().compute_metrics()["sweep"]
    assert [row["cutoff"] for row in sweep] == [0.25, 0.5, 0.8]
    assert [row["recall"] for row in sweep] == pytest.approx([1.0, 2 / 3, 1 / 3])
    # Ambient scores over the cutoff per hour: {0.7, 0.4}, {0.7}, {}.
    assert [row["fah"] for row in sweep] == pytest.approx([2.0, 1.0, 0.0])


def test_reset_and_edge_cases():
    m = _metrics()
    m.reset()
    empty = m.compute_metrics()
    assert empty["samples"] == 0 and empty["auc"] is None and empty["sweep"][0]["fah"] is None
    assert roc_auc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5  # ties count half
    with pytest.raises(ValueError, match="2 labels but 3 predictions"):
        m.update([1, 0], [0.1, 0.2, 0.3])
