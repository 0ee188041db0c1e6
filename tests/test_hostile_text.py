"""Nothing a file says reaches the terminal or a spreadsheet as code, and every option out of range is one line.

Labels come from a model's config.json and file names from the disk: both are data. Tables escape control
characters (:func:`audioclf.text.printable`), JSON escapes what JSON itself leaves raw (:func:`audioclf.text.json_text`),
csv/tsv cells that a spreadsheet would read as a formula get a leading ``'`` (:func:`audioclf.text.spreadsheet_cell`).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from audioclf.engine.records import read_record_file
from audioclf.text import from_spreadsheet_cell, json_text, printable, spreadsheet_cell
from hostile import CLIP, cli, model_copy, one_error_line

#: control characters that move the cursor, set the window title, overwrite a line, end a C string or reverse text
HOSTILE_LABELS = ["\x1b[31mred\x1b[0m", "\x1b]0;owned\x07", "over\rwrite", "nul\x00byte", "two\nlines", "csi\x9bJ",
                  "\u202eevil", "[/]", '=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)"]
FORMULAS = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)"]
#: what a terminal acts on: C0 controls other than the newline that ends a line, DEL, C1 controls, bidi overrides
_RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a model whose 12 labels are :data:`HOSTILE_LABELS`, a directory holding one clip with a hostile name)."""
    root = tmp_path_factory.mktemp("hostile-text")
    model = model_copy(root / "model", labels=HOSTILE_LABELS)
    inputs = root / "in"
    inputs.mkdir()
    shutil.copy(CLIP, inputs / "\x1b[2J\rclear.wav")
    return model, inputs


def test_the_sanitisers_round_trip_and_leave_no_control_character() -> None:
    for text in HOSTILE_LABELS:
        assert not _RAW_CONTROL.search(printable(text)) and "\n" not in printable(text)
        assert eval(f"'{printable(text)}'") == text  # an escape, not a deletion: the reader can tell what it was
        line = json_text({"label": text})
        assert "\n" not in line and not _RAW_CONTROL.search(line) and json.loads(line) == {"label": text}
        cell = spreadsheet_cell(text)
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) and from_spreadsheet_cell(cell) == text
    assert spreadsheet_cell("'quoted") == "''quoted" and from_spreadsheet_cell("''quoted") == "'quoted"
    with pytest.raises(ValueError):
        json_text({"score": float("nan")})


def test_a_table_shows_hostile_labels_and_names_escaped_one_row_each(hostile: tuple[Path, Path]) -> None:
    model, inputs = hostile
    result = cli("classify", "--model", str(model), str(inputs), "--format", "table", "--top-k", "0")
    assert result.exit_code == 0, result.stderr
    assert not _RAW_CONTROL.search(result.stdout) and not _RAW_CONTROL.search(result.stderr)
    for text in HOSTILE_LABELS + ["\x1b[2J\rclear.wav"]:
        assert printable(text) in result.stdout
    rows = [line for line in result.stdout.splitlines() if "│" in line and "path" not in line]
    assert len(rows) == len(HOSTILE_LABELS)  # one line per label: a newline inside a label does not add a row


def test_jsonl_keeps_labels_exactly_and_escapes_every_control(hostile: tuple[Path, Path]) -> None:
    model, inputs = hostile
    result = cli("classify", "--model", str(model), str(inputs), "--format", "jsonl", "--top-k", "0")
    assert result.exit_code == 0, result.stderr
    assert not _RAW_CONTROL.search(result.stdout)
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(item["label"] for item in record["labels"]) == sorted(HOSTILE_LABELS)
    assert record["path"] == str(inputs / "\x1b[2J\rclear.wav")


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_csv_and_tsv_cells_are_never_formulas_and_read_back_exactly(hostile: tuple[Path, Path], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    model, inputs = hostile
    monkeypatch.chdir(tmp_path)
    shutil.copy(CLIP, tmp_path / "=cmd.wav")  # a relative path that is a formula
    (tmp_path / "@broken.wav").write_bytes(b"RIFF\x00\x00")  # an error record whose path is one too
    target = tmp_path / f"out.{fmt}"
    result = cli("classify", "--model", str(model), "=cmd.wav", "@broken.wav", "--output", str(target),
                 "--top-k", "0")
    assert result.exit_code == 1, result.stderr
    with open(target, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream, delimiter="," if fmt == "csv" else "\t"))
    header, body = rows[0], rows[1:]
    texts = [row[header.index(name)] for row in body for name in ("path", "label", "error")]
    assert texts and not [cell for cell in texts if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert {row[header.index("path")] for row in body} == {"'=cmd.wav", "'@broken.wav"}
    assert {row[header.index("label")] for row in body} >= {"'" + formula for formula in FORMULAS}
    records = read_record_file(target, fmt)
    assert [record["path"] for record in records] == ["=cmd.wav", "@broken.wav"]
    assert sorted(item["label"] for item in records[0]["labels"]) == sorted(HOSTILE_LABELS)
    assert "error" in records[1]
    again = cli("classify", "--model", str(model), "=cmd.wav", "@broken.wav", "--output", str(target), "--resume",
                "--top-k", "0")
    assert again.exit_code == 1 and read_record_file(target, fmt) == records  # nothing duplicated or altered


def test_inspect_prints_markup_and_controls_as_text(hostile: tuple[Path, Path]) -> None:
    model, _ = hostile
    result = cli("inspect", str(model), "--format", "table")
    assert result.exit_code == 0, result.stderr
    assert "[/]" in result.stdout and "\\x1b]0;owned\\x07" in result.stdout
    assert not _RAW_CONTROL.search(result.stdout)


def test_an_error_message_naming_a_hostile_file_is_escaped(tmp_path: Path) -> None:
    missing = tmp_path / "\x1b]0;owned\x07.wav"
    result = cli("classify", str(missing), "--format", "jsonl")
    assert result.exit_code != 0 and not _RAW_CONTROL.search(result.stderr)


@pytest.mark.parametrize("option, value", [("--threads", "100000"), ("--threads", "-1"), ("--chunk", "1e308"),
                                           ("--chunk", "nan"), ("--chunk", "inf"), ("--window", "nan"),
                                           ("--hop", "1e308"), ("--batch-size", "0"), ("--min-score", "nan"),
                                           ("--max-batch-seconds", "inf")])
def test_options_out_of_range_are_one_line(option: str, value: str) -> None:
    args = ["classify", str(CLIP), option, value] + (["--window", "1"] if option == "--hop" else [])
    assert option.lstrip("-") in one_error_line(cli(*args))
