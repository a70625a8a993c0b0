"""EvaluationMetrics: window-level accuracy, precision, recall, F1, AUC, confusion, FAH sweep."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_CUTOFFS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def confusion_counts(y_true: np.ndarray, y_prob: np.ndarray, cutoff: float) -> dict[str, int]:
    """``tp``, ``fp``, ``tn``, ``fn`` when a probability ``>= cutoff`` counts as a detection."""
    pred = y_prob >= cutoff
    truth = y_true.astype(bool)
    return {
        "tp": int(np.sum(pred & truth)),
        "fp": int(np.sum(pred & ~truth)),
        "tn": int(np.sum(~pred & ~truth)),
        "fn": int(np.sum(~pred & truth)),
    }


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def roc_auc(y_true: np.ndarray, y_prob: np.ndarray) -> float | None:
    """Area under the ROC curve: P(score of a random positive > a random negative), ties 1/2.

    None when either class is missing (the area is undefined).
    """
    pos, neg = y_prob[y_true == 1], y_prob[y_true == 0]
    if len(pos) == 0 or len(neg) == 0:
        return None
    # Mann-Whitney U from average ranks (ties share their mean rank).
    scores = np.concatenate([pos, neg])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


class EvaluationMetrics:
    """Accumulates window predictions batch by batch; ``compute_metrics`` summarizes them.

    FAH here is microWakeWord's window estimate -- ambient windows scoring over the cutoff per
    hour of ambient audio, each ambient prediction standing for ``ambient_hop_s`` seconds, no
    smoothing or refractory period -- so it overstates the device's rate; the streaming FAH in
    ``mww_core.evaluation`` is the one that picks the model and the cutoff.
    """

    def __init__(self, cutoffs: Sequence[float] = DEFAULT_CUTOFFS, ambient_hop_s: float = 1.0):
        self.cutoffs = [float(c) for c in cutoffs]
        self.ambient_hop_s = ambient_hop_s
        self.reset()

    def reset(self) -> None:
        """Forget every prediction."""
        self._true: list[np.ndarray] = []
        self._prob: list[np.ndarray] = []
        self._ambient: list[np.ndarray] = []

    def update(self, y_true, y_prob, ambient=None) -> None:
        """Add a batch: labels (1 = wake word), probabilities, optional ambient mask."""
        y_true = np.asarray(y_true).reshape(-1).astype(np.int8)
        y_prob = np.asarray(y_prob, np.float64).reshape(-1)
        if y_true.shape != y_prob.shape:
            raise ValueError(f"{len(y_true)} labels but {len(y_prob)} predictions")
        mask = np.zeros(len(y_true), bool) if ambient is None else np.asarray(ambient, bool)
        self._true.append(y_true)
        self._prob.append(y_prob)
        self._ambient.append(mask.reshape(-1))

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self._true:
            return np.zeros(0, np.int8), np.zeros(0), np.zeros(0, bool)
        return np.concatenate(self._true), np.concatenate(self._prob), np.concatenate(self._ambient)

    def compute_metrics(self, cutoff: float = 0.5) -> dict:
        """Metrics at ``cutoff`` plus a ``sweep`` of recall and FAH over every cutoff."""
        y_true, y_prob, ambient = self._arrays()
        c = confusion_counts(y_true, y_prob, cutoff)
        precision = _ratio(c["tp"], c["tp"] + c["fp"])
        recall = _ratio(c["tp"], c["tp"] + c["fn"])
        ambient_hours = ambient.sum() * self.ambient_hop_s / 3600
        sweep = [
            {
                "cutoff": cut,
                "recall": _ratio(np.sum((y_prob >= cut) & (y_true == 1)), np.sum(y_true == 1)),
                "fah": (
                    float(np.sum(y_prob[ambient] >= cut) / ambient_hours) if ambient_hours else None
                ),
            }
            for cut in self.cutoffs
        ]
        return {
            "cutoff": float(cutoff),
            "samples": int(len(y_true)),
            "accuracy": _ratio(c["tp"] + c["tn"], len(y_true)),
            "precision": precision,
            "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall),
            "auc": roc_auc(y_true, y_prob),
            "confusion_matrix": [[c["tn"], c["fp"]], [c["fn"], c["tp"]]],
            "sweep": sweep,
        }
