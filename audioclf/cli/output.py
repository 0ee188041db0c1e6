"""Output layer of ``audioclf classify``: record writers for every ``--format`` and atomic ``--output`` files.

Formats:

* ``jsonl`` — one JSON object per record and line, flushed as soon as the record is ready;
* ``json``  — one JSON array of the records (streamed element by element; valid once the run ends);
* ``csv`` / ``tsv`` — a header, then one row per (record, label) with the columns
  :data:`audioclf.engine.records.DELIMITED_COLUMNS` (:func:`audioclf.engine.records.delimited_rows`, which
  :func:`audioclf.engine.records.read_record_file` reads back);
* ``table`` — on a terminal, rows printed as the records arrive (a header, then one block of rows per record,
  columns sized to the terminal); elsewhere (a file, a pipe) one table when the run ends, columns sized to the
  content. Colour only on a terminal, and never with ``NO_COLOR``.

``auto`` is ``table`` when the output is a terminal, JSON Lines otherwise; with ``--output FILE`` it follows the
file's extension (``.json``, ``.csv``, ``.tsv``, ``.txt`` for a table, anything else JSON Lines).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Any, Literal, Protocol, get_args

__all__ = ["FORMATS", "RecordFormat", "RecordWriter", "atomic_output", "open_writer", "resolve_format"]

RecordFormat = Literal["auto", "table", "jsonl", "json", "csv", "tsv"]
FORMATS: tuple[str, ...] = get_args(RecordFormat)
_SUFFIX_FORMATS = {".json": "json", ".csv": "csv", ".tsv": "tsv", ".txt": "table"}


class RecordWriter(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


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
        return StreamingTableWriter(stream) if _is_terminal(stream) else TableWriter(stream)
    raise ValueError(f"unknown format {name!r}")


class JsonLinesWriter:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class JsonArrayWriter:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(("[\n  " if self.count == 0 else ",\n  ") + json.dumps(record, ensure_ascii=False))
        self.stream.flush()
        self.count += 1

    def close(self) -> None:
        self.stream.write("[]\n" if self.count == 0 else "\n]\n")
        self.stream.flush()


class DelimitedWriter:
    def __init__(self, stream: IO[str], delimiter: str) -> None:
        from audioclf.engine.records import DELIMITED_COLUMNS, delimited_rows

        self.rows = delimited_rows
        self.stream = stream
        self.writer = csv.writer(stream, delimiter=delimiter, lineterminator="\n")
        self.writer.writerow(DELIMITED_COLUMNS)

    def write(self, record: dict[str, Any]) -> None:
        self.writer.writerows(self.rows(record))  # type: ignore[arg-type]
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


def _is_terminal(stream: IO[str]) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


class _TableLayout:
    """Which columns a run's records need, and one record as table cells (a row per label)."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.has_channel = any("channel" in r for r in records)
        self.has_time = any("start" in r for r in records)

    def add_columns(self, table: Any, widths: dict[str, int] | None = None) -> None:
        widths = widths or {}
        table.add_column("path", overflow="fold", width=widths.get("path"))
        if self.has_channel:
            table.add_column("channel", justify="right", width=widths.get("channel"))
        if self.has_time:
            table.add_column("start", justify="right", width=widths.get("start"))
            table.add_column("end", justify="right", width=widths.get("end"))
        table.add_column("label", overflow="fold", width=widths.get("label"))
        table.add_column("score", justify="right", width=widths.get("score"))

    def row(self, record: dict[str, Any]) -> list[Any]:
        from rich.text import Text

        row: list[Any] = [Text(str(record.get("path", record.get("index", ""))))]
        if self.has_channel:
            row.append(str(record.get("channel", "")))
        if self.has_time:
            row += [_seconds(record.get("start")), _seconds(record.get("end"))]
        if "error" in record:
            row += [Text(f"error: {record['error']}", style="red"), ""]
        else:
            labels = record.get("labels") or []
            row += [Text("\n".join(item["label"] for item in labels)),
                    "\n".join(f"{item['score']:.4f}" for item in labels)]
        return row


class TableWriter:
    """Collects the records and prints one rich table at the end (for files and pipes)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.records: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def close(self) -> None:
        from rich.console import Console
        from rich.table import Table

        layout = _TableLayout(self.records)
        table = Table(show_lines=False, header_style="bold")
        layout.add_columns(table)
        for record in self.records:
            table.add_row(*layout.row(record))
        console = Console(file=self.stream, force_terminal=False, width=160)
        console.print(table)
        self.stream.flush()


class StreamingTableWriter:
    """On a terminal: a header, then the rows of each record as soon as it is written.

    Every row is rendered with the same fixed column widths, chosen when the first scored record arrives (its keys
    say whether the run has channel and time columns; an error record alone cannot tell, so errors before it
    wait for it). The path column takes the width the others leave; long paths and labels fold onto more lines."""

    SCORE_WIDTH, TIME_WIDTH, CHANNEL_WIDTH = 6, 9, 7

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console

        self.stream = stream
        self.console = Console(file=stream, highlight=False)
        self.layout: _TableLayout | None = None
        self.widths: dict[str, int] = {}
        self.waiting: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        if self.layout is None:
            self.waiting.append(record)
            if "error" in record:
                return
            self._start(record)
            records, self.waiting = self.waiting, []
        else:
            records = [record]
        for each in records:
            self._print(self._table(rows=[each]))

    def close(self) -> None:
        if self.layout is None and self.waiting:  # every record failed
            self._start(self.waiting[0])
            for record in self.waiting:
                self._print(self._table(rows=[record]))
        self.stream.flush()

    def _start(self, record: dict[str, Any]) -> None:
        self.layout = _TableLayout([record])
        labels = [item["label"] for item in record.get("labels") or []]
        self.widths = {"score": self.SCORE_WIDTH, "start": self.TIME_WIDTH, "end": self.TIME_WIDTH,
                       "channel": self.CHANNEL_WIDTH, "label": min(max([12, *map(len, labels)]), 32)}
        used = self.widths["label"] + self.widths["score"]
        used += (self.widths["start"] + self.widths["end"]) * self.layout.has_time
        used += self.widths["channel"] * self.layout.has_channel
        columns = 3 + 2 * self.layout.has_time + self.layout.has_channel
        self.widths["path"] = max(self.console.width - used - 3 * columns - 1, 16)
        self._print(self._table(rows=[], header=True))

    def _table(self, rows: list[dict[str, Any]], header: bool = False) -> Any:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        assert self.layout is not None
        table = Table(box=box.SIMPLE_HEAD, show_header=header, header_style="bold",
                      show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=False)
        if rows and "error" in rows[0]:  # the reason gets every column after the path
            table.add_column(width=self.widths["path"], overflow="fold")
            table.add_column(overflow="fold")
            record = rows[0]
            table.add_row(Text(str(record.get("path", record.get("index", "")))),
                          Text(f"error: {record['error']}", style="red"))
            return table
        self.layout.add_columns(table, self.widths)
        for record in rows:
            table.add_row(*self.layout.row(record))
        return table

    def _print(self, table: Any) -> None:
        self.console.print(table)
        self.stream.flush()


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def atomic_output(path: Path):
    """A text stream whose content replaces ``path`` only when the block ends without an exception."""
    from audioclf.fileio import atomic_open

    return atomic_open(path)
