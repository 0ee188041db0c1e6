"""A loopback stand-in for the Hugging Face Hub, driven by the real ``huggingface_hub`` client.

It speaks the endpoints the installed client calls when downloading models:

* ``GET /api/models/{org}/{name}`` and ``GET /api/models/{org}/{name}/revision/{rev}``: repo info with the resolved
  commit (``sha``) and the file list (``siblings``);
* ``GET /api/models/{org}/{name}/tree/{rev}[/{path}]?recursive=...``: the tree listing (single page);
* ``HEAD``/``GET /{org}/{name}/resolve/{rev}/{path}``: file metadata (``ETag``, ``X-Repo-Commit``,
  ``Content-Length``) and content, with ``Range`` support so interrupted transfers can resume.

Errors carry the headers the client maps to its exception types (``X-Error-Code: RepoNotFound``,
``RevisionNotFound``, ``EntryNotFound``). Private repos answer 401 unless ``Authorization: Bearer <token>``
matches. Every request is recorded, and faults can be injected into file transfers (cut the connection
mid-file, send a short body, or stall until the server stops).

Use as a context manager (``with HubServer() as hub: ...``) or through the ``hub`` fixture below, and point the
client at ``hub.url`` with ``HF_ENDPOINT`` (see ``hub_env``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

_TEXT_SUFFIXES = (".json", ".md", ".txt", ".yaml", ".yml", ".gitattributes")
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_SHORT_SHA = re.compile(r"[0-9a-f]{7,39}")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_lfs(path: str) -> bool:
    """Files stored through LFS on the real Hub: weights and anything that is not small text."""
    return not path.endswith(_TEXT_SUFFIXES)


def read_tree(directory: str | os.PathLike) -> dict[str, bytes]:
    """All files under ``directory`` as ``{posix relative path: bytes}``."""
    root = Path(directory)
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]


@dataclass
class Repo:
    """One model repo: commits (file snapshots), branches and tags."""

    repo_id: str
    private: bool = False
    token: str | None = None
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def commit(
        self,
        files: dict[str, bytes] | str | os.PathLike,
        *,
        branch: str | None = "main",
        tags: tuple[str, ...] | list[str] = (),
        subfolder: str = "",
    ) -> str:
        """Add a commit holding ``files`` (a mapping or a directory to copy) and return its 40-hex sha.

        The commit replaces the whole tree. ``branch`` (if not None) and every tag in ``tags`` point to it.
        With ``subfolder``, the files are placed under that folder.
        """
        content = read_tree(files) if not isinstance(files, dict) else dict(files)
        if subfolder:
            content = {f"{subfolder.strip('/')}/{name}": data for name, data in content.items()}
        digest = hashlib.sha1(self.repo_id.encode() + b"\0" + str(len(self.commits)).encode())
        for name in sorted(content):
            digest.update(name.encode() + b"\0" + sha256(content[name]).encode())
        sha = digest.hexdigest()
        self.commits[sha] = Commit(sha=sha, files=content)
        if branch is not None:
            self.branches[branch] = sha
        for tag in tags:
            self.tags[tag] = sha
        return sha

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        if _FULL_SHA.fullmatch(revision):
            return revision if revision in self.commits else None
        if _SHORT_SHA.fullmatch(revision):
            matches = [sha for sha in self.commits if sha.startswith(revision)]
            return matches[0] if len(matches) == 1 else None
        return None


@dataclass
class Fault:
    """A transfer fault for GET requests on files whose repo path ends with ``path``.

    ``kind``: ``"cut"`` announces the full ``Content-Length`` and closes the connection after ``after`` bytes;
    ``"short"`` announces and sends only ``after`` bytes (a complete but truncated response); ``"stall"`` sends
    ``after`` bytes and then hangs until the server stops. ``times`` is how many requests are hit (None: all).
    """

    kind: str
    path: str
    after: int
    times: int | None = 1
    hits: int = 0


@dataclass
class Request:
    method: str
    path: str  # unquoted path without query
    status: int
    range: str | None = None
    authorization: str | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, hub: "HubServer") -> None:
        self.hub = hub
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self):
        sock, address = super().get_request()
        with self.sockets_lock:
            self.open_sockets.add(sock)
        return sock, address

    def shutdown_request(self, request) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args) -> None:  # keep test output quiet
        pass

    # -- plumbing -----------------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def _dispatch(self, method: str) -> None:
        hub = self.server.hub
        split = urlsplit(self.path)
        raw_segments = split.path.split("/")[1:]
        self._record = Request(
            method=method,
            path=unquote(split.path),
            status=0,
            range=self.headers.get("Range"),
            authorization=self.headers.get("Authorization"),
        )
        with hub.lock:
            hub.requests.append(self._record)
        try:
            if hub.fail_status is not None:
                self._error(hub.fail_status, None, "injected failure")
            elif raw_segments[:2] == ["api", "models"] and len(raw_segments) >= 4:
                self._api(method, raw_segments[2:], parse_qs(split.query))
            elif len(raw_segments) >= 5 and raw_segments[2] == "resolve":
                self._resolve(method, raw_segments)
            else:
                self._error(404, None, "not found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"", *, head: bool = False) -> None:
        self._record.status = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _error(self, status: int, code: str | None, message: str, extra: dict[str, str] | None = None) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        headers.update(extra or {})
        body = json.dumps({"error": message}).encode()
        self._send(status, headers, body, head=self.command == "HEAD")

    def _json(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self._send(200, {"Content-Type": "application/json"}, body, head=self.command == "HEAD")

    def _repo(self, repo_id: str) -> Repo | None:
        """The repo if it exists and the request may see it; otherwise the error has been sent."""
        repo = self.server.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if repo.private:
            auth = self.headers.get("Authorization")
            if auth is None:
                self._error(401, "RepoNotFound", "Invalid username or password.")
                return None
            if auth != f"Bearer {repo.token}":
                self._error(401, None, "Invalid credentials in Authorization header")
                return None
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit | None:
        sha = repo.resolve(revision)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo.commits[sha]

    # -- endpoints ----------------------------------------------------------------------------------------

    def _api(self, method: str, segments: list[str], query: dict[str, list[str]]) -> None:
        repo = self._repo(f"{unquote(segments[0])}/{unquote(segments[1])}")
        if repo is None:
            return
        rest = segments[2:]
        if not rest or rest[0] == "revision":
            revision = unquote(rest[1]) if len(rest) > 1 else "main"
            commit = self._commit(repo, revision)
            if commit is None:
                return
            self._json(
                {
                    "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
                    "id": repo.repo_id,
                    "modelId": repo.repo_id,
                    "author": repo.repo_id.split("/")[0],
                    "sha": commit.sha,
                    "private": repo.private,
                    "disabled": False,
                    "gated": False,
                    "tags": [],
                    "siblings": [{"rfilename": name} for name in sorted(commit.files)],
                }
            )
        elif rest[0] == "tree" and len(rest) >= 2:
            commit = self._commit(repo, unquote(rest[1]))
            if commit is None:
                return
            prefix = unquote("/".join(rest[2:])).strip("/")
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            self._json(self._tree(commit, prefix, recursive))
        else:
            self._error(404, None, "not found")

    def _tree(self, commit: Commit, prefix: str, recursive: bool) -> list[dict] | None:
        base = f"{prefix}/" if prefix else ""
        entries: dict[str, dict] = {}
        for name, data in sorted(commit.files.items()):
            if not name.startswith(base):
                continue
            relative = name[len(base):]
            parts = relative.split("/")
            for depth in range(1, len(parts)):
                folder = base + "/".join(parts[:depth])
                if recursive or depth == 1:
                    entries.setdefault(
                        folder, {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(), "path": folder}
                    )
            if recursive or len(parts) == 1:
                entry = {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": name}
                if is_lfs(name):
                    entry["lfs"] = {"oid": sha256(data), "size": len(data), "pointerSize": 134}
                entries[name] = entry
        return list(entries.values())

    def _resolve(self, method: str, raw_segments: list[str]) -> None:
        hub = self.server.hub
        repo = self._repo(f"{unquote(raw_segments[0])}/{unquote(raw_segments[1])}")
        if repo is None:
            return
        commit = self._commit(repo, unquote(raw_segments[3]))
        if commit is None:
            return
        filename = unquote("/".join(raw_segments[4:]))
        data = commit.files.get(filename)
        if data is None or (repo.repo_id, filename) in hub.hidden:
            self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit.sha})
            return
        etag = sha256(data) if is_lfs(filename) else git_blob_sha1(data)
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{etag}"',
            "X-Repo-Commit": commit.sha,
            "Accept-Ranges": "bytes",
        }
        status, start, end = 200, 0, len(data)
        range_header = self.headers.get("Range")
        if range_header:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
            if match is None or (not match.group(1) and not match.group(2)):
                self._error(416, None, "invalid range")
                return
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)) + 1, len(data)) if match.group(2) else len(data)
            else:
                start = max(len(data) - int(match.group(2)), 0)
            if start >= len(data) and len(data) > 0:
                self._error(416, None, "range not satisfiable", {"Content-Range": f"bytes */{len(data)}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        body = data[start:end]
        headers["Content-Length"] = str(len(body))
        if method == "HEAD":
            self._send(status, headers, head=True)
            return
        fault = hub._take_fault(filename)
        if fault is None:
            self._send(status, headers, body)
            return
        self._record.status = status
        self.close_connection = True
        if fault.kind == "short":
            headers["Content-Length"] = str(min(fault.after, len(body)))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body[: fault.after])
        self.wfile.flush()
        if fault.kind == "stall":
            hub.stopping.wait(60)
        if fault.kind in ("cut", "stall"):
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HubServer:
    """The loopback Hub. ``url`` is the value for ``HF_ENDPOINT``."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.hidden: set[tuple[str, str]] = set()
        self.fail_status: int | None = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> "HubServer":
        self.stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="hubserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop every open connection, so clients see a Hub that is down."""
        if self._server is None:
            return
        self.stopping.set()
        self._server.shutdown()
        with self._server.sockets_lock:
            sockets = list(self._server.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server is not running"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- content ------------------------------------------------------------------------------------------

    def add_repo(self, repo_id: str, *, private: bool = False, token: str | None = None) -> Repo:
        repo = Repo(repo_id=repo_id, private=private, token=token)
        self.repos[repo_id] = repo
        return repo

    def hide(self, repo_id: str, filename: str) -> None:
        """Answer 404 EntryNotFound for this file, although listings still show it."""
        self.hidden.add((repo_id, filename))

    def inject(self, kind: str, path: str, after: int, *, times: int | None = 1) -> Fault:
        if kind not in ("cut", "short", "stall"):
            raise ValueError(kind)
        fault = Fault(kind=kind, path=path, after=after, times=times)
        with self.lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, filename: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if filename.endswith(fault.path) and (fault.times is None or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None

    # -- inspection ---------------------------------------------------------------------------------------

    def reset_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def file_requests(self, filename: str | None = None, method: str | None = "GET") -> list[Request]:
        """Requests on ``/resolve/`` URLs, optionally for one file (matched on the path's end) and method."""
        with self.lock:
            requests = list(self.requests)
        return [
            request
            for request in requests
            if "/resolve/" in request.path
            and (method is None or request.method == method)
            and (filename is None or request.path.endswith("/" + filename))
        ]

    def downloaded(self) -> list[str]:
        """Repo paths of the files sent with a successful GET, in request order."""
        result = []
        for request in self.file_requests():
            if request.status in (200, 206):
                result.append(request.path.split("/resolve/", 1)[1].split("/", 1)[1])
        return result


# -- pytest helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def hub():
    """A running loopback Hub, stopped at the end of the test."""
    with HubServer() as server:
        yield server


@pytest.fixture
def hub_env(hub, tmp_path, monkeypatch):
    """Point ``huggingface_hub`` at ``hub`` with an empty cache; returns the environment for subprocesses.

    The package reads ``HF_ENDPOINT``/``HF_HUB_CACHE``/``HF_HUB_OFFLINE``/``HF_TOKEN`` when it runs, so setting the
    variables is enough in-process; ``huggingface_hub.constants`` (read once at import) are patched as well.
    """
    import huggingface_hub.constants as constants

    home = tmp_path / "hf_home"
    cache = home / "hub"
    env = {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_ETAG_TIMEOUT": "5",
        "HF_HUB_DOWNLOAD_TIMEOUT": "5",
        "DISABLE_SAFETENSORS_CONVERSION": "1",
        "NO_COLOR": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    env_for_subprocess = dict(os.environ)
    return {"env": env_for_subprocess, "cache": cache, "home": home}


# -- tiny models ------------------------------------------------------------------------------------------


def tiny_wav2vec2(num_labels: int = 3, seed: int = 0):
    """A small random ``Wav2Vec2ForSequenceClassification`` built by ``transformers``."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    torch.manual_seed(seed)
    config = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(16, 16),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        num_labels=num_labels,
        classifier_proj_size=8,
    )
    return Wav2Vec2ForSequenceClassification(config).eval()


def save_bin(model, directory: Path, *, shards: int = 1) -> None:
    """Write ``pytorch_model.bin`` (or ``shards`` files plus ``pytorch_model.bin.index.json``) and config.json."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(directory)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    if shards == 1:
        torch.save(state, directory / "pytorch_model.bin")
        return
    keys = sorted(state)
    weight_map, total = {}, 0
    for index in range(shards):
        name = f"pytorch_model-{index + 1:05d}-of-{shards:05d}.bin"
        part = {key: state[key] for key in keys[index::shards]}
        torch.save(part, directory / name)
        weight_map.update({key: name for key in part})
        total += sum(t.numel() * t.element_size() for t in part.values())
    index_json = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / "pytorch_model.bin.index.json").write_text(json.dumps(index_json, indent=2))


@dataclass
class TinyModels:
    """Model folders written once per session (``transformers`` is slow to import)."""

    safetensors: Path  # config.json + model.safetensors + preprocessor_config.json
    bin_only: Path  # config.json + pytorch_model.bin
    sharded: Path  # config.json + model.safetensors.index.json + shards
    sharded_bin: Path  # config.json + pytorch_model.bin.index.json + shards
    everything: Path  # safetensors + pytorch_model.bin + tf_model.h5 (+ preprocessor)
    other_labels: Path  # a different model (2 labels), safetensors
    big: Path  # config.json + a 12 MB model.safetensors, for transfer faults


def build_tiny_models(root: Path) -> TinyModels:
    import numpy as np
    from safetensors.numpy import save_file
    from transformers import Wav2Vec2FeatureExtractor

    model = tiny_wav2vec2(num_labels=3, seed=0)
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, return_attention_mask=True)

    safetensors = root / "safetensors"
    model.save_pretrained(safetensors)
    extractor.save_pretrained(safetensors)

    bin_only = root / "bin_only"
    save_bin(model, bin_only)

    sharded = root / "sharded"
    model.save_pretrained(sharded, max_shard_size="20KB")
    assert len(list(sharded.glob("model-*.safetensors"))) >= 2, "expected several shards"

    sharded_bin = root / "sharded_bin"
    save_bin(model, sharded_bin, shards=3)

    everything = root / "everything"
    model.save_pretrained(everything)
    extractor.save_pretrained(everything)
    save_bin(model, everything)
    (everything / "tf_model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 16)
    (everything / "README.md").write_text("# tiny\n")

    other_labels = root / "other_labels"
    tiny_wav2vec2(num_labels=2, seed=1).save_pretrained(other_labels)

    big = root / "big"
    big.mkdir()
    model.config.save_pretrained(big)
    rng = np.random.default_rng(0)
    save_file({"blob": rng.standard_normal(3_000_000).astype(np.float32)}, str(big / "model.safetensors"))
    return TinyModels(safetensors, bin_only, sharded, sharded_bin, everything, other_labels, big)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> TinyModels:
    return build_tiny_models(tmp_path_factory.mktemp("tiny_models"))


def file_bytes(directory: Path, name: str) -> bytes:
    return (Path(directory) / name).read_bytes()
