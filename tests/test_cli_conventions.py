"""Conventions every command follows, checked on every registered command (a new command is checked as soon as it
is registered): ``-h``, plain help text ending with real examples, flags shown as flags, choices declared as
choices, one meaning per short flag, the Hub options wherever a model is fetched, one-line usage errors."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from typing import Any, get_args

import pytest
import typer
from typer.testing import CliRunner

from audioclf.cli import app
from audioclf.cli._options import SHORT_FLAGS

ROOT = typer.main.get_command(app)


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += _walk(sub, (*path, name))
    return found


COMMANDS = _walk(ROOT)
LEAVES = [(path, command) for path, command in COMMANDS if not hasattr(command, "commands")]


def _help(path: tuple[str, ...], flag: str = "-h") -> str:
    result = CliRunner().invoke(app, [*path, flag], env={"COLUMNS": "100", "NO_COLOR": "1"})
    assert result.exit_code == 0, (path, result.output)
    return result.stdout


def _options(command: Any) -> dict[str, Any]:
    """Every flag of ``command`` (``--format``, ``-f``) -> its parameter."""
    return {flag: param for param in command.params for flag in (*param.opts, *param.secondary_opts)
            if flag.startswith("-")}


def test_there_are_commands_to_check() -> None:
    assert {" ".join(path) for path, _ in LEAVES} >= {"classify", "download", "inspect", "convert", "env",
                                                      "cache list", "cache rm"}


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=lambda path: " ".join(path) or "audioclf")
def test_h_is_help_and_help_is_plain_text_ending_with_examples(path: tuple[str, ...]) -> None:
    text = _help(path)
    assert text == _help(path, "--help")
    assert text.startswith("Usage: audioclf")
    assert "<bool>" not in text and "╭" not in text  # flags as flags; no rich panels
    epilog = text.rstrip().split("Examples:")
    assert len(epilog) == 2, f"{path}: no examples at the end of the help"
    commands = [line.strip() for line in epilog[1].splitlines() if line.strip() and not line.strip().startswith("#")]
    assert len(commands) >= 2, path
    assert all(line.startswith(("audioclf", "find ")) for line in commands), commands


def test_every_example_names_a_real_command_and_real_options() -> None:
    """Each example line is parsed: its subcommand must exist, and each of its flags must be one of that
    subcommand's flags (so examples cannot drift from the options)."""
    by_path = {path: command for path, command in COMMANDS}
    checked = 0
    for path, _ in COMMANDS:
        epilog = _help(path).split("Examples:")[1]
        for line in epilog.splitlines():
            line = line.strip()
            for segment in line.split("|"):
                words = shlex.split(re.sub(r'[$()"]', " ", segment))  # $(audioclf ...) is checked too
                while "audioclf" in words:
                    words = words[words.index("audioclf") + 1:]
                    target: tuple[str, ...] = ()
                    while words and (*target, words[0]) in by_path:
                        target = (*target, words.pop(0))
                    if not target or words[:1] == ["COMMAND"]:
                        continue
                    flags = _options(by_path[target])
                    for word in words:
                        if word == "audioclf":
                            break
                        if word.startswith("-") and word != "-":
                            assert word in flags, f"example {line!r}: {' '.join(target)} has no {word}"
                    checked += 1
    assert checked >= 2 * len(LEAVES)


def _completions(line: str) -> set[str]:
    """What the shell would offer after ``line`` (fish's completion protocol, in this process)."""
    env = {"_AUDIOCLF_COMPLETE": "complete_fish", "_TYPER_COMPLETE_FISH_ACTION": "get-args",
           "_TYPER_COMPLETE_ARGS": line}
    result = CliRunner().invoke(app, [], env=env, prog_name="audioclf")
    return {entry.split("\t")[0] for entry in result.stdout.splitlines()}


@pytest.mark.parametrize("path,command", LEAVES, ids=[" ".join(path) for path, _ in LEAVES])
def test_booleans_are_flags_and_formats_are_choices(path: tuple[str, ...], command: Any) -> None:
    for param in command.params:
        if param.param_type_name == "option" and isinstance(param.default, bool):
            assert param.is_flag, (path, param.name)
    options = _options(command)
    if "--format" in options:
        assert options["-f"] is options["--format"]
        choices = _completions(f"audioclf {' '.join(path)} --format ")
        assert len(choices) >= 2 and choices & {"json", "jsonl"}, (path, choices)
        help_line = next(line for line in _help(path).splitlines() if line.strip().startswith("-f, --format"))
        assert set(help_line.split("<", 1)[1].split(">", 1)[0].split("|")) == choices, help_line


