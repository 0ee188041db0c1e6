"""Hub repo ids and the Hub environment, read the way ``huggingface_hub`` reads it.

``huggingface_hub.constants`` holds ``HF_ENDPOINT``, ``HF_HOME``/``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` as they were
when it was first imported (the command line imports it only when a command runs). Offline mode is also honoured
when ``HF_HUB_OFFLINE`` is set later in the process. ``HF_TOKEN`` is read by ``huggingface_hub`` on each request.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from audioclf.errors import HubError

_REPO_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?/[A-Za-z0-9._-]{1,96}")
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def is_valid_repo_id(value: str) -> bool:
    """True for ``org/name`` strings that follow the Hub's naming rules (whether or not such a repo exists)."""
    return (
        isinstance(value, str)
        and _REPO_ID.fullmatch(value) is not None
        and "--" not in value
        and ".." not in value
        and not value.endswith(".git")
    )


def check_repo_id(repo_id: str) -> None:
    if not is_valid_repo_id(repo_id):
        raise HubError(f"'{repo_id}' is not a Hub model id: expected 'org/name'")


def default_cache_dir() -> Path:
    """The Hub cache folder (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``, else
    ``~/.cache/huggingface/hub``), read from the environment now: ``huggingface_hub.constants`` keeps the values of
    the moment it was first imported."""
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if cache:
        return Path(cache).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        home = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def cache_dir_or_default(cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def hub_endpoint() -> str:
    """The Hub URL (``HF_ENDPOINT``, else huggingface.co)."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def is_offline_mode() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``), whether it was set before or after ``huggingface_hub``
    was imported."""
    from huggingface_hub import constants

    set_now = any((os.environ.get(key) or "").upper() in constants.ENV_VARS_TRUE_VALUES for key in _OFFLINE_VARIABLES)
    return set_now or constants.is_offline_mode()


def download_command(repo_id: str, revision: str | None) -> str:
    """The command that puts ``repo_id`` (at ``revision``) into the cache."""
    return f"audioclf download {repo_id}" + (f" --revision {revision}" if revision else "")
