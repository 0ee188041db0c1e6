"""Embeddings: :class:`Embedder` and :func:`embed`, the public API behind ``audioclf embed``.

A consumer of the same streaming loop as classification (:class:`~audioclf.engine.pipeline.ModelPipeline`): per
segment it takes hidden states of the model's base model (:meth:`~audioclf.engine.runner.ModelRunner.encode`), as
``transformers`` defines them, and pools them over the segment's valid frames.

**Which state** (``layer``): ``"last"`` is ``transformers``' ``last_hidden_state``, the encoder output (for
stable-layer-norm models after the final LayerNorm; for SEW / SEW-D upsampled to the frame rate); an integer ``N``
is ``hidden_states[N]`` (``0`` the input of the first transformer layer, ``num_hidden_layers`` the output of the
last one, before a stable model's final LayerNorm as in ``transformers`` 5.x; negative numbers count from the end);
``"all"`` stacks every ``hidden_states`` entry: ``[num_hidden_layers + 1, …]``.

**Pooling**: ``"mean"`` averages the valid frames (padding never counts): a vector ``[D]`` (``[L + 1, D]`` for
``"all"``); ``"none"`` keeps the frame vectors ``[T, D]`` (``[L + 1, T, D]``).

**What a record holds.** Without ``window``, one record per input (per channel with ``channels="each"``). A file of
up to ``chunk`` seconds is one segment, computed exactly as ``transformers`` computes the whole input. A longer file
is cut into chunks (see :mod:`audioclf.data.segments`) and the chunks combine as follows: ``mean`` — the mean of
the chunk means weighted by their valid frame counts, i.e. the mean over every frame of every chunk (equal to the
whole-file mean wherever a frame does not depend on audio beyond its chunk, which attention breaks: give a larger
``chunk`` to embed longer files whole); ``none`` — the chunks' frame vectors in time order. With ``window`` (and
``hop``) every window gives its own record with ``start``/``end``.

Records: ``{"path" | "index", ["channel"], ["start", "end"], "layer", "embedding", "model", ["revision"]}``,
``embedding`` a ``float32`` numpy array; ``{"path" | "index", "error"}`` for an input that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from audioclf.data.segments import Segment
from audioclf.engine.pipeline import FileDone, ModelPipeline, StreamOptions, check_sampling_rate, require
from audioclf.engine.records import EmbeddingRecord, ErrorRecord, error_record, record_head, segment_span
from audioclf.engine.stream import FileResult
from audioclf.errors import OptionError

__all__ = ["LAYERS", "POOLINGS", "EmbedOptions", "Embedder", "SegmentEmbedding", "embed", "parse_layer"]

#: the named choices of ``layer`` (besides a hidden-state number)
LAYERS = ("last", "all")
POOLINGS = ("mean", "none")


def parse_layer(text: str | int) -> str | int:
    """``"last"``, ``"all"`` or an integer (from a string such as ``"-2"``); :class:`OptionError` otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    value = str(text).strip()
    if value in LAYERS:
        return value
    try:
        return int(value)
    except ValueError:
        raise OptionError("layer", f"must be last, all or a hidden-state number, got {text!r}") from None


@dataclass
class EmbedOptions(StreamOptions):
    """The fields of :class:`~audioclf.engine.pipeline.StreamOptions`, and:

    Attributes:
        layer: ``"last"`` (the encoder output), ``"all"`` (every hidden state) or a hidden-state number.
        pooling: ``"mean"`` (over valid frames) or ``"none"`` (frame vectors).
    """

    layer: str | int = "last"
    pooling: str = "mean"

    def validate(self) -> None:
        super().validate()
        self.layer = parse_layer(self.layer)
        require(self.pooling in POOLINGS, "pooling", f"must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")


@dataclass
class SegmentEmbedding:
    """One segment's embedding: ``values`` (``[D]`` / ``[L + 1, D]`` pooled, ``[T, D]`` / ``[L + 1, T, D]`` frame
    vectors) and ``frames``, its valid frame count (the weight of a pooled chunk)."""

    values: np.ndarray
    frames: int


