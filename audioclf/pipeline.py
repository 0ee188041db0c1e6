"""The streaming classification engine behind ``audioclf classify`` and :func:`audioclf.classify`.

Data flow::

    inputs ──► worker threads: decode in blocks → channel policy → soxr HQ resample → cut into segments
               (chunks or windows) → normalise each segment           ──► bounded queue (backpressure)
           ──► main thread: group segments by length into batches → pad + mask → model → activation
           ──► per-file assembly → records, yielded in input order

**Segments.** Without ``window``, a file of up to ``chunk`` seconds is one segment: it is classified whole, exactly
as ``transformers`` classifies it. A longer file is cut into consecutive ``chunk``-second segments, each featurized
on its own; the file's scores are the mean of the chunk scores weighted by chunk length. With ``window`` (and
``hop``), every window is a segment and gives its own record with ``start``/``end``; ``aggregate`` adds a file
record (``mean``: length-weighted mean of the window scores, ``max``: per-label maximum). A last chunk shorter
than the model's receptive field (``min_samples``, 400 samples = 25 ms for the usual conv stack) is appended to
the chunk before it; such a last *window* is dropped. A file with no usable segment is an error record.

**Batch invariance.** A file's scores never depend on the other files in its batch. Inputs of different length
share a batch only when padding is exact: the preprocessor config asks for an attention mask, the conv stack uses
layer norm (``feat_extract_norm == "layer"``) and padding is on the right. Normalisation always covers a
segment's own samples only. Otherwise (no mask, group norm, left padding) only segments of exactly equal length
are batched, with no padding at all. Each record therefore equals the unbatched reference: the
``Wav2Vec2FeatureExtractor`` on the single unpadded input, the model, the activation.

**Memory.** Audio is decoded block by block; at most the queue, the batching pool and one batch of segments
are held. A batch holds at most ``max_batch_seconds`` of padded audio (default 32 s on CPU, enough for one 30 s
chunk), which bounds the model's activations too.

**Order.** Records come out in input order; a file's records are yielded as soon as the file and every file
before it are done. Per file: for each stream (channel), its window records in time order and then its file
record (when there is one). A failed file gives one ``{"path", "error"}`` record.
"""

from __future__ import annotations

import dataclasses
import math
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from audioclf.audio import (
    AudioSource,
    ChannelPolicy,
    FeatureExtractorConfig,
    Window,
    iter_chunks,
    iter_model_blocks,
    iter_windows,
    normalize,
    pad_batch,
)
from audioclf.errors import AudioclfError, AudioError
from audioclf.inputs import InputItem, expand_inputs

__all__ = ["ACTIVATIONS", "Classifier", "ClassifyOptions", "FileDone", "PreparedFile", "Segmenter", "classify"]

ACTIVATIONS = ("auto", "softmax", "sigmoid", "none")
AGGREGATES = ("mean", "max")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("float32", "bfloat16", "float16")

#: padded audio per batch, in seconds, when ``max_batch_seconds`` is not given (CPU / accelerators)
DEFAULT_BATCH_SECONDS_CPU = 32.0
DEFAULT_BATCH_SECONDS_ACCELERATOR = 320.0
#: how long the model waits for more segments before running a batch that is not full
IDLE_WAIT_SECONDS = 0.05


