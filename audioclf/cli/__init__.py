"""The ``audioclf`` command line: a Typer app with one module per command.

Startup stays cheap: no module imported here imports torch; commands import what they need when they run. Errors
become one line and an exit code in one place, :mod:`audioclf.cli._errors`.
"""

from __future__ import annotations

import sys

import typer

from audioclf.cli._errors import EXIT_STATUS_HELP, HANDLED, report

app = typer.Typer(
    name="audioclf",
    help="Classify audio files with Wav2Vec2, HuBERT, SEW, SEW-D, UniSpeech, UniSpeechSat, AST and Whisper models.\n\n"
    + EXIT_STATUS_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        from audioclf import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", callback=_version_callback, is_eager=True),
) -> None:
    """Classify audio files with Wav2Vec2, HuBERT, SEW, SEW-D, UniSpeech, UniSpeechSat, AST and Whisper models."""


def _register_commands() -> None:
    from audioclf.cli.cache import cache_app
    from audioclf.cli.classify import classify
    from audioclf.cli.convert import convert
    from audioclf.cli.download import download
    from audioclf.cli.export import export
    from audioclf.cli.inspect import inspect

    app.command()(classify)
    app.command()(download)
    app.command()(inspect)
    app.command()(convert)
    app.command()(export)
    app.add_typer(cache_app, name="cache")


_register_commands()


def main() -> None:
    """Console-script entry point: runs the app; an error that a command did not handle goes through the same
    table (:func:`audioclf.cli._errors.report`) as those it did."""
    try:
        app()
    except HANDLED as error:
        sys.exit(report(error))
