"""The one-line reason an input failed, as error records carry it."""

from __future__ import annotations

import os

from audioclf.errors import AudioError

__all__ = ["failure_reason", "one_line"]


def one_line(error: BaseException) -> str:
    """An exception's message squeezed onto one line (its type name when the message is empty)."""
    return " ".join(str(error).split()) or type(error).__name__


def failure_reason(error: BaseException, label: str) -> str:
    """Why an input failed: an :class:`AudioError`'s message without the leading ``"<label>: "`` that the record
    already carries (``label``: the input's path or name), anything else with its type name."""
    if not isinstance(error, AudioError):
        return f"{type(error).__name__}: {one_line(error)}"
    message = one_line(error)
    for prefix in (f"{label}: ", f"{os.path.normpath(label)}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message
