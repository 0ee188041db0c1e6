"""One source → its featurized segments: the model-free half of every command that reads audio.

Per source: decode in blocks → channel policy → resample to the featurizer's rate → cut into chunks or windows →
featurize each stream of each cut. At most one block and one cut per stream are held at a time.

**Chunks** (no ``window``): a source of up to ``chunk`` seconds is one segment, featurized whole exactly as
``transformers`` featurizes a whole input; a longer one is cut into consecutive ``chunk``-second segments (never
longer than the featurizer's ``max_samples``). A last chunk shorter than the model's receptive field
(``min_samples``: 400 samples = 25 ms for the usual conv stack) is appended to the chunk before it.
**Windows** (``window``, ``hop``): every window is a segment; a last window shorter than the receptive field is
dropped. A source with no usable segment fails with "too short".

A :class:`Segmenter` needs only the model's ``config.json`` and ``preprocessor_config.json``
(:meth:`Segmenter.from_pretrained`), not its weights, and holds plain values, so it pickles: the Ray engine runs it
in decode tasks, the local engine on its prefetch threads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from audioclf.audio.channels import ChannelPolicy
from audioclf.audio.decode import BlockSource
from audioclf.audio.features import Featurizer, load_featurizer
from audioclf.audio.stream import iter_model_blocks
from audioclf.audio.windows import iter_window_frames
from audioclf.data.failures import failure_reason
from audioclf.data.sources import SourceItem
from audioclf.errors import AudioError, OptionError

__all__ = ["FrameCounter", "PreparedFile", "Segment", "Segmenter", "load_model_configs", "receptive_field"]


def receptive_field(config: Any) -> int:
    """The fewest input samples that give the model one frame: the receptive field of the config's conv stack
    (``conv_kernel``, ``conv_stride``); 1 for a config without one."""
    kernels, strides = getattr(config, "conv_kernel", None), getattr(config, "conv_stride", None)
    if not kernels:
        return 1
    needed = 1
    for kernel, stride in reversed(list(zip(kernels, strides))):
        needed = (needed - 1) * stride + kernel
    return needed


def load_model_configs(model: str | os.PathLike[str] | None = None, revision: str | None = None, *,
                       token: str | bool | None = None, cache_dir: str | os.PathLike[str] | None = None
                       ) -> tuple[Any, Featurizer]:
    """``(ModelConfig, featurizer)`` of a model directory, weights file or Hub id (``None``: the default model)
    from its config files alone: no weights are read or downloaded."""
    from audioclf.auto import DEFAULT_MODEL_NAME, AutoConfig, resolve_source

    source = resolve_source(DEFAULT_MODEL_NAME if model is None else model,
                            hub={"revision": revision, "token": token, "cache_dir": cache_dir}, weights=False)
    return AutoConfig.from_pretrained(source.directory), load_featurizer(source.directory)


@dataclass
class Segment:
    """One model input: stream ``stream`` of the source from ``start_frame`` for ``frames`` samples at the model
    rate, and its ``features`` (the featurizer's output: ``float32 [frames]`` for waveform models)."""

    stream: int
    start_frame: int
    frames: int
    features: np.ndarray


class FrameCounter:
    """Counts the model-rate frames decoded from a source (``seconds`` of audio so far), also when it fails."""

    def __init__(self, sampling_rate: int) -> None:
        self.sampling_rate = sampling_rate
        self.frames = 0

    @property
    def seconds(self) -> float:
        return self.frames / self.sampling_rate

    def count(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Pass blocks ``[frames, streams]`` through, adding up their frames."""
        for block in blocks:
            self.frames += block.shape[0]
            yield block


@dataclass(frozen=True)
class Segmenter:
    """Cuts sources into featurized segments (see the module docstring); build it with :meth:`for_model` or
    :meth:`from_pretrained`.

    Attributes:
        featurizer: the model's featurizer (its ``sampling_rate`` is the model rate).
        min_samples: the shortest usable segment in samples: the model's receptive field, or the featurizer's
            shortest input with features (one 25 ms frame for AST).
        policy: the channel policy.
        cut_frames, hop_frames: segment length and step in samples (equal for chunks).
        windowed: windows (a short last one is dropped) rather than chunks (a short last one joins the previous).
    """

    featurizer: Featurizer
    min_samples: int
    policy: ChannelPolicy
    cut_frames: int
    hop_frames: int
    windowed: bool

    @classmethod
    def for_model(cls, model_config: Any, featurizer: Featurizer, *, channels: str | int | ChannelPolicy = "mix",
                  chunk: float = 30.0, window: float | None = None, hop: float | None = None) -> "Segmenter":
        """The segmenter of a model (its config and featurizer) for chunks of ``chunk`` seconds, or windows of
        ``window`` seconds every ``hop`` seconds (default ``hop = window``). Raises :class:`OptionError` for a
        chunk or window shorter than the model's receptive field, a window longer than the model takes, and a hop
        shorter than one sample."""
        rate = featurizer.sampling_rate
        min_samples = max(receptive_field(model_config), featurizer.min_samples)
        limit = featurizer.max_samples
        option, seconds = ("window", window) if window is not None else ("chunk", chunk)
        cut = round(seconds * rate)
        if cut < min_samples:
            raise OptionError(option, f"{seconds:g} s is shorter than the model's receptive field ({min_samples} "
                                      f"samples at {rate} Hz)")
        if window is not None and limit is not None and cut > limit:
            raise OptionError("window", f"{window:g} s is longer than the model takes ({limit} samples at {rate} Hz)")
        if window is None and limit is not None:
            cut = min(cut, limit)
        step = cut if hop is None or window is None else round(hop * rate)
        if step < 1:
            raise OptionError("hop", f"{hop:g} s is shorter than one sample at {rate} Hz")
        return cls(featurizer, min_samples, ChannelPolicy.parse(channels), cut, step, window is not None)

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike[str] | None = None, *, revision: str | None = None,
                        **cuts: Any) -> "Segmenter":
        """:meth:`for_model` from a model's config files alone (see :func:`load_model_configs`)."""
        config, featurizer = load_model_configs(model, revision)
        return cls.for_model(config, featurizer, **cuts)

    @property
    def sampling_rate(self) -> int:
        return self.featurizer.sampling_rate

    def batch_samples(self, segment: Segment) -> int:
        """What ``segment`` costs in a batch, in samples: its own length, or ``max_samples`` for a featurizer that
        pads every item to that size (``fixed_size``)."""
        return self.featurizer.max_samples if self.featurizer.fixed_size else segment.frames

    def open(self, item: SourceItem, local_path: str | None = None) -> tuple[BlockSource, list[int | None]]:
        """Probe an input; its source and stream labels (channel numbers, ``None`` for a mix). Raises AudioError."""
        source = item.open(local_path)
        self.policy.validate(source.channels, source.path)
        return source, self.policy.stream_channels(source.channels)

    def segments(self, source: BlockSource, streams: int, counter: FrameCounter) -> Iterator[Segment]:
        """Every segment of every stream of an opened source, in time order (streams of one cut together);
        ``counter`` counts the decoded frames. Raises AudioError, also when no segment is long enough."""
        blocks = counter.count(iter_model_blocks(source, self.sampling_rate, self.policy))
        sent = 0
        for start, samples in self._cuts(blocks):
            for stream in range(streams):
                yield Segment(stream, start, samples.shape[0], self.featurizer.featurize(samples[:, stream]))
                sent += 1
        if sent == 0:
            rate = self.sampling_rate
            raise AudioError(f"too short: {counter.frames} samples at {rate} Hz ({counter.seconds:.4f} s); the "
                             f"model needs at least {self.min_samples} ({self.min_samples / rate:.4f} s)")

    def prepare(self, item: SourceItem, local_path: str | None = None) -> "PreparedFile":
        """All segments of one input at once, any failure captured in the result. ``local_path``: where the bytes
        of ``item`` can be read, when that is not its path (a downloaded copy of a URI)."""
        if item.error is not None:
            return PreparedFile(item, error=item.error)
        counter = FrameCounter(self.sampling_rate)
        try:
            source, streams = self.open(item, local_path)
            segments = list(self.segments(source, len(streams), counter))
        except Exception as error:
            duration = counter.seconds if isinstance(error, AudioError) else 0.0
            return PreparedFile(item, duration=duration, error=failure_reason(error, local_path or item.label))
        return PreparedFile(item, streams, segments, counter.seconds)

    def _cuts(self, blocks: Iterable[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
        """``(start_frame, samples [frames, streams])`` of the usable windows or chunks of model-rate blocks."""
        cuts = iter_window_frames(blocks, self.cut_frames, self.hop_frames)
        if self.windowed:
            yield from ((start, samples) for start, samples in cuts if samples.shape[0] >= self.min_samples)
            return
        previous = None
        for start, samples in cuts:
            if previous is not None and samples.shape[0] < self.min_samples:
                previous = (previous[0], np.concatenate([previous[1], samples], axis=0))
                continue
            if previous is not None:
                yield previous
            previous = (start, samples)
        if previous is not None and previous[1].shape[0] >= self.min_samples:
            yield previous


@dataclass
class PreparedFile:
    """One input decoded and featurized whole (for engines that move inputs between processes): its ``segments``,
    the channel label of each stream (``streams``), the decoded ``duration`` in seconds; ``error`` set: the input
    failed before reaching the model."""

    item: SourceItem
    streams: list[int | None] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    duration: float = 0.0
    error: str | None = None

    def to_row(self) -> dict[str, Any]:
        """A flat row of strings, numbers and bytes (for a path input), as Ray Data moves it between processes."""
        layout = np.array([(s.stream, s.start_frame, s.frames, *_shape2(s.features)) for s in self.segments],
                          dtype=np.int64).reshape(-1, 5)
        features = b"".join(np.ascontiguousarray(s.features, dtype=np.float32).tobytes() for s in self.segments)
        return {"path": str(self.item.path), "error": self.error or "", "duration": float(self.duration),
                "streams": json.dumps(self.streams), "layout": layout.tobytes(), "features": features}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "PreparedFile":
        """The inverse of :meth:`to_row`."""
        item = SourceItem(str(row["path"]))
        if row["error"]:
            return cls(item, duration=float(row["duration"]), error=str(row["error"]))
        values = np.frombuffer(row["features"], dtype=np.float32)
        segments, offset = [], 0
        for stream, start, frames, rows, columns in np.frombuffer(row["layout"], dtype=np.int64).reshape(-1, 5).tolist():
            size = rows * max(columns, 1)
            features = values[offset:offset + size].copy()
            segments.append(Segment(stream, start, frames, features if columns < 0 else features.reshape(rows, columns)))
            offset += size
        return cls(item, json.loads(row["streams"]), segments, float(row["duration"]))


def _shape2(features: np.ndarray) -> tuple[int, int]:
    """``(rows, columns)`` of 1-D (``columns = -1``) or 2-D features."""
    if features.ndim == 1:
        return features.shape[0], -1
    if features.ndim == 2:
        return features.shape[0], features.shape[1]
    raise ValueError(f"features must be 1-D or 2-D, got shape {features.shape}")
