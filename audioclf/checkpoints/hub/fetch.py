"""Fetching a model from the Hugging Face Hub: only the files a classifier needs, at one commit.

Files go through ``huggingface_hub`` into the standard cache layout, so what ``transformers`` downloaded is reused
here and the other way round. A fetch resolves the requested revision (branch, tag or commit) to a commit and its
file list once (``HfApi.model_info``; ``HfApi.resolve_revision`` records the revision in the cache's ``refs/``),
then downloads at that commit: ``config.json``, ``preprocessor_config.json`` when the repo has one, and the weights
that :func:`audioclf.checkpoints.files.choose_weights` picks, as in a local directory (with their shards).

Offline (``HF_HUB_OFFLINE``, ``local_files_only``) or when the Hub cannot be reached, the cached snapshot of the
revision is used if it holds everything needed. Errors are the typed :class:`~audioclf.errors.HubError` subclasses.
``huggingface_hub`` is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from audioclf.checkpoints.files import (CONFIG_NAME, PREPROCESSOR_CONFIG_NAME, PROCESSOR_CONFIG_NAME,
                                       TF_CKPT_DATA_PREFIX, TF_CKPT_INDEX_NAME, choose_weights, is_shard_index,
                                       missing_weights_hint, shard_names)
from audioclf.checkpoints.hub._env import (cache_dir_or_default, check_repo_id, download_command, hub_endpoint,
                                           is_offline_mode)
from audioclf.checkpoints.hub._hf_errors import first_line, is_unreachable, to_hub_error
from audioclf.errors import EntryNotFoundError, HubConnectionError, HubError, NotCachedError

__all__ = ["FetchedModel", "fetch_model"]

_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class FetchedModel:
    """A model available on local disk.

    ``path`` is the directory holding ``config.json`` and the weights (the cache snapshot of ``commit``, joined with
    the subfolder; or the ``local_dir``). ``files`` are the fetched files relative to ``path`` in the order they were
    resolved; ``weights`` is the subset holding weights (an index file first, then its shards). ``commit`` is the
    40-hex commit the revision resolved to (None only for a ``local_dir`` used offline whose commit was never
    recorded). ``from_cache`` is True when the Hub was not contacted or could not be reached.
    """

    path: Path
    repo_id: str
    commit: str | None
    files: list[str]
    revision: str = "main"
    weights: list[str] = field(default_factory=list)
    from_cache: bool = False

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME


@dataclass(frozen=True)
class _Request:
    """What to fetch (repo, revision, subfolder, which weights) and where to (the cache or a local folder)."""

    repo_id: str
    revision: str | None
    subfolder: str
    cache: Path
    local_dir: Path | None
    use_safetensors: bool | None
    from_tf: bool
    weights: bool

    @property
    def describe(self) -> str:
        return (f"'{self.repo_id}'" + (f" at revision '{self.revision}'" if self.revision else "")
                + (f" (subfolder '{self.subfolder}')" if self.subfolder else ""))

    def repo_path(self, name: str) -> str:
        """``name`` (relative to the subfolder) as a path in the repo."""
        return f"{self.subfolder}/{name}" if self.subfolder else name

    def fetched(self, folder: Path, commit: str | None, files: "_Files", from_cache: bool) -> FetchedModel:
        return FetchedModel(path=folder, repo_id=self.repo_id, commit=commit, files=files.names,
                            revision=self.revision or "main", weights=files.weights, from_cache=from_cache)


class _Files:
    """Chooses the files of a model from what exists (in a repo listing or a cache snapshot) and collects them.

    ``exists(name)`` and ``get(name) -> local path`` take names relative to the model folder; ``ckpt_data_files()``
    lists the ``model.ckpt.data-*`` files of a TensorFlow tensor bundle.
    """

    def __init__(self, exists: Callable[[str], bool], get: Callable[[str], Path],
                 ckpt_data_files: Callable[[], list[str]]):
        self.exists = exists
        self.get = get
        self.ckpt_data_files = ckpt_data_files
        self.names: list[str] = []
        self.weights: list[str] = []

    def take(self, name: str, *, weight: bool = False) -> Path:
        path = self.get(name)
        if name not in self.names:
            self.names.append(name)
        if weight and name not in self.weights:
            self.weights.append(name)
        return path

    def collect(self, request: _Request, describe: str) -> Path:
        """Take the config files and (unless ``request.weights`` is false) the weights; returns the config path.
        Raises :class:`EntryNotFoundError` when no weights file of the requested kind exists."""
        config_path = self.take(CONFIG_NAME)
        for name in (PREPROCESSOR_CONFIG_NAME, PROCESSOR_CONFIG_NAME):
            if self.exists(name):
                self.take(name)
        if not request.weights:
            return config_path
        chosen, candidates = choose_weights(self.exists, config_path, request.use_safetensors, request.from_tf)
        if chosen is None:
            hint = missing_weights_hint(self.exists, request.use_safetensors, request.from_tf)
            raise EntryNotFoundError(f"{describe} has no weights file ({', '.join(candidates)}){hint}")
        path = self.take(chosen, weight=True)
        if is_shard_index(chosen):
            folder = PurePosixPath(chosen).parent
            for shard in shard_names(path):
                self.take(str(folder / shard), weight=True)
        elif chosen == TF_CKPT_INDEX_NAME:
            for name in self.ckpt_data_files():
                self.take(name, weight=True)
        return config_path


class _Unreachable(Exception):
    """The Hub could not be asked which files the revision holds (the cache may serve instead)."""


def fetch_model(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
    token: str | bool | None = None,
    proxies: dict[str, str] | None = None,
    subfolder: str = "",
    use_safetensors: bool | None = None,
    from_tf: bool = False,
    local_dir: str | os.PathLike | None = None,
    weights: bool = True,
) -> FetchedModel:
    """Download (or find in the cache) what is needed to load ``repo_id`` and return where it is.

    ``token``: a token string, False to send none, or None for ``HF_TOKEN`` / the saved login. ``proxies`` is
    accepted for ``transformers`` compatibility; ``huggingface_hub`` takes proxies from ``HTTP(S)_PROXY``.
    ``use_safetensors``: True requires safetensors, False requires ``.bin``, None prefers safetensors. ``from_tf``
    fetches ``tf_model.h5`` (or its index and shards, or a ``model.ckpt`` bundle) instead of PyTorch weights.
    ``local_dir`` copies the files into that folder instead of the cache. ``weights=False`` fetches only the config
    files (for ``AutoConfig``, ``AutoFeatureExtractor`` and ``inspect``).

    Raises (one line each) :class:`~audioclf.errors.RepoNotFoundError` (absent, private or gated),
    :class:`~audioclf.errors.RevisionNotFoundError`, :class:`~audioclf.errors.EntryNotFoundError` (no config or
    weights file), :class:`~audioclf.errors.NotCachedError` (offline or unreachable, and not cached),
    :class:`~audioclf.errors.HubConnectionError` (a transfer broke off), or :class:`~audioclf.errors.HubError`.
    """
    check_repo_id(repo_id)
    request = _Request(
        repo_id=repo_id, revision=revision, subfolder=subfolder.strip("/"),
        cache=cache_dir_or_default(cache_dir).resolve(),
        local_dir=Path(local_dir).expanduser().resolve() if local_dir is not None else None,
        use_safetensors=use_safetensors, from_tf=from_tf, weights=weights,
    )
    if local_files_only or is_offline_mode():
        if force_download:
            raise HubError("cannot force a download in offline mode (HF_HUB_OFFLINE or local_files_only is set)")
        return _from_cache(request, "local_files_only is set" if local_files_only else "HF_HUB_OFFLINE is set", token)
    try:
        return _from_hub(request, token=token, force_download=force_download, proxies=proxies)
    except _Unreachable as unreachable:
        if force_download:
            raise HubConnectionError(f"cannot download {request.describe} again: the Hub at {hub_endpoint()} is "
                                     f"unreachable ({first_line(unreachable.__cause__)})") from None
    return _from_cache(request, f"the Hub at {hub_endpoint()} is unreachable", token)


def _from_hub(request: _Request, *, token: str | bool | None, force_download: bool,
              proxies: dict[str, str] | None) -> FetchedModel:
    import huggingface_hub

    api = huggingface_hub.HfApi(token=token)
    try:
        info = api.model_info(request.repo_id, revision=request.revision)  # the commit and its files in one request
        commit = info.sha
        if not commit or info.siblings is None:
            raise HubError(f"the Hub at {hub_endpoint()} did not list the files of {request.describe}")
        listing = {sibling.rfilename for sibling in info.siblings}
        if request.local_dir is None:  # record the revision in the cache's refs/, so that it resolves offline later
            api.resolve_revision(request.repo_id, revision=request.revision, cache_dir=request.cache)
    except HubError:
        raise
    except Exception as error:  # noqa: BLE001 - a reason to use the cache, or a typed HubError
        if is_unreachable(error):
            raise _Unreachable() from error
        raise to_hub_error(error, request.repo_id, request.revision, None) from None

    if request.repo_path(CONFIG_NAME) not in listing:
        raise EntryNotFoundError(f"{request.describe} has no {request.repo_path(CONFIG_NAME)} "
                                 f"(commit {commit[:12]})")
    extra = {"proxies": proxies} if proxies else {}

    def download(name: str) -> Path:
        try:
            return Path(huggingface_hub.hf_hub_download(
                request.repo_id, name, subfolder=request.subfolder or None, revision=commit, cache_dir=request.cache,
                local_dir=request.local_dir, force_download=force_download, token=token, **extra,
            ))
        except Exception as error:  # noqa: BLE001
            raise to_hub_error(error, request.repo_id, request.revision, request.repo_path(name)) from None

    files = _Files(
        lambda name: request.repo_path(name) in listing,
        download,
        lambda: sorted(name for name in _names_in(listing, request.subfolder) if name.startswith(TF_CKPT_DATA_PREFIX)),
    )
    config_path = files.collect(request, request.describe)
    return request.fetched(config_path.parent, commit, files, from_cache=False)


def _names_in(listing: set[str], subfolder: str) -> list[str]:
    """The names in a repo listing that lie directly in ``subfolder``, relative to it."""
    prefix = f"{subfolder}/" if subfolder else ""
    return [name[len(prefix):] for name in listing if name.startswith(prefix) and "/" not in name[len(prefix):]]


def _from_cache(request: _Request, reason: str, token: str | bool | None) -> FetchedModel:
    """The model as the cache (or ``local_dir``) holds it; ``reason`` says why the Hub is not asked."""
    import huggingface_hub
    from huggingface_hub.errors import RevisionResolutionError

    def not_cached(detail: str) -> NotCachedError:
        return NotCachedError(f"{reason} and model {request.describe} {detail}; "
                              f"run `{download_command(request.repo_id, request.revision)}` with network access")

    if request.local_dir is not None:
        where = str(request.local_dir)
        folder = request.local_dir / request.subfolder if request.subfolder else request.local_dir
        commit = _local_dir_commit(request.local_dir, request.repo_path(CONFIG_NAME))

        def locate(name: str) -> Path | None:
            return folder / name if (folder / name).is_file() else None
    else:
        where = str(request.cache)
        try:
            commit = huggingface_hub.HfApi(token=token).resolve_revision(
                request.repo_id, revision=request.revision, cache_dir=request.cache, local_files_only=True).resolved
        except RevisionResolutionError:
            raise not_cached(f"is not in the cache at {where}") from None

        def locate(name: str) -> Path | None:
            found = huggingface_hub.try_to_load_from_cache(request.repo_id, request.repo_path(name),
                                                           cache_dir=request.cache, revision=commit)
            return Path(found) if isinstance(found, str) else None  # not a path: missing, or known not to exist

    config_path = locate(CONFIG_NAME)
    if config_path is None:
        raise not_cached(f"is not in the cache at {where}")

    def get(name: str) -> Path:
        path = locate(name)
        if path is None:
            raise not_cached(f"is only partly in the cache at {where} (missing {name})")
        return path

    files = _Files(
        lambda name: locate(name) is not None,
        get,
        lambda: sorted(p.name for p in config_path.parent.glob(TF_CKPT_DATA_PREFIX + "*") if p.is_file()),
    )
    try:
        files.collect(request, f"the cached snapshot of {request.describe}")
    except EntryNotFoundError:
        raise not_cached(f"is only partly in the cache at {where} (no weights file)") from None
    return request.fetched(config_path.parent, commit, files, from_cache=True)


def _local_dir_commit(local_dir: Path, repo_path: str) -> str | None:
    """The commit ``huggingface_hub`` recorded beside a file it downloaded into ``local_dir`` (best effort)."""
    metadata = local_dir / ".cache" / "huggingface" / "download" / f"{repo_path}.metadata"
    try:
        first = metadata.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError):
        return None
    return first if _COMMIT.fullmatch(first) else None
