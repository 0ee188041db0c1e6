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

Events (``classify --events``) use the same formats (csv/tsv with the columns
:data:`audioclf.engine.events.EVENT_COLUMNS`) and two annotation formats, which cannot hold error records (those
are told on stderr instead):

* ``audacity`` — an Audacity label track: ``start<TAB>end<TAB>label`` per event, times in seconds;
* ``raven`` — a Raven Pro selection table: tab-separated, the header ``Selection View Channel Begin Time (s)
  End Time (s) Low Freq (Hz) High Freq (Hz)`` then ``Label`` and ``Score``; one row per event, the band from 0 to the
  model's Nyquist frequency. Written to stdout or one file it also has a ``Begin Path`` column (many inputs).

With ``--output DIR`` these two write one file per input (:class:`EventFilesWriter`). Embeddings (``embed``) are
written as JSON Lines (arrays as nested lists) or by :func:`write_embedding_arrays` (npy, npz, parquet).
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from pathlib import Path
from typing import IO, Any, Callable, Literal, Protocol, Sequence, get_args

__all__ = ["EMBEDDING_FORMATS", "EVENT_FORMATS", "FORMATS", "PER_INPUT_FORMATS", "EventFilesWriter", "RecordFormat",
           "RecordWriter", "UniqueStems", "atomic_output", "file_stem", "import_pyarrow", "open_writer", "plain",
           "resolve_format", "write_embedding_arrays"]

RecordFormat = Literal["auto", "table", "jsonl", "json", "csv", "tsv"]
FORMATS: tuple[str, ...] = get_args(RecordFormat)
#: formats of ``classify --events``; the last two write one file per input with ``--output DIR``
PER_INPUT_FORMATS = ("audacity", "raven")
EVENT_FORMATS = FORMATS + PER_INPUT_FORMATS
_SUFFIX_FORMATS = {".json": "json", ".csv": "csv", ".tsv": "tsv", ".txt": "table"}
#: the Raven Pro columns every selection table starts with
RAVEN_COLUMNS = ("Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)")


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


def open_writer(name: str, stream: IO[str], *, events: bool = False, sampling_rate: int | None = None,
                errors: IO[str] | None = None) -> RecordWriter:
    """A writer of concrete format ``name`` (not ``auto``) on a text stream. ``events``: the records are events
    (csv/tsv columns :data:`~audioclf.engine.events.EVENT_COLUMNS`); ``sampling_rate``: the model's, for the Raven
    band; ``errors``: where the annotation formats tell error records (default stderr)."""
    if name == "jsonl":
        return JsonLinesWriter(stream)
    if name == "json":
        return JsonArrayWriter(stream)
    if name in ("csv", "tsv"):
        if events:
            from audioclf.engine.events import EVENT_COLUMNS, event_rows

            return DelimitedWriter(stream, "," if name == "csv" else "\t", EVENT_COLUMNS, event_rows)
        return DelimitedWriter(stream, "," if name == "csv" else "\t")
    if name == "table":
        return StreamingTableWriter(stream) if _is_terminal(stream) else TableWriter(stream)
    if name == "audacity":
        return AudacityWriter(stream, errors)
    if name == "raven":
        return RavenWriter(stream, sampling_rate or 0, with_path=True, errors=errors)
    raise ValueError(f"unknown format {name!r}")


def plain(value: Any) -> Any:
    """JSON for what ``json`` cannot write itself: numpy arrays as (nested) lists, numpy scalars as numbers."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class JsonLinesWriter:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps(record, ensure_ascii=False, default=plain) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class JsonArrayWriter:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(("[\n  " if self.count == 0 else ",\n  ") + json.dumps(record, ensure_ascii=False, default=plain))
        self.stream.flush()
        self.count += 1

    def close(self) -> None:
        self.stream.write("[]\n" if self.count == 0 else "\n]\n")
        self.stream.flush()


class DelimitedWriter:
    """A header, then rows: by default classify records' (:func:`audioclf.engine.records.delimited_rows`)."""

    def __init__(self, stream: IO[str], delimiter: str, columns: Sequence[str] | None = None,
                 rows: Callable[[dict[str, Any]], list[list[Any]]] | None = None) -> None:
        from audioclf.engine.records import DELIMITED_COLUMNS, delimited_rows

        self.rows = rows or delimited_rows
        self.stream = stream
        self.writer = csv.writer(stream, delimiter=delimiter, lineterminator="\n")
        self.writer.writerow(columns or DELIMITED_COLUMNS)

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
            labels = record.get("labels") or ([record] if "label" in record else [])  # a record or an event
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
        labels = [item["label"] for item in record.get("labels") or ([record] if "label" in record else [])]
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