def test_one_meaning_per_short_flag_across_commands() -> None:
    meaning: dict[str, set[str]] = {}
    for path, command in LEAVES:
        for param in command.params:
            longs = [flag for flag in (*param.opts, *param.secondary_opts) if flag.startswith("--")]
            for flag in (*param.opts, *param.secondary_opts):
                if len(flag) == 2 and flag.startswith("-"):
                    meaning.setdefault(flag, set()).update(longs)
    meaning.setdefault("-h", set()).add("--help")
    assert all(len(longs) == 1 for longs in meaning.values()), meaning
    assert {flag: longs.pop() for flag, longs in meaning.items()} == {
        flag: long for flag, long in SHORT_FLAGS.items() if flag in meaning}
    assert "-r" in meaning and "--revision" not in {flag for _, c in LEAVES for flag in _options(c) if len(flag) == 2}


def test_commands_that_fetch_a_model_take_the_hub_options_and_progress_can_be_silenced() -> None:
    fetching = [path for path, command in LEAVES if any(param.name == "model" for param in command.params)]
    fetching.append(("download",))
    assert {("classify",), ("inspect",), ("download",)} <= set(fetching)
    by_path = dict(LEAVES)
    for path in fetching:
        assert {"--revision", "--token", "--cache-dir"} <= set(_options(by_path[path])), path
    for path in [("classify",), ("download",), ("convert",)]:  # the commands that show progress or notes
        assert {"-q", "--quiet"} <= set(_options(by_path[path])), path


def test_help_text_prints_brackets_and_exit_codes() -> None:
    text = " ".join(_help(("classify",)).split())
    assert "pip install 'audioclf[ray]'" in text
    assert "141 the reader of the output went away" in text
    assert "--from-tf" not in _help(("convert",))  # optional now, kept hidden for old scripts


def test_choices_match_what_the_library_accepts() -> None:
    from audioclf.cli import classify as command
    from audioclf.cli.output import FORMATS
    from audioclf.engine import ray
    from audioclf.engine.records import AGGREGATES
    from audioclf.engine.runner import ACTIVATIONS, BACKENDS, DEVICES, DTYPES
    from audioclf.cli._options import DEVICE_CHOICES, Precision
    from audioclf.cli.output import PER_INPUT_FORMATS

    assert get_args(command.Activation) == ACTIVATIONS
    assert get_args(Precision) == DTYPES
    assert get_args(command.Aggregate) == AGGREGATES
    assert get_args(command.Engine) == command.ENGINES
    assert get_args(command.Backend) == BACKENDS
    assert DEVICE_CHOICES == DEVICES
    assert _completions("audioclf classify --format ") == set(FORMATS) | set(PER_INPUT_FORMATS) | set(ray.FORMATS)


def test_usage_errors_are_one_line_and_exit_2() -> None:
    cases = [["classify", "--format", "xml", "a.wav"], ["classify", "--bogus"], ["cache", "rm"],
             ["classify", "--batch-size", "many", "a.wav"], ["inspect", "m", "--dtype", "x"]]
    for argv in cases:
        result = CliRunner().invoke(app, argv)
        lines = result.stderr.splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (argv, result.stderr)
        assert lines[0].endswith(f"(try 'audioclf {' '.join(argv[:2 if argv[0] == 'cache' else 1])} -h')"), lines
        assert result.stdout == ""


def test_help_and_completion_import_neither_torch_nor_numpy() -> None:
    code = """if True:
        import os, sys
        from typer.testing import CliRunner
        from audioclf.cli import app
        from audioclf.cli import _options
        runner = CliRunner()
        for argv in (["-h"], ["classify", "-h"], ["inspect", "-h"], ["env", "-h"], ["cache", "list", "-h"]):
            assert runner.invoke(app, argv).exit_code == 0, argv
        result = runner.invoke(app, [], env={"_AUDIOCLF_COMPLETE": "complete_zsh",
                                             "_TYPER_COMPLETE_ARGS": "audioclf classify --device "},
                               prog_name="audioclf")
        print("cuda" in result.stdout, "torch" in sys.modules, "numpy" in sys.modules)
    """
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert output.stdout.split() == ["True", "False", "False"], output.stderr
