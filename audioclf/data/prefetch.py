"""Work ahead on worker threads: items in, their outputs out through a bounded queue, with a clean stop.

:class:`Prefetch` runs ``produce(item)`` — a generator of any number of parts — for each item on ``workers``
threads. The consumer reads :class:`Part` messages as they arrive (the parts of one item in order, items
interleaved) and one :class:`Finished` per item, after its parts, carrying the exception that ended the item early
if there was one: one failing item never stops the others. :func:`prefetch_map` builds on it for the common case
of one result per item, delivered in input order.

Memory stays bounded: the queue holds at most ``capacity`` messages (a worker waits when it is full), and with
``ahead`` a worker does not start item ``k`` before the consumer has finished item ``k - ahead``. Items are taken
from the iterable one at a time under a lock, so it may be lazy (paths read from stdin). An exception raised by
the iterable itself ends the run: the consumer gets :class:`ItemsError`.

Stopping: :meth:`Prefetch.close` (also on leaving a ``with`` block or closing the iterator early) tells the
workers to stop at their next message and waits briefly for them. The threads are daemons, so a worker blocked
inside the items iterable (waiting for the next line on stdin) never holds up the process's exit.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

__all__ = ["Finished", "ItemsError", "Part", "Prefetch", "prefetch_map"]

Item = TypeVar("Item")
Result = TypeVar("Result")

#: how often a waiting worker looks at the stop flag, in seconds
_POLL_SECONDS = 0.1


@dataclass
class Part:
    """One output of ``produce`` for the item numbered ``index`` (0-based position among the items)."""

    index: int
    value: Any


@dataclass
class Finished(Generic[Item]):
    """The item numbered ``index`` is done: all its parts were sent. ``error``: the exception that ended it early."""

    index: int
    item: Item
    error: BaseException | None = None


class ItemsError(Exception):
    """Iterating the items themselves failed (``cause``: the exception, e.g. an unreadable path list)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass
class _WorkerDone:
    error: BaseException | None = None


class _Stopped(Exception):
    """The consumer went away; the worker quits."""


class Prefetch(Generic[Item]):
    """Iterate ``Part`` / ``Finished`` messages of ``produce(item)`` run for ``items`` on worker threads.

    Args:
        items: the work, read lazily by the workers.
        produce: ``item → iterator of parts``; runs on a worker thread.
        workers: number of threads (at least 1).
        capacity: most messages waiting in the queue.
        ahead: with a value, item ``k`` starts only after the consumer called :meth:`done` for item
            ``k - ahead`` (``None``: no limit besides the queue).
    """

    def __init__(self, items: Iterable[Item], produce: Callable[[Item], Iterable[Any]], *, workers: int,
                 capacity: int, ahead: int | None = None) -> None:
        self._items = iter(items)
        self._produce = produce
        self._lock = threading.Lock()
        self._next = 0
        self._exhausted = False
        self._ahead = ahead
        self._window = threading.Condition()
        self._done_below = 0  # every item below this index has been released by the consumer
        self._released: set[int] = set()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, capacity))
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._work, daemon=True, name=f"audioclf-prefetch-{k}")
                         for k in range(max(1, workers))]
        self._started = False
        self._running = len(self._workers)

    def __enter__(self) -> "Prefetch[Item]":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[Part | Finished[Item]]:
        try:
            while (message := self.get(None)) is not None:
                yield message
        finally:
            self.close()

    @property
    def finished(self) -> bool:
        """True once every worker has stopped and every message has been read."""
        return self._started and self._running == 0

    def get(self, timeout: float | None) -> Part | Finished[Item] | None:
        """The next message, waiting at most ``timeout`` seconds (``None``: as long as it takes). ``None`` when no
        message came in time, or when every worker is done (:attr:`finished`). Raises :class:`ItemsError` when
        iterating the items failed (the workers are stopped then)."""
        if not self._started:
            self._started = True
            for thread in self._workers:
                thread.start()
        while self._running:
            try:
                message = self._queue.get(timeout=timeout)
            except queue.Empty:
                return None
            if isinstance(message, _WorkerDone):
                self._running -= 1
                if message.error is not None:
                    self.close()
                    raise ItemsError(message.error)
                continue
            return message
        return None

    def done(self, index: int) -> None:
        """The consumer has finished with item ``index`` (only needed with ``ahead``)."""
        if self._ahead is None:
            return
        with self._window:
            self._released.add(index)
            while self._done_below in self._released:
                self._released.remove(self._done_below)
                self._done_below += 1
            self._window.notify_all()

    def close(self) -> None:
        """Stop the workers (they quit at their next message) and wait up to a second for them all."""
        self._stop.set()
        with self._window:
            self._window.notify_all()
        deadline = time.monotonic() + 1.0
        for thread in self._workers:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------------------------------- worker side
    def _take(self) -> tuple[int, Item] | None:
        with self._lock:
            if self._exhausted:
                return None
            index = self._next
            if self._ahead is not None:
                with self._window:
                    while index >= self._done_below + self._ahead and not self._stop.is_set():
                        self._window.wait(_POLL_SECONDS)
                if self._stop.is_set():
                    raise _Stopped
            try:
                item = next(self._items)
            except StopIteration:
                self._exhausted = True
                return None
            except BaseException:
                self._exhausted = True
                raise
            self._next += 1
            return index, item

    def _send(self, message: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue
        raise _Stopped

    def _work(self) -> None:
        try:
            failure = None
            while not self._stop.is_set():
                try:
                    taken = self._take()
                except _Stopped:
                    raise
                except Exception as error:  # the items themselves cannot be read
                    failure = error
                    break
                if taken is None:
                    break
                index, item = taken
                try:
                    for value in self._produce(item):
                        self._send(Part(index, value))
                except _Stopped:
                    raise
                except Exception as error:  # this item fails; the others go on
                    self._send(Finished(index, item, error))
                    continue
                self._send(Finished(index, item))
            self._send(_WorkerDone(failure))
        except _Stopped:
            pass


def prefetch_map(items: Iterable[Item], function: Callable[[Item], Result], *, workers: int,
                 ahead: int | None = None) -> Iterator[tuple[Item, Result | None, BaseException | None]]:
    """``(item, function(item), None)`` — or ``(item, None, exception)`` when it raised — for each item, in input
    order, computed on ``workers`` threads with at most ``ahead`` items (default ``4 × workers``) started beyond the
    oldest one not yet yielded."""
    ahead = ahead or 4 * workers
    results: dict[int, tuple[Item, Result | None, BaseException | None]] = {}
    values: dict[int, Result] = {}
    following = 0
    with Prefetch(items, lambda item: (function(item),), workers=workers, capacity=2 * ahead, ahead=ahead) as work:
        for message in work:
            if isinstance(message, Part):
                values[message.index] = message.value
                continue
            results[message.index] = (message.item, values.pop(message.index, None), message.error)
            while following in results:
                yield results.pop(following)
                work.done(following)
                following += 1
