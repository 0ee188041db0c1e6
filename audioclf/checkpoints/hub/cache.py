"""The Hub cache, administered without the network: which models and revisions it holds, and removing them.

Everything is read with ``huggingface_hub.scan_cache_dir`` and deleted with its delete strategy, so blobs shared
with revisions that stay are kept.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from audioclf.checkpoints.files import CONFIG_NAME
from audioclf.checkpoints.hub._env import cache_dir_or_default
from audioclf.checkpoints.hub._hf_errors import first_line
from audioclf.config import SUPPORTED_MODEL_TYPES
from audioclf.errors import HubError, NotCachedError
from audioclf.fileio import read_json_file

__all__ = ["AUDIO_MODEL_TYPES", "CacheStatus", "CachedModel", "CachedRevision", "CacheRemoval", "RemovedFromCache",
           "cache_status", "list_cached_models", "plan_removal", "remove_cached_model"]

#: ``model_type`` values of the architectures this package implements.
AUDIO_MODEL_TYPES = frozenset(SUPPORTED_MODEL_TYPES)
_AUDIO_ARCHITECTURE_SUFFIXES = ("ForSequenceClassification", "ForAudioClassification", "AudioClassification")
_COMMIT_PREFIX = re.compile(r"[0-9a-f]{4,39}")


@dataclass(frozen=True)
class CachedRevision:
    commit: str
    refs: tuple[str, ...]
    size_on_disk: int
    files: tuple[str, ...]
    snapshot_path: Path
    last_modified: float

    @property
    def label(self) -> str:
        """``commit[:12] (refs)``, as messages and listings show a revision."""
        return self.commit[:12] + (f" ({', '.join(self.refs)})" if self.refs else "")

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "refs": list(self.refs), "size_on_disk": self.size_on_disk,
                "files": list(self.files), "path": str(self.snapshot_path)}


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
        """The revision a ref name, a commit or a unique commit prefix (4+ hex digits) names, if cached."""
        for rev in self.revisions:
            if ref_or_commit in rev.refs or rev.commit == ref_or_commit:
                return rev
        if _COMMIT_PREFIX.fullmatch(ref_or_commit):
            matches = [rev for rev in self.revisions if rev.commit.startswith(ref_or_commit)]
            if len(matches) == 1:
                return matches[0]
        return None


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
        if self.model_type in AUDIO_MODEL_TYPES:
            return True
        return any(name.endswith(_AUDIO_ARCHITECTURE_SUFFIXES) for name in self.architectures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "model_type": self.model_type,
            "architectures": list(self.architectures),
            "size_on_disk": self.size_on_disk,
            "last_accessed": self.last_accessed,
            "last_modified": self.last_modified,
            "path": str(self.repo_path),
            "revisions": [rev.to_dict() for rev in self.revisions],
        }


@dataclass(frozen=True)
class RemovedFromCache:
    repo_id: str
    commits: tuple[str, ...]
    freed: int
    whole_repo: bool


def _scan(cache_dir: Path):
    """``huggingface_hub.scan_cache_dir``, or None when there is no cache folder."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    if not cache_dir.is_dir():
        return None
    try:
        return scan_cache_dir(cache_dir)
    except CacheNotFound:
        return None
    except OSError as error:
        raise HubError(f"cannot read the cache at {cache_dir}: {first_line(error)}") from None


def _model_repos(scan) -> list:
    if scan is None:
        return []
    return sorted((repo for repo in scan.repos if repo.repo_type == "model"), key=lambda repo: repo.repo_id)


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


def _status(repo_id: str, cache: Path, scan) -> CacheStatus:
    for repo in _model_repos(scan):
        if repo.repo_id == repo_id:
            return CacheStatus(repo_id=repo_id, cache_dir=cache, cached=True, size_on_disk=repo.size_on_disk,
                               revisions=_revisions(repo), repo_path=repo.repo_path)
    return CacheStatus(repo_id=repo_id, cache_dir=cache, cached=False)


def cache_status(repo_id: str, cache_dir: str | os.PathLike | None = None) -> CacheStatus:
    """Cached revisions of ``repo_id`` (commit, refs, files, sizes). Never touches the network."""
    cache = cache_dir_or_default(cache_dir)
    return _status(repo_id, cache, _scan(cache))


