"""Models on the Hugging Face Hub: fetch only the files a classifier needs, inspect and clean the cache.

Files go through ``huggingface_hub`` into the standard cache layout (``models--org--name/{blobs,refs,snapshots}``),
so what ``transformers`` downloaded is reused here and the other way round. The environment is read when a function
runs, not at import: ``HF_ENDPOINT``, ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ``HF_TOKEN``.

A fetch resolves the requested revision (branch, tag or commit) to a commit once, then downloads every file at that
commit: ``config.json``, ``preprocessor_config.json`` when the repo has one, and one weights format chosen like
``transformers`` 5.x does (``model.safetensors``, its sharded index, then ``pytorch_model.bin`` and its index; TF
weights only on request). When the Hub cannot be reached, or offline mode is on, the cached snapshot of that revision
is used if it holds everything needed.

``huggingface_hub`` is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from audioclf.checkpoints.files import (BIN_INDEX_NAME, BIN_NAME, SAFETENSORS_INDEX_NAME, SAFETENSORS_NAME,
                                       TF_CKPT_INDEX_NAME, TF_H5_INDEX_NAME, TF_H5_NAME, weight_candidates)
from audioclf.config import SUPPORTED_MODEL_TYPES
from audioclf.errors import HubError

__all__ = [
    "AUDIO_MODEL_TYPES",
    "CacheStatus",
    "CachedModel",
    "CachedRevision",
    "FetchedModel",
    "RemovedFromCache",
    "cache_status",
    "default_cache_dir",
    "fetch_model",
    "hub_endpoint",
    "is_hub_id",
    "is_offline_mode",
    "is_valid_repo_id",
    "list_cached_models",
    "remove_cached_model",
]

CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
SAFETENSORS_FILE = SAFETENSORS_NAME
SAFETENSORS_INDEX = SAFETENSORS_INDEX_NAME
BIN_FILE = BIN_NAME
BIN_INDEX = BIN_INDEX_NAME
TF_H5_FILE = TF_H5_NAME
TF_H5_INDEX = TF_H5_INDEX_NAME
TF_CKPT_INDEX = TF_CKPT_INDEX_NAME
TF_CKPT_DATA_PREFIX = "model.ckpt.data-"

#: ``model_type`` values of the architectures this package implements.
AUDIO_MODEL_TYPES = frozenset(SUPPORTED_MODEL_TYPES)
_AUDIO_ARCHITECTURE_SUFFIXES = ("ForSequenceClassification", "ForAudioClassification", "AudioClassification")

_REPO_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?/[A-Za-z0-9._-]{1,96}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "ON", "YES", "TRUE"}


# ---------------------------------------------------------------------------------------------------------------
# Environment


def is_valid_repo_id(value: str) -> bool:
    """True for ``org/name`` strings that follow the Hub's naming rules (whether or not such a path exists)."""
    return (
        isinstance(value, str)
        and _REPO_ID.fullmatch(value) is not None
        and "--" not in value
        and ".." not in value
        and not value.endswith(".git")
    )


def is_hub_id(value: str) -> bool:
    """True for ``org/name`` strings that follow the Hub's naming rules and are not an existing local path."""
    return is_valid_repo_id(value) and not Path(value).expanduser().exists()


def _check_repo_id(repo_id: str) -> None:
    if not is_valid_repo_id(repo_id):
        raise HubError(f"'{repo_id}' is not a Hub model id: expected 'org/name'")


def default_cache_dir() -> Path:
    """The Hub cache folder, from the environment as it is now (same precedence as ``huggingface_hub``)."""
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(key):
            return Path(os.path.expandvars(os.environ[key])).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def hub_endpoint() -> str:
    """The Hub URL: ``HF_ENDPOINT`` if set, else ``huggingface_hub``'s default."""
    endpoint = os.environ.get("HF_ENDPOINT")
    if endpoint:
        return endpoint.rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT


