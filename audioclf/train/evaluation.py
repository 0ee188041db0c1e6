"""Predictions and metrics of a model on labelled clips: ``audioclf evaluate`` and the validation of every training
epoch, through the classify engine itself.

Each clip is classified whole by :class:`audioclf.engine.classify.Classifier` exactly as ``audioclf classify`` does
(a clip longer than the chunk length in chunks whose scores are averaged); its prediction is the best-scoring label.
The loss is the mean cross entropy ``-log(score of the true label)`` (softmax scores). Clips that fail to decode are
counted apart, never in the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from audioclf.data.sources import SourceItem
from audioclf.errors import DataError
from audioclf.metrics import ClassificationMetrics, classification_metrics
from audioclf.train.dataset import Clip

__all__ = ["Evaluation", "Prediction", "check_labels", "evaluate", "evaluation_of", "predict"]


@dataclass(frozen=True)
class Prediction:
    """One clip's outcome: its true ``label`` (in the model's names), the best ``predicted`` label and its
    ``score``, the score of the true label (``label_score``), or the ``error`` that kept it from the model."""

    clip: Clip
    label: str
    predicted: str | None = None
    score: float | None = None
    label_score: float | None = None
    error: str | None = None

    @property
    def correct(self) -> bool:
        return self.error is None and self.predicted == self.label


@dataclass
class Evaluation:
    """Predictions of every clip and the metrics of those that reached the model."""

    predictions: list[Prediction]
    metrics: ClassificationMetrics

    @property
    def loss(self) -> float:
        """Mean cross entropy of the clips that reached the model (scores floored at 1e-12)."""
        scores = [max(p.label_score or 0.0, 1e-12) for p in self.predictions if p.error is None]
        return float(-np.mean(np.log(scores))) if scores else 0.0

    @property
    def failed(self) -> list[Prediction]:
        return [p for p in self.predictions if p.error is not None]

    @property
    def misclassified(self) -> list[Prediction]:
        return [p for p in self.predictions if p.error is None and not p.correct]

    def report(self) -> dict[str, Any]:
        """The metrics' JSON form, the loss and the failed clips."""
        return {**self.metrics.to_dict(), "loss": self.loss,
                "failed": [{"path": p.clip.path, "error": p.error} for p in self.failed]}


def check_labels(data_labels: Sequence[str], model_labels: Sequence[str],
                 label_map: Mapping[str, str] | None = None) -> dict[str, str]:
    """Data label → model label, through ``label_map`` where it names one. A one-line :class:`DataError` naming the
    data labels the model does not know (and the label-map targets that are not model labels)."""
    label_map = dict(label_map or {})
    known = set(model_labels)
    bad_targets = sorted({target for target in label_map.values() if target not in known})
    if bad_targets:
        raise DataError(f"--label-map names label(s) the model does not have: {', '.join(bad_targets)}; the model's "
                        f"labels are: {', '.join(model_labels)}")
    mapping = {label: label_map.get(label, label) for label in data_labels}
    unknown = sorted(label for label, target in mapping.items() if target not in known)
    if unknown:
        raise DataError(f"the model does not know the data label(s) {', '.join(unknown)} (its labels are: "
                        f"{', '.join(model_labels)}); map them with --label-map DATA_LABEL=MODEL_LABEL")
    return mapping


def predict(classifier: Any, clips: Sequence[Clip], mapping: Mapping[str, str] | None = None,
            progress: Any = None) -> Iterator[Prediction]:
    """One :class:`Prediction` per clip, in order. ``classifier``: a :class:`~audioclf.engine.classify.Classifier`
    built with ``top_k=0`` (every label's score, best first); ``mapping``: data label → model label."""
    items = (SourceItem(clip.path) for clip in clips)
    for clip, records in zip(clips, classifier.classify_inputs(items, progress)):
        label = (mapping or {}).get(clip.label, clip.label)
        record = records[0]
        if "error" in record:
            yield Prediction(clip, label, error=record["error"])
        else:
            scores = {entry["label"]: float(entry["score"]) for entry in record["labels"]}
            best = record["labels"][0]
            yield Prediction(clip, label, best["label"], float(best["score"]), scores.get(label, 0.0))


def evaluate(classifier: Any, clips: Sequence[Clip], mapping: Mapping[str, str] | None = None,
             progress: Any = None) -> Evaluation:
    """The predictions and metrics of ``classifier`` on ``clips`` (see :func:`predict`)."""
    return evaluation_of(list(predict(classifier, clips, mapping, progress)), clips)


def evaluation_of(predictions: list[Prediction], clips: Sequence[Clip]) -> Evaluation:
    """The metrics of ``predictions`` (one per clip of ``clips``); a one-line :class:`DataError` when every clip
    failed."""
    scored = [p for p in predictions if p.error is None]
    if clips and not scored:
        raise DataError("no clip could be classified (every clip failed to decode)")
    metrics = classification_metrics([p.label for p in scored], [p.predicted for p in scored])
    return Evaluation(predictions, metrics)
