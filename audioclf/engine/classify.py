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

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from audioclf.audio.channels import ChannelPolicy
from audioclf.data.segments import PreparedFile, Segment, Segmenter
from audioclf.data.sources import SourceItem, source_items
from audioclf.engine.records import AGGREGATES, Record, ScoreRecords
from audioclf.engine.runner import ACTIVATIONS, BACKENDS, DEVICES, DTYPES, activate, load_runner, resolve_activation
from audioclf.engine.stream import FileResult, SegmentStream
from audioclf.errors import OptionError

__all__ = ["Classifier", "ClassifyOptions", "FileDone", "classify"]

#: padded audio per batch, in seconds, when ``max_batch_seconds`` is not given (CPU / accelerators)
DEFAULT_BATCH_SECONDS_CPU = 32.0
DEFAULT_BATCH_SECONDS_ACCELERATOR = 320.0


@dataclass
class ClassifyOptions:
    """Everything that shapes a classification run besides the model and the inputs.

    Attributes:
        batch_size: most segments per model call.
        chunk: files longer than this many seconds are cut into chunks of this length (ignored with ``window``).
        window, hop: emit one record per window of ``window`` seconds every ``hop`` seconds (default ``hop =
            window``) instead of one record per file.
        aggregate: with ``window``, also emit a file record: ``"mean"`` or ``"max"`` of the window scores.
        channels: channel policy: ``"mix"``, ``"first"``, a 0-based channel number, or ``"each"``.
        top_k: labels per record, highest scores first; ``0`` or ``None`` keeps all.
        min_score: drop labels scoring below this.
        activation: ``"auto"`` (from ``config.problem_type``), ``"softmax"``, ``"sigmoid"`` or ``"none"``.
        labels: only report these labels (names from the model's ``id2label``).
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``), ``"mps"``.
        dtype: model precision: ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        quantize: ``"int8"``: int8 linear layers (CPU only; opt-in, it changes scores slightly): dynamic (activations
            quantized per batch), or static with ``calibrate``; ``None`` keeps the weights as they are.
        calibrate: audio files or directories whose activation ranges calibrate static int8 (``quantize="int8"``,
            ONNX backend): use audio like the audio you will classify.
        backend: ``"auto"``, ``"onnx"`` (ONNX Runtime on a graph exported once per checkpoint and cached; CPU,
            float32 or int8) or ``"torch"`` (every device and dtype). ``auto`` picks ``onnx`` for a model given by
            name that runs in float32 on the CPU when onnxruntime is installed, else ``torch``
            (:func:`~audioclf.engine.runner.choose_backend`).
        threads: torch intra-op threads (``torch.set_num_threads``); ``None`` leaves torch's default.
        workers: decoding threads; default ``min(4, cpu_count)``.
        max_batch_seconds: most padded audio per batch (default 32 s on CPU, 320 s on accelerators).
        recursive: descend into subdirectories of directory inputs.
        revision: Hub revision of the model (branch, tag or commit).
    """

    batch_size: int = 8
    chunk: float = 30.0
    window: float | None = None
    hop: float | None = None
    aggregate: str | None = None
    channels: str | int = "mix"
    top_k: int | None = 5
    min_score: float | None = None
    activation: str = "auto"
    labels: Sequence[str] | None = None
    device: str = "auto"
    dtype: str = "float32"
    quantize: str | None = None
    calibrate: Sequence[str] | None = None
    backend: str = "auto"
    threads: int | None = None
    workers: int | None = None
    max_batch_seconds: float | None = None
    recursive: bool = False
    revision: str | None = None

    def validate(self) -> None:
        """Raise :class:`OptionError` (naming the argument) for values that cannot work with any model."""
        _require(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size",
                 f"must be 1 or more, got {self.batch_size}")
        _require(_positive(self.chunk), "chunk", f"must be a positive number of seconds, got {self.chunk}")
        _require(self.window is None or _positive(self.window), "window",
                 f"must be a positive number of seconds, got {self.window}")
        _require(self.hop is None or _positive(self.hop), "hop", f"must be a positive number of seconds, got {self.hop}")
        _require(self.hop is None or self.window is not None, "hop", "needs window")
        _require(self.aggregate is None or self.window is not None, "aggregate", "needs window")
        _require(self.aggregate in (None, *AGGREGATES), "aggregate",
                 f"must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}")
        ChannelPolicy.parse(self.channels)
        _require(self.top_k is None or (isinstance(self.top_k, int) and self.top_k >= 0), "top_k",
                 f"must be 0 (all labels) or more, got {self.top_k}")
        _require(self.min_score is None or math.isfinite(self.min_score), "min_score",
                 f"must be a number, got {self.min_score}")
        _require(self.activation in ACTIVATIONS, "activation",
                 f"must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        _require(self.labels is None or (len(self.labels) > 0 and all(self.labels)), "labels", "needs label names")
        _require(str(self.device).split(":")[0] in DEVICES, "device",
                 f"must be one of {', '.join(DEVICES)}, got {self.device!r}")
        _require(str(self.dtype).removeprefix("torch.") in DTYPES, "dtype",
                 f"must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        _require(self.quantize in (None, "int8"), "quantize", f"must be int8, got {self.quantize!r}")
        _require(self.quantize is None or str(self.dtype).removeprefix("torch.") == "float32", "quantize",
                 "int8 works on float32 models only")
        _require(self.backend in BACKENDS, "backend", f"must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        _require(not self.calibrate or self.quantize == "int8", "calibrate", "needs quantize int8")
        _require(not self.calibrate or self.backend != "torch", "calibrate", "needs the onnx backend")
        _require(self.threads is None or self.threads >= 1, "threads", f"must be 1 or more, got {self.threads}")
        _require(self.workers is None or self.workers >= 1, "workers", f"must be 1 or more, got {self.workers}")
        _require(self.max_batch_seconds is None or _positive(self.max_batch_seconds), "max_batch_seconds",
                 f"must be a positive number, got {self.max_batch_seconds}")

    @classmethod
    def checked(cls, options: dict[str, Any]) -> "ClassifyOptions":
        """Options from keyword arguments, validated; an unknown name is an :class:`OptionError` too."""
        unknown = set(options) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise OptionError(", ".join(sorted(unknown)), "is an unknown option" if len(unknown) == 1
                              else "are unknown options")
        opts = cls(**options)
        opts.validate()
        return opts


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _require(condition: bool, option: str, detail: str) -> None:
    if not condition:
        raise OptionError(option, detail)


@dataclass(frozen=True)
class FileDone:
    """Progress report for one finished input: the input, its decoded duration in seconds, and error (or ``None``).
    ``path`` is the input's path (``None`` for audio in memory)."""

    item: SourceItem
    duration: float
    error: str | None

    @property
    def path(self) -> str | None:
        return self.item.path


class Classifier:
    """A loaded model plus options; :meth:`classify` streams records for any number of inputs.

    Args:
        model: model directory, weights file, Hub id, or an already loaded classifier
            (``None``: :data:`audioclf.auto.DEFAULT_MODEL_NAME`).
        **options: fields of :class:`ClassifyOptions`.

    Raises :class:`OptionError` for bad options, unknown label names or an unusable device, and the loader's
    :class:`~audioclf.errors.AudioclfError` for a model that cannot be loaded.
    """

    def __init__(self, model: Any = None, **options: Any) -> None:
        self.options = opts = ClassifyOptions.checked(options)  # before importing torch: mistakes are reported at once
        self.runner = load_runner(model, backend=opts.backend, revision=opts.revision, device=opts.device,
                                  dtype=opts.dtype, quantize=opts.quantize, calibrate=opts.calibrate,
                                  threads=opts.threads)
        config = self.runner.config
        self.featurizer = self.runner.featurizer()
        self.segmenter = Segmenter.for_model(config, self.featurizer, channels=opts.channels, chunk=opts.chunk,
                                             window=opts.window, hop=opts.hop)
        self.records = ScoreRecords.for_config(
            config, labels=opts.labels, top_k=opts.top_k, min_score=opts.min_score, model=self.runner.name,
            revision=self.runner.revision, windowed=opts.window is not None, aggregate=opts.aggregate,
            sampling_rate=self.featurizer.sampling_rate)
        self.activation = resolve_activation(opts.activation, config)
        seconds = opts.max_batch_seconds or (DEFAULT_BATCH_SECONDS_CPU if self.runner.device.type == "cpu"
                                             else DEFAULT_BATCH_SECONDS_ACCELERATOR)
        self.stream = SegmentStream(
            self.segmenter, lambda segments: self.score_segments(segments), batch_size=opts.batch_size,
            max_batch_samples=max(1, int(seconds * self.featurizer.sampling_rate)),
            pad=self.featurizer.exact_padding(config), workers=opts.workers or max(1, min(4, os.cpu_count() or 1)))

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
        _check_sampling_rate(sampling_rate)
        items = source_items(inputs, sampling_rate=sampling_rate, recursive=self.options.recursive)
        for result in self.stream(items):
            yield self._finish(result, progress)

    def score_prepared(self, files: Sequence[PreparedFile]) -> list[list[Record]]:
        """The records of each :class:`PreparedFile` (in order), their segments batched together exactly as
        :meth:`classify` batches them. The Ray engine's model actors call this."""
        return [self._finish(result, None) for result in self.stream.prepared(files)]

    def _finish(self, result: FileResult, progress: Callable[[FileDone], None] | None) -> list[Record]:
        if progress is not None:
            progress(FileDone(result.item, result.duration, result.error))
        return self.records.records(result)


def _check_sampling_rate(sampling_rate: Any) -> None:
    if sampling_rate is not None and (isinstance(sampling_rate, bool) or not isinstance(sampling_rate, int)
                                      or sampling_rate <= 0):
        raise OptionError("sampling_rate", f"must be a positive integer (Hz), got {sampling_rate!r}")


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
            ``calibrate``, ``backend``, ``threads``, ``workers``, ``max_batch_seconds``, ``recursive``, ``revision``).

    Records: ``{"path", ["channel"], ["start", "end"], "labels": [{"label", "score"}, …], "model", ["revision"]}``
    (in-memory inputs: ``"index"``, their position in ``inputs``, instead of ``"path"``), or ``{"path" | "index",
    "error"}`` for an input that failed. The model is loaded (and options are checked) when this is called, so a bad
    model or option raises :class:`~audioclf.errors.AudioclfError` here, not while iterating.
    """
    _check_sampling_rate(sampling_rate)
    return Classifier(model, **options).classify(inputs, progress=progress, sampling_rate=sampling_rate)