# ----------------------------------------------------------------------------------------------------------- options
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
        quantize: ``"int8"`` applies dynamic int8 quantization to the linear layers (CPU only; opt-in, it changes
            scores slightly); ``None`` keeps the weights as they are.
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
    threads: int | None = None
    workers: int | None = None
    max_batch_seconds: float | None = None
    recursive: bool = False
    revision: str | None = None

    def validate(self) -> None:
        """Raise :class:`AudioclfError` (a usage error) for values that cannot work with any model."""
        _require(isinstance(self.batch_size, int) and self.batch_size >= 1, f"--batch-size must be 1 or more, got {self.batch_size}")
        _require(_positive(self.chunk), f"--chunk must be a positive number of seconds, got {self.chunk}")
        _require(self.window is None or _positive(self.window),
                 f"--window must be a positive number of seconds, got {self.window}")
        _require(self.hop is None or _positive(self.hop), f"--hop must be a positive number of seconds, got {self.hop}")
        _require(self.hop is None or self.window is not None, "--hop needs --window")
        _require(self.aggregate is None or self.window is not None, "--aggregate needs --window")
        _require(self.aggregate in (None, *AGGREGATES), f"--aggregate must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}")
        ChannelPolicy.parse(self.channels)
        _require(self.top_k is None or (isinstance(self.top_k, int) and self.top_k >= 0),
                 f"--top-k must be 0 (all labels) or more, got {self.top_k}")
        _require(self.min_score is None or math.isfinite(self.min_score), f"--min-score must be a number, got {self.min_score}")
        _require(self.activation in ACTIVATIONS, f"--activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        _require(self.labels is None or (len(self.labels) > 0 and all(self.labels)), "--labels needs label names")
        device = str(self.device).split(":")[0]
        _require(device in DEVICES, f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        _require(str(self.dtype).removeprefix("torch.") in DTYPES,
                 f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        _require(self.quantize in (None, "int8"), f"--quantize must be int8, got {self.quantize!r}")
        _require(self.quantize is None or str(self.dtype).removeprefix("torch.") == "float32",
                 "--quantize int8 works on float32 models only")
        _require(self.threads is None or self.threads >= 1, f"--threads must be 1 or more, got {self.threads}")
        _require(self.workers is None or self.workers >= 1, f"--workers must be 1 or more, got {self.workers}")
        _require(self.max_batch_seconds is None or _positive(self.max_batch_seconds),
                 f"--max-batch-seconds must be a positive number, got {self.max_batch_seconds}")


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AudioclfError(message)


@dataclass(frozen=True)
class FileDone:
    """Progress report for one finished input: its path, decoded duration in seconds, and error (or ``None``)."""

    path: str
    duration: float
    error: str | None


# ------------------------------------------------------------------------------------------- messages and segments
@dataclass
class _Segment:
    """One model input: ``samples`` ``float32 [N]`` at the model rate, already normalised when the model wants it."""

    file: int
    stream: int
    start_frame: int
    samples: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])


@dataclass
class _FileEnd:
    """A worker is done with a file: how many segments it sent, or why it failed."""

    file: int
    path: str
    streams: list[int | None] = field(default_factory=list)
    segments: int = 0
    duration: float = 0.0
    error: str | None = None


@dataclass
class _WorkerDone:
    error: str | None = None  # set when reading the input list itself failed


class _Stopped(Exception):
    """The consumer went away; the worker quits."""


@dataclass
class _Scored:
    stream: int
    start_frame: int
    frames: int
    scores: np.ndarray  # float32 [num_labels]


@dataclass
class _FileState:
    """Assembly of one input's results on the main thread."""

    end: _FileEnd | None = None
    scored: list[_Scored] = field(default_factory=list)
    failure: str | None = None  # the model failed on one of its segments

    @property
    def error(self) -> str | None:
        return self.failure or (self.end.error if self.end is not None else None)

    @property
    def complete(self) -> bool:
        return self.end is not None and (self.error is not None or len(self.scored) == self.end.segments)


# ---------------------------------------------------------------------------------------------------------- batching
class _Pool:
    """Segments waiting for the model, and the rule that groups them into batches.

    ``pad=True``: any lengths may share a batch (padding is exact); the batch is built around the oldest segment
    from the segments closest to it in length. ``pad=False``: a batch holds segments of one length only.
    A batch has at most ``batch_size`` segments and ``batch_size × longest ≤ max_samples`` (at least one).
    """

    def __init__(self, batch_size: int, max_samples: int, pad: bool) -> None:
        self.batch_size = batch_size
        self.max_samples = max_samples
        self.pad = pad
        self.items: list[_Segment] = []  # arrival order
        self.samples = 0

    def __len__(self) -> int:
        return len(self.items)

    def add(self, segment: _Segment) -> None:
        self.items.append(segment)
        self.samples += segment.frames

    def discard(self, file: int) -> None:
        """Forget the segments of a file that failed."""
        self.items = [s for s in self.items if s.file != file]
        self.samples = sum(s.frames for s in self.items)

    @property
    def overfull(self) -> bool:
        """True when the pool holds enough that a batch must run now (bounds memory)."""
        return len(self.items) >= 4 * self.batch_size or self.samples >= 2 * self.max_samples

    def _capacity(self, frames: int) -> int:
        return max(1, min(self.batch_size, self.max_samples // max(frames, 1)))

    def _batch_around(self, anchor: _Segment) -> tuple[list[_Segment], bool]:
        """The batch built around ``anchor`` and whether it is full (no more segments would fit)."""
        if self.pad:
            others = sorted((s for s in self.items if s is not anchor), key=lambda s: abs(s.frames - anchor.frames))
        else:
            others = [s for s in self.items if s is not anchor and s.frames == anchor.frames]
        batch, longest = [anchor], anchor.frames
        for segment in others:
            candidate = max(longest, segment.frames)
            if len(batch) + 1 > self._capacity(candidate):
                return batch, True
            batch.append(segment)
            longest = candidate
        return batch, len(batch) >= self._capacity(longest)

    def take(self, force: bool) -> list[_Segment] | None:
        """Remove and return a full batch (the one around the oldest segment first); with ``force``, a partial
        batch around the oldest segment when no batch is full. ``None`` when nothing is taken."""
        if not self.items:
            return None
        anchors = self.items if not self.pad else self.items[:1]
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
            chosen, _ = self._batch_around(self.items[0])
        taken = {id(s) for s in chosen}
        self.items = [s for s in self.items if id(s) not in taken]
        self.samples -= sum(s.frames for s in chosen)
        return chosen


class _InputFeed:
    """Thread-safe numbering of the input items; the first error while producing them is raised once."""

    def __init__(self, items: Iterable[InputItem]) -> None:
        self._items = iter(items)
        self._lock = threading.Lock()
        self._next = 0
        self._finished = False

    def take(self) -> tuple[int, InputItem] | None:
        with self._lock:
            if self._finished:
                return None
            try:
                item = next(self._items)
            except StopIteration:
                self._finished = True
                return None
            except BaseException:
                self._finished = True
                raise
            index = self._next
            self._next += 1
            return index, item


# ---------------------------------------------------------------------------------------------------------- segmenter
@dataclass(frozen=True)
class Segmenter:
    """The model-free half of the engine: one input → its featurized segments.

    Decode in blocks → channel policy → resample to ``sample_rate`` → cut into chunks (or ``window``/``hop``
    windows) → normalise each segment when ``do_normalize``. Holds plain values only, so it pickles: the Ray
    engine runs it in decode tasks, the local engine in its worker threads.
    """

    sample_rate: int
    min_samples: int
    policy: ChannelPolicy
    do_normalize: bool
    chunk: float
    window: float | None = None
    hop: float | None = None

    def open(self, path: str) -> tuple[AudioSource, list[int | None]]:
        """Probe ``path``; its source and stream labels (channel numbers, ``None`` for a mix). Raises AudioError."""
        source = AudioSource(path)
        self.policy.validate(source.channels, path)
        return source, self.policy.stream_channels(source.channels)

    def segments(self, source: AudioSource, streams: int, counter: list[int]) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(stream, start_frame, samples float32 [N])`` for every segment and stream of an opened source, in time
        order; ``counter[0]`` counts the decoded frames. Raises AudioError, also when no segment is long enough."""
        sent = 0
        for window in self._windows(_count_frames(iter_model_blocks(source, self.sample_rate, self.policy), counter)):
            for stream in range(streams):
                yield stream, window.start_frame, self.featurize(window.samples[:, stream])
                sent += 1
        if sent == 0:
            rate = self.sample_rate
            raise AudioError(f"too short: {counter[0]} samples at {rate} Hz ({counter[0] / rate:.4f} s); the "
                             f"model needs at least {self.min_samples} ({self.min_samples / rate:.4f} s)")

    def prepare(self, path: str, item_error: str | None = None, local_path: str | None = None) -> "PreparedFile":
        """All segments of one input at once (an error, if any, is captured in the result). ``local_path``: where
        the bytes of ``path`` can be read, when that is not ``path`` itself (a downloaded copy of a URI)."""
        if item_error is not None:
            return PreparedFile(path, error=item_error)
        where = path if local_path is None else local_path
        counter = [0]
        try:
            source, streams = self.open(where)
            segments = list(self.segments(source, len(streams), counter))
        except Exception as error:
            duration = counter[0] / self.sample_rate if isinstance(error, AudioError) else 0.0
            return PreparedFile(path, duration=duration, error=failure_reason(error, where))
        return PreparedFile(path, streams, segments, counter[0] / self.sample_rate)

    def _windows(self, blocks: Iterable[np.ndarray]) -> Iterator[Window]:
        """Windows (``window`` set) or chunks of the model-rate blocks ``float32 [frames, streams]``.

        Segments shorter than ``min_samples``: a last chunk joins the chunk before it, a last window is dropped.
        """
        rate = self.sample_rate
        if self.window is not None:
            for window in iter_windows(blocks, rate, self.window, self.hop):
                if window.frames >= self.min_samples:
                    yield window
            return
        previous = None
        for chunk in iter_chunks(blocks, rate, self.chunk):
            if previous is not None and chunk.frames < self.min_samples:
                samples = np.concatenate([previous.samples, chunk.samples], axis=0)
                previous = Window(previous.index, previous.start_frame, samples, rate)
                continue
            if previous is not None:
                yield previous
            previous = chunk
        if previous is not None and previous.frames >= self.min_samples:
            yield previous

    def featurize(self, samples: np.ndarray) -> np.ndarray:
        """One stream of a segment ``[N]`` → contiguous ``float32 [N]``, normalised when the model wants it."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        return normalize(samples) if self.do_normalize else samples


@dataclass
class PreparedFile:
    """One input decoded and featurized whole: ``segments`` are ``(stream, start_frame, samples float32 [N])``;
    ``streams`` the channel label of each stream. ``error`` set: the input failed before reaching the model."""

    path: str
    streams: list[int | None] = field(default_factory=list)
    segments: list[tuple[int, int, np.ndarray]] = field(default_factory=list)
    duration: float = 0.0
    error: str | None = None


# -------------------------------------------------------------------------------------------------------- classifier
class Classifier:
    """A loaded model plus options; :meth:`classify` streams records for any number of inputs.

    Args:
        model: model directory, weights file, Hub id, or an already loaded classifier
            (``None``: :data:`audioclf.auto.DEFAULT_MODEL_NAME`).
        **options: fields of :class:`ClassifyOptions`.

    Raises :class:`AudioclfError` for bad options, unknown label names, an unusable device, or a model that cannot
    be loaded.
    """

    def __init__(self, model: Any = None, **options: Any) -> None:
        unknown = set(options) - {f.name for f in dataclasses.fields(ClassifyOptions)}
        if unknown:
            raise AudioclfError(f"unknown option(s): {', '.join(sorted(unknown))}")
        self.options = opts = ClassifyOptions(**options)
        opts.validate()  # before importing torch: option mistakes are reported at once

        import torch

        from audioclf.auto import DEFAULT_MODEL_NAME, AutoModelForAudioClassification

        if opts.threads is not None:
            torch.set_num_threads(opts.threads)
        self.device = _resolve_device(opts.device)
        dtype = getattr(torch, str(opts.dtype).removeprefix("torch."))

        if model is None or isinstance(model, (str, os.PathLike)):
            self.model_name = os.fspath(model) if model is not None else DEFAULT_MODEL_NAME
            self.model = AutoModelForAudioClassification.from_pretrained(self.model_name, dtype=dtype,
                                                                         revision=opts.revision)
            # a model loaded here is private to the engine: fold weight norm and cached projections once
            self.model = self.model.to(self.device).optimize_for_inference()
        else:
            self.model_name = str(getattr(model, "name_or_path", type(model).__name__))
            self.model = model.to(dtype)
        self.model = self.model.to(self.device).eval()
        if opts.quantize == "int8":
            if self.device.type != "cpu":
                raise AudioclfError("--quantize int8 runs on the CPU only (use --device cpu)")
            import warnings

            with warnings.catch_warnings():  # eager dynamic quantization is deprecated upstream but still works
                warnings.simplefilter("ignore")
                self.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)
        self.dtype = dtype
        source = getattr(self.model, "source", None)
        self.revision = getattr(source, "commit", None)
        directory = getattr(source, "directory", None)
        self.fe_config = (FeatureExtractorConfig.from_pretrained(directory) if directory is not None
                          else FeatureExtractorConfig())
        self.sample_rate = self.fe_config.sampling_rate
        self.min_samples = int(self.model.base_model.feature_extractor.min_samples())
        config = self.model.config

        self.policy = ChannelPolicy.parse(opts.channels)
        self.pad = (self.fe_config.return_attention_mask and config.feat_extract_norm == "layer"
                    and self.fe_config.padding_side == "right")
        # Segments arrive normalised (workers do it); batching only pads and builds the mask.
        self._pad_config = dataclasses.replace(self.fe_config, do_normalize=False)
        for what, seconds in (("--chunk", None if opts.window else opts.chunk), ("--window", opts.window)):
            if seconds is not None and round(seconds * self.sample_rate) < self.min_samples:
                raise AudioclfError(f"{what} {seconds:g} s is shorter than the model's receptive field "
                                    f"({self.min_samples} samples at {self.sample_rate} Hz)")

        self.segmenter = Segmenter(self.sample_rate, self.min_samples, self.policy, self.fe_config.do_normalize,
                                   opts.chunk, opts.window, opts.hop)

        self.id2label = dict(config.id2label)
        self.allowed = None
        if opts.labels is not None:
            names = {name: i for i, name in self.id2label.items()}
            unknown_labels = [name for name in opts.labels if name not in names]
            if unknown_labels:
                raise AudioclfError(f"unknown label(s) {', '.join(map(repr, unknown_labels))}; the model's labels "
                                    f"are: {', '.join(self.id2label.values())}")
            self.allowed = np.array(sorted({names[name] for name in opts.labels}))
        activation = opts.activation
        if activation == "auto":
            activation = {"multi_label_classification": "sigmoid", "regression": "none"}.get(
                getattr(config, "problem_type", None) or "", "softmax")
        self.activation = activation
        seconds = opts.max_batch_seconds or (DEFAULT_BATCH_SECONDS_CPU if self.device.type == "cpu"
                                             else DEFAULT_BATCH_SECONDS_ACCELERATOR)
        self.max_batch_samples = max(1, int(seconds * self.sample_rate))
        self.workers = opts.workers or max(1, min(4, os.cpu_count() or 1))

    # ------------------------------------------------------------------------------------------------- public
    def classify(self, inputs: Any, progress: Callable[[FileDone], None] | None = None) -> Iterator[dict[str, Any]]:
        """Records for ``inputs`` (one path, or an iterable of paths / :class:`~audioclf.inputs.InputItem`),
        yielded in input order as they become ready. ``progress`` is called once per finished input."""
        items = _as_items(inputs, self.options.recursive)
        feed = _InputFeed(items)
        messages: queue.Queue = queue.Queue(maxsize=2 * self.workers + self.options.batch_size)
        stop = threading.Event()
        threads = [threading.Thread(target=self._work, args=(feed, messages, stop), daemon=True,
                                    name=f"audioclf-decode-{k}") for k in range(self.workers)]
        for thread in threads:
            thread.start()
        try:
            yield from self._consume(messages, len(threads), progress)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=1.0)

    # --------------------------------------------------------------------------------------- worker threads
    def _work(self, feed: _InputFeed, messages: queue.Queue, stop: threading.Event) -> None:
        """Decode and featurize inputs until the feed runs dry or the consumer stops."""

        def send(message: Any) -> None:
            while not stop.is_set():
                try:
                    messages.put(message, timeout=0.1)
                    return
                except queue.Full:
                    continue
            raise _Stopped

        try:
            failure = None
            while not stop.is_set():
                try:
                    taken = feed.take()
                except Exception as error:  # the input list itself cannot be read
                    failure = f"cannot read the list of inputs: {_one_line(error)}"
                    break
                if taken is None:
                    break
                self._produce(*taken, send)
            send(_WorkerDone(failure))
        except _Stopped:
            pass

    def _produce(self, index: int, item: InputItem, send: Callable[[Any], None]) -> None:
        """Send the segments of one input, then its :class:`_FileEnd`."""
        path = item.path
        if item.error is not None:
            send(_FileEnd(index, path, error=item.error))
            return
        counter = [0]
        try:
            source, streams = self.segmenter.open(path)
            sent = 0
            for stream, start_frame, samples in self.segmenter.segments(source, len(streams), counter):
                send(_Segment(index, stream, start_frame, samples))
                sent += 1
            send(_FileEnd(index, path, streams=streams, segments=sent, duration=counter[0] / self.sample_rate))
        except _Stopped:
            raise
        except Exception as error:  # an unexpected failure still fails only this input
            duration = counter[0] / self.sample_rate if isinstance(error, AudioError) else 0.0
            send(_FileEnd(index, path, duration=duration, error=failure_reason(error, path)))

    # ----------------------------------------------------------------------------------------- main thread
    def _consume(self, messages: queue.Queue, workers: int, progress: Callable[[FileDone], None] | None
                 ) -> Iterator[dict[str, Any]]:
        """Collect segments, run batches, and yield finished files' records in input order."""
        pool = _Pool(self.options.batch_size, self.max_batch_samples, self.pad)
        files: dict[int, _FileState] = {}
        next_file = 0
        running = workers
        while running or pool:
            batch = pool.take(force=not running or pool.overfull)
            if batch is None:
                try:
                    message = messages.get(timeout=IDLE_WAIT_SECONDS if pool else 0.5)
                except queue.Empty:
                    if pool:
                        batch = pool.take(force=True)  # the model would sit idle: run what there is
                    if batch is None:
                        continue
                else:
                    if isinstance(message, _WorkerDone):
                        running -= 1
                        if message.error is not None:
                            raise AudioclfError(message.error)
                    elif isinstance(message, _Segment):
                        pool.add(message)
                    else:
                        files.setdefault(message.file, _FileState()).end = message
                        if message.error is not None:
                            pool.discard(message.file)
                    if not isinstance(message, _Segment):
                        while next_file in files and files[next_file].complete:
                            yield from self._finish(files.pop(next_file), progress)
                            next_file += 1
                    continue
            self._score(batch, files)
            while next_file in files and files[next_file].complete:
                yield from self._finish(files.pop(next_file), progress)
                next_file += 1

    def _score(self, batch: list[_Segment], files: dict[int, _FileState]) -> None:
        """Run the model on one batch and file the scores under their inputs."""
        try:
            scores = self.run_batch([segment.samples for segment in batch])
        except Exception as error:  # e.g. out of memory: these inputs fail, the run goes on
            reason = f"model failed: {type(error).__name__}: {_one_line(error)}"
            for segment in batch:
                files.setdefault(segment.file, _FileState()).failure = reason
            return
        for segment, row in zip(batch, scores):
            state = files.setdefault(segment.file, _FileState())
            state.scored.append(_Scored(segment.stream, segment.start_frame, segment.frames, row))

    def run_batch(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """Scores ``float32 [B, num_labels]`` (after the activation) for featurized waves ``[N_i]``.

        The waves are padded with the preprocessor's ``padding_value``; the attention mask ``[B, N]`` is passed
        when the preprocessor config asks for one.
        """
        import torch

        input_values, attention_mask = pad_batch(waves, self._pad_config)
        values = torch.from_numpy(input_values).to(self.device, self.dtype)
        mask = None if attention_mask is None else torch.from_numpy(attention_mask).to(self.device)
        with torch.inference_mode():
            logits = self.model(values, attention_mask=mask).logits.float()
            if self.activation == "softmax":
                logits = logits.softmax(dim=-1)
            elif self.activation == "sigmoid":
                logits = logits.sigmoid()
        return logits.cpu().numpy()

    def score_prepared(self, files: Sequence[PreparedFile]) -> list[list[dict[str, Any]]]:
        """Records of each :class:`PreparedFile` (in order), their segments batched together exactly as
        :meth:`classify` batches them. The Ray engine's model actors call this."""
        pool = _Pool(self.options.batch_size, self.max_batch_samples, self.pad)
        states: dict[int, _FileState] = {}
        for number, prepared in enumerate(files):
            states[number] = _FileState(end=_FileEnd(number, prepared.path, streams=list(prepared.streams),
                                                     segments=len(prepared.segments), duration=prepared.duration,
                                                     error=prepared.error))
            if prepared.error is None:
                for stream, start_frame, samples in prepared.segments:
                    pool.add(_Segment(number, stream, start_frame, samples))
        while (batch := pool.take(force=True)) is not None:
            self._score(batch, states)
        return [self._finish(states[number], None) for number in range(len(files))]

    # ------------------------------------------------------------------------------------------------ records
    def _finish(self, state: _FileState, progress: Callable[[FileDone], None] | None) -> list[dict[str, Any]]:
        end = state.end
        assert end is not None
        if progress is not None:
            progress(FileDone(end.path, end.duration, state.error))
        if state.error is not None:
            return [{"path": end.path, "error": state.error}]
        records = []
        for stream, channel in enumerate(end.streams):
            parts = sorted((s for s in state.scored if s.stream == stream), key=lambda s: s.start_frame)
            scores = np.stack([part.scores for part in parts])
            weights = np.array([part.frames for part in parts], dtype=np.float64)
            if self.options.window is None:
                records.append(self._record(end.path, channel, _weighted_mean(scores, weights)))
                continue
            for part in parts:
                start, stop = part.start_frame / self.sample_rate, (part.start_frame + part.frames) / self.sample_rate
                records.append(self._record(end.path, channel, part.scores, round(start, 6), round(stop, 6)))
            if self.options.aggregate == "mean":
                records.append(self._record(end.path, channel, _weighted_mean(scores, weights)))
            elif self.options.aggregate == "max":
                records.append(self._record(end.path, channel, scores.max(axis=0)))
        return records

    def _record(self, path: str, channel: int | None, scores: np.ndarray, start: float | None = None,
                end: float | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {"path": path}
        if channel is not None:
            record["channel"] = channel
        if start is not None:
            record["start"], record["end"] = start, end
        record["labels"] = self.top_labels(scores)
        record["model"] = self.model_name
        if self.revision:
            record["revision"] = self.revision
        return record

    def top_labels(self, scores: np.ndarray) -> list[dict[str, Any]]:
        """``[{"label", "score"}, …]`` for one score vector ``[num_labels]``: allowed labels, best first, at most
        ``top_k``, none below ``min_score``."""
        ids = np.arange(scores.shape[0]) if self.allowed is None else self.allowed
        ids = ids[np.argsort(-scores[ids], kind="stable")]
        if self.options.min_score is not None:
            ids = ids[scores[ids] >= self.options.min_score]
        if self.options.top_k:
            ids = ids[: self.options.top_k]
        return [{"label": self.id2label[int(i)], "score": float(scores[i])} for i in ids]


def classify(inputs: Any, model: Any = None, *, progress: Callable[[FileDone], None] | None = None,
             **options: Any) -> Iterator[dict[str, Any]]:
    """Classify audio files; yields one dict per record, in input order.

    Args:
        inputs: a path, or an iterable of paths (files, directories, glob patterns; ``"-"`` reads paths from stdin).
        model: model directory, weights file, Hub id, or a loaded classifier; ``None`` for the default model.
        progress: called with a :class:`FileDone` for each finished input.
        **options: see :class:`ClassifyOptions` (``batch_size``, ``chunk``, ``window``, ``hop``, ``aggregate``,
            ``channels``, ``top_k``, ``min_score``, ``activation``, ``labels``, ``device``, ``dtype``, ``threads``,
            ``workers``, ``max_batch_seconds``, ``recursive``, ``revision``).

    Records: ``{"path", ["channel"], ["start", "end"], "labels": [{"label", "score"}, …], "model", ["revision"]}``,
    or ``{"path", "error"}`` for an input that failed. The model is loaded (and options are checked) when this is
    called, so a bad model or option raises :class:`AudioclfError` here, not while iterating.
    """
    return Classifier(model, **options).classify(inputs, progress=progress)


# ------------------------------------------------------------------------------------------------------- helpers
def _resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AudioclfError("--device cuda: no CUDA device is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise AudioclfError("--device mps: no MPS device is available")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise AudioclfError(f"--device {name}: {_one_line(error)}") from None


def _as_items(inputs: Any, recursive: bool) -> Iterator[InputItem]:
    """Normalise the ``inputs`` argument into :class:`InputItem` objects (expanding paths, globs, directories)."""
    if isinstance(inputs, (str, os.PathLike, InputItem)):
        inputs = [inputs]
    for value in inputs:
        if isinstance(value, InputItem):
            yield value
        else:
            yield from expand_inputs([value], recursive=recursive)


def _count_frames(blocks: Iterable[np.ndarray], counter: list[int]) -> Iterator[np.ndarray]:
    """Pass blocks ``[frames, streams]`` through, adding their frame counts to ``counter[0]``."""
    for block in blocks:
        counter[0] += block.shape[0]
        yield block


def _weighted_mean(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``scores`` ``[S, L]`` averaged over segments with ``weights`` ``[S]`` → ``float32 [L]``."""
    return (np.einsum("s,sl->l", weights, scores.astype(np.float64)) / weights.sum()).astype(np.float32)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def failure_reason(error: BaseException, path: str) -> str:
    """The one-line reason an input failed: an AudioError's message without the leading path, anything else
    with its type name."""
    if isinstance(error, AudioError):
        return _reason(error, path)
    return f"{type(error).__name__}: {_one_line(error)}"


def _reason(error: BaseException, path: str) -> str:
    """The error message without the leading ``<path>: `` that the record already carries."""
    message = _one_line(error)
    for prefix in (f"{path}: ", f"{os.fspath(os.path.normpath(path))}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message
