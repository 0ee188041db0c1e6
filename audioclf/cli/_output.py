"""Output of the commands that print facts (``inspect``, ``cache list``): a table for people, JSON for programs.

Data never goes through rich markup: every table cell and title is a :class:`rich.text.Text`, so a label such as
``[/]`` or ``[bold]`` prints as written, and control characters in data are shown escaped (``\\x1b``) so they
cannot move the cursor or break a row (:func:`audioclf.text.printable`); JSON goes through
:func:`audioclf.text.json_text`. Colour follows rich's rules (none when piped or with ``NO_COLOR``).

Formats: ``table``; ``json`` (one JSON document: an object, or an array of records); ``jsonl`` (one record per
line); ``auto`` (a table on a terminal, the command's machine format otherwise). ``--json`` stays an alias of the
command's machine format.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from audioclf.errors import OptionError
from audioclf.text import json_text, printable

@dataclass(frozen=True)
class Column:
    header: str
    justify: str = "left"
    bold: bool = False


def choose_format(name: str | None, json_alias: bool, *, machine: str, allowed: Sequence[str],
                  default: str = "auto") -> str:
    """The concrete format for ``--format name`` (None: not given, so ``default``); ``--json`` gives ``machine``.
    ``allowed`` lists the formats the command writes besides ``auto``."""
    if json_alias:
        if name not in (None, "auto", machine):
            raise OptionError("format", f"{name} conflicts with --json (--format {machine})")
        return machine
    name = default if name is None else name
    if name == "auto":
        return "table" if sys.stdout.isatty() else machine
    if name not in allowed:
        raise OptionError("format", f"must be one of {', '.join(('auto', *allowed))}, got {name!r}")
    return name


def print_table(columns: Sequence[Column], rows: Iterable[Sequence[object]], *, title: str | None = None,
                show_header: bool = True) -> None:
    """A rich table on stdout; every cell is data (no markup)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(printable(title)) if title else None, title_justify="left", show_header=show_header,
                  **({} if show_header else {"box": None, "pad_edge": False}))
    for column in columns:
        table.add_column(Text(printable(column.header)), justify=column.justify, style="bold" if column.bold else None)
    for row in rows:
        table.add_row(*(Text(printable(cell)) for cell in row))
    Console(highlight=False).print(table)


def print_machine(data: Any, fmt: str) -> None:
    """``data`` as JSON on stdout: ``json`` writes it as one document, ``jsonl`` one line per item of a list."""
    items = data if fmt == "jsonl" else [data]
    sys.stdout.write("".join(json_text(item) + "\n" for item in items))
    sys.stdout.flush()
