"""The record schema: validation, the Parquet schema derived from it, and reading records back for --resume from every
format the CLI writes (paths with line breaks, quotes, delimiters and Unicode line separators included)."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pytest

from audioclf.cli.output import open_writer
from audioclf.engine.records import (
    DELIMITED_COLUMNS,
    FIELDS,
    RESUMABLE_FORMATS,
    delimited_rows,
    parquet_schema,
    read_record_file,
    validate_record,
)
from audioclf.errors import AudioclfError

LABELS = [{"label": "yes", "score": 0.75}, {"label": "no", "score": 0.125}]
ODD_PATHS = ['two\nlines.wav', 'comma, "quotes"\tand tab.wav', "line\u2028separator\x85next.wav", "plain.wav"]


def records() -> list[dict]:
    """One record of every shape the engine writes for path inputs."""
    found = []
    for path in ODD_PATHS:
        found.append({"path": path, "labels": LABELS, "model": "m"})
    found += [
        {"path": "a.wav", "channel": 1, "start": 0.0, "end": 0.5, "labels": LABELS, "model": "m", "revision": "abc"},
        {"path": "a.wav", "channel": 1, "labels": [], "model": "m"},  # every label filtered out
        {"path": "bad\nfile.wav", "error": "no such file"},
    ]
    return found


@pytest.mark.parametrize("record", records() + [
    {"index": 3, "labels": LABELS, "model": "m"},
    {"path": "x.wav", "index": 0, "channel": 0, "labels": LABELS, "model": "m"},
    {"index": 2, "error": "contains NaN"},
])
def test_valid_records(record: dict) -> None:
    validate_record(record)


@pytest.mark.parametrize("record, problem", [
    ({"labels": LABELS, "model": "m"}, "neither a path nor an index"),
    ({"path": "a", "labels": LABELS}, "missing ['model']"),
    ({"path": "a", "labels": LABELS, "model": "m", "colour": 1}, "unknown ['colour']"),
    ({"path": "a", "start": 0.0, "labels": LABELS, "model": "m"}, "only one of start and end"),
    ({"path": "a", "labels": [{"label": "yes", "score": "high"}], "model": "m"}, "labels"),
    ({"path": "a", "labels": [{"label": "yes"}], "model": "m"}, "labels"),
    ({"path": "a", "channel": True, "labels": LABELS, "model": "m"}, "channel"),
    ({"path": "a", "start": 0, "end": 1, "labels": LABELS, "model": "m"}, "start"),
    ({"path": 3, "error": "x"}, "path"),
    ({"path": "a", "error": "x", "model": "m"}, "unknown ['model']"),
    ({"model": "m", "path": "a", "labels": LABELS}, "out of order"),
    (["path", "a"], "a dict"),
])
def test_invalid_records(record, problem: str) -> None:
    with pytest.raises(ValueError) as error:
        validate_record(record)
    assert problem in str(error.value)


def test_parquet_schema_has_every_field_typed() -> None:
    schema = parquet_schema()
    assert schema.names == list(FIELDS)
    assert schema.field("index").type == pa.int64() and schema.field("start").type == pa.float64()
    assert schema.field("labels").type == pa.list_(pa.struct([("label", pa.string()), ("score", pa.float64())]))
    table = pa.Table.from_pylist(records(), schema=schema)  # every record fits
    back = [{key: value for key, value in row.items() if value is not None} for row in table.to_pylist()]
    assert back == records()


def test_delimited_rows() -> None:
    record = records()[4]
    assert delimited_rows(record) == [["a.wav", 1, 0.0, 0.5, 1, "yes", "0.75", ""], ["a.wav", 1, 0.0, 0.5, 2, "no",
                                                                                       "0.125", ""]]
    assert delimited_rows({"path": "b", "error": "bad"}) == [["b", "", "", "", "", "", "", "bad"]]
    assert len(DELIMITED_COLUMNS) == len(delimited_rows(record)[0])


@pytest.mark.parametrize("fmt", RESUMABLE_FORMATS)
def test_what_the_writers_write_reads_back(fmt: str, tmp_path: Path) -> None:
    target = tmp_path / f"out.{fmt}"
    with open(target, "w", encoding="utf-8", newline="") as stream:
        writer = open_writer(fmt, stream)
        for record in records():
            writer.write(record)
        writer.close()
    back = read_record_file(target, fmt)
    assert [r["path"] for r in back] == [r["path"] for r in records()]
    if fmt in ("jsonl", "json"):
        assert back == records()
    else:  # cells stay text where the writer wrote text; writing them again gives the same file
        assert [r.get("labels") for r in back] == [r.get("labels") for r in records()]
        assert back[4]["channel"] == "1" and back[4]["start"] == "0.0" and back[-1]["error"] == "no such file"
        again = io.StringIO(newline="")
        writer = open_writer(fmt, again)
        for record in back:
            writer.write(record)
        writer.close()
        assert again.getvalue() == target.open(encoding="utf-8", newline="").read()


@pytest.mark.parametrize("fmt, content, problem", [
    ("jsonl", '{"path": "a", "error": "x"}\n{not json\n', "line 2 is not JSON"),
    ("jsonl", '["path"]\n', "line 1 is not a record"),
    ("json", '{"path": "a"}', "does not hold a JSON array"),
    ("csv", "path,label\n", "does not start with the header"),
    ("csv", ",".join(DELIMITED_COLUMNS) + "\na.wav,,,,1,yes\n", "row 2 has 6 cells"),
    ("tsv", "\t".join(DELIMITED_COLUMNS) + "\na.wav\t\t\t\t1\tyes\tlots\t\n", "score that is not a number"),
    ("table", "", "cannot read table output back"),
])
def test_unreadable_record_files_are_one_line_errors(fmt: str, content: str, problem: str, tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text(content)
    with pytest.raises(AudioclfError) as error:
        read_record_file(target, fmt)
    assert problem in str(error.value) and "\n" not in str(error.value)