def is_offline_mode() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) as set now, or as ``huggingface_hub`` read it at import."""
    if any((os.environ.get(key) or "").upper() in _TRUE for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    import huggingface_hub.constants

    return bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def _repo_folder(cache_dir: Path, repo_id: str) -> Path:
    return cache_dir / ("models--" + repo_id.replace("/", "--"))


# ---------------------------------------------------------------------------------------------------------------
# Fetching


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
        return self.path / CONFIG_FILE


def _weight_candidates(use_safetensors: bool | None, from_tf: bool) -> list[str]:
    if from_tf:
        return [TF_H5_FILE, TF_H5_INDEX, TF_CKPT_INDEX]
    return weight_candidates(use_safetensors)


def _shards_from_index(index_path: Path, index_name: str) -> list[str]:
    """Shard file names listed by a ``*.index.json`` (``weight_map`` values), checked to stay inside the repo."""
    try:
        weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
        names = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise HubError(f"cannot read the shard index {index_name}: {error}") from None
    for name in names:
        parts = PurePosixPath(str(name)).parts
        if not isinstance(name, str) or not parts or name.startswith("/") or ".." in parts:
            raise HubError(f"shard index {index_name} names an invalid file: {name!r}")
    return names


def _revision_hint(repo_id: str, revision: str | None) -> str:
    return f"audioclf download {repo_id}" + (f" --revision {revision}" if revision else "")


class _Plan:
    """Chooses the files of a model from what exists (remotely or in the cache) and collects them."""

    def __init__(
        self,
        exists: Callable[[str], bool],
        get: Callable[[str], Path],
        ckpt_data_files: Callable[[], list[str]],
    ):
        self.exists = exists
        self.get = get
        self.ckpt_data_files = ckpt_data_files
        self.files: list[str] = []
        self.weights: list[str] = []

    def take(self, name: str, *, weight: bool = False) -> Path:
        path = self.get(name)
        if name not in self.files:
            self.files.append(name)
        if weight and name not in self.weights:
            self.weights.append(name)
        return path

    def run(self, use_safetensors: bool | None, from_tf: bool, describe: str, weights: bool = True) -> None:
        config_path = self.take(CONFIG_FILE)
        if self.exists(PREPROCESSOR_FILE):
            self.take(PREPROCESSOR_FILE)
        if not weights:
            return
        explicit = None if from_tf else _explicit_weights(config_path)
        candidates = [explicit] if explicit else _weight_candidates(use_safetensors, from_tf)
        chosen = next((name for name in candidates if self.exists(name)), None)
        if chosen is None:
            raise HubError(self._no_weights_message(candidates, use_safetensors, from_tf, describe))
        path = self.take(chosen, weight=True)
        if chosen.endswith(".index.json"):
            for shard in _shards_from_index(path, chosen):
                self.take(shard, weight=True)
        elif chosen == TF_CKPT_INDEX:
            for name in self.ckpt_data_files():
                self.take(name, weight=True)

    def _no_weights_message(self, candidates, use_safetensors, from_tf, describe) -> str:
        message = f"{describe} has no weights file ({', '.join(candidates)})"
        if not from_tf and any(self.exists(name) for name in (TF_H5_FILE, TF_H5_INDEX, TF_CKPT_INDEX)):
            message += "; it holds TensorFlow weights: pass from_tf=True (--from-tf)"
        elif use_safetensors is True and any(self.exists(name) for name in (BIN_FILE, BIN_INDEX)):
            message += "; it holds pytorch_model.bin weights: do not require safetensors"
        elif use_safetensors is False and any(self.exists(name) for name in (SAFETENSORS_FILE, SAFETENSORS_INDEX)):
            message += "; it holds safetensors weights: do not set use_safetensors=False"
        return message


def _explicit_weights(config_path: Path) -> str | None:
    """``transformers_weights`` in config.json names the safetensors file to load (transformers 5.x)."""
    try:
        value = json.loads(config_path.read_text(encoding="utf-8")).get("transformers_weights")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value.endswith(".safetensors") and ".." not in value else None


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
    accepted for ``transformers`` compatibility; ``huggingface_hub`` takes proxies from ``HTTP(S)_PROXY`` and warns
    when a dict is given. ``use_safetensors``: True requires safetensors, False requires ``.bin``, None prefers
    safetensors. ``from_tf`` fetches ``tf_model.h5`` (or its index and shards, or a ``model.ckpt`` bundle) instead
    of PyTorch weights. ``local_dir`` copies the files into that folder instead of the cache. ``weights=False``
    fetches only the config files (for ``AutoConfig``, ``AutoFeatureExtractor`` and ``inspect``).

    Raises :class:`HubError` (one line) when the repo, revision or a file does not exist or is private, when a
    transfer fails, or when the Hub is unreachable and the cache does not hold the model.
    """
    _check_repo_id(repo_id)
    import huggingface_hub

    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cache = cache.resolve()
    target_dir = Path(local_dir).expanduser().resolve() if local_dir is not None else None
    subfolder = subfolder.strip("/")
    offline_env = is_offline_mode()
    offline = local_files_only or offline_env
    if offline and force_download:
        raise HubError("cannot force a download in offline mode (HF_HUB_OFFLINE or local_files_only is set)")
    endpoint = hub_endpoint()
    requested = revision or "main"
    describe = f"'{repo_id}'" + (f" at revision '{revision}'" if revision else "") + (
        f" (subfolder '{subfolder}')" if subfolder else ""
    )

    commit: str | None = revision if revision and _COMMIT.fullmatch(revision) else None
    listing: set[str] | None = None
    unreachable: Exception | None = None
    if not offline:
        api = huggingface_hub.HfApi(endpoint=endpoint, token=token)
        try:
            info = api.model_info(repo_id, revision=revision)
            if not info.sha:
                raise HubError(f"the Hub at {endpoint} did not return a commit for {describe}")
            commit = info.sha
            if info.siblings is not None:
                listing = {sibling.rfilename for sibling in info.siblings}
            else:
                listing = {
                    entry.path
                    for entry in api.list_repo_tree(repo_id, recursive=True, revision=commit)
                    if isinstance(entry, huggingface_hub.hf_api.RepoFile)
                }
        except HubError:
            raise
        except Exception as error:  # noqa: BLE001 - either a reason to use the cache or a HubError
            if _is_unreachable(error):
                unreachable = error
            else:
                raise _to_hub_error(error, repo_id, revision, None) from None

    if listing is not None:
        assert commit is not None
        prefix = f"{subfolder}/" if subfolder else ""
        remote = {name[len(prefix):] for name in listing if name.startswith(prefix)}
        if CONFIG_FILE not in remote:
            raise HubError(f"{describe} has no {prefix}{CONFIG_FILE} (commit {commit[:12]})")

        def download(name: str) -> Path:
            try:
                local = huggingface_hub.hf_hub_download(
                    repo_id,
                    name,
                    subfolder=subfolder or None,
                    revision=commit,
                    cache_dir=cache,
                    local_dir=target_dir,
                    force_download=force_download,
                    token=token,
                    endpoint=endpoint,
                    **({"proxies": proxies} if proxies else {}),
                )
            except Exception as error:  # noqa: BLE001
                raise _to_hub_error(error, repo_id, revision, f"{prefix}{name}") from None
            if record_ref:
                # Once a snapshot exists, the branch or tag resolves to it offline (as huggingface_hub does).
                _write_ref(_repo_folder(cache, repo_id), requested, commit)
            return Path(local)

        record_ref = target_dir is None and not _COMMIT.fullmatch(requested)

        plan = _Plan(
            remote.__contains__,
            download,
            lambda: sorted(name for name in remote if name.startswith(TF_CKPT_DATA_PREFIX)),
        )
        plan.run(use_safetensors, from_tf, describe, weights)
        base = target_dir if target_dir is not None else _repo_folder(cache, repo_id) / "snapshots" / commit
        return FetchedModel(
            path=base / subfolder if subfolder else base,
            repo_id=repo_id,
            commit=commit,
            files=plan.files,
            revision=requested,
            weights=plan.weights,
            from_cache=False,
        )

    # Offline, or the Hub could not be reached: use what the cache holds for this revision.
    if force_download:
        raise HubError(
            f"cannot download {describe} again: the Hub at {endpoint} is unreachable ({_first_line(unreachable)})"
        )
    return _from_cache(
        repo_id,
        revision=revision,
        commit=commit,
        cache=cache,
        target_dir=target_dir,
        subfolder=subfolder,
        use_safetensors=use_safetensors,
        from_tf=from_tf,
        describe=describe,
        unreachable=unreachable,
        offline_env=offline_env and not local_files_only,
        weights=weights,
    )


