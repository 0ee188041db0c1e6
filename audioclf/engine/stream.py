"""The streaming loop: source items → segments → batches → a computation per segment → one result per input.

Data flow::

    items ──► prefetch threads: Segmenter (decode → channel policy → resample → cut → featurize) ──► bounded queue
          ──► main thread: BatchPool (length buckets) → compute(batch of segments) → per-input assembly
          ──► FileResult per input, in input order, as soon as it and every input before it are done

What is computed per segment is the caller's ``compute``: a function from a list of :class:`Segment` to one result
per segment (classify: the label scores; embed: vectors). How an input's results become records is the caller's
too (:class:`FileResult` has its segments and results in order). A computation that raises fails the inputs of
that batch only. A file's results never depend on the other files in its batch (the pool pads only where the
featurizer says padding is exact).

**Memory.** Sources are decoded block by block; at most the queue, the batching pool and one batch of segments
are held, plus the results of inputs that wait for an earlier one to finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from audioclf.data.batching import BatchPool
from audioclf.data.failures import failure_reason, one_line
from audioclf.data.prefetch import Finished, ItemsError, Prefetch
from audioclf.data.segments import FrameCounter, PreparedFile, Segment, Segmenter
from audioclf.data.sources import SourceItem
from audioclf.errors import AudioclfError, AudioError

__all__ = ["FileResult", "SegmentStream"]

#: how long the model waits for more segments before running a batch that is not full
IDLE_WAIT_SECONDS = 0.05

Compute = Callable[[list[Segment]], Sequence[Any]]


@dataclass
class FileResult:
    """What the loop produced for one input.

    Attributes:
        item: the input.
        streams: channel label of each stream (``None``: a mix of all channels).
        duration: decoded audio in seconds (up to where decoding failed, for a failed source).
        parts: ``(segment, result)`` per segment, by stream then time.
        error: why the input failed (one line), or ``None``.
    """

    item: SourceItem
    streams: list[int | None] = field(default_factory=list)
    duration: float = 0.0
    parts: list[tuple[Segment, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass
class _Opened:
    streams: list[int | None]


@dataclass
class _Closed:
    segments: int
    duration: float
    error: str | None = None


@dataclass
class _Assembly:
    """One input being assembled on the main thread; ``item`` is known once the prefetch thread has finished it."""

    item: SourceItem | None = None
    streams: list[int | None] = field(default_factory=list)
    closed: _Closed | None = None
    parts: list[tuple[Segment, Any]] = field(default_factory=list)
    failure: str | None = None  # the computation failed on one of its segments

    @property
    def error(self) -> str | None:
        return self.failure or (self.closed.error if self.closed is not None else None)

    @property
    def complete(self) -> bool:
        return (self.item is not None and self.closed is not None
                and (self.error is not None or len(self.parts) == self.closed.segments))

    def result(self) -> FileResult:
        assert self.item is not None and self.closed is not None
        parts = sorted(self.parts, key=lambda part: (part[0].stream, part[0].start_frame))
        return FileResult(self.item, self.streams, self.closed.duration, [] if self.error else parts, self.error)


class SegmentStream:
    """The loop of the module docstring for one segmenter and one computation.

    Args:
        segmenter: cuts each input into featurized segments.
        compute: ``segments → one result per segment``, run on the main thread one batch at a time.
        batch_size: most segments per batch.
        max_batch_samples: most padded samples per batch.
        pad: whether segments of different lengths may share a batch (``featurizer.exact_padding(config)``).
        workers: prefetch threads.
    """

    def __init__(self, segmenter: Segmenter, compute: Compute, *, batch_size: int, max_batch_samples: int,
                 pad: bool, workers: int) -> None:
        self.segmenter = segmenter
        self.compute = compute
        self.batch_size = batch_size
        self.max_batch_samples = max_batch_samples
        self.pad = pad
        self.workers = workers

    def __call__(self, items: Iterable[SourceItem]) -> Iterator[FileResult]:
        """One :class:`FileResult` per item, in item order, each as soon as it and every one before it are done.
        Raises :class:`AudioclfError` when the items themselves cannot be read (an unreadable path list)."""
        pool: BatchPool[tuple[int, Segment]] = BatchPool(self.batch_size, self.max_batch_samples, self.pad)
        files: dict[int, _Assembly] = {}
        following = 0
        capacity = 2 * self.workers + self.batch_size
        with Prefetch(items, self._produce, workers=self.workers, capacity=capacity) as work:
            while True:
                batch = pool.take(force=work.finished or pool.overfull)
                if batch is None:
                    if work.finished:
                        break
                    try:
                        message = work.get(IDLE_WAIT_SECONDS if len(pool) else 0.5)
                    except ItemsError as error:
                        raise AudioclfError(f"cannot read the list of inputs: {one_line(error.cause)}") from None
                    if message is None:
                        batch = pool.take(force=True)  # the model would sit idle: run what there is
                        if batch is None:
                            continue
                    else:
                        self._file(message, files, pool)
                        if isinstance(message, Finished):
                            while following in files and files[following].complete:
                                yield files.pop(following).result()
                                following += 1
                        continue
                self._compute(batch, files)
                while following in files and files[following].complete:
                    yield files.pop(following).result()
                    following += 1

    def prepared(self, files: Sequence[PreparedFile]) -> list[FileResult]:
        """The results of inputs already cut into segments (:meth:`Segmenter.prepare`, e.g. in another process),
        their segments batched together exactly as :meth:`__call__` batches them."""
        pool: BatchPool[tuple[int, Segment]] = BatchPool(self.batch_size, self.max_batch_samples, self.pad)
        states: dict[int, _Assembly] = {}
        for number, prepared in enumerate(files):
            state = states[number] = _Assembly(prepared.item, list(prepared.streams))
            state.closed = _Closed(len(prepared.segments), prepared.duration, prepared.error)
            if prepared.error is None:
                for segment in prepared.segments:
                    pool.add((number, segment), self.segmenter.batch_samples(segment), number)
        while (batch := pool.take(force=True)) is not None:
            self._compute(batch, states)
        return [states[number].result() for number in range(len(files))]

    # ------------------------------------------------------------------------------------------ prefetch threads
    def _produce(self, item: SourceItem) -> Iterator[Any]:
        """On a prefetch thread: ``_Opened``, the input's segments, then ``_Closed`` (with the error, if any)."""
        if item.error is not None:
            yield _Closed(0, 0.0, item.error)
            return
        counter = FrameCounter(self.segmenter.sampling_rate)
        sent = 0
        try:
            source, streams = self.segmenter.open(item)
            yield _Opened(streams)
            for segment in self.segmenter.segments(source, len(streams), counter):
                yield segment
                sent += 1
        except Exception as error:  # an unexpected failure still fails only this input
            duration = counter.seconds if isinstance(error, AudioError) else 0.0
            yield _Closed(sent, duration, failure_reason(error, item.label))
            return
        yield _Closed(sent, counter.seconds)

    # ------------------------------------------------------------------------------------------------ main thread
    def _file(self, message: Any, files: dict[int, _Assembly], pool: BatchPool) -> None:
        """File one prefetch message under its input."""
        state = files.setdefault(message.index, _Assembly())
        if isinstance(message, Finished):
            state.item = message.item
            if message.error is not None:  # produce itself failed (a bug): the input fails, the run goes on
                reason = failure_reason(message.error, message.item.label)
                state.closed = _Closed(0, 0.0, reason)
            if state.error is not None:
                pool.discard(message.index)
            return
        index, value = message.index, message.value
        if isinstance(value, Segment):
            pool.add((index, value), self.segmenter.batch_samples(value), index)
        elif isinstance(value, _Opened):
            state.streams = value.streams
        else:
            state.closed = value

    def _compute(self, batch: list[tuple[int, Segment]], files: dict[int, _Assembly]) -> None:
        """Run the computation on one batch and file the results under their inputs."""
        try:
            results = self.compute([segment for _, segment in batch])
        except Exception as error:  # e.g. out of memory: these inputs fail, the run goes on
            reason = f"model failed: {type(error).__name__}: {one_line(error)}"
            for number, _ in batch:
                files[number].failure = reason
            return
        for (number, segment), result in zip(batch, results):
            files[number].parts.append((segment, result))
