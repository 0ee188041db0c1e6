"""Detection events: stretches of consecutive windows where a label scores at least a threshold.

:func:`window_events` is the one place events are made; ``classify --events``, ``segments`` and the timeline
pictures all call it. It is a pure function of window records (``classify`` with ``window``):

1. per input and channel, per label, consecutive windows whose score is at least ``threshold`` merge into one event
   from the first window's start to the last window's end, scored with the highest window score (a window that
   does not list the label counts as below the threshold);
2. events of one label that overlap or touch, or are separated by less than ``min_gap`` seconds, are joined (the
   higher score kept);
3. events shorter than ``min_duration`` seconds are dropped, and with ``labels`` only those labels are kept.

Events come per input and channel in time order (ties by label); error records pass through, records without a
time span (file aggregates) are ignored. An event record is ``{"path" | "index", ["channel"], "label", "start",
"end", "score", "model", ["revision"]}`` (:class:`~audioclf.engine.records.EventRecord`).

:func:`read_results` reads back what ``classify`` wrote (events or window records, JSON Lines / JSON / csv / tsv).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Collection, Iterable

from audioclf.engine.records import (
    DELIMITED_COLUMNS,
    error_record,
    read_record_file,
    record_head,
)
from audioclf.errors import AudioclfError, OptionError

__all__ = ["EVENT_COLUMNS", "event_rows", "events_of", "read_results", "validate_event_options", "window_events"]

#: columns of csv/tsv event output
EVENT_COLUMNS = ("path", "channel", "label", "start", "end", "score", "error")


def validate_event_options(threshold: float, min_gap: float = 0.0, min_duration: float = 0.0) -> None:
    """:class:`OptionError` for a threshold that is not a number, or a negative ``min_gap`` / ``min_duration``."""
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold)):
        raise OptionError("threshold", f"must be a number, got {threshold!r}")
    for name, value in (("min_gap", min_gap), ("min_duration", min_duration)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise OptionError(name, f"must be 0 or more seconds, got {value!r}")


def window_events(records: Iterable[dict[str, Any]], threshold: float, *, min_gap: float = 0.0,
                  min_duration: float = 0.0, labels: Collection[str] | None = None) -> list[dict[str, Any]]:
    """The events of window records (see the module docstring), error records passed through in place."""
    validate_event_options(threshold, min_gap, min_duration)
    found: list[dict[str, Any]] = []
    groups: dict[tuple, list[dict[str, Any]]] = {}  # (path, index, channel) -> its windows, in order of appearance

    def flush() -> None:
        for windows in groups.values():
            found.extend(events_of(windows, threshold, min_gap, min_duration, labels))
        groups.clear()

    for record in records:
        if "error" in record:
            flush()
            found.append(error_record(_identity(record), record["error"]))
        elif "start" in record and "labels" in record:
            groups.setdefault((record.get("path"), record.get("index"), record.get("channel")), []).append(record)
    flush()
    return found


def events_of(windows: list[dict[str, Any]], threshold: float, min_gap: float = 0.0, min_duration: float = 0.0,
              labels: Collection[str] | None = None) -> list[dict[str, Any]]:
    """The events of the window records of one input and channel (in time order)."""
    windows = sorted(windows, key=lambda record: float(record["start"]))
    names = sorted({item["label"] for record in windows for item in record["labels"]})
    events: list[dict[str, Any]] = []
    for name in names:
        if labels is not None and name not in labels:
            continue
        spans: list[list[float]] = []  # [start, end, score]
        previous_above = False
        for record in windows:
            score = next((float(item["score"]) for item in record["labels"] if item["label"] == name), None)
            above = score is not None and score >= threshold
            if above and previous_above:
                spans[-1][1] = max(spans[-1][1], float(record["end"]))
                spans[-1][2] = max(spans[-1][2], score)  # type: ignore[type-var]
            elif above:
                spans.append([float(record["start"]), float(record["end"]), score])  # type: ignore[list-item]
            previous_above = above
        joined: list[list[float]] = []
        for span in spans:
            if joined and (span[0] - joined[-1][1] <= 0 or span[0] - joined[-1][1] < min_gap):
                joined[-1][1] = max(joined[-1][1], span[1])
                joined[-1][2] = max(joined[-1][2], span[2])
            else:
                joined.append(span)
        first = windows[0]
        for start, end, score in joined:
            if end - start + 1e-9 >= min_duration:
                events.append(_event(first, name, start, end, score))
    events.sort(key=lambda event: (event["start"], event["label"]))
    return events


def _event(window: dict[str, Any], label: str, start: float, end: float, score: float) -> dict[str, Any]:
    channel = window.get("channel")
    record = record_head(_identity(window), None if channel in (None, "") else int(channel))
    record.update(label=label, start=round(start, 6), end=round(end, 6), score=score, model=window.get("model", ""))
    if window.get("revision"):
        record["revision"] = window["revision"]
    return record


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record[key] for key in ("path", "index") if key in record}


# ------------------------------------------------------------------------------------------------ csv / tsv
def event_rows(record: dict[str, Any]) -> list[list[Any]]:
    """The csv/tsv row of an event record (or of an error record) in :data:`EVENT_COLUMNS` order."""
    if "error" in record:
        return [[record.get("path", ""), "", "", "", "", "", record["error"]]]
    return [[record.get("path", ""), record.get("channel", ""), record["label"], record["start"], record["end"],
             repr(record["score"]), ""]]


def _events_from_delimited(text: str, source: Path, delimiter: str) -> list[dict[str, Any]]:
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    records: list[dict[str, Any]] = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(EVENT_COLUMNS):
            raise AudioclfError(f"{source}: row {number} has {len(row)} cells, not {len(EVENT_COLUMNS)}")
        cells = dict(zip(EVENT_COLUMNS, row))
        if cells["error"]:
            records.append({"path": cells["path"], "error": cells["error"]})
            continue
        try:
            record: dict[str, Any] = {"path": cells["path"]}
            if cells["channel"] != "":
                record["channel"] = int(cells["channel"])
            record.update(label=cells["label"], start=float(cells["start"]), end=float(cells["end"]),
                          score=float(cells["score"]))
        except ValueError:
            raise AudioclfError(f"{source}: row {number} has a channel, time or score that is not a number") from None
        records.append(record)
    return records


def read_results(path: str | Path) -> tuple[str, list[dict[str, Any]]]:
    """``(kind, records)`` from a file ``classify`` wrote: ``kind`` is ``"events"`` (``--events`` output) or
    ``"windows"`` (``--window`` records, with their ``start``/``end``); the format follows the extension (``.json``,
    ``.csv``, ``.tsv``; anything else is JSON Lines). Raises :class:`AudioclfError` for a file that holds neither."""
    source = Path(path)
    fmt = {".json": "json", ".csv": "csv", ".tsv": "tsv"}.get(source.suffix.lower(), "jsonl")
    if fmt in ("csv", "tsv"):
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise AudioclfError(f"cannot read {source}: {error}") from None
        delimiter = "," if fmt == "csv" else "\t"
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
        if tuple(header) == EVENT_COLUMNS:
            return "events", _events_from_delimited(text, source, delimiter)
        if tuple(header) != DELIMITED_COLUMNS:
            raise AudioclfError(f"{source} is not a {fmt} file written by audioclf classify (unknown header)")
    records = read_record_file(source, fmt)
    if any("label" in record for record in records):
        return "events", records
    if any("labels" in record and "start" in record for record in records) or all("error" in r for r in records):
        return "windows", records
    raise AudioclfError(f"{source} holds neither events nor window records (run classify with --window)")

