"""A model on the streaming path: what every command that runs a model on audio sets up the same way.

* :class:`StreamOptions` — the options of the run itself (cuts, channels, batching, device, precision, threads,
  inputs); :class:`~audioclf.engine.classify.ClassifyOptions` and :class:`~audioclf.engine.embed.EmbedOptions`
  extend it with what they compute;
* :class:`ModelPipeline` — a :class:`~audioclf.engine.runner.ModelRunner`, its featurizer, a
  :class:`~audioclf.data.segments.Segmenter` and a :class:`~audioclf.engine.stream.SegmentStream` around one
  per-batch computation, and :meth:`ModelPipeline.results`: inputs → one :class:`FileResult` per input;
* :class:`FileDone` — the progress report for one finished input.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from audioclf.audio.channels import ChannelPolicy
from audioclf.audio.features import Featurizer
from audioclf.data.segments import Segment, Segmenter
from audioclf.data.sources import SourceItem, source_items
from audioclf.engine.runner import DEVICES, DTYPES, ModelRunner
from audioclf.engine.stream import FileResult, SegmentStream
from audioclf.errors import OptionError

__all__ = ["MAX_THREADS", "FileDone", "ModelPipeline", "StreamOptions", "check_sampling_rate", "report", "require"]

#: most torch or decoding threads (``threads``, ``workers``): far more than any machine has cores, far fewer than
#: exhaust the process's resources
MAX_THREADS = 256

#: padded audio per batch, in seconds, when ``max_batch_seconds`` is not given (CPU / accelerators)
DEFAULT_BATCH_SECONDS_CPU = 32.0
DEFAULT_BATCH_SECONDS_ACCELERATOR = 320.0


@dataclass
class StreamOptions:
    """The options of a model run that do not depend on what is computed.

    Attributes:
        batch_size: most segments per model call.
        chunk: files longer than this many seconds are cut into chunks of this length (ignored with ``window``).
        window, hop: one result per window of ``window`` seconds every ``hop`` seconds (default ``hop = window``)
            instead of one per file.
        channels: channel policy: ``"mix"``, ``"first"``, a 0-based channel number, or ``"each"``.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``), ``"mps"``.
        dtype: model precision: ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        quantize: ``"int8"`` applies dynamic int8 quantization to the linear layers (CPU only; opt-in, it changes
            results slightly); ``None`` keeps the weights as they are.
        threads: torch intra-op threads (``torch.set_num_threads``); ``None`` leaves torch's default.
        workers: decoding threads; default ``min(4, cpu_count)``.
        max_batch_seconds: most padded audio per batch (default 32 s on CPU, 320 s on accelerators).
        recursive: descend into subdirectories of directory inputs.
        revision: Hub revision of the model (branch, tag or commit).
        token: Hub access token for a private model (``None``: ``HF_TOKEN`` or the saved login).
        cache_dir: Hub cache folder (``None``: ``HF_HUB_CACHE``, or ``HF_HOME/hub``).
    """

    batch_size: int = 8
    chunk: float = 30.0
    window: float | None = None
    hop: float | None = None
    channels: str | int = "mix"
    device: str = "auto"
    dtype: str = "float32"
    quantize: str | None = None
    threads: int | None = None
    workers: int | None = None
    max_batch_seconds: float | None = None
    recursive: bool = False
    revision: str | None = None
    token: str | bool | None = None
    cache_dir: str | None = None

    def validate(self) -> None:
        """Raise :class:`OptionError` (naming the argument) for values that cannot work with any model."""
        require(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size",
                f"must be 1 or more, got {self.batch_size}")
        require(_seconds(self.chunk), "chunk",
                f"must be a positive number of seconds, at most {_longest()}, got {self.chunk}")
        require(self.window is None or _seconds(self.window), "window",
                f"must be a positive number of seconds, at most {_longest()}, got {self.window}")
        require(self.hop is None or _seconds(self.hop), "hop",
                f"must be a positive number of seconds, at most {_longest()}, got {self.hop}")
        require(self.hop is None or self.window is not None, "hop", "needs window")
        ChannelPolicy.parse(self.channels)
        require(str(self.device).split(":")[0] in DEVICES, "device",
                f"must be one of {', '.join(DEVICES)}, got {self.device!r}")
        require(str(self.dtype).removeprefix("torch.") in DTYPES, "dtype",
                f"must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        require(self.quantize in (None, "int8"), "quantize", f"must be int8, got {self.quantize!r}")
        require(self.quantize is None or str(self.dtype).removeprefix("torch.") == "float32", "quantize",
                "int8 works on float32 models only")
        require(self.threads is None or 1 <= self.threads <= MAX_THREADS, "threads",
                f"must be from 1 to {MAX_THREADS}, got {self.threads}")
        require(self.workers is None or 1 <= self.workers <= MAX_THREADS, "workers",
                f"must be from 1 to {MAX_THREADS}, got {self.workers}")
        require(self.max_batch_seconds is None or _seconds(self.max_batch_seconds), "max_batch_seconds",
                f"must be a positive number, at most {_longest()}, got {self.max_batch_seconds}")

    @classmethod
    def checked(cls, options: dict[str, Any]) -> Any:
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


def _longest() -> int:
    """The most seconds a duration option may ask for: the ``audio_seconds`` limit (:mod:`audioclf.limits`)."""
    from audioclf.limits import LIMITS

    return LIMITS["audio_seconds"]


def _seconds(value: Any) -> bool:
    return _positive(value) and value <= _longest()


def require(condition: bool, option: str, detail: str) -> None:
    """Raise ``OptionError(option, detail)`` unless ``condition``."""
    if not condition:
        raise OptionError(option, detail)


def check_sampling_rate(sampling_rate: Any) -> None:
    """:class:`OptionError` unless ``sampling_rate`` is ``None`` or a positive integer."""
    if sampling_rate is not None and (isinstance(sampling_rate, bool) or not isinstance(sampling_rate, int)
                                      or sampling_rate <= 0):
        raise OptionError("sampling_rate", f"must be a positive integer (Hz), got {sampling_rate!r}")


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


class ModelPipeline:
    """A loaded model on the streaming path: ``runner``, ``featurizer``, ``segmenter`` (from ``options``) and
    ``stream``, which runs ``compute`` (a batch of segments → one result per segment) on every batch.
    ``featurizer`` is for a loaded classifier whose preprocessor config is not on disk (``None``: read from the
    model's directory). ``runner``: a runner built by the caller (for instance on another backend,
    :func:`~audioclf.engine.runner.load_runner`) instead of a torch :class:`ModelRunner` from ``model`` and
    ``options``; it needs ``config``, ``device.type``, ``featurizer()`` and whatever ``compute`` calls.

    Raises :class:`OptionError` for cuts the model cannot take or an unusable device, and the loader's
    :class:`~audioclf.errors.AudioclfError` for a model that cannot be loaded."""

    def __init__(self, model: Any, options: StreamOptions, compute: Callable[[list[Segment]], Sequence[Any]], *,
                 featurizer: Featurizer | None = None, runner: Any = None) -> None:
        opts = options
        self.runner = runner if runner is not None else ModelRunner(
            model, revision=opts.revision, token=opts.token, cache_dir=opts.cache_dir, device=opts.device,
            dtype=opts.dtype, quantize=opts.quantize, threads=opts.threads)
        self.featurizer = featurizer if featurizer is not None else self.runner.featurizer()
        self.segmenter = Segmenter.for_model(self.runner.config, self.featurizer, channels=opts.channels,
                                             chunk=opts.chunk, window=opts.window, hop=opts.hop)
        seconds = opts.max_batch_seconds or (DEFAULT_BATCH_SECONDS_CPU if self.runner.device.type == "cpu"
                                             else DEFAULT_BATCH_SECONDS_ACCELERATOR)
        self.recursive = opts.recursive
        self.stream = SegmentStream(
            self.segmenter, compute, batch_size=opts.batch_size,
            max_batch_samples=max(1, int(seconds * self.featurizer.sampling_rate)),
            pad=self.featurizer.exact_padding(self.runner.config),
            workers=opts.workers or max(1, min(4, os.cpu_count() or 1)))

    @property
    def sampling_rate(self) -> int:
        return self.featurizer.sampling_rate

    def results(self, inputs: Any, progress: Callable[[FileDone], None] | None = None, *,
                sampling_rate: int | None = None) -> Iterator[FileResult]:
        """One :class:`FileResult` per input (see :func:`audioclf.classify` for what ``inputs`` may be), in input
        order; ``progress`` is called with a :class:`FileDone` for each."""
        check_sampling_rate(sampling_rate)
        items = source_items(inputs, sampling_rate=sampling_rate, recursive=self.recursive)
        for result in self.stream(items):
            report(result, progress)
            yield result


def report(result: FileResult, progress: Callable[[FileDone], None] | None,
           records: Sequence[dict[str, Any]] = ()) -> None:
    """Tell ``progress`` (if any) that the input of ``result`` is done; it failed if ``result`` did or if its
    ``records`` turned into an error record (a model output that is not finite)."""
    if progress is not None:
        error = result.error or next((record["error"] for record in records if "error" in record), None)
        progress(FileDone(result.item, result.duration, error))
