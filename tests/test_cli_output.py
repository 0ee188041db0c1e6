"""Tables and JSON of ``inspect`` and ``cache list``: data is printed as written, never read as rich markup; flag
names in option errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import audioclf
from audioclf.cli import app
from audioclf.cli._errors import handles_errors
from audioclf.errors import OptionError

DEFAULT_MODEL = Path(audioclf.__file__).parent / "assets" / "default-model"
LABELS = ["[/]", "[bold]loud[/bold]", "[red]", "bell\x07", "tab\tand\nnewline", "plain"]


@pytest.fixture
def odd_labels(tmp_path) -> Path:
    """A model folder (config only) whose labels look like rich markup or hold control characters."""
    folder = tmp_path / "odd"
    folder.mkdir()
    config = json.loads((DEFAULT_MODEL / "config.json").read_text())
    config["id2label"] = {str(i): label for i, label in enumerate(LABELS)}
    config["label2id"] = {label: i for i, label in enumerate(LABELS)}
    (folder / "config.json").write_text(json.dumps(config))
    shutil.copyfile(DEFAULT_MODEL / "preprocessor_config.json", folder / "preprocessor_config.json")
    return folder


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "400", "NO_COLOR": "1"})


def test_inspect_table_prints_labels_literally(odd_labels):
    result = _invoke("inspect", str(odd_labels), "--format", "table")
    assert result.exit_code == 0, result.output
    labels_line = next(line for line in result.stdout.splitlines() if line.startswith("labels"))
    shown = labels_line.split(maxsplit=1)[1].strip()
    assert shown == "6: [/], [bold]loud[/bold], [red], bell\\x07, tab\\tand\\nnewline, plain"
    assert "\x07" not in result.stdout and "\x1b" not in result.stdout


@pytest.mark.parametrize("args", [["--json"], ["--format", "json"]])
def test_inspect_json_keeps_labels_as_they_are(odd_labels, args):
    result = _invoke("inspect", str(odd_labels), *args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["labels"] == LABELS


def test_format_errors_name_the_flag(odd_labels):
    bad = _invoke("inspect", str(odd_labels), "--format", "xml")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: Invalid value for '--format' / '-f': 'xml' is not one "
                                                        "of 'auto', 'table', 'json'.") and bad.stderr.count("\n") == 1
    both = _invoke("cache", "list", "--json", "--format", "table")
    assert both.exit_code == 2 and both.stderr == "error: --format table conflicts with --json (--format jsonl)\n"


def test_option_errors_are_told_with_the_flag():
    commands = typer.Typer()

    @commands.command()
    @handles_errors(flags={"output_format": "--format"})
    def run(option: str) -> None:
        raise OptionError(option, "must be 1 or more, got 0")

    runner = CliRunner()
    derived = runner.invoke(commands, ["batch_size"])
    assert derived.exit_code == 2 and derived.stderr == "error: --batch-size must be 1 or more, got 0\n"
    mapped = runner.invoke(commands, ["output_format"])
    assert mapped.exit_code == 2 and mapped.stderr == "error: --format must be 1 or more, got 0\n"
