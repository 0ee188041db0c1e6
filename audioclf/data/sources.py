"""Inputs → the ordered stream of source items that the engine reads: files and in-memory audio.

**Paths** (the same rules for the CLI and for :func:`audioclf.classify`):

* an existing file is taken as is, whatever its extension (the decoder decides whether it is audio);
* an existing directory gives its audio files (extension in :data:`audioclf.audio.AUDIO_EXTENSIONS`, compared
  case-insensitively), sorted by name: only its direct entries, or the whole tree with ``recursive=True``.
  Hidden entries (names starting with ``.``) are skipped. A directory without audio files is an error item.
  Symbolic links to directories are followed, but no directory is entered twice (a link cycle is not followed
  again, so a walk ends and lists each file once); a symbolic link that cannot be resolved (a loop) is an error
  item, and so is a subdirectory that cannot be listed;
* an argument that does not exist but contains glob characters (``*``, ``?``, ``[``) is expanded here, so a
  quoted pattern works as well as one the shell expanded; ``**`` crosses directories with ``recursive=True``
  (each directory once, as above).
  Matches are sorted; matching directories are expanded as above. No match is an error item;
* ``-`` reads paths from standard input, one per line (NUL-separated with ``null_separated=True``);
  ``files_from`` reads them from a file the same way. Listed paths are taken literally: no glob or
  directory expansion, so a listed directory or missing file becomes an error record downstream;
* anything else (a missing path) is passed on and becomes an error record when it is opened;
* URIs (``s3://``, ``gs://``, ``file://``, …; :func:`expand_uri_inputs`, for the Ray engine) are expanded through
  pyarrow's filesystems by the same rules.

**In-memory audio** (:func:`source_items`, for the Python API): a numpy array (or torch tensor) with the
``sampling_rate`` argument, an ``(array, sampling_rate)`` pair, or a ``{"array", "sampling_rate"}`` dict (the
Hugging Face ``datasets`` audio format; a ``"path"`` key is optional and carried into the records). A 1-D array is
one mono item, a 2-D array one item of ``[frames, channels]`` (like ``soundfile``); a list of them is many items.
A dict is always one item. Such items are identified by ``index``, their position in the input, instead of a path.

Everything is lazy: items are produced as they are found, so ``find … | audioclf classify -`` starts at once.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from audioclf.audio.decode import ArraySource, AudioSource, BlockSource, has_audio_extension
from audioclf.data.failures import one_line
from audioclf.errors import AudioclfError

__all__ = [
    "STDIN",
    "SourceItem",
    "expand_inputs",
    "expand_uri_inputs",
    "filesystem",
    "is_uri",
    "local_copy",
    "read_path_list",
    "source_items",
]

#: the argument that stands for "paths on standard input"
STDIN = "-"

_GLOB_CHARS = frozenset("*?[")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class SourceItem:
    """One input: a file (``path``) or audio in memory (``samples`` at ``sampling_rate``, numbered ``index``).

    ``error`` set: the input cannot be classified (a pattern without matches, an array without a sampling rate);
    it becomes an error record. A dict input with a ``"path"`` has both ``path`` and ``index``.
    """

    path: str | None = None
    index: int | None = None
    samples: Any = field(default=None, compare=False, repr=False)
    sampling_rate: int | None = None
    error: str | None = None

    @property
    def in_memory(self) -> bool:
        return self.index is not None

    @property
    def label(self) -> str:
        """How messages name the input: its path, or ``input N`` for audio in memory."""
        return f"input {self.index}" if self.in_memory else str(self.path)

    def identity(self) -> dict[str, Any]:
        """The fields that tell a record's input: ``{"path"}``, ``{"index"}``, or both (a dict with a path)."""
        found: dict[str, Any] = {}
        if self.path is not None:
            found["path"] = self.path
        if self.index is not None:
            found["index"] = self.index
        return found

    def open(self, local_path: str | None = None) -> BlockSource:
        """Probe the input: an :class:`AudioSource` for a file (read from ``local_path`` when given: a local copy of
        a URI), an :class:`ArraySource` for audio in memory. Raises :class:`~audioclf.errors.AudioError`."""
        if self.in_memory:
            return ArraySource(self.samples, self.sampling_rate, self.label)
        return AudioSource(local_path or str(self.path))


