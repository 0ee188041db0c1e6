"""Files the package writes and the JSON files it reads, under one policy.

**Output targets** (:func:`output_target`, used by :func:`atomic_path` / :func:`atomic_open`, so by every
``--output`` of every command):

* a regular file, or a name that does not exist yet, is written atomically: the content goes to a temporary file
  beside the target (``.<name>.<random>.tmp``) that replaces it only when complete. An exception
  (``KeyboardInterrupt`` included), a full disk or a read-only directory removes the temporary file and leaves the
  old target as it was. A replaced file keeps its permission bits; a new one gets those of a plain ``open()``
  (``0666`` less the umask);
* a symbolic link is followed: the file it points to is replaced (atomically) and the link stays a link;
* a special file (``/dev/null``, a terminal, a FIFO, a device) is written directly, never replaced;
* a directory, a missing parent directory, or an unwritable place is refused with one line
  (:class:`~audioclf.errors.OutputError`).

While a target is written its lock file (``.<name>.lock``, ``flock``) is held, so two processes writing the same
file are told so (:class:`~audioclf.errors.OutputError`) instead of one silently losing the other's work; the holder
of the lock removes temporary files that killed writers left behind. :class:`Journal` is an append-and-flush log
beside a target that survives ``SIGKILL`` (records a long run has finished).

**JSON inputs** (:func:`read_json_file`): config files, preprocessor configs and shard indexes are read within the
size and nesting limits of :mod:`audioclf.limits`, and non-finite numbers (``NaN``, ``Infinity``) are refused.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

from audioclf.errors import AudioclfError, OutputError
from audioclf.limits import LIMITS, exceeds

__all__ = [
    "Journal",
    "OutputTarget",
    "atomic_open",
    "atomic_path",
    "locked_output",
    "output_target",
    "read_json_file",
    "write_text_atomic",
]


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


# ----------------------------------------------------------------------------------------------- output targets
@dataclass(frozen=True)
class OutputTarget:
    """Where an output goes: ``path`` as given, ``real`` the file actually written (a symbolic link resolved), and
    whether it is a ``special`` file (device, FIFO) written directly instead of replaced."""

    path: Path
    real: Path
    special: bool

    @property
    def directory(self) -> Path:
        return self.real.parent


def output_target(target: str | os.PathLike, *, directory: bool = False) -> OutputTarget:
    """Apply the output policy of the module docstring to ``target`` (nothing is written). Raises
    :class:`OutputError` for a directory (unless ``directory``: the output is a directory, such as a conversion's),
    a missing parent directory, or a socket."""
    path = Path(target)
    real = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        status = os.stat(real)
    except FileNotFoundError:
        status = None
    except OSError as error:  # a symbolic-link loop, a path through a file
        raise OutputError(f"cannot write {path}: {_reason(error)}") from None
    if status is not None and stat.S_ISDIR(status.st_mode) and not directory:
        raise OutputError(f"cannot write {path}: it is a directory (give a file name)")
    if status is not None and stat.S_ISSOCK(status.st_mode):
        raise OutputError(f"cannot write {path}: it is a socket")
    if status is not None and not stat.S_ISREG(status.st_mode) and not stat.S_ISDIR(status.st_mode):
        return OutputTarget(path, real, special=True)
    parent = real.parent if str(real.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: the directory {parent} does not exist")
    return OutputTarget(path, real, special=False)


# -------------------------------------------------------------------------------------------------------- locks
_held: dict[str, int] = {}  # lock path -> how many nested holders in this process
_held_guard = threading.Lock()


def _lock_path(real: Path) -> Path:
    return real.with_name(f".{real.name}.lock")


def _stale_temporaries(real: Path) -> list[Path]:
    """Temporary files of :func:`atomic_path` for ``real`` (``.<name>.<8 chars>.tmp``)."""
    pattern = re.compile(rf"^\.{re.escape(real.name)}\.[A-Za-z0-9_]{{8}}\.tmp$")
    try:
        names = os.listdir(real.parent if str(real.parent) else ".")
    except OSError:
        return []
    return [real.with_name(name) for name in names if pattern.match(name)]


@contextlib.contextmanager
def locked_output(target: str | os.PathLike, *, directory: bool = False) -> Iterator[OutputTarget]:
    """Hold the lock of ``target`` (see the module docstring) for the block; yields its :class:`OutputTarget`
    (``directory``: the output is a directory, see :func:`output_target`).

    Re-entrant within a process. Raises :class:`OutputError` when another process holds it. A special file is not
    locked. Temporary files a killed writer left behind are removed once the lock is held."""
    resolved = output_target(target, directory=directory)
    if resolved.special:
        yield resolved
        return
    lock = _lock_path(resolved.real)
    key = os.path.abspath(lock)
    with _held_guard:
        if _held.get(key):
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield resolved
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    handle = _acquire(lock, resolved.path)
    with _held_guard:
        _held[key] = 1
    try:
        for stale in _stale_temporaries(resolved.real):
            with contextlib.suppress(OSError):
                stale.unlink()
        yield resolved
    finally:
        with _held_guard:
            _held.pop(key, None)
        with contextlib.suppress(OSError):
            os.unlink(lock)  # while still holding it: a waiter re-checks the inode and retries
        os.close(handle)


def _acquire(lock: Path, shown: Path) -> int:
    """An open descriptor of ``lock`` holding an exclusive ``flock`` on the file the path names now."""
    for _ in range(100):
        try:
            handle = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise OutputError(f"cannot write {shown}: {_reason(error)}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(handle)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(f"another process is writing {shown} (it holds {lock.name}); wait for it to "
                                  "finish or choose another output") from None
            raise OutputError(f"cannot lock {shown}: {_reason(error)}") from None
        try:
            same = os.fstat(handle).st_ino == os.stat(lock).st_ino
        except OSError:
            same = False
        if same:
            return handle
        os.close(handle)  # the previous holder removed the file between our open and flock: take the new one
    raise OutputError(f"cannot lock {shown}: its lock file keeps changing")


# ------------------------------------------------------------------------------------------------ atomic writes
@contextlib.contextmanager
def _written(target: str | os.PathLike) -> Iterator[tuple[Path, bool]]:
    """``(path to write, special)`` for ``target``: a temporary file renamed onto the real target when the block
    succeeds, or a special file itself (``special``). Holds the target's lock meanwhile."""
    with locked_output(target) as resolved:
        if resolved.special:
            yield resolved.real, True
            return
        real = resolved.real
        try:
            mode = stat.S_IMODE(os.stat(real).st_mode)
        except OSError:
            mode = _default_mode()
        try:
            handle, temporary = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=resolved.directory)
        except OSError as error:
            raise OutputError(f"cannot write {resolved.path}: {_reason(error)}") from None
        os.close(handle)
        try:
            yield Path(temporary), False
            try:
                os.chmod(temporary, mode)
                os.replace(temporary, real)
            except OSError as error:
                raise OutputError(f"cannot write {resolved.path}: {_reason(error)}") from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """A path to write ``target``'s new content to, under the output policy: a temporary file that replaces the
    (real) target when the block succeeds, or a special file itself."""
    with _written(target) as (path, _special):
        yield path


