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
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Any, Protocol

__all__ = ["FORMATS", "RecordWriter", "atomic_output", "open_writer", "resolve_format"]

FORMATS = ("auto", "table", "jsonl", "json", "csv", "tsv")
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
        return TableWriter(stream)
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


class TableWriter:
    """Collects the records and prints one rich table at the end."""

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
            row: list[Any] = [Text(record["path"])]
            if has_channel:
                row.append(str(record.get("channel", "")))
            if has_time:
                row += [_seconds(record.get("start")), _seconds(record.get("end"))]
            if "error" in record:
                row += [Text(f"error: {record['error']}", style="red"), ""]
            else:
                labels = record.get("labels") or []
                row += [Text("\n".join(item["label"] for item in labels)),
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