# --------------------------------------------------------------------------------------- annotation formats
def _field(value: Any) -> str:
    """A value as one tab-separated field: control characters (tabs, line breaks) written as escapes."""
    from audioclf.cli._output import printable

    return printable(value)


class AudacityWriter:
    """An Audacity label track: ``start<TAB>end<TAB>label`` per event; error records go to ``errors``."""

    def __init__(self, stream: IO[str], errors: IO[str] | None = None) -> None:
        self.stream = stream
        self.errors = errors

    def write(self, record: dict[str, Any]) -> None:
        if "error" in record:
            _tell_error(record, self.errors)
            return
        self.stream.write(f"{record['start']:.6f}\t{record['end']:.6f}\t{_field(record['label'])}\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class RavenWriter:
    """A Raven Pro selection table (see the module docstring); ``with_path`` adds the ``Begin Path`` column."""

    def __init__(self, stream: IO[str], sampling_rate: int, *, with_path: bool, errors: IO[str] | None = None) -> None:
        self.stream = stream
        self.high = sampling_rate / 2
        self.with_path = with_path
        self.errors = errors
        self.count = 0
        columns = RAVEN_COLUMNS + (("Begin Path",) if with_path else ()) + ("Label", "Score")
        stream.write("\t".join(columns) + "\n")

    def write(self, record: dict[str, Any]) -> None:
        if "error" in record:
            _tell_error(record, self.errors)
            return
        self.count += 1
        cells = [self.count, "Spectrogram 1", int(record.get("channel") or 0) + 1, f"{record['start']:.6f}",
                 f"{record['end']:.6f}", "0.0", f"{self.high:.1f}"]
        if self.with_path:
            cells.append(record.get("path", ""))
        cells += [record["label"], f"{record['score']:.6f}"]
        self.stream.write("\t".join(_field(cell) for cell in cells) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


def _tell_error(record: dict[str, Any], errors: IO[str] | None) -> None:
    name = record.get("path", f"input {record.get('index')}")
    print(f"error: {_field(name)}: {_field(record['error'])}", file=errors or sys.stderr, flush=True)


def file_stem(path: str) -> str:
    """A file's name without directory and extension, safe as a file name (control characters and slashes
    replaced by ``_``)."""
    name = os.path.basename(path.rstrip("/"))
    return re.sub(r"[\x00-\x1f/\\]", "_", os.path.splitext(name)[0]) or "input"


class UniqueStems:
    """File names for per-input outputs: the input's file name without its extension (control characters and
    slashes replaced), ``-2``, ``-3``, … added when an earlier input of the run had the same stem."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def stem(self, identity: dict[str, Any]) -> str:
        stem = file_stem(str(identity.get("path") or f"input-{identity.get('index')}"))
        candidate, number = stem, 1
        while candidate in self.used:
            number += 1
            candidate = f"{stem}-{number}"
        self.used.add(candidate)
        return candidate


class EventFilesWriter:
    """``--output DIR`` for ``audacity`` / ``raven``: one file per input, written atomically when the input is done:
    ``<stem>.labels.txt`` (Audacity) or ``<stem>.selections.txt`` (Raven), ``stem`` the input's file name without
    its extension (``-2``, ``-3``, … added when two inputs share a name). An input without events gets an empty
    label track or a table with only the header; a failed input gets no file (its error is told on stderr)."""

    SUFFIXES = {"audacity": ".labels.txt", "raven": ".selections.txt"}

    def __init__(self, directory: Path, fmt: str, sampling_rate: int, errors: IO[str] | None = None) -> None:
        self.directory = directory
        self.fmt = fmt
        self.sampling_rate = sampling_rate
        self.errors = errors
        self.names = UniqueStems()
        self.written: list[Path] = []

    def write_input(self, identity: dict[str, Any], records: list[dict[str, Any]]) -> Path | None:
        """Write the file of one input (its event records, or its error record); returns its path."""
        failed = [record for record in records if "error" in record]
        for record in failed:
            _tell_error(record, self.errors)
        if failed:
            return None
        target = self.directory / (self.names.stem(identity) + self.SUFFIXES[self.fmt])
        with atomic_output(target) as stream:
            if self.fmt == "audacity":
                writer: RecordWriter = AudacityWriter(stream, self.errors)
            else:
                writer = RavenWriter(stream, self.sampling_rate, with_path=False, errors=self.errors)
            for record in records:
                writer.write(record)
            writer.close()
        self.written.append(target)
        return target

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------------------------ embeddings
#: formats of ``embed``: JSON Lines (streamed) and the array files written when the run ends
EMBEDDING_FORMATS = ("jsonl", "npy", "npz", "parquet")


def write_embedding_arrays(records: Sequence[dict[str, Any]], target: Path, fmt: str, *, frame_vectors: bool) -> None:
    """Embedding records (errors left out) as an array file, atomically. ``frame_vectors``: the embeddings are frame
    vectors (``pooling="none"``: ``[T, D]`` or ``[L + 1, T, D]``, ``T`` differing between records).

    * ``npz`` — arrays ``embeddings`` (pooled: the records' embeddings stacked, ``[N, D]`` or ``[N, L + 1, D]``;
      frame vectors: concatenated along the frame axis, ``[ΣT, D]`` or ``[L + 1, ΣT, D]``), ``frames`` ``[N]`` (each
      record's frames along that axis, in order; 1 when pooled), ``paths`` (strings; empty for audio in memory),
      ``channels`` (``-1``: a mix), ``starts`` / ``ends`` (``NaN`` for whole files);
    * ``npy`` — the ``embeddings`` array alone, and beside it ``<name>.rows.csv`` with the columns
      ``path,channel,start,end,frames``, one row per record in order;
    * ``parquet`` — one row per record: ``path``, ``index``, ``channel``, ``start``, ``end``, ``layer`` (text),
      ``embedding`` (nested lists of float32), ``model``, ``revision``; needs pyarrow.
    """
    import numpy as np

    from audioclf.fileio import atomic_open

    rows = [record for record in records if "error" not in record]
    if fmt == "parquet":
        _write_embedding_parquet(rows, target)
        return
    arrays = [np.asarray(record["embedding"], dtype=np.float32) for record in rows]
    if not arrays:
        matrix, frames = np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64)
    elif frame_vectors:
        matrix = np.concatenate(arrays, axis=-2)
        frames = np.array([array.shape[-2] for array in arrays], dtype=np.int64)
    else:
        matrix, frames = np.stack(arrays), np.ones(len(arrays), dtype=np.int64)
    columns = {
        "paths": np.array([str(record.get("path", "")) for record in rows], dtype=np.str_),
        "channels": np.array([record.get("channel", -1) for record in rows], dtype=np.int64),
        "starts": np.array([record.get("start", np.nan) for record in rows], dtype=np.float64),
        "ends": np.array([record.get("end", np.nan) for record in rows], dtype=np.float64),
    }
    if fmt == "npz":
        with atomic_open(target, "wb") as stream:
            np.savez(stream, embeddings=matrix, frames=frames, **columns)
        return
    with atomic_open(target, "wb") as stream:
        np.save(stream, matrix)
    with atomic_open(target.with_name(target.name.removesuffix(".npy") + ".rows.csv")) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(("path", "channel", "start", "end", "frames"))
        for record, count in zip(rows, frames.tolist()):
            writer.writerow((record.get("path", ""), record.get("channel", ""), record.get("start", ""),
                             record.get("end", ""), count))


#: what to install for ``--format parquet``
PARQUET_HINT = "--format parquet needs pyarrow: pip install 'audioclf[parquet]'"


def import_pyarrow() -> Any:
    """``pyarrow`` (with ``pyarrow.parquet``), or :class:`~audioclf.errors.AudioclfError` saying what to install."""
    from audioclf.errors import AudioclfError

    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise AudioclfError(PARQUET_HINT) from None
    return pyarrow


def _write_embedding_parquet(rows: Sequence[dict[str, Any]], target: Path) -> None:
    import numpy as np

    from audioclf.fileio import atomic_path

    pa = import_pyarrow()
    depth = max((np.ndim(record["embedding"]) for record in rows), default=1)
    vector_type = pa.float32()
    for _ in range(depth):
        vector_type = pa.list_(vector_type)

    def column(name: str) -> list[Any]:
        return [record.get(name) for record in rows]

    table = pa.table({
        "path": pa.array(column("path"), pa.string()),
        "index": pa.array(column("index"), pa.int64()),
        "channel": pa.array(column("channel"), pa.int64()),
        "start": pa.array(column("start"), pa.float64()),
        "end": pa.array(column("end"), pa.float64()),
        "layer": pa.array([str(record["layer"]) for record in rows], pa.string()),
        "embedding": pa.array([np.asarray(record["embedding"]).tolist() for record in rows], vector_type),
        "model": pa.array(column("model"), pa.string()),
        "revision": pa.array(column("revision"), pa.string()),
    })
    with atomic_path(target) as temporary:
        pa.parquet.write_table(table, temporary)


def atomic_output(path: Path):
    """A text stream whose content replaces ``path`` only when the block ends without an exception."""
    from audioclf.fileio import atomic_open

    return atomic_open(path)