class Embedder:
    """A loaded model plus options; :meth:`embed` streams embedding records for any number of inputs.

    Args:
        model: model directory, weights file, Hub id, or a loaded classifier (``None``: the default model).
        **options: fields of :class:`EmbedOptions`.

    Raises :class:`OptionError` for bad options (a hidden-state number the model does not have included) and the
    loader's :class:`~audioclf.errors.AudioclfError` for a model that cannot be loaded.
    """

    def __init__(self, model: Any = None, **options: Any) -> None:
        self.options = opts = EmbedOptions.checked(options)
        self.pipeline = ModelPipeline(model, opts, lambda segments: self.embed_segments(segments))
        self.runner, self.featurizer = self.pipeline.runner, self.pipeline.featurizer
        count = int(self.runner.config.num_hidden_layers) + 1
        layer = opts.layer
        if layer == "last":
            self.layers: list[int | None] = [None]
        elif layer == "all":
            self.layers = list(range(count))
        else:
            require(-count <= int(layer) < count, "layer", f"{layer} is not a hidden state of this model: it has "
                                                            f"{count} (0 to {count - 1}, or -{count} to -1)")
            self.layers = [int(layer) % count]
        self.stacked = layer == "all"
        self.pooled = opts.pooling == "mean"

    def embed_segments(self, segments: Sequence[Segment]) -> list[SegmentEmbedding]:
        """The embedding of each segment of one batch."""
        batch = self.featurizer.collate([segment.features for segment in segments])
        states = self.runner.encode(batch, self.layers, pool=self.pooled)
        found = []
        for row in range(len(segments)):
            frames = int(states[0].frames[row])
            values = [state.values[row] if self.pooled else state.values[row, :frames] for state in states]
            found.append(SegmentEmbedding(np.stack(values) if self.stacked else values[0], frames))
        return found

    def embed(self, inputs: Any, progress: Callable[[FileDone], None] | None = None, *,
              sampling_rate: int | None = None) -> Iterator[EmbeddingRecord | ErrorRecord]:
        """Records for ``inputs`` (see :func:`embed`), yielded in input order as they become ready."""
        for records in self.embed_inputs(inputs, progress, sampling_rate=sampling_rate):
            yield from records

    def embed_inputs(self, inputs: Any, progress: Callable[[FileDone], None] | None = None, *,
                     sampling_rate: int | None = None) -> Iterator[list[EmbeddingRecord | ErrorRecord]]:
        """Like :meth:`embed`, but the records of one input at a time."""
        for result in self.pipeline.results(inputs, progress, sampling_rate=sampling_rate):
            yield self.records(result)

    def records(self, result: FileResult) -> list[EmbeddingRecord | ErrorRecord]:
        """One input's records: its error record, or per stream its window records in time order, or one record
        of its chunks combined (see the module docstring)."""
        identity = result.item.identity()
        if result.error is not None:
            return [error_record(identity, result.error)]
        rate = self.pipeline.sampling_rate
        records: list[EmbeddingRecord | ErrorRecord] = []
        for stream, channel in enumerate(result.streams):
            parts = [(segment, value) for segment, value in result.parts if segment.stream == stream]
            if self.options.window is not None:
                for segment, value in parts:
                    span = segment_span(segment.start_frame, segment.frames, rate)
                    records.append(self._record(identity, channel, value.values, span))
            else:
                records.append(self._record(identity, channel, self._combine([value for _, value in parts])))
        return records

    def _combine(self, chunks: list[SegmentEmbedding]) -> np.ndarray:
        """The embedding of a file from its chunks' (one chunk: itself)."""
        if len(chunks) == 1:
            return chunks[0].values
        if not self.pooled:
            return np.concatenate([chunk.values for chunk in chunks], axis=-2)
        weights = np.array([chunk.frames for chunk in chunks], dtype=np.float64)
        stacked = np.stack([chunk.values for chunk in chunks]).astype(np.float64)
        return (np.tensordot(weights, stacked, axes=1) / weights.sum()).astype(np.float32)

    def _record(self, identity: dict[str, Any], channel: int | None, values: np.ndarray,
                span: tuple[float, float] | None = None) -> EmbeddingRecord:
        record = record_head(identity, channel, span)
        record["layer"] = self.options.layer
        record["embedding"] = np.asarray(values, dtype=np.float32)
        record["model"] = self.runner.name
        if self.runner.revision:
            record["revision"] = self.runner.revision
        return record  # type: ignore[return-value]


def embed(inputs: Any, model: Any = None, *, sampling_rate: int | None = None,
          progress: Callable[[FileDone], None] | None = None, **options: Any) -> Iterator[EmbeddingRecord | ErrorRecord]:
    """Embed audio; yields one dict per record, in input order.

    Args:
        inputs: what :func:`audioclf.classify` takes (paths, directories, globs, ``"-"``, arrays, pairs, dicts).
        model: model directory, weights file, Hub id, or a loaded classifier; ``None`` for the default model.
        sampling_rate: the rate of bare arrays, in Hz.
        progress: called with a :class:`~audioclf.engine.pipeline.FileDone` for each finished input.
        **options: see :class:`EmbedOptions` (``layer``, ``pooling``, ``window``, ``hop``, ``chunk``,
            ``channels``, ``batch_size``, ``device``, ``dtype``, …).

    Records: see the module docstring. The model is loaded (and options are checked) when this is called.
    """
    check_sampling_rate(sampling_rate)
    return Embedder(model, **options).embed(inputs, progress=progress, sampling_rate=sampling_rate)
