"""The ``audioclf`` command line: a Typer app with one module per command.

Startup stays cheap: no module imported here imports torch; commands import what they need when they run.
"""

from __future__ import annotations

import sys

import typer

from audioclf.errors import AudioclfError

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="audioclf",
    help="Classify audio files with Wav2Vec2, HuBERT, SEW, SEW-D, UniSpeech and UniSpeechSat models.\n\n"
    "Exit status: 0 success, 1 some input failed, 2 usage error.",
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
    """Classify audio files with Wav2Vec2, HuBERT, SEW, SEW-D, UniSpeech and UniSpeechSat models."""


def _register_commands() -> None:
    from audioclf.cli.cache import cache_app
    from audioclf.cli.classify import classify
    from audioclf.cli.convert import convert
    from audioclf.cli.download import download
    from audioclf.cli.inspect import inspect

    app.command()(classify)
    app.command()(download)
    app.command()(inspect)
    app.command()(convert)
    app.add_typer(cache_app, name="cache")


_register_commands()


def fail(message: str, code: int = EXIT_SOME_FAILED) -> "typer.Exit":
    """Print ``error: message`` on stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def main() -> None:
    """Console-script entry point: runs the app, turning :class:`AudioclfError` into one line on stderr."""
    try:
        app()
    except AudioclfError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
