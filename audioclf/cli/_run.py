"""What every command that runs a model on many inputs shares: stop signals, the progress line, memory.

(Their options are declared once in :mod:`audioclf.cli._options`.) :class:`StopSignals` turns SIGINT/SIGTERM into a clean stop (exit 130/143); :class:`Progress` counts finished
inputs and shows a bar on a terminal; :func:`return_large_buffers_to_os` keeps a long run's resident size flat.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from typing import Any, Iterator

from audioclf.cli._errors import flag_for
from audioclf.errors import OptionError

__all__ = ["Progress", "StopSignals", "return_large_buffers_to_os", "with_flags"]


def with_flags(error: OptionError) -> OptionError:
    """The error with the argument a dependency names told as a flag too (``hop needs window`` is shown as ``--hop
    needs --window``; the error layer turns the leading argument into its flag)."""
    if not error.detail.startswith("needs "):
        return error
    return OptionError(error.option, "needs " + flag_for(error.detail.removeprefix("needs ")))


def return_large_buffers_to_os() -> None:
    """Pin glibc's mmap threshold at 4 MiB (no-op elsewhere).

    glibc raises the threshold each time a large mmapped block is freed, after which blocks of up to 32 MiB (activations
    of one chunk, decoded audio blocks) come from the heap and stay in the process after use; over a long run that adds
    about 150 MB to the resident size of a base-sized model. A fixed threshold hands them back to the OS when freed.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 4 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


class StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM during a run: the handler notes the signal and raises KeyboardInterrupt in the
    main thread, which stops the engine; the command then exits with 128 + the signal number (130, 143) after
    saying "interrupted". :meth:`deferred` holds the KeyboardInterrupt back while a block runs (it is raised at the
    end of the block). The signal is remembered even where the KeyboardInterrupt cannot surface (raised inside a
    finalizer), so the exit status never claims success. A signal the process inherited as ignored (a background
    job of a non-interactive shell ignores SIGINT) stays ignored, as Python itself leaves it."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._holding = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def note(self, signum: int) -> None:
        """Remember a stop by ``signum`` unless an earlier signal is remembered already."""
        if self.received is None:
            self.received = int(signum)

    def _handle(self, signum: int, frame: Any) -> None:
        self.note(signum)
        if not self._holding:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Run the block without interruption; a signal that arrived meanwhile raises KeyboardInterrupt after it."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self.received is not None:
            raise KeyboardInterrupt


class Progress:
    """Counts finished inputs and, on a terminal, shows a progress line on stderr (files, audio-s/s, time left).

    ``output_on_screen``: the records go to the same terminal, so :meth:`making_room` erases the line while they
    are printed; ``verb`` says what is being done (``classifying``, ``embedding``)."""

    def __init__(self, total: int | None, visible: bool, output_on_screen: bool = False,
                 verb: str = "classifying") -> None:
        from audioclf.cli._progress import ProgressLine

        self.done = 0
        self.failed = 0
        self.audio_seconds = 0.0
        self.line = ProgressLine(verb, total, visible=visible)
        self._output_on_screen = output_on_screen
        self._started = time.monotonic()

    def __enter__(self) -> "Progress":
        self.line.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.line.__exit__(*exc_info)

    def update(self, done: Any) -> None:
        """Engine callback: one input (a :class:`audioclf.engine.classify.FileDone`) has finished."""
        self.done += 1
        self.failed += done.error is not None
        self.audio_seconds += done.duration
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self.line.advance(speed=f"{self.audio_seconds / elapsed:.1f} audio-s/s")

    def making_room(self) -> contextlib.AbstractContextManager[None]:
        """A block that prints records: the progress line is erased meanwhile when they share its terminal."""
        return self.line.hidden() if self._output_on_screen else contextlib.nullcontext()
