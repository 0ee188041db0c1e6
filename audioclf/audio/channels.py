"""Channel policy: how a multi-channel file becomes the mono signal(s) a model classifies.

Policies (the ``--channel`` option's values):

* ``mix``   — the mean over all channels (one stream; mono files pass through unchanged);
* ``first`` — channel 0;
* ``N``     — channel ``N`` (0-based); must exist in the file;
* ``each``  — every channel separately: one mono stream per channel, labelled with its index.

:meth:`ChannelPolicy.apply` maps a decoded block ``[frames, channels]`` to ``[frames, streams]`` so that all
streams of a file can be resampled and windowed together in one pass over the file; the stream labels come
from :meth:`ChannelPolicy.stream_channels`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audioclf.errors import AudioError

__all__ = ["ChannelPolicy"]

_NAMES = ("mix", "first", "each")


@dataclass(frozen=True)
class ChannelPolicy:
    """A parsed channel policy.

    Attributes:
        mode: ``"mix"``, ``"first"``, ``"index"`` or ``"each"``.
        index: the 0-based channel for ``mode == "index"``, else ``None``.
    """

    mode: str = "mix"
    index: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("mix", "first", "index", "each"):
            raise AudioError(f"unknown channel policy mode {self.mode!r}")
        if (self.mode == "index") != (self.index is not None):
            raise AudioError("a channel index is given exactly when mode is 'index'")
        if self.index is not None and self.index < 0:
            raise AudioError(f"channel index must be 0 or more, got {self.index}")

    @classmethod
    def parse(cls, text: str | int | "ChannelPolicy") -> "ChannelPolicy":
        """Parse ``"mix"``, ``"first"``, ``"each"`` or a 0-based channel number such as ``"1"`` (case-insensitive)."""
        if isinstance(text, ChannelPolicy):
            return text
        if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
            return cls("index", int(text)) if text >= 0 else cls._bad(str(text))
        value = str(text).strip().lower()
        if value in _NAMES:
            return cls(value)
        if value.isdigit():
            return cls("index", int(value))
        return cls._bad(str(text))

    @staticmethod
    def _bad(text: str) -> "ChannelPolicy":
        raise AudioError(f"invalid channel policy {text!r}: use mix, first, each or a 0-based channel number")

    def __str__(self) -> str:
        return str(self.index) if self.mode == "index" else self.mode

    def validate(self, channels: int, path: object | None = None) -> None:
        """Raise :class:`AudioError` when the policy cannot apply to a file with ``channels`` channels."""
        if self.mode == "index" and self.index is not None and self.index >= channels:
            where = f"{path}: " if path is not None else ""
            plural = "channel" if channels == 1 else "channels"
            raise AudioError(
                f"{where}channel {self.index} does not exist, "
                f"the file has {channels} {plural} (valid: 0..{channels - 1})"
            )

    def stream_channels(self, channels: int) -> list[int | None]:
        """Labels of the output streams for a file with ``channels`` channels: the source channel index of each
        stream, or ``None`` for a mix of all channels. ``mix`` on a mono file is labelled ``None`` as well."""
        self.validate(channels)
        if self.mode == "mix":
            return [None]
        if self.mode == "first":
            return [0]
        if self.mode == "index":
            return [self.index]
        return list(range(channels))

    def apply(self, block: np.ndarray) -> np.ndarray:
        """Map a block ``float32 [frames, channels]`` to ``float32 [frames, streams]`` (C-contiguous).

        ``streams`` is 1 for ``mix``/``first``/``N`` and ``channels`` for ``each``. ``mix`` averages in float32
        (``block.mean(axis=1)``).
        """
        if block.ndim != 2:
            raise AudioError(f"audio blocks must be [frames, channels], got shape {block.shape}")
        channels = block.shape[1]
        self.validate(channels)
        if self.mode == "each" or channels == 1:
            out = block
        elif self.mode == "mix":
            out = block.mean(axis=1, dtype=np.float32, keepdims=True)
        else:
            index = 0 if self.mode == "first" else int(self.index or 0)
            out = block[:, index : index + 1]
        return np.ascontiguousarray(out, dtype=np.float32)
