"""The one error layer of the command line: each exception type maps to a one-line message and an exit code.

Every command is wrapped with :func:`handles_errors`, and :func:`audioclf.cli.main` passes whatever still escapes
through the same table, so a given error gives the same line and the same exit status whichever command hit it.
Library errors that name an argument (:class:`~audioclf.errors.OptionError`) are told with the command's flag
instead: ``batch_size`` becomes ``--batch-size`` unless the command maps the name to another flag. What Click
finds while parsing (unknown option, a value not among the choices) is one line too (:func:`report_usage`), and a
closed stdout (``| head -1``) ends any command quietly with 141 (:func:`pipe_closed`).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from typing import Callable, Mapping, TypeVar

import typer

from audioclf.errors import AudioclfError, HubError, OptionError

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE: the status a shell shows for a program stopped by a closed pipe (``| head -1``)
EXIT_PIPE_CLOSED = 141

#: the exit codes, as every command's help states them
EXIT_STATUS_HELP = (
    "Exit status: 0 success; 1 the command ran but some of its work failed; 2 usage error, or nothing could be done "
    "(bad option, a model that cannot be fetched or loaded, a bad config); 130 interrupted; 141 the reader of the "
    "output went away (a closed pipe, as in | head -1)."
)


class UsageError(AudioclfError):
    """A problem with the command line that the command itself found (options that conflict, a missing --yes)."""


Command = TypeVar("Command", bound=Callable[..., object])


def flag_for(option: str, flags: Mapping[str, str] | None = None) -> str:
    """The command-line flag of a library argument: from ``flags`` if listed there, else ``--`` + the name with
    dashes (``batch_size`` -> ``--batch-size``)."""
    if flags and option in flags:
        return flags[option]
    return "--" + option.replace("_", "-")


def _option_message(error: BaseException, flags: Mapping[str, str] | None) -> str:
    assert isinstance(error, OptionError)
    return error.for_flag(flag_for(error.option, flags))


#: (exception type, exit code, one-line message), most specific first
ERROR_TABLE: tuple[tuple[type[BaseException], int, Callable[[BaseException, Mapping[str, str] | None], str]], ...] = (
    (OptionError, EXIT_USAGE, _option_message),
    (HubError, EXIT_USAGE, lambda error, flags: str(error)),
    (AudioclfError, EXIT_USAGE, lambda error, flags: str(error)),
    (KeyboardInterrupt, EXIT_INTERRUPTED, lambda error, flags: "interrupted"),
)
HANDLED = tuple(kind for kind, _, _ in ERROR_TABLE)


def report(error: BaseException, flags: Mapping[str, str] | None = None) -> int:
    """Print ``error``'s line on stderr (``error: <message>``, or ``interrupted``) and return its exit code.
    ``error`` must be an instance of one of the :data:`HANDLED` types."""
    for kind, code, message in ERROR_TABLE:
        if isinstance(error, kind):
            text = message(error, flags)
            typer.echo(text if code == EXIT_INTERRUPTED else f"error: {text}", err=True)
            return code
    raise TypeError(f"no exit code for {type(error).__name__}") from error


def pipe_closed() -> int:
    """The reader of stdout went away (``| head -1``): point stdout at ``/dev/null``, so that nothing more is
    written and the flush at exit cannot fail, and return :data:`EXIT_PIPE_CLOSED`. Nothing is printed: the
    reader asked for no more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout already closed or not a file: nothing is left to flush there
        pass
    return EXIT_PIPE_CLOSED


def _click_exception(name: str) -> type[Exception]:
    """Click's exception class ``name`` (``UsageError``, ``ClickException``), found through the one Typer exports,
    so that this works whether Typer bundles Click or depends on it."""
    return next(kind for kind in typer.BadParameter.__mro__ if kind.__name__ == name)


#: errors of the command line itself (unknown option, bad value, missing argument), found by Click
CLICK_USAGE_ERROR = _click_exception("UsageError")
CLICK_ERROR = _click_exception("ClickException")


def report_usage(error: BaseException) -> int:
    """One line on stderr for an error Click found while parsing (``error: <message> (try '<command> -h')``) and
    its exit code (2 for usage errors). Running a group without a command still prints the group's help."""
    if type(error).__name__ == "NoArgsIsHelpError":  # `audioclf` or `audioclf cache` alone: the help, on stderr
        error.show()  # type: ignore[attr-defined]
        return EXIT_USAGE
    message = " ".join(error.format_message().split())  # type: ignore[attr-defined]
    message = message.replace("Value error, ", "")  # the prefix Typer's value conversion adds to choice errors
    context = getattr(error, "ctx", None)
    hint = f" (try '{context.command_path} -h')" if context is not None else ""
    typer.echo(f"error: {message}{hint}", err=True)
    return int(getattr(error, "exit_code", EXIT_USAGE))


def with_exit_status(help_text: str) -> str:
    """``help_text`` (a docstring) with :data:`EXIT_STATUS_HELP` as its last paragraph, unless it has one."""
    text = inspect.cleandoc(help_text)
    return text if "Exit status:" in text else f"{text}\n\n{EXIT_STATUS_HELP}".strip()


def handles_errors(flags: Mapping[str, str] | None = None) -> Callable[[Command], Command]:
    """Decorate a command so that the errors of :data:`ERROR_TABLE` end it with their line and exit code, a closed
    stdout ends it quietly with :data:`EXIT_PIPE_CLOSED`, and add :data:`EXIT_STATUS_HELP` to its help unless the
    docstring states the exit status itself.

    ``flags`` maps library argument names to this command's flags where the rule of :func:`flag_for` does not fit
    (``{"force_download": "--force"}``)."""

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def run_command(*args: object, **kwargs: object) -> object:
            try:
                return command(*args, **kwargs)
            except HANDLED as error:
                raise typer.Exit(report(error, flags)) from None
            except BrokenPipeError:
                raise typer.Exit(pipe_closed()) from None

        run_command.__doc__ = with_exit_status(command.__doc__ or "")
        return run_command  # type: ignore[return-value]

    return decorate
