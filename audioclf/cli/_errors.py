"""The one error layer of the command line: each exception type maps to a one-line message and an exit code.

Every command is wrapped with :func:`handles_errors`, and :func:`audioclf.cli.main` passes whatever still escapes
through the same table, so a given error gives the same line and the same exit status whichever command hit it.
Library errors that name an argument (:class:`~audioclf.errors.OptionError`) are told with the command's flag
instead: ``batch_size`` becomes ``--batch-size`` unless the command maps the name to another flag.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable, Mapping, TypeVar

import typer

from audioclf.errors import AudioclfError, HubError, OptionError
from audioclf.text import printable

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: the exit codes, as every command's help states them
EXIT_STATUS_HELP = (
    "Exit status: 0 success; 1 the command ran but some of its work failed; 2 usage error, or nothing could be done "
    "(bad option, a model that cannot be fetched or loaded, a bad config); 130 interrupted."
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
            text = printable(message(error, flags))  # names from files never drive the terminal
            typer.echo(text if code == EXIT_INTERRUPTED else f"error: {text}", err=True)
            return code
    raise TypeError(f"no exit code for {type(error).__name__}") from error


def with_exit_status(help_text: str) -> str:
    """``help_text`` (a docstring) with :data:`EXIT_STATUS_HELP` as its last paragraph, unless it has one."""
    text = inspect.cleandoc(help_text)
    return text if "Exit status:" in text else f"{text}\n\n{EXIT_STATUS_HELP}".strip()


def handles_errors(flags: Mapping[str, str] | None = None) -> Callable[[Command], Command]:
    """Decorate a command so that the errors of :data:`ERROR_TABLE` end it with their line and exit code, and
    add :data:`EXIT_STATUS_HELP` to its help unless the docstring states the exit status itself.

    ``flags`` maps library argument names to this command's flags where the rule of :func:`flag_for` does not fit
    (``{"force_download": "--force"}``)."""

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def run_command(*args: object, **kwargs: object) -> object:
            try:
                return command(*args, **kwargs)
            except HANDLED as error:
                raise typer.Exit(report(error, flags)) from None

        run_command.__doc__ = with_exit_status(command.__doc__ or "")
        return run_command  # type: ignore[return-value]

    return decorate