class _OutputStream:
    """A file object whose write errors (full disk, quota, I/O) are one-line :class:`OutputError`\\ s naming the
    target; everything else is the wrapped stream's."""

    def __init__(self, stream: IO, shown: Path, special: bool) -> None:
        self._stream = stream
        self._shown = shown
        self._kept = "" if special else " (the old content is kept)"

    def _failed(self, error: OSError) -> OutputError:
        return OutputError(f"cannot write {self._shown}: {_reason(error)}{self._kept}")

    def write(self, data: Any) -> int:
        try:
            return self._stream.write(data)
        except OSError as error:
            raise self._failed(error) from None

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as error:
            raise self._failed(error) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """A stream (text ``"w"``, UTF-8, or binary ``"wb"``) whose content replaces ``target`` when the block succeeds,
    following the output policy. Text streams write lone surrogates (undecodable file names) back as the bytes they
    stand for (``surrogateescape``)."""
    text = "b" not in mode
    options: dict[str, Any] = {"encoding": "utf-8", "newline": "", "errors": "surrogateescape"} if text else {}
    with _written(target) as (path, special):
        try:
            raw = open(path, mode, **options)
        except OSError as error:
            raise OutputError(f"cannot write {target}: {_reason(error)}") from None
        stream = _OutputStream(raw, Path(target), special)
        try:
            yield stream  # type: ignore[misc]
            try:
                raw.flush()
                if not special:
                    os.fsync(raw.fileno())
                raw.close()
            except OSError as error:
                raise stream._failed(error) from None
        finally:
            if not raw.closed:
                with contextlib.suppress(OSError):
                    raw.close()


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    with atomic_open(target) as stream:
        stream.write(text)


