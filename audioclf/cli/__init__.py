"""The ``audioclf`` command line: a Typer app with one module per command.

Startup stays cheap: no module imported here imports torch; commands import what they need when they run. Errors
become one line and an exit code in one place, :mod:`audioclf.cli._errors`. The conventions every command follows
(shared options, ``-h``, plain help text, examples at the end of each help) live in :mod:`audioclf.cli._options`;
a command is registered with ``app.command(epilog=EXAMPLES)``.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from audioclf.cli._errors import (
    CLICK_ERROR, EXIT_OK, EXIT_STATUS_HELP, HANDLED, pipe_closed, report, report_usage,
)
from audioclf.cli._options import CONTEXT_SETTINGS, examples


class _AudioclfGroup(TyperGroup):
    """The root command: whatever a command did not handle itself ends here with one line and an exit code
    (:func:`audioclf.cli._errors.report`), what Click finds on the command line too
    (:func:`audioclf.cli._errors.report_usage`), and a closed stdout with 141. The same for the console script and
    for ``CliRunner``."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        try:
            status = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except HANDLED as error:
            status = report(error)
        except typer.Abort:  # Ctrl-C or end of input at a prompt
            status = report(KeyboardInterrupt())
        except CLICK_ERROR as error:
            status = report_usage(error)
        except BrokenPipeError:
            status = pipe_closed()
        status = status if isinstance(status, int) else EXIT_OK
        if standalone_mode:
            sys.exit(status)
        return status


app = typer.Typer(
    cls=_AudioclfGroup,
    name="audioclf",
    help="Classify audio files with Wav2Vec2, HuBERT, SEW, SEW-D, UniSpeech, UniSpeechSat, AST and Whisper models.\n\n"
    + EXIT_STATUS_HELP,
    epilog=examples(
        ("audioclf classify recording.wav", "the bundled keyword model"),
        ("audioclf classify -m superb/hubert-large-superb-er -r clips/ -f csv -o out.csv", "a Hub model, a tree"),
        ("audioclf inspect audioclf/default", "what a model is"),
        ("audioclf env", "versions, device and paths for a bug report"),
        ("audioclf COMMAND -h", "help on one command"),
    ),
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    context_settings=CONTEXT_SETTINGS,
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
    from audioclf.cli import cache, classify, convert, download, embed, env, evaluate, export, inspect, segments, train

    app.command(epilog=classify.EXAMPLES)(classify.classify)
    app.command(epilog=embed.EXAMPLES)(embed.embed)
    app.command(epilog=segments.EXAMPLES)(segments.segments)
    app.command(epilog=train.EXAMPLES)(train.train)
    app.command(epilog=evaluate.EXAMPLES)(evaluate.evaluate)
    app.command(epilog=download.EXAMPLES)(download.download)
    app.command(epilog=inspect.EXAMPLES)(inspect.inspect)
    app.command(epilog=convert.EXAMPLES)(convert.convert)
    app.command(epilog=export.EXAMPLES)(export.export)
    app.command(epilog=env.EXAMPLES)(env.env)
    app.add_typer(cache.cache_app, name="cache")


_register_commands()


def main() -> None:
    """Console-script entry point (errors are handled by the root command, :class:`_AudioclfGroup`)."""
    app()