def _read_config(revisions: Iterable[CachedRevision]) -> dict:
    for rev in revisions:
        for name in rev.files:
            if name == CONFIG_NAME or name.endswith("/" + CONFIG_NAME):
                try:
                    config = read_json_file(rev.snapshot_path / name, HubError)
                except HubError:
                    continue
                if isinstance(config, dict):
                    return config
    return {}


def list_cached_models(cache_dir: str | os.PathLike | None = None, *, audio_only: bool = True) -> list[CachedModel]:
    """Model repos in the cache, by default only those that look like audio classifiers.

    A repo qualifies when a cached ``config.json`` has a ``model_type`` among :data:`AUDIO_MODEL_TYPES` or an
    architecture ending in ``ForSequenceClassification``/``AudioClassification``.
    """
    models = []
    for repo in _model_repos(_scan(cache_dir_or_default(cache_dir))):
        revisions = _revisions(repo)
        config = _read_config(revisions)
        model_type = config.get("model_type") if isinstance(config.get("model_type"), str) else None
        architectures = config.get("architectures") if isinstance(config.get("architectures"), list) else []
        model = CachedModel(
            repo_id=repo.repo_id,
            repo_path=repo.repo_path,
            size_on_disk=repo.size_on_disk,
            revisions=revisions,
            model_type=model_type,
            architectures=tuple(name for name in architectures if isinstance(name, str)),
            last_accessed=repo.last_accessed,
            last_modified=repo.last_modified,
        )
        if not audio_only or model.is_audio_classifier:
            models.append(model)
    return models


@dataclass(frozen=True)
class CacheRemoval:
    """A removal that :func:`plan_removal` checked and :meth:`execute` carries out."""

    status: CacheStatus
    revision: str | None
    commits: tuple[str, ...]
    _scan: Any

    @property
    def whole_repo(self) -> bool:
        return len(self.commits) == len(self.status.revisions)

    @property
    def description(self) -> str:
        """``'org/name' revision 'v1'`` or ``'org/name' (2 revisions)``."""
        repo = f"'{self.status.repo_id}'"
        return f"{repo} revision '{self.revision}'" if self.revision else f"{repo} ({len(self.commits)} revisions)"

    def execute(self) -> RemovedFromCache:
        strategy = self._scan.delete_revisions(*self.commits)
        try:
            strategy.execute()
        except OSError as error:
            raise HubError(f"cannot delete '{self.status.repo_id}' from {self.status.cache_dir}: "
                           f"{first_line(error)}") from None
        repo_path = self.status.repo_path
        if self.whole_repo and repo_path is not None and repo_path.exists():
            # What belongs to no revision (refs to unknown commits, .no_exist, trees) goes with the repo.
            import shutil

            shutil.rmtree(repo_path, ignore_errors=True)
        return RemovedFromCache(repo_id=self.status.repo_id, commits=self.commits,
                                freed=strategy.expected_freed_size, whole_repo=self.whole_repo)


def plan_removal(repo_id: str, revision: str | None = None,
                 cache_dir: str | os.PathLike | None = None) -> CacheRemoval:
    """What removing ``repo_id`` (or only ``revision``: a ref name, a commit or a unique commit prefix) would delete.

    Raises :class:`~audioclf.errors.NotCachedError` when the repo or the revision is not cached.
    """
    cache = cache_dir_or_default(cache_dir)
    scan = _scan(cache)
    status = _status(repo_id, cache, scan)
    if not status.cached:
        raise NotCachedError(f"model '{repo_id}' is not in the cache at {cache}")
    if revision is None:
        return CacheRemoval(status, None, tuple(rev.commit for rev in status.revisions), scan)
    match = status.revision(revision)
    if match is None:
        known = ", ".join(rev.label for rev in status.revisions)
        raise NotCachedError(f"revision '{revision}' of '{repo_id}' is not in the cache (cached: {known or 'none'})")
    return CacheRemoval(status, revision, (match.commit,), scan)


def remove_cached_model(repo_id: str, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None) -> RemovedFromCache:
    """Delete ``repo_id`` from the cache, or only one revision (see :func:`plan_removal`). Blobs still used by other
    revisions are kept."""
    return plan_removal(repo_id, revision, cache_dir).execute()
