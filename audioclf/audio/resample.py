"""Streaming sample-rate conversion with libsoxr (``soxr.ResampleStream``, quality ``"HQ"``).

Feeding a signal block by block through :class:`Resampler` (and calling :meth:`Resampler.flush` at the end)
gives the same samples as one call of ``soxr.resample(signal, in_rate, out_rate, quality="HQ")`` on the whole
signal, to float32 rounding (about 1e-7), whatever the block sizes. When the rates are equal the resampler is the
identity and copies nothing.
"""

from __future__ import annotations

import numpy as np
import soxr

from audioclf.errors import AudioError

__all__ = ["Resampler"]

QUALITY = "HQ"


class Resampler:
    """Convert a stream of ``float32`` blocks from ``in_rate`` to ``out_rate``.

    Blocks are ``[frames]`` (mono) or ``[frames, channels]`` with the ``channels`` given here; the output of
    :meth:`process` / :meth:`flush` has the same layout, ``float32``, C-contiguous. An output block can be
    empty (the filter is still filling); the total output length is ``round(total_in * out_rate / in_rate)``
    once :meth:`flush` has been called.
    """

    def __init__(self, in_rate: int, out_rate: int, channels: int = 1) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise AudioError(f"sample rates must be positive, got {in_rate} Hz -> {out_rate} Hz")
        if channels <= 0:
            raise AudioError(f"channel count must be positive, got {channels}")
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self.channels = int(channels)
        self.identity = self.in_rate == self.out_rate
        self._stream = None if self.identity else soxr.ResampleStream(
            self.in_rate, self.out_rate, self.channels, dtype="float32", quality=QUALITY
        )
        self._finished = False

    def _check(self, block: np.ndarray) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if block.ndim == 2 and block.shape[1] != self.channels:
            raise AudioError(f"resampler expects {self.channels} channels, got a block with {block.shape[1]}")
        if block.ndim == 1 and self.channels != 1:
            raise AudioError(f"resampler expects {self.channels} channels, got a mono block")
        if block.ndim not in (1, 2):
            raise AudioError(f"audio blocks must be [frames] or [frames, channels], got shape {block.shape}")
        return block

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed ``block`` (``[frames]`` or ``[frames, channels]``); return the output samples available now."""
        if self._finished:
            raise RuntimeError("Resampler.process() called after flush()")
        block = self._check(block)
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block, last=False)

    def flush(self) -> np.ndarray:
        """End the stream and return the samples still held in the filter (may be empty)."""
        if self._finished:
            raise RuntimeError("Resampler.flush() called twice")
        self._finished = True
        shape = (0,) if self.channels == 1 else (0, self.channels)
        empty = np.zeros(shape, dtype=np.float32)
        if self._stream is None:
            return empty
        return self._stream.resample_chunk(empty, last=True)
