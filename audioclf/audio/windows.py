"""Cut a stream of audio blocks into chunks or overlapping windows without holding the whole file.

Input is any iterable of ``float32`` blocks at the model rate, each ``[frames]`` (mono) or
``[frames, streams]`` (several streams cut together, e.g. the ``each`` channel policy); blocks may have any
sizes. At most one window plus one block is held at a time.

Window placement: windows start at frames ``0, hop, 2·hop, …`` and are ``window`` frames long; the sequence stops
with the first window that reaches the end of the audio, which is cut short there. So the last window may be
shorter than ``window``, no window lies inside the previous one, a stream shorter than ``window`` gives exactly one
(short) window, and empty input gives none. With ``hop <= window`` the audio is covered completely; ``hop > window``
is allowed and skips the audio between windows. Chunks are windows with ``hop == window``.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from audioclf.errors import AudioError

__all__ = ["iter_window_frames"]


def iter_window_frames(
    blocks: Iterable[np.ndarray], window_frames: int, hop_frames: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start_frame, samples)`` for each window of a block stream, with frame counts given directly.

    ``samples`` is a fresh ``float32`` array ``[frames]`` or ``[frames, streams]``; placement as in the module
    docstring.
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
