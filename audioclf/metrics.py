"""Classification metrics from true and predicted label names: one implementation for ``audioclf evaluate`` and the
validation of ``audioclf train`` (numpy only).

Conventions (those of scikit-learn's defaults, so the numbers are the same as its functions give on the same
predictions):

* **labels**: the sorted union of the true and the predicted label names (``unique_labels``), unless given;
* **confusion** ``[L, L]``: row = true label, column = predicted label, in label order;
* **accuracy**: the fraction of clips whose prediction is their label;
* **balanced accuracy**: the mean of the recalls of the labels that occur as a true label;
* per label: **precision** ``tp / (tp + fp)``, **recall** ``tp / (tp + fn)``, **F1** ``2 tp / (2 tp + fp + fn)``,
  **support** (clips of that true label); a ratio whose denominator is 0 counts as 0 (``zero_division=0``);
* **macro-F1**: the unweighted mean of the per-label F1 over all labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["ClassificationMetrics", "classification_metrics"]


@dataclass(frozen=True)
class ClassificationMetrics:
    """Metrics of one set of predictions.

    Attributes:
        labels: label names, the order of every per-label array and of the confusion matrix.
        confusion: ``int64 [L, L]``, rows true labels, columns predicted labels.
    """

    labels: tuple[str, ...]
    confusion: np.ndarray

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    @property
    def support(self) -> np.ndarray:
        """Clips per true label ``[L]``."""
        return self.confusion.sum(axis=1)

    @property
    def true_positives(self) -> np.ndarray:
        return np.diag(self.confusion)

    @property
    def precision(self) -> np.ndarray:
        """``float64 [L]``; 0 for a label never predicted."""
        return _ratio(self.true_positives, self.confusion.sum(axis=0))

    @property
    def recall(self) -> np.ndarray:
        """``float64 [L]``; 0 for a label without clips."""
        return _ratio(self.true_positives, self.support)

    @property
    def f1(self) -> np.ndarray:
        """``float64 [L]``: ``2 tp / (2 tp + fp + fn)``, 0 when that denominator is 0."""
        tp = self.true_positives
        wrong = self.confusion.sum(axis=0) + self.support - 2 * tp  # fp + fn
        return _ratio(2 * tp, 2 * tp + wrong)

    @property
    def accuracy(self) -> float:
        return float(self.true_positives.sum() / self.count) if self.count else 0.0

    @property
    def balanced_accuracy(self) -> float:
        """Mean recall over the labels that have clips."""
        present = self.support > 0
        return float(self.recall[present].mean()) if present.any() else 0.0

    @property
    def macro_f1(self) -> float:
        return float(self.f1.mean()) if self.labels else 0.0

    def per_label(self) -> dict[str, dict[str, float | int]]:
        """``{label: {"precision", "recall", "f1", "support"}}`` in label order."""
        precision, recall, f1, support = self.precision, self.recall, self.f1, self.support
        return {label: {"precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
                        "support": int(support[k])} for k, label in enumerate(self.labels)}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``count``, ``per_label``,
        ``confusion`` (``labels`` + ``matrix``, rows true labels)."""
        return {"accuracy": self.accuracy, "balanced_accuracy": self.balanced_accuracy, "macro_f1": self.macro_f1,
                "count": self.count, "per_label": self.per_label(),
                "confusion": {"labels": list(self.labels), "matrix": self.confusion.tolist()}}


def classification_metrics(true: Sequence[str], predicted: Sequence[str],
                           labels: Sequence[str] | None = None) -> ClassificationMetrics:
    """The metrics of ``predicted`` against ``true`` (label names, one per clip). ``labels``: the label order (every
    true and predicted name must be in it); default the sorted union of both."""
    if len(true) != len(predicted):
        raise ValueError(f"{len(true)} true labels but {len(predicted)} predictions")
    names = tuple(sorted(set(true) | set(predicted))) if labels is None else tuple(labels)
    index = {name: k for k, name in enumerate(names)}
    unknown = sorted((set(true) | set(predicted)) - set(index))
    if unknown:
        raise ValueError(f"labels not in the label list: {unknown}")
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    if len(true):
        np.add.at(confusion, ([index[t] for t in true], [index[p] for p in predicted]), 1)
    return ClassificationMetrics(names, confusion)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = numerator.astype(np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
