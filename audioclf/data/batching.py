"""Length bucketing: which waiting segments go to the model together.

A batch holds at most ``batch_size`` segments and at most ``max_samples`` samples of padded audio
(``batch_size × longest``; a single segment is always allowed), which bounds the model's activations too.

``pad=True`` (the featurizer's padding is exact for this model): any lengths may share a batch; a batch is built
around the oldest waiting segment from the segments closest to it in length, so little padding is computed.
``pad=False``: a batch holds segments of exactly one length, so nothing is padded at all. (The padding itself, and
the attention mask, are the featurizer's: ``Featurizer.collate``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["BatchPool"]

Entry = TypeVar("Entry")


@dataclass
class _Waiting(Generic[Entry]):
    entry: Entry
    frames: int
    owner: int


class BatchPool(Generic[Entry]):
    """Segments waiting for the model (any entries, each with its length in samples and the number of the input it
    belongs to), and the rule that groups them into batches (see the module docstring)."""

    def __init__(self, batch_size: int, max_samples: int, pad: bool) -> None:
        self.batch_size = batch_size
        self.max_samples = max_samples
        self.pad = pad
        self._waiting: list[_Waiting[Entry]] = []  # arrival order
        self._samples = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, entry: Entry, frames: int, owner: int) -> None:
        self._waiting.append(_Waiting(entry, frames, owner))
        self._samples += frames

    def discard(self, owner: int) -> None:
        """Forget the segments of an input that failed."""
        self._waiting = [w for w in self._waiting if w.owner != owner]
        self._samples = sum(w.frames for w in self._waiting)

    @property
    def overfull(self) -> bool:
        """True when the pool holds enough that a batch must run now (bounds memory)."""
        return len(self._waiting) >= 4 * self.batch_size or self._samples >= 2 * self.max_samples

    def take(self, force: bool) -> list[Entry] | None:
        """Remove and return a full batch (the one around the oldest segment first); with ``force``, a partial
        batch around the oldest segment when no batch is full. ``None`` when nothing is taken."""
        if not self._waiting:
            return None
        anchors = self._waiting if not self.pad else self._waiting[:1]
        chosen = None
        seen: set[int] = set()
        for anchor in anchors:
            if anchor.frames in seen:
                continue
            seen.add(anchor.frames)
            batch, full = self._batch_around(anchor)
            if full:
                chosen = batch
                break
        if chosen is None:
            if not force:
                return None
            chosen, _ = self._batch_around(self._waiting[0])
        taken = {id(w) for w in chosen}
        self._waiting = [w for w in self._waiting if id(w) not in taken]
        self._samples -= sum(w.frames for w in chosen)
        return [w.entry for w in chosen]

    def _capacity(self, frames: int) -> int:
        return max(1, min(self.batch_size, self.max_samples // max(frames, 1)))

    def _batch_around(self, anchor: _Waiting[Entry]) -> tuple[list[_Waiting[Entry]], bool]:
        """The batch built around ``anchor`` and whether it is full (no more segments would fit)."""
        if self.pad:
            others = sorted((w for w in self._waiting if w is not anchor), key=lambda w: abs(w.frames - anchor.frames))
        else:
            others = [w for w in self._waiting if w is not anchor and w.frames == anchor.frames]
        batch, longest = [anchor], anchor.frames
        for waiting in others:
            candidate = max(longest, waiting.frames)
            if len(batch) + 1 > self._capacity(candidate):
                return batch, True
            batch.append(waiting)
            longest = candidate
        return batch, len(batch) >= self._capacity(longest)