# ------------------------------------------------------------------------------------------------------ journal
class Journal:
    """An append-only text log beside ``target`` (``.<name>.journal``): lines appended with :meth:`append` are
    flushed to the operating system at once (they survive the process being killed) and ``fsync``-ed at most every
    ``sync_seconds`` and on :meth:`close` (they survive a power loss from then on). :meth:`lines` reads the complete
    lines back; a line cut off by a crash is dropped."""

    def __init__(self, target: str | os.PathLike, sync_seconds: float = 1.0) -> None:
        real = output_target(target).real
        self.path = real.with_name(f".{real.name}.journal")
        self.shown = Path(target)
        self.sync_seconds = sync_seconds
        self._stream: IO[str] | None = None
        self._synced = 0.0

    def exists(self) -> bool:
        return self.path.is_file()

    def lines(self) -> list[str]:
        """The complete lines of the journal (without their ``\\n``), oldest first; ``[]`` when there is none."""
        try:
            with open(self.path, encoding="utf-8", errors="surrogateescape", newline="") as stream:
                text = stream.read()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise OutputError(f"cannot read {self.path}: {_reason(error)}") from None
        complete, _, _torn = text.rpartition("\n")
        return complete.split("\n") if complete else []

    def append(self, lines: list[str]) -> None:
        """Append ``lines`` (each without ``\\n``) and flush them."""
        try:
            if self._stream is None:
                self._stream = open(self.path, "a", encoding="utf-8", errors="surrogateescape", newline="")
                self._drop_torn_line()
            self._stream.write("".join(line + "\n" for line in lines))
            self._stream.flush()
            if time.monotonic() - self._synced >= self.sync_seconds:
                os.fsync(self._stream.fileno())
                self._synced = time.monotonic()
        except OSError as error:
            raise OutputError(f"cannot write {self.shown} (its journal {self.path.name}): {_reason(error)}") from None

    def _drop_torn_line(self) -> None:
        """Cut a line a crash left unfinished, so that appended lines start on a line of their own."""
        assert self._stream is not None
        size = self._stream.tell()
        if size == 0:
            return
        with open(self.path, "rb") as stream:
            data = stream.read()
        keep = data.rfind(b"\n") + 1
        if keep != size:
            os.truncate(self.path, keep)
            self._stream.seek(keep)

    def close(self) -> None:
        """Flush, sync and close (the lines written so far stay)."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.flush()
            os.fsync(stream.fileno())
            stream.close()
        except OSError as error:
            raise OutputError(f"cannot write {self.shown} (its journal {self.path.name}): {_reason(error)}") from None
        finally:
            if not stream.closed:
                with contextlib.suppress(OSError):
                    stream.close()

    def remove(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


# --------------------------------------------------------------------------------------------------- JSON input
def read_json_file(path: str | os.PathLike, error: type[AudioclfError], what: str = "") -> Any:
    """The parsed content of a JSON file, read within the limits ``json_bytes`` and ``json_depth``; every failure
    (missing, unreadable, too large, too deep, not JSON, non-finite numbers, numbers too long) is a one-line
    ``error`` naming the file. ``what`` names the file's role in messages (default: its path)."""
    path = Path(path)
    shown = what or str(path)
    limit = LIMITS["json_bytes"]
    try:
        with open(path, "rb") as stream:
            data = stream.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise error(f"{shown}: is a directory, not a JSON file") from None
    except OSError as failure:
        raise error(f"{shown}: cannot read ({_reason(failure)})") from None
    too_large = exceeds("json_bytes", len(data))
    if too_large:
        raise error(f"{shown}: the file size {too_large}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"{shown}: not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as failure:
        raise error(f"{shown}: invalid JSON at line {failure.lineno} column {failure.colno} ({failure.msg})") from None
    except RecursionError:
        raise error(f"{shown}: invalid JSON (nested too deeply)") from None
    except ValueError as failure:  # a non-finite constant, an integer of too many digits
        raise error(f"{shown}: invalid JSON ({str(failure).splitlines()[0]})") from None
    too_deep = exceeds("json_depth", _depth(value))
    if too_deep:
        raise error(f"{shown}: the JSON nesting depth {too_deep}")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    deepest = 0
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            depth += 1
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth) for child in children if isinstance(child, (dict, list)))
    return deepest
