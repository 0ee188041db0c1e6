"""``audioclf classify`` in a terminal, as a person sees it: the installed entry point on a pseudo-terminal, and what
it leaves on the screen read back with a terminal emulator (pyte). Paths go in on stdin, held open, so a test can
see what is on the screen while the run is still going."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Callable

import pyte

import audioclf
from audioclf.cli._progress import ProgressLine
from audioclf.cli.output import open_writer

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
YES, NO = SAMPLES / "synth_yes_en-gb.wav", SAMPLES / "synth_no_en-us.wav"
AUDIOCLF = str(Path(sys.executable).parent / "audioclf")
COLUMNS, ROWS = 100, 50
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TERM": "xterm-256color", "HF_HUB_OFFLINE": "1"}
ENV.pop("NO_COLOR", None)


class Terminal:
    """A pseudo-terminal of COLUMNS x ROWS; everything written to it is collected as it arrives."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.data = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        os.close(self.slave)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the last writer closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self.data += chunk

    def text(self) -> str:
        with self._lock:
            return self.data.decode("utf-8", "replace")

    def wait_for(self, condition: Callable[[str], bool], timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.text()):
            assert time.monotonic() < deadline, f"not on the terminal after {timeout} s: {self.text()[-2000:]!r}"
            time.sleep(0.05)

    def screen(self) -> list[str]:
        """The screen's lines, as a terminal shows them after everything written so far."""
        screen = pyte.Screen(COLUMNS, ROWS)
        pyte.Stream(screen).feed(self.text())
        return [line.rstrip() for line in screen.display]

    def close(self) -> None:
        self._reader.join(timeout=10)
        os.close(self.master)


def _reference(path: Path) -> tuple[str, float]:
    """Top label and score of ``path`` from the Python API with the same bundled model."""
    record = next(audioclf.classify([str(path)], threads=1))
    return record["labels"][0]["label"], record["labels"][0]["score"]


def test_rows_appear_as_they_are_ready_and_the_bar_is_gone_before_each(tmp_path: Path) -> None:
    terminal = Terminal()
    process = subprocess.Popen([AUDIOCLF, "classify", "--threads", "1", "-"], stdin=subprocess.PIPE,
                               stdout=terminal.slave, stderr=terminal.slave, env=ENV, cwd=tmp_path)
    terminal.start()
    try:
        assert process.stdin is not None
        process.stdin.write(f"{YES}\n".encode())
        process.stdin.flush()
        terminal.wait_for(lambda text: YES.name in text)
        assert process.poll() is None  # the first row is on the screen while the input list is still open
        during = terminal.screen()
        process.stdin.write(f"{NO}\n".encode())
        process.stdin.close()
        assert process.wait(timeout=240) == 0
    finally:
        if process.poll() is None:
            process.kill()
        terminal.close()
    assert "classifying" in terminal.text()  # the bar was shown
    after = [line for line in terminal.screen() if line]
    for screen in (during, after):  # nothing of the bar glued to a row or the header
        assert not any("classifying" in line and ("path" in line or "wav" in line) for line in screen), screen
    assert not any("classifying" in line or "━" in line for line in after), after  # erased at the end
    assert after[0].split() == ["path", "label", "score"] and set(after[1]) == {"─"}
    rows = {line.split()[0]: line.split()[1:] for line in after[2:] if line.split()[0].endswith(".wav")}
    assert list(rows) == [str(YES), str(NO)]
    for path, cells in rows.items():
        label, score = _reference(Path(path))
        assert cells == [label, f"{score:.4f}"]
    # the labels of every row in one column, below the header's
    label_columns = {[match.start() for match in re.finditer(r"\S+", line)][-2] for line in after[2:]}
    assert label_columns == {after[0].index("label")}


def test_progress_on_the_terminal_never_takes_the_records_from_stdout(tmp_path: Path) -> None:
    """stderr a terminal, stdout a file: every record goes to the file, none to the terminal."""
    terminal = Terminal()
    records = tmp_path / "records.jsonl"
    with records.open("wb") as stdout:
        process = subprocess.Popen([AUDIOCLF, "classify", "--threads", "1", str(YES), str(NO)],
                                   stdin=subprocess.DEVNULL, stdout=stdout, stderr=terminal.slave, env=ENV)
        terminal.start()
        assert process.wait(timeout=240) == 0
    terminal.close()
    assert [line.split('"')[3] for line in records.read_text().splitlines()] == [str(YES), str(NO)]
    assert "classifying" in terminal.text() and '"labels"' not in terminal.text()
    assert not any(terminal.screen())  # the bar is erased when the run ends


def test_a_closed_pipe_ends_quietly_with_141(tmp_path: Path) -> None:
    """`audioclf classify - | head -1`: once head has its line and exits, the next record meets a closed pipe."""
    terminal = Terminal()
    classify = subprocess.Popen([AUDIOCLF, "classify", "--threads", "1", "-"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=terminal.slave, env=ENV)
    head = subprocess.Popen(["head", "-1"], stdin=classify.stdout, stdout=subprocess.PIPE)
    assert classify.stdin is not None and classify.stdout is not None
    classify.stdout.close()  # only head reads it now
    terminal.start()
    try:
        classify.stdin.write(f"{YES}\n".encode())
        classify.stdin.flush()
        first, _ = head.communicate(timeout=240)
        classify.stdin.write(f"{NO}\n{YES}\n".encode())
        classify.stdin.close()
        status = classify.wait(timeout=240)
    finally:
        if classify.poll() is None:
            classify.kill()
        terminal.close()
    assert status == 141
    assert first.decode().count("\n") == 1 and str(YES) in first.decode()
    shown = "\n".join(terminal.screen())
    assert "Traceback" not in terminal.text() and "error" not in terminal.text().lower()
    assert not shown.strip()  # nothing left on the terminal: no message, no bar


class _Screen(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_line_fits_the_width_and_is_erased_for_output() -> None:
    stream = _Screen()
    line = ProgressLine("classifying", 9, stream=stream, refresh_seconds=60)
    with line:
        line.advance(speed="2.5 audio-s/s")
        assert len(line.render(30)) == 29 and "\n" not in line.render(30)
        assert "1/9 files" in line.render(200) and "2.5 audio-s/s" in line.render(200)
        with line.hidden():
            marker = len(stream.getvalue())
            stream.write("ROW\n")
        drawn = stream.getvalue()
    assert drawn[:marker].endswith("\r\x1b[2K")  # erased just before the row
    assert drawn[marker:].startswith("ROW\n\r\x1b[2Kclassifying")  # drawn again below it
    assert stream.getvalue().endswith("\r\x1b[2K")  # and erased at the end


def test_streaming_table_waits_for_a_scored_record_to_choose_its_columns() -> None:
    stream = _Screen()
    writer = open_writer("table", stream)
    writer.write({"path": "broken.wav", "error": "truncated"})
    assert stream.getvalue() == ""
    writer.write({"path": "a.wav", "start": 0.0, "end": 1.0, "labels": [{"label": "yes", "score": 0.5}],
                  "model": "m"})
    writer.close()
    screen = pyte.Screen(COLUMNS, 10)
    pyte.Stream(screen).feed(stream.getvalue().replace("\n", "\r\n"))
    lines = [line.rstrip() for line in screen.display if line.strip()]
    assert lines[0].split() == ["path", "start", "end", "label", "score"]
    assert lines[2].split() == ["broken.wav", "error:", "truncated"]
    assert lines[3].split() == ["a.wav", "0.000", "1.000", "yes", "0.5000"]
