"""Atomic file writes: content goes to a temporary file beside the target and replaces it only when complete.

An exception (``KeyboardInterrupt`` included) removes the temporary file and leaves the target as it was. Files get
the permissions a plain ``open()`` would give (``0666`` less the umask), not ``mkstemp``'s private ``0600``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s directory; it is renamed to ``target`` when the block succeeds."""
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, _default_mode())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """A stream (text ``"w"`` or binary ``"wb"``) whose content replaces ``target`` when the block succeeds."""
    with atomic_path(target) as temporary:
        text = "b" not in mode
        with open(temporary, mode, **({"encoding": "utf-8", "newline": ""} if text else {})) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    with atomic_open(target) as stream:
        stream.write(text)