# ----------------------------------------------------------------------------------------------------- paths
def expand_inputs(
    arguments: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    files_from: str | os.PathLike[str] | None = None,
    null_separated: bool = False,
    stdin: IO[str] | None = None,
) -> Iterator[SourceItem]:
    """Yield the files named by ``arguments`` (then by ``files_from``) in order, following the module rules."""
    for argument in arguments:
        text = os.fspath(argument)
        if text == STDIN:
            for line in read_path_list(stdin if stdin is not None else sys.stdin, null_separated):
                yield SourceItem(line)
        else:
            yield from _expand_argument(text, recursive)
    if files_from is not None:
        if os.fspath(files_from) == STDIN:
            paths = read_path_list(stdin if stdin is not None else sys.stdin, null_separated)
            yield from (SourceItem(path) for path in paths)
        else:
            with open(files_from, encoding="utf-8", errors="surrogateescape", newline="") as stream:
                yield from (SourceItem(path) for path in read_path_list(stream, null_separated))


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


def _expand_argument(text: str, recursive: bool) -> Iterator[SourceItem]:
    path = Path(text)
    if path.is_dir():
        yield from _directory_items(text, recursive)
    elif path.exists() or path.is_symlink() or not (_GLOB_CHARS & set(text)):
        yield SourceItem(text)
    else:
        pattern = os.path.expanduser(text)
        matches = sorted(_recursive_glob(pattern) if recursive and "**" in pattern else glob.glob(pattern))
        if not matches:
            yield SourceItem(text, error="no files match this pattern")
        for match in matches:
            if os.path.isdir(match):
                yield from _directory_items(match, recursive)
            else:
                yield SourceItem(match)


def _directory_items(directory: str, recursive: bool) -> Iterator[SourceItem]:
    found = False
    for item in _audio_files(directory, recursive, set()):
        found = True
        yield item
    if not found:
        yield SourceItem(directory, error=_no_audio_files(recursive))


def _no_audio_files(recursive: bool) -> str:
    where = "in this directory tree" if recursive else "directly in this directory (use --recursive for subdirectories)"
    return f"no audio files {where}"


def _directory_key(path: str) -> tuple[int, int] | None:
    """``(device, inode)`` of a directory (links followed), None when it cannot be read."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _is_directory(entry: os.DirEntry) -> bool:
    """``entry.is_dir()``, False for a link that cannot be resolved (a loop raises there)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _sorted_entries(directory: str) -> list[os.DirEntry]:
    """The entries of ``directory`` by name, hidden ones (``.name``) left out; raises ``OSError``."""
    with os.scandir(directory) as entries:
        return sorted((entry for entry in entries if not entry.name.startswith(".")), key=lambda entry: entry.name)


def _audio_files(directory: str, recursive: bool, visited: set[tuple[int, int]]) -> Iterator[SourceItem]:
    """Audio files of ``directory`` sorted by name; subdirectories (when recursive) after the files, by name; no
    directory entered twice (``visited``: ``(device, inode)`` of those entered)."""
    key = _directory_key(directory)
    if key is not None:
        if key in visited:
            return
        visited.add(key)
    try:
        entries = _sorted_entries(directory)
    except OSError as error:
        yield SourceItem(directory, error=f"cannot list this directory ({error.strerror or error})")
        return
    subdirectories = []
    for entry in entries:
        if _is_directory(entry):
            subdirectories.append(entry.path)
        elif has_audio_extension(entry.name):
            yield _file_item(entry)
    if recursive:
        for subdirectory in subdirectories:
            yield from _audio_files(subdirectory, recursive, visited)


def _file_item(entry: os.DirEntry) -> SourceItem:
    """The item of a file found in a directory: an error item for a symbolic link that cannot be resolved."""
    if entry.is_symlink():
        try:
            os.stat(entry.path)
        except OSError as error:
            return SourceItem(entry.path, error=f"cannot open ({error.strerror or error})")
    return SourceItem(entry.path)


