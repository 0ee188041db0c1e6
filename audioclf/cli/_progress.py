"""A one-line progress bar on stderr that results on stdout can pass.

Commands that print results while they work (``classify`` on a terminal) and show progress at the same time share
one screen: stdout and stderr are usually the same terminal. :class:`ProgressLine` keeps its bar on one line,
redrawn in place with ``\\r`` and erased with ``ESC[2K``; :meth:`ProgressLine.hidden` erases it while a result is
printed, so that every row starts on a clean line and the bar is drawn again below it. When the run ends the line
is erased, so nothing of it is left before the table or the summary.

Nothing goes to stdout from here, and stdout is never redirected: data printed while the bar shows stays on stdout
(a redirected stdout gets every byte), unlike progress displays that capture ``sys.stdout``. The bar is shown only
when stderr is a terminal; ``NO_COLOR`` turns its colours off. A timer thread redraws it twice a second so that
elapsed time moves during a long file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from typing import IO, Any, Iterator

__all__ = ["ProgressLine"]

_CLEAR = "\r\x1b[2K"
_BAR_WIDTH = 24


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _bar_marks(stream: IO[str]) -> tuple[str, str]:
    """The bar's characters for done and left: box-drawing lines where the stream's encoding has them."""
    try:
        "━─".encode(getattr(stream, "encoding", None) or "ascii")
        return "━", "─"
    except (UnicodeEncodeError, LookupError):
        return "#", "-"


class ProgressLine:
    """``label  ━━━━━━╺━━━━  done/total unit  speed  ETA`` on ``stream`` (stderr), as a context manager.

    ``total`` may be ``None`` (inputs read from a pipe): then the bar shows counts and elapsed time only.
    ``visible=False`` makes every method a no-op apart from counting.
    """

    def __init__(self, label: str, total: int | None, *, unit: str = "files", visible: bool = True,
                 stream: IO[str] | None = None, refresh_seconds: float = 0.5) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self.speed = ""
        self.stream = stream if stream is not None else sys.stderr
        self.visible = visible
        self._colour = visible and not os.environ.get("NO_COLOR")
        self._lock = threading.RLock()
        self._hidden = 0
        self._drawn = False
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._refresh_seconds = refresh_seconds
        self._timer: threading.Thread | None = None
        self._marks = _bar_marks(self.stream)

    def __enter__(self) -> "ProgressLine":
        if self.visible:
            self._draw()
            self._timer = threading.Thread(target=self._refresh, name="progress-line", daemon=True)
            self._timer.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        with self._lock:
            self._erase()

    def advance(self, count: int = 1, speed: str | None = None) -> None:
        """``count`` more done; ``speed`` replaces the speed text (``"8.1 audio-s/s"``)."""
        with self._lock:
            self.done += count
            if speed is not None:
                self.speed = speed
            self._draw()

    @contextlib.contextmanager
    def hidden(self) -> Iterator[None]:
        """Erase the bar while the block prints; draw it again after."""
        with self._lock:
            self._hidden += 1
            self._erase()
            try:
                yield
            finally:
                self._hidden -= 1
                self._draw()

    def render(self, width: int) -> str:
        """The bar's text for a terminal ``width`` columns wide (without colour)."""
        return self._text(width, colour=False)

    # ---------------------------------------------------------------------------------------------- drawing
    def _refresh(self) -> None:
        while not self._stop.wait(self._refresh_seconds):
            with self._lock:
                self._draw()

    def _text(self, width: int, colour: bool) -> str:
        elapsed = time.monotonic() - self._started
        filled = 0
        if self.total:
            filled = int(round(min(self.done / self.total, 1.0) * _BAR_WIDTH))
            counts = f"{self.done}/{self.total} {self.unit}"
        else:
            counts = f"{self.done} {self.unit}"
        if self.total and 0 < self.done < self.total:
            timing = f"{_duration(elapsed / self.done * (self.total - self.done))} left"
        else:
            timing = f"{_duration(elapsed)} elapsed"
        tail = "  ".join(part for part in (counts, self.speed, timing) if part)
        done_mark, left_mark = self._marks
        bar = done_mark * filled + left_mark * (_BAR_WIDTH - filled) if self.total else ""
        plain = "  ".join(part for part in (self.label, bar, tail) if part)
        if len(plain) >= width:  # never wrap: a wrapped line could not be erased with one ESC[2K
            return plain[: max(width - 1, 0)]
        if colour and bar:  # one mark, two colours
            bar = f"\x1b[32m{done_mark * filled}\x1b[90m{done_mark * (_BAR_WIDTH - filled)}\x1b[0m"
        return "  ".join(part for part in (self.label, bar, tail) if part)

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return shutil.get_terminal_size().columns

    def _draw(self) -> None:
        if not self.visible or self._hidden:
            return
        self._write(_CLEAR + self._text(self._width(), self._colour))
        self._drawn = True

    def _erase(self) -> None:
        if self._drawn:
            self._write(_CLEAR)
            self._drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr gone: progress is not worth failing the run for
            self.visible = False