def _from_cache(
    repo_id: str,
    *,
    revision: str | None,
    commit: str | None,
    cache: Path,
    target_dir: Path | None,
    subfolder: str,
    use_safetensors: bool | None,
    from_tf: bool,
    describe: str,
    unreachable: Exception | None,
    offline_env: bool,
    weights: bool = True,
) -> FetchedModel:
    requested = revision or "main"
    repo_folder = _repo_folder(cache, repo_id)
    if target_dir is not None:
        base = target_dir
        if commit is None:
            commit = _local_dir_commit(target_dir, subfolder)
        where = str(target_dir)
    else:
        if commit is None and _safe_ref(requested):
            ref = repo_folder / "refs" / requested
            if ref.is_file():
                commit = ref.read_text(encoding="utf-8").strip() or None
        base = repo_folder / "snapshots" / commit if commit else None
        where = str(cache)
    folder = (base / subfolder if subfolder else base) if base is not None else None

    def why() -> str:
        if unreachable is not None:
            return f"the Hub at {hub_endpoint()} is unreachable and "
        return "HF_HUB_OFFLINE is set and " if offline_env else "local_files_only is set and "

    if folder is None or not (folder / CONFIG_FILE).is_file():
        raise HubError(
            f"{why()}model {describe} is not in the cache at {where}; "
            f"run `{_revision_hint(repo_id, revision)}` with network access"
        )

    def get(name: str) -> Path:
        path = folder / name
        if not path.is_file():  # a dangling link counts as missing
            raise HubError(
                f"{why()}model {describe} is only partly in the cache at {where} (missing {name}); "
                f"run `{_revision_hint(repo_id, revision)}` with network access"
            )
        return path

    plan = _Plan(
        lambda name: (folder / name).is_file(),
        get,
        lambda: sorted(p.name for p in folder.glob(TF_CKPT_DATA_PREFIX + "*") if p.is_file()),
    )
    try:
        plan.run(use_safetensors, from_tf, f"the cached snapshot of {describe}", weights)
    except HubError as error:
        if "has no weights file" in str(error):
            raise HubError(
                f"{why()}model {describe} is only partly in the cache at {where} (no weights file); "
                f"run `{_revision_hint(repo_id, revision)}` with network access"
            ) from None
        raise
    return FetchedModel(
        path=folder,
        repo_id=repo_id,
        commit=commit,
        files=plan.files,
        revision=requested,
        weights=plan.weights,
        from_cache=True,
    )