def _recursive_glob(pattern: str) -> Iterator[str]:
    """The files matching a pattern with ``**`` (any number of directories, none included), as :func:`glob.glob`
    with ``recursive=True`` matches them, but entering each directory once (a symbolic-link cycle is not followed
    again). As with glob, wildcards do not match names starting with ``.``."""
    parts = pattern.split(os.sep)
    fixed = next(k for k, part in enumerate(parts) if _GLOB_CHARS & set(part))
    base = os.sep.join(parts[:fixed]) or (os.sep if pattern.startswith(os.sep) else os.curdir)
    rest = parts[fixed:]
    visited: set[tuple[int, int]] = set()

    def walk(directory: str, names: list[str]) -> Iterator[str]:
        key = _directory_key(directory)
        if key is None or key in visited:
            return
        visited.add(key)
        try:
            entries = _sorted_entries(directory)
        except OSError:
            return
        for entry in entries:
            if _is_directory(entry):
                yield from walk(entry.path, names + [entry.name])
            elif _path_matches(names + [entry.name], rest):
                yield entry.path if fixed else os.path.join(*names, entry.name)

    yield from walk(base, [])


def _path_matches(names: list[str], parts: list[str]) -> bool:
    """Whether path components ``names`` match pattern components ``parts`` (``**``: zero or more components)."""
    if not parts:
        return not names
    if parts[0] == "**":
        return any(_path_matches(names[k:], parts[1:]) for k in range(len(names) + 1))
    return bool(names) and fnmatch.fnmatchcase(names[0], parts[0]) and _path_matches(names[1:], parts[1:])


# ------------------------------------------------------------------------------------------------------ URIs
def is_uri(text: str) -> bool:
    """True for ``scheme://…`` (``s3://bucket/key``, ``file:///data``)."""
    return bool(_URI.match(text))


def filesystem(location: str) -> tuple[Any, str]:
    """``(pyarrow filesystem, path in it)`` for a URI or a local path; :class:`AudioclfError` when the filesystem
    cannot be opened (unknown scheme, missing credentials)."""
    import pyarrow.fs as pafs

    if not is_uri(location):
        return pafs.LocalFileSystem(), os.path.abspath(location)
    try:
        return pafs.FileSystem.from_uri(location)
    except Exception as error:
        raise AudioclfError(f"{location}: cannot open this filesystem ({one_line(error)})") from None


def expand_uri_inputs(arguments: Iterable[str], *, recursive: bool = False, files_from: str | None = None,
                      null_separated: bool = False) -> Iterator[SourceItem]:
    """:func:`expand_inputs`, plus URIs of any filesystem pyarrow reads (``file://``, ``s3://``, ``gs://``,
    ``hdfs://``, …): a directory URI gives its audio files (sorted; the whole tree with ``recursive``), a URI with
    glob characters its matches, any other URI is taken as a file. Needs pyarrow for URIs only."""
    for argument in arguments:
        text = os.fspath(argument)
        if is_uri(text):
            yield from _expand_uri(text, recursive)
        else:
            yield from expand_inputs([text], recursive=recursive)
    if files_from is not None:
        yield from expand_inputs([], files_from=files_from, null_separated=null_separated)


def _expand_uri(uri: str, recursive: bool) -> Iterator[SourceItem]:
    import pyarrow.fs as pafs

    try:
        fs, path = filesystem(uri)
        info = fs.get_file_info(path)
    except AudioclfError as error:
        yield SourceItem(uri, error=str(error).removeprefix(f"{uri}: "))
        return
    except Exception as error:
        yield SourceItem(uri, error=f"cannot read ({one_line(error)})")
        return
    prefix = uri[: uri.index("://") + 3]  # joined with a filesystem path it gives a URI again
    if info.type == pafs.FileType.Directory:
        found = sorted(entry.path for entry in fs.get_file_info(pafs.FileSelector(path, recursive=recursive))
                       if entry.type == pafs.FileType.File and has_audio_extension(entry.path)
                       and not any(part.startswith(".") for part in entry.path[len(path):].split("/")))
        if not found:
            yield SourceItem(uri, error=_no_audio_files(recursive))
        yield from (SourceItem(prefix + entry) for entry in found)
    elif info.type == pafs.FileType.NotFound and _GLOB_CHARS & set(path):
        parts = path.split("/")
        fixed = next(k for k, part in enumerate(parts) if _GLOB_CHARS & set(part))
        base = "/".join(parts[:fixed]) or "/"
        deep = recursive or len(parts) - fixed > 1
        try:
            entries = fs.get_file_info(pafs.FileSelector(base, recursive=deep, allow_not_found=True))
        except Exception as error:
            yield SourceItem(uri, error=f"cannot list {base} ({one_line(error)})")
            return
        matches = sorted(entry.path for entry in entries
                         if entry.type == pafs.FileType.File and fnmatch.fnmatchcase(entry.path, path))
        if not matches:
            yield SourceItem(uri, error="no files match this pattern")
        yield from (SourceItem(prefix + match) for match in matches)
    else:
        yield SourceItem(uri)


