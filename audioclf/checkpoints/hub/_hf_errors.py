"""``huggingface_hub`` exceptions as this package's typed, one-line :class:`~audioclf.errors.HubError`\\ s."""

from __future__ import annotations

from audioclf.checkpoints.hub._env import download_command
from audioclf.errors import (EntryNotFoundError, HubConnectionError, HubError, RepoNotFoundError,
                             RevisionNotFoundError)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _transport_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(proxy errors, transport errors) of the HTTP client ``huggingface_hub`` uses (``httpx2`` or ``httpx``)."""
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        return (module.ProxyError,), (module.TransportError,)
    return (), ()


def is_unreachable(error: BaseException) -> bool:
    """Errors after which the cache may be used: no connection, timeouts, offline mode, Hub-side 5xx. A proxy that
    is set up wrong is not one of them."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RevisionResolutionError

    proxy_errors, transport_errors = _transport_errors()
    if isinstance(error, RevisionResolutionError):  # the Hub could not be reached and no ref is cached
        return error.__cause__ is not None and is_unreachable(error.__cause__)
    if isinstance(error, proxy_errors):
        return False
    if isinstance(error, (*transport_errors, OfflineModeIsEnabled, ConnectionError, TimeoutError)):
        return True
    if isinstance(error, HfHubHTTPError):
        status = getattr(error.response, "status_code", None)
        return status is not None and status >= 500
    return False


def to_hub_error(error: BaseException, repo_id: str, revision: str | None, filename: str | None) -> HubError:
    """The typed one-line error for an exception raised by ``huggingface_hub`` or its HTTP client while fetching
    ``filename`` (None: while resolving the revision) of ``repo_id``."""
    from huggingface_hub import errors as hf

    at = f" at revision '{revision}'" if revision else ""
    denied = f"repository '{repo_id}' not found or private: pass --token/HF_TOKEN"
    if isinstance(error, hf.GatedRepoError):
        return RepoNotFoundError(f"repository '{repo_id}' is gated: accept its conditions on the Hub and pass "
                                 "--token/HF_TOKEN")
    if isinstance(error, hf.RepositoryNotFoundError):
        return RepoNotFoundError(denied)
    if isinstance(error, hf.RevisionNotFoundError):
        return RevisionNotFoundError(f"revision '{revision}' not found in repository '{repo_id}'")
    if isinstance(error, hf.RemoteEntryNotFoundError):
        return EntryNotFoundError(f"file '{filename}' not found in repository '{repo_id}'{at}")
    if isinstance(error, hf.HfHubHTTPError):
        status = getattr(error.response, "status_code", None)
        if status in (401, 403):
            return RepoNotFoundError(denied)
        return HubError(f"the Hub answered HTTP {status} for '{repo_id}'{at}: {first_line(error)}")
    what = f"'{filename}' from " if filename else ""
    if isinstance(error, hf.LocalEntryNotFoundError):  # the Hub went away during the fetch
        return HubConnectionError(f"could not download {what}'{repo_id}'{at}: the Hub became unreachable and it is "
                                  f"not cached; run `{download_command(repo_id, revision)}` again with network access")
    if isinstance(error, (*_transport_errors()[1], ConnectionError, TimeoutError)):
        return HubConnectionError(f"download of {what}'{repo_id}' failed ({first_line(error)}); run it again")
    if isinstance(error, ValueError) and error.__cause__ is not None:  # force_download after a failed request
        return to_hub_error(error.__cause__, repo_id, revision, filename)
    if isinstance(error, OSError):
        return HubError(f"download of {what}'{repo_id}' failed: {first_line(error)}")
    return HubError(f"cannot fetch '{repo_id}'{at}: {type(error).__name__}: {first_line(error)}")
