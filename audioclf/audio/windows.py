"""Cut a stream of audio blocks into chunks or overlapping windows without holding the whole file.

Input is any iterable of ``float32`` blocks at the model rate, each ``[frames]`` (mono) or
``[frames, streams]`` (several streams cut together, e.g. the ``each`` channel policy); blocks may have any
sizes. At most one window plus one block is held at a time.

Window placement (the same for the streaming generators and :func:`window_bounds`): windows start at
``0, hop, 2·hop, …`` (in frames, ``hop`` rounded to whole frames once, so start times do not drift) and are
``window`` frames long; the sequence stops with the first window that reaches the end of the audio, which is
cut short there. So the last window may be shorter than ``window``, no window lies inside the previous one,
a stream shorter than ``window`` gives exactly one (short) window, and empty input gives none. With
``hop <= window`` the audio is covered completely; ``hop > window`` is allowed and skips the audio between
windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from audioclf.errors import AudioError

__all__ = [
    "Window",
    "iter_chunks",
    "iter_windows",
    "iter_window_frames",
    "rebuffer",
    "seconds_to_frames",
    "window_bounds",
]


@dataclass(frozen=True)
class Window:
    """One window of audio.

    Attributes:
        index: 0-based position in the sequence of windows.
        start_frame: first frame, counted from the start of the stream.
        samples: ``float32 [frames]`` or ``[frames, streams]``; an independent copy (safe to modify).
        sample_rate: frames per second of ``samples``.
    """

    index: int
    start_frame: int
    samples: np.ndarray
    sample_rate: int

    @property
    def frames(self) -> int:
        """Number of frames in this window (shorter than requested for the last one)."""
        return int(self.samples.shape[0])

    @property
    def end_frame(self) -> int:
        """One past the last frame."""
        return self.start_frame + self.frames

    @property
    def start(self) -> float:
        """Start time in seconds."""
        return self.start_frame / self.sample_rate

    @property
    def end(self) -> float:
        """End time in seconds (exclusive)."""
        return self.end_frame / self.sample_rate


def seconds_to_frames(seconds: float, sample_rate: int, what: str = "duration") -> int:
    """``round(seconds * sample_rate)``; raises :class:`AudioError` unless it is at least one frame."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise AudioError(f"{what} must be a number of seconds, got {seconds!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise AudioError(f"{what} must be a positive number of seconds, got {seconds!r}")
    frames = int(round(value * sample_rate))
    if frames < 1:
        raise AudioError(f"{what} {value:g} s is shorter than one sample at {sample_rate} Hz")
    return frames


def window_bounds(total_frames: int, window_frames: int, hop_frames: int) -> list[tuple[int, int]]:
    """``(start, end)`` frame pairs (end exclusive) of the windows over ``total_frames`` frames (see module doc)."""
    if window_frames < 1 or hop_frames < 1:
        raise AudioError(f"window and hop must be at least one frame, got {window_frames} and {hop_frames}")
    bounds: list[tuple[int, int]] = []
    start = 0
    while start < total_frames:
        end = min(start + window_frames, total_frames)
        bounds.append((start, end))
        if end >= total_frames:
            break
        start += hop_frames
    return bounds


def iter_window_frames(
    blocks: Iterable[np.ndarray], window_frames: int, hop_frames: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start_frame, samples)`` for each window of a block stream, with frame counts given directly.

    ``samples`` is a fresh ``float32`` array ``[frames]`` or ``[frames, streams]``; placement as in
    :func:`window_bounds`.
    """
    if window_frames < 1 or hop_frames < 1:
        raise AudioError(f"window and hop must be at least one frame, got {window_frames} and {hop_frames}")
    buffer: np.ndarray | None = None  # frames [buffer_start, buffer_start + len(buffer)) of the stream
    buffer_start = 0
    next_start = 0
    covered_end = 0  # end of the last window yielded
    for block in blocks:
        block = np.asarray(block, dtype=np.float32)
        if block.shape[0] == 0:
            continue
        block_start = buffer_start + (0 if buffer is None else buffer.shape[0])
        if buffer is None or buffer.shape[0] == 0:
            # Skip frames that no window needs (only happens when hop > window).
            skip = min(max(next_start - block_start, 0), block.shape[0])
            buffer, buffer_start = block[skip:], block_start + skip
        else:
            buffer = np.concatenate([buffer, block], axis=0)
        while buffer_start + buffer.shape[0] >= next_start + window_frames:
            offset = next_start - buffer_start
            yield next_start, np.array(buffer[offset : offset + window_frames], dtype=np.float32)
            covered_end = next_start + window_frames
            next_start += hop_frames
            drop = min(max(next_start - buffer_start, 0), buffer.shape[0])
            buffer, buffer_start = buffer[drop:], buffer_start + drop
    if buffer is None:
        return
    total = buffer_start + buffer.shape[0]
    if next_start < total and covered_end < total:
        yield next_start, np.array(buffer[next_start - buffer_start :], dtype=np.float32)


def iter_windows(
    blocks: Iterable[np.ndarray], sample_rate: int, window: float, hop: float | None = None
) -> Iterator[Window]:
    """Windows of ``window`` seconds every ``hop`` seconds (default: ``hop = window``, i.e. chunks).

    Yields :class:`Window` objects with start/end in frames and seconds; the last one may be shorter.
    """
    window_frames = seconds_to_frames(window, sample_rate, "window")
    hop_frames = window_frames if hop is None else seconds_to_frames(hop, sample_rate, "hop")
    for index, (start, samples) in enumerate(iter_window_frames(blocks, window_frames, hop_frames)):
        yield Window(index=index, start_frame=start, samples=samples, sample_rate=sample_rate)


def iter_chunks(blocks: Iterable[np.ndarray], sample_rate: int, chunk: float) -> Iterator[Window]:
    """Consecutive, non-overlapping chunks of ``chunk`` seconds; the last one may be shorter."""
    return iter_windows(blocks, sample_rate, chunk, chunk)


def rebuffer(blocks: Iterable[np.ndarray], block_frames: int) -> Iterator[np.ndarray]:
    """Re-cut a block stream into blocks of exactly ``block_frames`` frames (the last one may be shorter)."""
    for _, samples in iter_window_frames(blocks, block_frames, block_frames):
        yield samples