@contextmanager
def local_copy(path: str) -> Iterator[str | None]:
    """A local path holding the bytes of ``path``: ``None`` for a local path (read it in place), the filesystem
    path for ``file://``, else a temporary copy (same extension, removed afterwards)."""
    if not is_uri(path):
        yield None
        return
    import pyarrow.fs as pafs

    fs, inner = filesystem(path)
    if isinstance(fs, pafs.LocalFileSystem):
        yield inner
        return
    suffix = os.path.splitext(inner)[1]
    with tempfile.NamedTemporaryFile(suffix=suffix, prefix="audioclf-") as copy:
        with fs.open_input_stream(inner) as source:
            shutil.copyfileobj(source, copy, length=1 << 20)
        copy.flush()
        yield copy.name


# ------------------------------------------------------------------------------------------- the Python API
def source_items(inputs: Any, *, sampling_rate: int | None = None, recursive: bool = False) -> Iterator[SourceItem]:
    """The source items of the ``inputs`` argument of :func:`audioclf.classify` (see the module docstring).

    ``inputs``: a path, an in-memory item (array, pair, dict), a :class:`SourceItem`, or an iterable of those.
    ``sampling_rate``: the rate of bare arrays. An element that is none of these, or an array without a rate,
    becomes an error item.
    """
    if _is_single(inputs):
        inputs = [inputs]
    for position, value in enumerate(inputs):
        if isinstance(value, SourceItem):
            yield value
        elif isinstance(value, (str, os.PathLike)):
            yield from expand_inputs([value], recursive=recursive)
        else:
            yield _memory_item(value, position, sampling_rate)


def _is_single(value: Any) -> bool:
    return (isinstance(value, (str, os.PathLike, SourceItem, dict)) or _is_array(value) or _is_pair(value))


def _is_array(value: Any) -> bool:
    return hasattr(value, "__array__") and hasattr(value, "shape") and hasattr(value, "dtype")


def _is_pair(value: Any) -> bool:
    return (isinstance(value, tuple) and len(value) == 2 and _is_array(value[0])
            and isinstance(value[1], (int, float)) and not isinstance(value[1], bool))


def _memory_item(value: Any, index: int, sampling_rate: int | None) -> SourceItem:
    """One in-memory input as a :class:`SourceItem` numbered ``index`` (an error item when it is not audio)."""
    path = None
    if _is_pair(value):
        samples, rate = value
    elif isinstance(value, dict):
        if "array" not in value:
            return SourceItem(index=index, error="a dict input needs an \"array\" and a \"sampling_rate\"")
        samples, rate = value["array"], value.get("sampling_rate", sampling_rate)
        path = value.get("path") or None
        path = path if isinstance(path, str) else None
    elif _is_array(value):
        samples, rate = value, sampling_rate
    else:
        return SourceItem(index=index, error=f"not an input: a {type(value).__name__} (give a path, an array, an "
                                             "(array, sampling_rate) pair or an {\"array\", \"sampling_rate\"} dict)")
    if rate is None:
        return SourceItem(path, index, error="no sampling rate: pass sampling_rate=, an (array, sampling_rate) "
                                             "pair or a dict with \"sampling_rate\"")
    if isinstance(rate, float) and rate.is_integer():
        rate = int(rate)
    return SourceItem(path, index, samples=samples, sampling_rate=rate)
