"""Output layer of ``audioclf classify``: record writers for every ``--format`` and atomic ``--output`` files.

Formats:

* ``jsonl`` — one JSON object per record and line, flushed as soon as the record is ready;
* ``json``  — one JSON array of the records (streamed element by element; valid once the run ends);
* ``csv`` / ``tsv`` — a header, then one row per (record, label) with the columns
  :data:`audioclf.engine.records.DELIMITED_COLUMNS` (:func:`audioclf.engine.records.delimited_rows`, which
  :func:`audioclf.engine.records.read_record_file` reads back);
* ``table`` — a rich table written when the run ends (colour only on a terminal, and never with ``NO_COLOR``).

``auto`` is ``table`` when the output is a terminal, JSON Lines otherwise; with ``--output FILE`` it follows the
file's extension (``.json``, ``.csv``, ``.tsv``, ``.txt`` for a table, anything else JSON Lines).

What a file said never reaches the reader as code: JSON goes through :func:`audioclf.text.json_text` (lone
surrogates of undecodable file names and terminal controls as ``\\u`` escapes, no NaN), csv/tsv text cells through
:func:`audioclf.text.spreadsheet_cell` (no formulas; undecodable file names written back as their original bytes),
table cells through :func:`audioclf.text.printable` (control characters escaped).

``--output FILE`` is a :class:`RecordFile`: the output's lock is held for the whole run, each finished input is
appended to a journal beside the file (it survives ``SIGKILL``), and the file is written in its format, atomically,
when the run ends; ``--resume`` continues from the file and from the journal an interrupted run left.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import IO, Any, Iterable, Protocol

from audioclf.text import json_text, printable

__all__ = ["FORMATS", "RecordFile", "RecordWriter", "atomic_output", "open_writer", "resolve_format"]

FORMATS = ("auto", "table", "jsonl", "json", "csv", "tsv")
_SUFFIX_FORMATS = {".json": "json", ".csv": "csv", ".tsv": "tsv", ".txt": "table"}


class RecordWriter(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...

    def write_input(self, records: Iterable[dict[str, Any]]) -> None:
        """The records of one finished input."""

    def close(self) -> None: ...


class _Writer:
    def write(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def write_input(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self.write(record)


def resolve_format(name: str, output: Path | None, is_terminal: bool) -> str:
    """The concrete format for ``--format name`` (``auto`` resolved as described in the module docstring)."""
    if name != "auto":
        return name
    if output is not None:
        return _SUFFIX_FORMATS.get(output.suffix.lower(), "jsonl")
    return "table" if is_terminal else "jsonl"


def open_writer(name: str, stream: IO[str]) -> RecordWriter:
    """A writer of concrete format ``name`` (not ``auto``) on a text stream."""
    if name == "jsonl":
        return JsonLinesWriter(stream)
    if name == "json":
        return JsonArrayWriter(stream)
    if name in ("csv", "tsv"):
        return DelimitedWriter(stream, "," if name == "csv" else "\t")
    if name == "table":
        return TableWriter(stream)
    raise ValueError(f"unknown format {name!r}")


class JsonLinesWriter(_Writer):
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(json_text(record) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class JsonArrayWriter(_Writer):
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(("[\n  " if self.count == 0 else ",\n  ") + json_text(record))
        self.stream.flush()
        self.count += 1

    def close(self) -> None:
        self.stream.write("[]\n" if self.count == 0 else "\n]\n")
        self.stream.flush()


class DelimitedWriter(_Writer):
    def __init__(self, stream: IO[str], delimiter: str) -> None:
        from audioclf.engine.records import DELIMITED_COLUMNS, delimited_rows

        self.rows = delimited_rows
        if hasattr(stream, "reconfigure"):  # undecodable file names go back out as the bytes they were
            stream.reconfigure(errors="surrogateescape")
        self.stream = stream
        # Rows are formatted with the "\r\n" terminator, so that the csv module quotes a cell holding either
        # character (with "\n" alone a bare "\r" in a label would stay unquoted and end the row for a reader),
        # and written ending in "\n".
        self._row = io.StringIO()
        self.writer = csv.writer(self._row, delimiter=delimiter, lineterminator="\r\n")
        self._write_rows([DELIMITED_COLUMNS])

    def _write_rows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self._row.seek(0)
            self._row.truncate()
            self.writer.writerow(row)
            self.stream.write(self._row.getvalue()[:-2] + "\n")

    def write(self, record: dict[str, Any]) -> None:
        self._write_rows(self.rows(record))
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class TableWriter(_Writer):
    """Collects the records and prints one rich table at the end; every cell is data (no markup), control
    characters escaped."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.records: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def close(self) -> None:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        records = self.records
        has_channel = any("channel" in r for r in records)
        has_time = any("start" in r for r in records)
        table = Table(show_lines=False, header_style="bold")
        table.add_column("path", overflow="fold")
        if has_channel:
            table.add_column("channel", justify="right")
        if has_time:
            table.add_column("start", justify="right")
            table.add_column("end", justify="right")
        table.add_column("label")
        table.add_column("score", justify="right")
        for record in records:
            row: list[Any] = [Text(printable(record.get("path", record.get("index", ""))))]
            if has_channel:
                row.append(printable(record.get("channel", "")))
            if has_time:
                row += [_seconds(record.get("start")), _seconds(record.get("end"))]
            if "error" in record:
                row += [Text(f"error: {printable(record['error'])}", style="red"), ""]
            else:
                labels = record.get("labels") or []
                row += [Text("\n".join(printable(item["label"]) for item in labels)),
                        "\n".join(f"{item['score']:.4f}" for item in labels)]
            table.add_row(*row)
        is_terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        console = Console(file=self.stream, force_terminal=None if is_terminal else False,
                          width=None if is_terminal else 160)
        console.print(table)
        self.stream.flush()


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def atomic_output(path: Path):
    """A text stream whose content replaces ``path`` only when the block ends without an exception."""
    from audioclf.fileio import atomic_open

    return atomic_open(path)


