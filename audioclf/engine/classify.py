"""Classification: :class:`Classifier` and :func:`classify`, the public API behind ``audioclf classify``.

A thin consumer of the shared pieces: a runner (the model: :class:`~audioclf.engine.runner.ModelRunner` on torch or
:class:`~audioclf.engine.onnx_runner.OnnxRunner` on ONNX Runtime, chosen by :func:`~audioclf.engine.runner.load_runner`),
:class:`~audioclf.data.segments.Segmenter` (the audio), :class:`~audioclf.engine.stream.SegmentStream` (the loop)
and :class:`~audioclf.engine.records.ScoreRecords` (the records). Per segment it computes label scores: the
featurizer collates the batch, the model gives logits, the activation makes scores.

**What a record holds.** Without ``window``, a file of up to ``chunk`` seconds is classified whole, exactly as
``transformers`` classifies it; a longer file's scores are the mean of its chunks' scores, weighted by chunk
length. With ``window`` (and ``hop``) every window gives its own record with ``start``/``end``; ``aggregate`` adds
a record per file (``mean``: length-weighted mean of the window scores, ``max``: per-label maximum). Records come
in input order; per input, for each stream (channel), its window records in time order, then its file record.

**Batch invariance.** A file's scores never depend on the other files in its batch: inputs of different length
share a batch only when the featurizer's padding is exact for the model; otherwise only equal lengths are batched.
Each record therefore equals the unbatched reference: ``transformers``' feature extractor on the single unpadded
input, the model, the activation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from audioclf.audio.features import Featurizer
from audioclf.data.segments import PreparedFile, Segment
from audioclf.engine.pipeline import FileDone, ModelPipeline, StreamOptions, check_sampling_rate, report, require
from audioclf.engine.records import AGGREGATES, Record, ScoreRecords
from audioclf.engine.runner import ACTIVATIONS, BACKENDS, activate, load_runner, resolve_activation
from audioclf.engine.stream import FileResult

__all__ = ["Classifier", "ClassifyOptions", "FileDone", "classify"]


@dataclass
class ClassifyOptions(StreamOptions):
    """Everything that shapes a classification run besides the model and the inputs: the fields of
    :class:`~audioclf.engine.pipeline.StreamOptions` (``batch_size``, ``chunk``, ``window``, ``hop``, ``channels``,
    ``device``, ``dtype``, ``quantize``, ``threads``, ``workers``, ``max_batch_seconds``, ``recursive``,
    ``revision``, ``token``, ``cache_dir``) and:

    Attributes:
        aggregate: with ``window``, also emit a file record: ``"mean"`` or ``"max"`` of the window scores.
        top_k: labels per record, highest scores first; ``0`` or ``None`` keeps all.
        min_score: drop labels scoring below this.
        activation: ``"auto"`` (from ``config.problem_type``), ``"softmax"``, ``"sigmoid"`` or ``"none"``.
        labels: only report these labels (names from the model's ``id2label``).
        backend: ``"auto"``, ``"onnx"`` (ONNX Runtime on a graph exported once per checkpoint and cached; CPU,
            float32 or int8) or ``"torch"`` (every device and dtype). ``auto`` picks ``onnx`` for a model given by
            name that runs in float32 on the CPU when onnxruntime is installed, else ``torch``
            (:func:`~audioclf.engine.runner.choose_backend`). Classification only: embeddings need hidden states,
            which only torch gives.
        calibrate: audio files or directories whose activation ranges calibrate static int8 (``quantize="int8"``,
            ONNX backend): use audio like the audio you will classify. Without it, int8 is dynamic (activations
            quantized per batch).
    """

    aggregate: str | None = None
    top_k: int | None = 5
    min_score: float | None = None
    activation: str = "auto"
    labels: Sequence[str] | None = None
    backend: str = "auto"
    calibrate: Sequence[str] | None = None

    def validate(self) -> None:
        """Raise :class:`OptionError` (naming the argument) for values that cannot work with any model."""
        super().validate()
        require(self.aggregate is None or self.window is not None, "aggregate", "needs window")
        require(self.aggregate in (None, *AGGREGATES), "aggregate",
                f"must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}")
        require(self.top_k is None or (isinstance(self.top_k, int) and self.top_k >= 0), "top_k",
                f"must be 0 (all labels) or more, got {self.top_k}")
        require(self.min_score is None or math.isfinite(self.min_score), "min_score",
                f"must be a number, got {self.min_score}")
        require(self.activation in ACTIVATIONS, "activation",
                f"must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        require(self.labels is None or (len(self.labels) > 0 and all(self.labels)), "labels", "needs label names")
        require(self.backend in BACKENDS, "backend", f"must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        require(not self.calibrate or self.quantize == "int8", "calibrate", "needs quantize int8")
        require(not self.calibrate or self.backend != "torch", "calibrate", "needs the onnx backend")


class Classifier:
    """A loaded model plus options; :meth:`classify` streams records for any number of inputs.

    Args:
        model: model directory, weights file, Hub id, or an already loaded classifier
            (``None``: :data:`audioclf.auto.DEFAULT_MODEL_NAME`).
        featurizer: the model's featurizer, for a loaded classifier whose preprocessor config is not on disk
            (``None``: read from the model's directory).
        **options: fields of :class:`ClassifyOptions`.

    Raises :class:`OptionError` for bad options, unknown label names or an unusable device, and the loader's
    :class:`~audioclf.errors.AudioclfError` for a model that cannot be loaded.
    """

    def __init__(self, model: Any = None, *, featurizer: Featurizer | None = None, **options: Any) -> None:
        self.options = opts = ClassifyOptions.checked(options)  # before importing torch: mistakes are reported at once
        runner = load_runner(model, backend=opts.backend, revision=opts.revision, token=opts.token,
                             cache_dir=opts.cache_dir, device=opts.device, dtype=opts.dtype, quantize=opts.quantize,
                             calibrate=opts.calibrate, threads=opts.threads)
        self.pipeline = ModelPipeline(model, opts, lambda segments: self.score_segments(segments),
                                      featurizer=featurizer, runner=runner)
        self.runner, self.featurizer = self.pipeline.runner, self.pipeline.featurizer
        self.segmenter, self.stream = self.pipeline.segmenter, self.pipeline.stream
        config = self.runner.config
        self.records = ScoreRecords.for_config(
            config, labels=opts.labels, top_k=opts.top_k, min_score=opts.min_score, model=self.runner.name,
            revision=self.runner.revision, windowed=opts.window is not None, aggregate=opts.aggregate,
            sampling_rate=self.featurizer.sampling_rate)
        self.activation = resolve_activation(opts.activation, config)

    def score_segments(self, segments: Sequence[Segment]) -> np.ndarray:
        """Scores ``float32 [B, num_labels]`` (after the activation) of one batch of featurized segments."""
        batch = self.featurizer.collate([segment.features for segment in segments])
        return activate(self.runner.forward(batch).logits, self.activation)

    def classify(self, inputs: Any, progress: Callable[[FileDone], None] | None = None, *,
                 sampling_rate: int | None = None) -> Iterator[Record]:
        """Records for ``inputs`` (see :func:`classify`), yielded in input order as they become ready."""
        for records in self.classify_inputs(inputs, progress, sampling_rate=sampling_rate):
            yield from records

    def classify_inputs(self, inputs: Any, progress: Callable[[FileDone], None] | None = None, *,
                        sampling_rate: int | None = None) -> Iterator[list[Record]]:
        """Like :meth:`classify`, but the records of one input at a time (for writers that keep inputs whole)."""
        for result in self.pipeline.results(inputs, sampling_rate=sampling_rate):
            yield self._finish(result, progress)

    def score_prepared(self, files: Sequence[PreparedFile]) -> list[list[Record]]:
        """The records of each :class:`PreparedFile` (in order), their segments batched together exactly as
        :meth:`classify` batches them. The Ray engine's model actors call this."""
        return [self._finish(result, None) for result in self.stream.prepared(files)]

    def _finish(self, result: FileResult, progress: Callable[[FileDone], None] | None) -> list[Record]:
        records = self.records.records(result)  # may turn the input into an error record (scores not finite)
        report(result, progress, records)
        return records


def classify(inputs: Any, model: Any = None, *, sampling_rate: int | None = None,
             progress: Callable[[FileDone], None] | None = None, **options: Any) -> Iterator[Record]:
    """Classify audio; yields one dict per record, in input order.

    Args:
        inputs: a path, or an iterable of paths (files, directories, glob patterns; ``"-"`` reads paths from
            stdin); or audio in memory: a numpy array (1-D mono, or 2-D ``[frames, channels]``) at
            ``sampling_rate``, an ``(array, sampling_rate)`` pair, a ``{"array", "sampling_rate"}`` dict (the
            Hugging Face ``datasets`` audio format), or a list of these. Audio at another rate than the model's is
            resampled; channels follow ``channels``.
        model: model directory, weights file, Hub id, or a loaded classifier; ``None`` for the default model.
        sampling_rate: the rate of bare arrays, in Hz.
        progress: called with a :class:`FileDone` for each finished input.
        **options: see :class:`ClassifyOptions` (``batch_size``, ``chunk``, ``window``, ``hop``, ``aggregate``,
            ``channels``, ``top_k``, ``min_score``, ``activation``, ``labels``, ``device``, ``dtype``, ``quantize``,
            ``calibrate``, ``backend``, ``threads``, ``workers``, ``max_batch_seconds``, ``recursive``, ``revision``,
            ``token``, ``cache_dir``).

    Records: ``{"path", ["channel"], ["start", "end"], "labels": [{"label", "score"}, …], "model", ["revision"]}``
    (in-memory inputs: ``"index"``, their position in ``inputs``, instead of ``"path"``), or ``{"path" | "index",
    "error"}`` for an input that failed. The model is loaded (and options are checked) when this is called, so a bad
    model or option raises :class:`~audioclf.errors.AudioclfError` here, not while iterating.
    """
    check_sampling_rate(sampling_rate)
    return Classifier(model, **options).classify(inputs, progress=progress, sampling_rate=sampling_rate)