def _local_dir_commit(local_dir: Path, subfolder: str) -> str | None:
    """The commit recorded by ``huggingface_hub`` next to a file downloaded into ``local_dir`` (best effort)."""
    name = f"{subfolder}/{CONFIG_FILE}" if subfolder else CONFIG_FILE
    metadata = local_dir / ".cache" / "huggingface" / "download" / f"{name}.metadata"
    try:
        first = metadata.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError):
        return None
    return first if _COMMIT.fullmatch(first) else None


def _write_ref(repo_folder: Path, revision: str, commit: str) -> None:
    """Record ``revision -> commit`` in ``refs/`` so the revision resolves offline later (best effort)."""
    if not _safe_ref(revision):
        return
    ref = repo_folder / "refs" / revision
    try:
        if ref.is_file() and ref.read_text(encoding="utf-8").strip() == commit:
            return
        ref.parent.mkdir(parents=True, exist_ok=True)
        tmp = ref.with_name(f".{ref.name}.{os.getpid()}.tmp")
        tmp.write_text(commit, encoding="utf-8")
        os.replace(tmp, ref)
    except OSError:
        pass


def _safe_ref(revision: str) -> bool:
    """A revision name usable as a path under ``refs/`` (no absolute paths, no ``..``)."""
    parts = PurePosixPath(revision).parts
    return bool(parts) and not revision.startswith("/") and ".." not in parts and "\\" not in revision


