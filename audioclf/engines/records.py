"""Reading back records that a run wrote, so that ``--resume`` can keep them and skip their inputs.

A record is the dict the engine yields (``{"path", ["channel"], ["start", "end"], "labels", "model",
["revision"]}`` or ``{"path", "error"}``). Files of the local engine (``--output FILE``) are read per format:

* ``jsonl`` / ``json`` — the records as written;
* ``csv`` / ``tsv`` — rows grouped back into records (consecutive rows of one path/channel/window, ranks 1, 2, …);
  the dicts keep the cells as text where the writer wrote text, so writing them again gives the same rows.

``table`` output cannot be read back.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable

from audioclf.errors import AudioclfError

__all__ = ["RESUMABLE_FORMATS", "done_paths", "read_record_file"]

RESUMABLE_FORMATS = ("jsonl", "json", "csv", "tsv")
_DELIMITED_COLUMNS = ["path", "channel", "start", "end", "rank", "label", "score", "error"]


def read_record_file(path: Path, fmt: str) -> list[dict[str, Any]]:
    """The records in a local output file of format ``fmt`` (one of :data:`RESUMABLE_FORMATS`).

    Raises :class:`AudioclfError` when the file cannot be read or does not hold records of that format.
    """
    if fmt not in RESUMABLE_FORMATS:
        raise AudioclfError(f"--resume cannot read {fmt} output back; use --format {', '.join(RESUMABLE_FORMATS)}")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AudioclfError(f"--resume: cannot read {path}: {error}") from None
    if fmt == "jsonl":
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                records.append(_record(_json(line, path, f"line {number}"), path, f"line {number}"))
        return records
    if fmt == "json":
        data = _json(text, path, "the file") if text.strip() else []
        if not isinstance(data, list):
            raise AudioclfError(f"--resume: {path} does not hold a JSON array of records")
        return [_record(item, path, f"element {k}") for k, item in enumerate(data)]
    return _delimited_records(text, path, "," if fmt == "csv" else "\t")


def done_paths(records: Iterable[dict[str, Any]]) -> set[str]:
    """The input paths that have records."""
    return {record["path"] for record in records}


def _json(text: str, path: Path, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise AudioclfError(f"--resume: {path}: {where} is not JSON ({error.msg})") from None


def _record(value: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("path"), str):
        raise AudioclfError(f"--resume: {path}: {where} is not a record (an object with a \"path\")")
    return value


def _delimited_records(text: str, path: Path, delimiter: str) -> list[dict[str, Any]]:
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    if not rows:
        return []
    if rows[0] != _DELIMITED_COLUMNS:
        raise AudioclfError(f"--resume: {path} does not start with the header {delimiter.join(_DELIMITED_COLUMNS)}")
    records: list[dict[str, Any]] = []
    key = None
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(_DELIMITED_COLUMNS):
            raise AudioclfError(f"--resume: {path}: row {number} has {len(row)} cells, not {len(_DELIMITED_COLUMNS)}")
        cells = dict(zip(_DELIMITED_COLUMNS, row))
        row_key = (cells["path"], cells["channel"], cells["start"], cells["end"])
        if cells["rank"] in ("", "1") or row_key != key:
            record: dict[str, Any] = {"path": cells["path"]}
            for name in ("channel", "start", "end"):
                if cells[name] != "":
                    record[name] = cells[name]
            if cells["error"]:
                record["error"] = cells["error"]
            else:
                record["labels"] = []
            records.append(record)
            key = row_key
        if cells["rank"] != "":
            try:
                score = float(cells["score"])
            except ValueError:
                raise AudioclfError(f"--resume: {path}: row {number} has a score that is not a number") from None
            records[-1].setdefault("labels", []).append({"label": cells["label"], "score": score})
    return records
