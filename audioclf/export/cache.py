"""The export cache: ONNX graphs built once per checkpoint and kept in the Hugging Face cache.

Layout: ``$HF_HOME/assets/audioclf/onnx/<key>/`` (``HF_ASSETS_CACHE`` when set: the folder ``huggingface_hub``
gives libraries for files they derive from models), one folder per entry holding the graph, its weights and
``manifest.json``. The key is the SHA-256 of everything that decides the graph's content: the weights' content
digests, the model's ``config.json`` and ``preprocessor_config.json``, the export format version, the runtime's
version and the variant (``fp32``, ``int8-dynamic``, ``int8-static`` with the digest of the calibration audio).

**Writing.** An entry is built in a temporary folder beside its final place and renamed into place only when
complete (manifest last), so a crash or a concurrent build never leaves a half-written entry under a key; when two
processes build the same entry, the second rename fails and the first entry is used.

**Trust.** The manifest records each file's SHA-256 and size. Opening an entry compares each file's size, inode,
mtime and ctime with those recorded when it was last verified; any difference (a file rewritten, truncated, copied
from elsewhere) means the files are hashed again and compared with the manifest. An entry that fails the check, or
that the runtime cannot load, is deleted and rebuilt: a corrupt entry is never used.

**Weights digests.** A file in the Hub cache is named by its content hash already (``blobs/<sha256>``); any other
weights file is hashed once and the digest remembered per (path, size, inode, mtime, ctime) in ``digests/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from audioclf.fileio import write_text_atomic

__all__ = ["CacheEntry", "cache_root", "entry_key", "file_digest", "open_or_build"]

MANIFEST_NAME = "manifest.json"
_HUB_BLOB = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_CHUNK = 8 << 20


def cache_root() -> Path:
    """``$HF_ASSETS_CACHE/audioclf/onnx`` (default ``~/.cache/huggingface/assets/audioclf/onnx``); read from the
    environment the way ``huggingface_hub`` reads it, without importing it."""
    assets = os.environ.get("HF_ASSETS_CACHE")
    if not assets:
        home = os.environ.get("HF_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
        assets = os.path.join(home, "assets")
    return Path(assets).expanduser() / "audioclf" / "onnx"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _signature(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns]


def file_digest(path: Path, root: Path | None = None) -> str:
    """A content digest of ``path``: its Hub blob name when it lives in the Hub cache, else its SHA-256 (computed
    once per file version, remembered under ``root/digests``)."""
    real = Path(os.path.realpath(path))
    if real.parent.name == "blobs" and _HUB_BLOB.fullmatch(real.name):
        return f"hub:{real.name}"
    memo_dir = (root or cache_root()) / "digests"
    memo = memo_dir / (hashlib.sha256(str(real).encode()).hexdigest()[:32] + ".json")
    signature = _signature(real)
    with contextlib.suppress(OSError, ValueError, TypeError):
        saved = json.loads(memo.read_text())
        if saved["signature"] == signature and saved["path"] == str(real):
            return str(saved["sha256"])
    digest = sha256_file(real)
    with contextlib.suppress(OSError):
        memo_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(memo, json.dumps({"path": str(real), "signature": signature, "sha256": digest}))
    return digest


def entry_key(parts: dict[str, Any]) -> str:
    """The key of an entry: SHA-256 (hex, 40 characters kept) of ``parts`` as canonical JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:40]


@dataclass(frozen=True)
class CacheEntry:
    """A complete, verified entry: its folder and manifest (``files``: name → ``{"sha256", "size"}``, plus whatever
    the builder recorded under ``info``)."""

    directory: Path
    manifest: dict[str, Any]

    def path(self, name: str) -> Path:
        return self.directory / name


def _verified(directory: Path) -> CacheEntry | None:
    """The entry in ``directory`` when its files are those its manifest describes (see the module docstring)."""
    try:
        manifest = json.loads((directory / MANIFEST_NAME).read_text())
        files: dict[str, dict[str, Any]] = manifest["files"]
        changed = False
        for name, recorded in files.items():
            path = directory / name
            signature = _signature(path)
            if signature[0] != recorded["size"]:
                return None
            if signature != recorded.get("signature"):
                if sha256_file(path) != recorded["sha256"]:
                    return None
                recorded["signature"] = _signature(path)
                changed = True
        if changed:  # hashed again and intact: remember the new signatures
            with contextlib.suppress(OSError):
                write_text_atomic(directory / MANIFEST_NAME, json.dumps(manifest, indent=1))
        return CacheEntry(directory, manifest)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def discard(directory: Path) -> None:
    """Remove an entry (a corrupt one, or one the runtime could not load)."""
    shutil.rmtree(directory, ignore_errors=True)


def open_or_build(key: str, build: Callable[[Path], dict[str, Any]], root: Path | None = None) -> CacheEntry:
    """The verified entry under ``key``, built first when missing or corrupt.

    ``build(folder)`` writes the entry's files into an empty temporary ``folder`` and returns what to record in the
    manifest under ``info``; every file it leaves there is listed with its digest."""
    root = root or cache_root()
    directory = root / key
    if directory.exists():
        entry = _verified(directory)
        if entry is not None:
            return entry
        discard(directory)
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".partial", dir=root))
    try:
        os.chmod(building, 0o777 & ~_umask())  # readable like any cache folder, not mkdtemp's private 0700
        info = build(building)
        files = {}
        for path in sorted(p for p in building.iterdir() if p.is_file()):
            files[path.name] = {"sha256": sha256_file(path), "size": path.stat().st_size}
        manifest = {"key": key, "files": files, "info": info}
        write_text_atomic(building / MANIFEST_NAME, json.dumps(manifest, indent=1))
        for name in files:  # signatures as the files are now (after the manifest's write, nothing changes them)
            files[name]["signature"] = _signature(building / name)
        write_text_atomic(building / MANIFEST_NAME, json.dumps(manifest, indent=1))
        try:
            os.rename(building, directory)
        except OSError:  # another process put a complete entry there first
            discard(building)
    except BaseException:
        discard(building)
        raise
    entry = _verified(directory)
    if entry is None:
        raise OSError(f"the export cache entry {directory} could not be verified after writing it")
    return entry


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def digest_files(paths: Iterable[Path], root: Path | None = None) -> list[str]:
    return [file_digest(path, root) for path in paths]