def _http_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(proxy errors, transport errors) of the HTTP client ``huggingface_hub`` uses (``httpx2`` or ``httpx``)."""
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        return (module.ProxyError,), (module.TransportError,)
    return (), ()


def _is_unreachable(error: Exception) -> bool:
    """Errors after which the cache may be used: no connection, timeouts, offline mode, Hub-side 5xx."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    proxy_errors, transport_errors = _http_errors()
    if isinstance(error, proxy_errors):
        return False
    if isinstance(error, (*transport_errors, OfflineModeIsEnabled, ConnectionError, TimeoutError)):
        return True
    if isinstance(error, HfHubHTTPError):
        status = getattr(error.response, "status_code", None)
        return status is not None and status >= 500
    return False


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _to_hub_error(error: Exception, repo_id: str, revision: str | None, filename: str | None) -> HubError:
    """One-line :class:`HubError` for an exception raised by ``huggingface_hub`` or its HTTP client."""
    from huggingface_hub import errors as hf

    at = f" at revision '{revision}'" if revision else ""
    if isinstance(error, hf.GatedRepoError):
        return HubError(
            f"repository '{repo_id}' is gated: accept its conditions on the Hub and pass --token/HF_TOKEN"
        )
    if isinstance(error, hf.RepositoryNotFoundError):
        return HubError(f"repository '{repo_id}' not found or private: pass --token/HF_TOKEN")
    if isinstance(error, hf.RevisionNotFoundError):
        return HubError(f"revision '{revision}' not found in repository '{repo_id}'")
    if isinstance(error, hf.RemoteEntryNotFoundError):
        return HubError(f"file '{filename}' not found in repository '{repo_id}'{at}")
    if isinstance(error, hf.HfHubHTTPError):
        status = getattr(error.response, "status_code", None)
        if status in (401, 403):
            return HubError(f"repository '{repo_id}' not found or private: pass --token/HF_TOKEN")
        return HubError(f"the Hub answered HTTP {status} for '{repo_id}'{at}: {_first_line(error)}")
    if isinstance(error, hf.LocalEntryNotFoundError):
        what = f"file '{filename}' of " if filename else ""
        return HubError(
            f"could not download {what}'{repo_id}'{at}: the Hub became unreachable and it is not cached; "
            f"run `{_revision_hint(repo_id, revision)}` again with network access"
        )
    if isinstance(error, (*_http_errors()[1], ConnectionError, TimeoutError)):
        what = f"'{filename}' from " if filename else ""
        return HubError(f"download of {what}'{repo_id}' failed ({_first_line(error)}); run it again")
    if isinstance(error, ValueError) and "force" in str(error).lower():
        return HubError(f"cannot force a download of '{repo_id}': {_first_line(error)}")
    if isinstance(error, OSError):
        what = f"'{filename}' from " if filename else ""
        return HubError(f"download of {what}'{repo_id}' failed: {_first_line(error)}")
    return HubError(f"cannot fetch '{repo_id}'{at}: {type(error).__name__}: {_first_line(error)}")


