"""Which clips an epoch visits, in which batches, and each clip's random draws: all derived from
``(seed, epoch, clip)``, so a run resumed from a checkpoint makes the same draws as an uninterrupted one, whatever
the decoding threads' timing.

* :func:`epoch_order`: a permutation of the training clips, or with ``balanced`` as many draws (with replacement)
  in which every label is equally likely;
* :func:`epoch_batches`: the order cut into batches of clips of similar length (length bucketing: consecutive
  groups of ``BUCKET_BATCHES`` batches are sorted by length, cut, and the batches shuffled), so little padding is
  computed;
* :func:`clip_rng`: the generator of one clip's crop and augmentation in one epoch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BUCKET_BATCHES", "clip_rng", "epoch_batches", "epoch_order"]

#: batches sorted by length together (a larger group pads less but mixes less)
BUCKET_BATCHES = 16

_ORDER, _BATCHES, _CLIP = 11, 12, 13  # independent streams of the same seed


def epoch_order(labels: np.ndarray, seed: int, epoch: int, balanced: bool) -> np.ndarray:
    """Clip indices for ``epoch`` (0-based): every clip once in random order, or with ``balanced`` ``len(labels)``
    draws where each label (of ``labels`` ``[N]``, one id per clip) is equally likely and then each of its clips."""
    rng = np.random.default_rng([seed, epoch, _ORDER])
    count = labels.shape[0]
    if not balanced:
        return rng.permutation(count)
    present, per_label = np.unique(labels, return_counts=True)
    weight = 1.0 / per_label[np.searchsorted(present, labels)]
    return rng.choice(count, size=count, replace=True, p=weight / weight.sum())


def epoch_batches(order: np.ndarray, lengths: np.ndarray, batch_size: int, seed: int, epoch: int
                  ) -> list[np.ndarray]:
    """``order`` cut into ``ceil(len(order) / batch_size)`` batches of similar ``lengths`` (samples per clip index),
    in a seeded random order."""
    group = batch_size * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), group):
        part = order[start:start + group]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[k:k + batch_size] for k in range(0, len(part), batch_size)]
    rng = np.random.default_rng([seed, epoch, _BATCHES])
    return [batches[k] for k in rng.permutation(len(batches))]


def clip_rng(seed: int, epoch: int, clip: int) -> np.random.Generator:
    """The generator of clip ``clip``'s draws in ``epoch``: independent of every other clip and epoch."""
    return np.random.default_rng([seed, epoch, clip, _CLIP])
