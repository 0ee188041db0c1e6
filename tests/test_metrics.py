"""audioclf.metrics against scikit-learn on the same predictions (scikit-learn is a test dependency only)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as sk

from audioclf.metrics import classification_metrics

CASES = {
    # labels that are never predicted, predicted but never true, a perfect label, an empty true set for a label
    "random": (np.random.default_rng(0).choice(["a", "b", "c", "d"], 200).tolist(),
               np.random.default_rng(1).choice(["a", "b", "c", "e"], 200).tolist()),
    "perfect": (["x", "y", "y", "z"], ["x", "y", "y", "z"]),
    "all wrong": (["x", "x", "y"], ["y", "y", "x"]),
    "one label": (["only"] * 5, ["only"] * 5),
    "skewed": (["a"] * 50 + ["b"] * 3 + ["c"], ["a"] * 48 + ["b"] * 2 + ["a"] * 2 + ["b", "a"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_metrics_equal_scikit_learn(name: str) -> None:
    true, predicted = CASES[name]
    ours = classification_metrics(true, predicted)
    labels = sorted(set(true) | set(predicted))
    assert list(ours.labels) == labels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns where a ratio is undefined (it then uses 0, as we do)
        precision, recall, f1, support = sk.precision_recall_fscore_support(true, predicted, labels=labels,
                                                                             zero_division=0)
        assert ours.accuracy == pytest.approx(sk.accuracy_score(true, predicted), abs=1e-12)
        assert ours.balanced_accuracy == pytest.approx(sk.balanced_accuracy_score(true, predicted), abs=1e-12)
        assert ours.macro_f1 == pytest.approx(sk.f1_score(true, predicted, average="macro", zero_division=0),
                                              abs=1e-12)
    np.testing.assert_array_equal(ours.confusion, sk.confusion_matrix(true, predicted, labels=labels))
    np.testing.assert_allclose(ours.precision, precision, atol=1e-12)
    np.testing.assert_allclose(ours.recall, recall, atol=1e-12)
    np.testing.assert_allclose(ours.f1, f1, atol=1e-12)
    np.testing.assert_array_equal(ours.support, support)
    report = ours.to_dict()
    assert report["per_label"][labels[0]]["support"] == int(support[0])
    assert report["confusion"] == {"labels": labels, "matrix": ours.confusion.tolist()}
    assert report["count"] == len(true)


def test_given_label_order_and_unknown_labels() -> None:
    metrics = classification_metrics(["b", "a"], ["a", "a"], labels=["b", "a", "c"])
    assert metrics.confusion.tolist() == [[0, 1, 0], [0, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="not in the label list"):
        classification_metrics(["a"], ["z"], labels=["a"])
    with pytest.raises(ValueError, match="1 true labels but 2 predictions"):
        classification_metrics(["a"], ["a", "b"])
