"""What every command that runs a model on many inputs shares: options, stop signals, the progress bar, memory.

The option types (``InputsArgument``, ``ModelOption``, …) declare the flags ``classify`` and ``embed`` both take,
once. :class:`StopSignals` turns SIGINT/SIGTERM into a clean stop (exit 130/143); :class:`Progress` counts finished
inputs and shows a bar on a terminal; :func:`return_large_buffers_to_os` keeps a long run's resident size flat.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer

from audioclf.cli._errors import flag_for
from audioclf.errors import OptionError

# ------------------------------------------------------------------------------------------ shared options
InputsArgument = Annotated[Optional[list[str]], typer.Argument(
    help="Files, directories, glob patterns, or - (paths on stdin).", show_default=False)]
ModelOption = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Model directory, weights file or Hub id (default: the built-in model).", show_default=False)]
RevisionOption = Annotated[Optional[str], typer.Option(
    help="Hub revision of the model (branch, tag or commit).", show_default=False)]
RecursiveOption = Annotated[bool, typer.Option("--recursive", "-r", help="Descend into subdirectories.")]
FilesFromOption = Annotated[Optional[Path], typer.Option(
    "--files-from", help="Read input paths from this file (one per line; - for stdin).", show_default=False)]
NullOption = Annotated[bool, typer.Option("-0", "--null", help="Path lists (stdin, --files-from) are NUL-separated.")]
ChannelsOption = Annotated[str, typer.Option(help="mix | first | N (0-based) | each (one record per channel).")]
BatchSizeOption = Annotated[int, typer.Option(help="Most segments per model call.")]
MaxBatchSecondsOption = Annotated[Optional[float], typer.Option(
    help="Most padded audio per model call, in seconds (default: 32 on CPU, 320 on GPU).", show_default=False)]
WindowOption = Annotated[Optional[float], typer.Option(
    help="One record per window of this many seconds.", show_default=False)]
HopOption = Annotated[Optional[float], typer.Option(
    help="Seconds between window starts (default: --window).", show_default=False)]
DeviceOption = Annotated[str, typer.Option(help="auto | cpu | cuda | mps (auto: cuda when available).")]
DtypeOption = Annotated[str, typer.Option(help="float32 | bfloat16 | float16.")]
ThreadsOption = Annotated[Optional[int], typer.Option(help="Torch CPU threads (default: torch's choice).",
                                                      show_default=False)]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary on stderr.")]


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
    """Counts finished inputs and, on a terminal, shows a rich progress bar on stderr (files, audio-s/s, ETA);
    ``verb`` says what is being done (``classifying``, ``embedding``)."""

    def __init__(self, total: int | None, visible: bool, verb: str = "classifying") -> None:
        self.verb = verb
        self.total = total
        self.visible = visible
        self.done = 0
        self.failed = 0
        self.audio_seconds = 0.0
        self._bar: Any = None
        self._task: Any = None
        self._started = time.monotonic()

    def __enter__(self) -> "Progress":
        if self.visible:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn(self.verb), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                TextColumn("{task.fields[speed]}"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.verb, total=self.total, speed="")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc_info)

    def update(self, done: Any) -> None:
        """Engine callback: one input (a :class:`audioclf.engine.classify.FileDone`) has finished."""
        self.done += 1
        self.failed += done.error is not None
        self.audio_seconds += done.duration
        if self._bar is not None:
            elapsed = max(time.monotonic() - self._started, 1e-9)
            self._bar.update(self._task, advance=1, speed=f"{self.audio_seconds / elapsed:.1f} audio-s/s")
