"""A download killed mid-file leaves nothing that a later load trusts."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

try:
    from tests.hubserver import file_bytes, hub, hub_env, sha256, tiny_models  # noqa: F401
except ImportError:  # tests/ is not a package
    from hubserver import file_bytes, hub, hub_env, sha256, tiny_models  # noqa: F401

from audioclf.checkpoints.hub import fetch_model
from audioclf.errors import HubError

FETCH = "import sys; from audioclf.checkpoints.hub import fetch_model; print(fetch_model(sys.argv[1]).path)"


def test_killed_download_is_not_trusted(hub, hub_env, tiny_models, monkeypatch):
    hub.add_repo("org/big").commit(tiny_models.big)
    weights = file_bytes(tiny_models.big, "model.safetensors")
    hub.inject("stall", "model.safetensors", after=10 * 1024 * 1024 + 100)  # past the client's first 10 MiB chunk
    blobs = hub_env["cache"] / "models--org--big" / "blobs"

    process = subprocess.Popen(
        [sys.executable, "-c", FETCH, "org/big"],
        env=hub_env["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        partial = []
        while time.monotonic() < deadline and process.poll() is None:
            partial = [p for p in blobs.glob("*.incomplete") if p.stat().st_size >= 10 * 1024 * 1024]
            if partial:
                break
            time.sleep(0.05)
        assert partial, "the download never got under way"
    finally:
        process.kill()
        process.communicate()

    # Half a file sits on disk under a temporary name; nothing points at it.
    assert not (blobs / sha256(weights)).exists()
    snapshots = list((hub_env["cache"] / "models--org--big" / "snapshots").glob("*"))
    assert len(snapshots) == 1 and not (snapshots[0] / "model.safetensors").exists()

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match=r"only partly in the cache .*\(no weights file\)"):
        fetch_model("org/big")
    monkeypatch.delenv("HF_HUB_OFFLINE")

    fetched = fetch_model("org/big")
    assert (fetched.path / "model.safetensors").read_bytes() == weights
    statuses = [r.status for r in hub.file_requests("model.safetensors")]
    assert statuses == [200, 200]  # the second run starts over: the partial file is never resumed from
