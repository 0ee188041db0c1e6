"""Text that came from files (labels, file names, tensor names, error reasons) made safe for where it goes.

* :func:`printable` — for people (tables, messages on stderr): every character that is not printable (ESC, CR,
  NUL, BEL, newlines, C1 controls, bidirectional overrides, lone surrogates of undecodable file names) is written
  as its Python escape (``\\x1b``, ``\\n``, ``\\u202e``, ``\\udce9``), so data can neither drive the terminal nor
  break a table row.
* :func:`json_text` — for programs: JSON in which the characters above that JSON itself leaves raw (DEL, C1
  controls, line and paragraph separators, bidirectional controls, lone surrogates) are ``\\u`` escapes, so the
  text is valid UTF-8 whatever a file name held, and reads back to the same string (``json.loads`` turns
  ``"\\udce9"`` back into the surrogate that stands for the undecodable byte ``0xe9``). ``NaN`` and infinities are
  refused (``ValueError``): they are not JSON.
* :func:`spreadsheet_cell` / :func:`from_spreadsheet_cell` — csv/tsv text cells: a cell starting with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return would be a formula in a spreadsheet; it gets a leading ``'`` (the
  spreadsheet convention for "text", not shown), and so does a cell that already starts with ``'``, so reading
  back (removing one leading ``'``) gives the original exactly.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

__all__ = ["from_spreadsheet_cell", "json_text", "printable", "spreadsheet_cell"]

#: characters JSON leaves raw that must not reach a terminal or break a line-based reader, and lone surrogates
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
#: first characters that make a spreadsheet read a cell as a formula, and the quote that marks text
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def printable(text: object) -> str:
    """``str(text)`` with every non-printable character written as its Python escape (``\\n``, ``\\x1b``)."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in value)


def json_text(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as one line of JSON (UTF-8 text as such, unsafe characters escaped; see the module docstring).
    ``default`` turns what ``json`` cannot write itself into what it can (as :func:`json.dumps`)."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=default)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def spreadsheet_cell(text: str) -> str:
    """A csv/tsv text cell that no spreadsheet reads as a formula (see the module docstring)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def from_spreadsheet_cell(text: str) -> str:
    """The original text of a cell written by :func:`spreadsheet_cell`."""
    return text[1:] if text.startswith("'") else text
