"""The conventions every command shares, in one place: option definitions, choice types, help settings, examples.

A command declares its parameters with these aliases instead of spelling out ``typer.Option(...)``, so that a flag
means the same everywhere::

    def embed(inputs: Inputs = None, model: Model = None, revision: Revision = None, token: Token = None,
              cache_dir: CacheDir = None, recursive: Recursive = False, output_format: Format[EmbedFormat] = "auto",
              output: Output = None, quiet: Quiet = False, device: Device = "auto", threads: Threads = None): ...

and is registered with ``app.command(epilog=EXAMPLES)`` where ``EXAMPLES = examples(("audioclf embed a.wav", "..."))``.

Short flags have one meaning across all commands (:data:`SHORT_FLAGS`): ``-m`` model, ``-r`` recursive, ``-f``
format, ``-o`` output, ``-q`` quiet, ``-y`` yes, ``-0`` NUL-separated lists, ``-h`` help. ``--revision`` has no short
flag. Options with a fixed set of values are declared as ``Literal`` types, so the help lists them, a wrong value
is a usage error and the shell completes them; free-form values with usual values (``--device cuda:1``) complete
those values without refusing others.

Help is rendered by Click's plain formatter (``rich_markup_mode=None``): text prints as written, square brackets
included (``pip install 'audioclf[ray]'``), boolean options show as flags. Nothing here imports torch or numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

__all__ = [
    "CONTEXT_SETTINGS", "SHORT_FLAGS", "BatchSize", "CacheDir", "Channels", "Device", "Dtype", "FilesFrom", "Format",
    "Hop", "Inputs", "MaxBatchSeconds", "Model", "Null", "Output", "Quiet", "Recursive", "Revision", "Threads",
    "Token", "Window", "Yes", "examples",
]

#: given to the root app; every command and group inherits it (``-h`` works wherever ``--help`` does)
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: the one meaning of each short flag, for every command
SHORT_FLAGS = {
    "-0": "--null", "-f": "--format", "-h": "--help", "-m": "--model", "-o": "--output", "-q": "--quiet",
    "-r": "--recursive", "-y": "--yes",
}

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _complete_devices(incomplete: str) -> list[str]:
    return [device for device in DEVICE_CHOICES if device.startswith(incomplete)]


Inputs = Annotated[
    Optional[list[str]],
    typer.Argument(help="Files, directories, glob patterns, or - (paths on stdin).", metavar="INPUT",
                   show_default=False),
]
Model = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Model directory, weights file or Hub id (default: the built-in model).",
                 show_default=False),
]
Revision = Annotated[
    Optional[str],
    typer.Option("--revision", help="Hub revision of the model: branch, tag or commit (default: main).",
                 show_default=False),
]
Token = Annotated[
    Optional[str],
    typer.Option("--token", help="Hub access token for private models (default: HF_TOKEN or the saved login).",
                 show_default=False),
]
CacheDir = Annotated[
    Optional[Path],
    typer.Option("--cache-dir", help="Hub cache folder (default: HF_HUB_CACHE, or HF_HOME/hub).", show_default=False),
]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Descend into subdirectories.")]
Output = Annotated[
    Optional[str],
    typer.Option("--output", "-o", help="Write the results to this file (atomically) instead of stdout.",
                 show_default=False),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, notes or summary on stderr.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Device = Annotated[
    str,
    typer.Option("--device", help="auto | cpu | cuda | cuda:N | mps (auto: cuda when available).",
                 autocompletion=_complete_devices),
]
Threads = Annotated[
    Optional[int],
    typer.Option("--threads", help="CPU threads of the model (default: the runtime's choice, one per core).",
                 show_default=False),
]

Precision = Literal["float32", "bfloat16", "float16"]
Dtype = Annotated[Precision, typer.Option("--dtype", help="Model precision.")]


def _complete_channels(incomplete: str) -> list[str]:
    return [name for name in ("mix", "first", "each", "0", "1") if name.startswith(incomplete)]


# the options of every command that streams audio through a model (classify, embed)
FilesFrom = Annotated[
    Optional[Path],
    typer.Option("--files-from", help="Read input paths from this file (one per line; - for stdin).",
                 show_default=False),
]
Null = Annotated[bool, typer.Option("-0", "--null", help="Path lists (stdin, --files-from) are NUL-separated.")]
Channels = Annotated[
    str,
    typer.Option("--channels", help="mix | first | N (0-based) | each (one record per channel).",
                 autocompletion=_complete_channels),
]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Most segments per model call.")]
MaxBatchSeconds = Annotated[
    Optional[float],
    typer.Option("--max-batch-seconds", help="Most padded audio per model call, in seconds (default: 32 on CPU, 320 "
                 "on GPU).", show_default=False),
]
Window = Annotated[
    Optional[float], typer.Option("--window", help="One record per window of this many seconds.", show_default=False)
]
Hop = Annotated[
    Optional[float],
    typer.Option("--hop", help="Seconds between window starts (default: --window).", show_default=False),
]


class _FormatAlias:
    """``Format[Choices]``: the ``--format/-f`` option over a ``Literal`` of format names. ``auto`` (a table on a
    terminal, the command's machine format when piped), where a command offers it, is its default."""

    def __getitem__(self, choices: Any) -> Any:
        return Annotated[
            choices,
            typer.Option("--format", "-f", help="Output format (auto: a table on a terminal, machine-readable when "
                                                "piped).", case_sensitive=False),
        ]


Format = _FormatAlias()


def examples(*commands: tuple[str, str]) -> str:
    """The help epilog of a command: ``(command line, what it does)`` pairs, each shown as a ``# comment`` line
    above its command, so that the commands can be copied as they are. ``\\b`` keeps Click from rewrapping them."""
    lines = []
    for command, comment in commands:
        lines += [f"  # {comment}"] if comment else []
        lines.append(f"  {command}")
    return "Examples:\n\n\b\n" + "\n".join(lines)