# ---------------------------------------------------------------------------------------------------------------
# Cache inspection and clean-up


@dataclass(frozen=True)
class CachedRevision:
    commit: str
    refs: tuple[str, ...]
    size_on_disk: int
    files: tuple[str, ...]
    snapshot_path: Path
    last_modified: float


@dataclass(frozen=True)
class CacheStatus:
    """What the cache holds for one repo. ``cached`` is False when nothing is there."""

    repo_id: str
    cache_dir: Path
    cached: bool
    size_on_disk: int = 0
    revisions: tuple[CachedRevision, ...] = ()
    repo_path: Path | None = None

    def revision(self, ref_or_commit: str) -> CachedRevision | None:
        return _match_revision(self.revisions, ref_or_commit)


@dataclass(frozen=True)
class CachedModel:
    """A cached model repo with what its config says it is."""

    repo_id: str
    repo_path: Path
    size_on_disk: int
    revisions: tuple[CachedRevision, ...]
    model_type: str | None
    architectures: tuple[str, ...]
    last_accessed: float
    last_modified: float

    @property
    def is_audio_classifier(self) -> bool:
        return _looks_like_audio_classifier(self.model_type, self.architectures)

    def to_dict(self) -> dict:
        return {
            "repo_id": self.repo_id,
            "model_type": self.model_type,
            "architectures": list(self.architectures),
            "size_on_disk": self.size_on_disk,
            "last_accessed": self.last_accessed,
            "last_modified": self.last_modified,
            "path": str(self.repo_path),
            "revisions": [
                {
                    "commit": rev.commit,
                    "refs": list(rev.refs),
                    "size_on_disk": rev.size_on_disk,
                    "files": list(rev.files),
                    "path": str(rev.snapshot_path),
                }
                for rev in self.revisions
            ],
        }


@dataclass(frozen=True)
class RemovedFromCache:
    repo_id: str
    commits: tuple[str, ...]
    freed: int
    whole_repo: bool


def _looks_like_audio_classifier(model_type: str | None, architectures: Iterable[str]) -> bool:
    if model_type in AUDIO_MODEL_TYPES:
        return True
    return any(isinstance(a, str) and a.endswith(_AUDIO_ARCHITECTURE_SUFFIXES) for a in architectures)


def _scan(cache_dir: Path):
    """``huggingface_hub.scan_cache_dir`` or None when the folder does not exist."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    if not cache_dir.is_dir():
        return None
    try:
        return scan_cache_dir(cache_dir)
    except CacheNotFound:
        return None
    except OSError as error:
        raise HubError(f"cannot read the cache at {cache_dir}: {_first_line(error)}") from None


def _revisions(repo_info) -> tuple[CachedRevision, ...]:
    revisions = [
        CachedRevision(
            commit=rev.commit_hash,
            refs=tuple(sorted(rev.refs)),
            size_on_disk=rev.size_on_disk,
            files=tuple(sorted(f.file_path.relative_to(rev.snapshot_path).as_posix() for f in rev.files)),
            snapshot_path=rev.snapshot_path,
            last_modified=rev.last_modified,
        )
        for rev in repo_info.revisions
    ]
    # Revisions with refs first (main first), then the most recent.
    return tuple(sorted(revisions, key=lambda r: ("main" not in r.refs, not r.refs, -r.last_modified, r.commit)))


def _model_repos(cache_dir: Path) -> list:
    info = _scan(cache_dir)
    if info is None:
        return []
    return sorted((repo for repo in info.repos if repo.repo_type == "model"), key=lambda repo: repo.repo_id)


def cache_status(repo_id: str, cache_dir: str | os.PathLike | None = None) -> CacheStatus:
    """Cached revisions of ``repo_id`` (commit, refs, files, sizes). Never touches the network."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    for repo in _model_repos(cache):
        if repo.repo_id == repo_id:
            return CacheStatus(
                repo_id=repo_id,
                cache_dir=cache,
                cached=True,
                size_on_disk=repo.size_on_disk,
                revisions=_revisions(repo),
                repo_path=repo.repo_path,
            )
    return CacheStatus(repo_id=repo_id, cache_dir=cache, cached=False)