class RecordFile(_Writer):
    """``--output FILE`` of a command that writes records: held for the whole run (``with``), each input's records
    journaled as they come, the file written atomically in format ``fmt`` by :meth:`close`.

    Entering takes the output's lock (another process writing the same file is an
    :class:`~audioclf.errors.OutputError`) and, with ``resume``, reads the records already done into :attr:`kept`:
    those in the file, then those in the journal a killed or failed run left. Without ``resume`` such a journal is
    discarded. Leaving without :meth:`close` (an interrupt, an error) leaves the file as it was; the journal is kept
    after an error (a later ``--resume`` goes on from it) and removed after :meth:`discard`.
    """

    def __init__(self, path: Path, fmt: str, resume: bool) -> None:
        self.path = path
        self.fmt = fmt
        self.resume = resume
        self.kept: list[dict[str, Any]] = []
        self._lock: Any = None
        self._journal: Any = None
        self._recovered = 0  # journal lines of an earlier run, already in kept

    def __enter__(self) -> "RecordFile":
        from audioclf.engine.records import read_journal, read_record_file
        from audioclf.errors import AudioclfError
        from audioclf.fileio import Journal, locked_output

        self._lock = locked_output(self.path)
        target = self._lock.__enter__()
        try:
            self._journal = Journal(self.path)
            if not self.resume:
                self._journal.remove()
            elif target.real.is_file() and not target.special:
                try:
                    self.kept = read_record_file(target.real, self.fmt)
                except AudioclfError as error:
                    raise AudioclfError(f"--resume: {error}") from None
            if self.resume:
                recovered = self._journal.lines()
                self.kept += read_journal(recovered, self._journal.path)
                self._recovered = len(recovered)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def write(self, record: dict[str, Any]) -> None:
        self.write_input([record])

    def write_input(self, records: Iterable[dict[str, Any]]) -> None:
        """Journal the records of one finished input (one line: a torn write loses the input, never half of it)."""
        from audioclf.engine.records import journal_line

        self._journal.append([journal_line(list(records))])

    def close(self) -> None:
        """Write the file: the kept records, then the journaled ones; then drop the journal."""
        from audioclf.engine.records import read_journal

        self._journal.close()
        new = read_journal(self._journal.lines()[self._recovered:], self._journal.path)
        with atomic_output(self.path) as stream:
            writer = open_writer(self.fmt, stream)
            for record in self.kept:
                writer.write(record)
            for record in new:
                writer.write(record)
            writer.close()
        self._journal.remove()

    def discard(self) -> None:
        """Forget this run's records (the file stays as it was)."""
        self._journal.remove()

    def __exit__(self, *exc_info: Any) -> None:
        from audioclf.errors import OutputError

        try:
            if self._journal is not None:
                self._journal.close()
        except OutputError:
            if exc_info[0] is None:
                raise  # else the error on its way out says what went wrong first
        finally:
            self._lock.__exit__(*exc_info)
