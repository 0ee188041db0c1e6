"""Input expansion: command-line arguments and path lists → the ordered stream of files to classify.

Rules (the same for the CLI and for :func:`audioclf.classify`):

* an existing file is taken as is, whatever its extension (the decoder decides whether it is audio);
* an existing directory gives its audio files (extension in :data:`audioclf.audio.AUDIO_EXTENSIONS`, compared
  case-insensitively), sorted by name: only its direct entries, or the whole tree with ``recursive=True``.
  Hidden entries (names starting with ``.``) are skipped. A directory without audio files is an error item;
* an argument that does not exist but contains glob characters (``*``, ``?``, ``[``) is expanded here, so a
  quoted pattern works as well as one the shell expanded; ``**`` crosses directories with ``recursive=True``.
  Matches are sorted; matching directories are expanded as above. No match is an error item;
* ``-`` reads paths from standard input, one per line (NUL-separated with ``null_separated=True``);
  ``files_from`` reads them from a file the same way. Listed paths are taken literally: no glob or
  directory expansion, so a listed directory or missing file becomes an error record downstream;
* anything else (a missing path) is passed on and becomes an error record when it is opened.

Everything is lazy: paths are produced as they are found, so ``find … | audioclf classify -`` starts at once.
"""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator

from audioclf.audio.decode import has_audio_extension

__all__ = ["InputItem", "STDIN", "expand_inputs", "read_path_list"]

#: the argument that stands for "paths on standard input"
STDIN = "-"

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputItem:
    """One input: a path to classify, or (``error`` set) an argument that names no file to classify."""

    path: str
    error: str | None = None


def expand_inputs(
    arguments: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    files_from: str | os.PathLike[str] | None = None,
    null_separated: bool = False,
    stdin: IO[str] | None = None,
) -> Iterator[InputItem]:
    """Yield the files named by ``arguments`` (then by ``files_from``) in order, following the module rules."""
    for argument in arguments:
        text = os.fspath(argument)
        if text == STDIN:
            for line in read_path_list(stdin if stdin is not None else sys.stdin, null_separated):
                yield InputItem(line)
        else:
            yield from _expand_argument(text, recursive)
    if files_from is not None:
        if os.fspath(files_from) == STDIN:
            paths = read_path_list(stdin if stdin is not None else sys.stdin, null_separated)
            yield from (InputItem(path) for path in paths)
        else:
            with open(files_from, encoding="utf-8", errors="surrogateescape", newline="") as stream:
                yield from (InputItem(path) for path in read_path_list(stream, null_separated))


def read_path_list(stream: IO[str], null_separated: bool = False) -> Iterator[str]:
    """Paths from a text stream: one per line (``\\n`` or ``\\r\\n``), or NUL-separated; empty entries skipped."""
    if not null_separated:
        for line in stream:
            path = line.rstrip("\r\n")
            if path:
                yield path
        return
    pending = ""
    while True:
        data = stream.read(65536)
        if not data:
            break
        pending += data
        *complete, pending = pending.split("\0")
        yield from (path for path in complete if path)
    if pending:
        yield pending


def _expand_argument(text: str, recursive: bool) -> Iterator[InputItem]:
    path = Path(text)
    if path.is_dir():
        yield from _directory_items(text, recursive)
    elif path.exists() or not (_GLOB_CHARS & set(text)):
        yield InputItem(text)
    else:
        matches = sorted(glob.glob(os.path.expanduser(text), recursive=recursive))
        if not matches:
            yield InputItem(text, error="no files match this pattern")
        for match in matches:
            if os.path.isdir(match):
                yield from _directory_items(match, recursive)
            else:
                yield InputItem(match)


def _directory_items(directory: str, recursive: bool) -> Iterator[InputItem]:
    found = False
    for path in _audio_files(directory, recursive):
        found = True
        yield InputItem(path)
    if not found:
        where = "in this directory tree" if recursive else "directly in this directory (use --recursive for subdirectories)"
        yield InputItem(directory, error=f"no audio files {where}")


def _audio_files(directory: str, recursive: bool) -> Iterator[str]:
    """Audio files of ``directory`` sorted by name; subdirectories (when recursive) after the files, by name."""
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return
    subdirectories = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if not entry.is_symlink():  # symbolic links to directories are not followed (no cycles)
                subdirectories.append(entry.path)
        elif has_audio_extension(entry.name):
            yield entry.path
    if recursive:
        for subdirectory in subdirectories:
            yield from _audio_files(subdirectory, recursive)
