"""Excerpts of a recording: many time spans cut in one pass over its blocks, at its own rate and channels.

:func:`cut_excerpts` reads a source once, front to back, whatever the number and order of the spans (overlapping
spans included), and holds only the samples of the spans that are open; a span reaching past the end of the
recording ends there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from audioclf.audio.decode import BlockSource

__all__ = ["Span", "cut_excerpts"]


@dataclass(frozen=True)
class Span:
    """``[start, end)`` in seconds of channel ``channel`` (0-based; ``None``: every channel)."""

    start: float
    end: float
    channel: int | None = None


def cut_excerpts(source: BlockSource, spans: Sequence[Span]) -> Iterator[tuple[int, np.ndarray]]:
    """``(number, samples)`` for each span (``number``: its position in ``spans``), in order of their ends:
    ``samples`` is ``float32 [frames, channels]`` (one channel for a span with a ``channel``) at the source's rate.
    Raises :class:`~audioclf.errors.AudioError` from decoding, and ``ValueError`` for a channel the source lacks."""
    rate = source.sample_rate
    bounds = [(max(0, round(span.start * rate)), max(0, round(span.end * rate))) for span in spans]
    for span in spans:
        if span.channel is not None and not 0 <= span.channel < source.channels:
            raise ValueError(f"channel {span.channel} is not in a source of {source.channels} channels")
    pending = sorted(range(len(spans)), key=lambda number: bounds[number][0])
    open_parts: dict[int, list[np.ndarray]] = {}
    position = 0
    for block in source.blocks():
        block_end = position + block.shape[0]
        while pending and bounds[pending[0]][0] < block_end:
            open_parts[pending.pop(0)] = []
        for number in sorted(open_parts, key=lambda n: bounds[n][1]):
            start, end = bounds[number]
            piece = block[max(start - position, 0):max(min(end, block_end) - position, 0)]
            channel = spans[number].channel
            open_parts[number].append(piece if channel is None else piece[:, channel:channel + 1])
            if end <= block_end:
                yield number, _joined(open_parts.pop(number), source.channels if channel is None else 1)
        position = block_end
        if not pending and not open_parts:
            return
    for number in sorted(open_parts, key=lambda n: bounds[n][1]):  # spans reaching past the end
        channel = spans[number].channel
        yield number, _joined(open_parts[number], source.channels if channel is None else 1)
    for number in pending:  # spans starting after the end: nothing to cut
        yield number, np.zeros((0, source.channels if spans[number].channel is None else 1), dtype=np.float32)


def _joined(parts: list[np.ndarray], channels: int) -> np.ndarray:
    return np.concatenate(parts, axis=0).astype(np.float32, copy=False) if parts else np.zeros((0, channels), np.float32)