def _read_config(revisions: Iterable[CachedRevision]) -> dict:
    for rev in revisions:
        for name in rev.files:
            if name == CONFIG_FILE or name.endswith("/" + CONFIG_FILE):
                try:
                    config = json.loads((rev.snapshot_path / name).read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if isinstance(config, dict):
                    return config
    return {}


def list_cached_models(cache_dir: str | os.PathLike | None = None, *, audio_only: bool = True) -> list[CachedModel]:
    """Model repos in the cache, by default only those that look like audio classifiers.

    A repo qualifies when a cached ``config.json`` has a ``model_type`` among :data:`AUDIO_MODEL_TYPES` or an
    architecture ending in ``ForSequenceClassification``/``AudioClassification``.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    models = []
    for repo in _model_repos(cache):
        revisions = _revisions(repo)
        config = _read_config(revisions)
        model_type = config.get("model_type") if isinstance(config.get("model_type"), str) else None
        architectures = config.get("architectures") or []
        architectures = tuple(a for a in architectures if isinstance(a, str)) if isinstance(architectures, list) else ()
        model = CachedModel(
            repo_id=repo.repo_id,
            repo_path=repo.repo_path,
            size_on_disk=repo.size_on_disk,
            revisions=revisions,
            model_type=model_type,
            architectures=architectures,
            last_accessed=repo.last_accessed,
            last_modified=repo.last_modified,
        )
        if not audio_only or model.is_audio_classifier:
            models.append(model)
    return models


def _match_revision(revisions: Iterable[CachedRevision], ref_or_commit: str) -> CachedRevision | None:
    revisions = list(revisions)
    for rev in revisions:
        if ref_or_commit in rev.refs or rev.commit == ref_or_commit:
            return rev
    if re.fullmatch(r"[0-9a-f]{4,39}", ref_or_commit):
        matches = [rev for rev in revisions if rev.commit.startswith(ref_or_commit)]
        if len(matches) == 1:
            return matches[0]
    return None


def remove_cached_model(
    repo_id: str, revision: str | None = None, cache_dir: str | os.PathLike | None = None
) -> RemovedFromCache:
    """Delete ``repo_id`` from the cache, or only one revision (a ref name, a commit or a unique commit prefix).

    Blobs still used by other revisions are kept. Raises :class:`HubError` if nothing matches.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    info = _scan(cache)
    repo = None if info is None else next(
        (r for r in info.repos if r.repo_type == "model" and r.repo_id == repo_id), None
    )
    if repo is None:
        raise HubError(f"model '{repo_id}' is not in the cache at {cache}")
    revisions = _revisions(repo)
    if revision is None:
        commits = tuple(rev.commit for rev in revisions)
    else:
        match = _match_revision(revisions, revision)
        if match is None:
            known = ", ".join(
                f"{rev.commit[:12]}" + (f" ({', '.join(rev.refs)})" if rev.refs else "") for rev in revisions
            )
            raise HubError(f"revision '{revision}' of '{repo_id}' is not in the cache (cached: {known or 'none'})")
        commits = (match.commit,)
    whole = len(commits) == len(revisions)
    strategy = info.delete_revisions(*commits)
    freed = strategy.expected_freed_size
    try:
        strategy.execute()
    except OSError as error:
        raise HubError(f"cannot delete '{repo_id}' from {cache}: {_first_line(error)}") from None
    if whole and repo.repo_path.exists():
        # Revisions-less leftovers (refs to unknown commits, .no_exist, trees) go with the repo.
        import shutil

        shutil.rmtree(repo.repo_path, ignore_errors=True)
    return RemovedFromCache(repo_id=repo_id, commits=commits, freed=freed, whole_repo=whole)
