"""The installed ``audioclf`` entry point, run as a user would: ``download`` and ``cache list``/``rm``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

try:
    from tests.hubserver import file_bytes, hub, hub_env, tiny_models  # noqa: F401
except ImportError:  # tests/ is not a package
    from hubserver import file_bytes, hub, hub_env, tiny_models  # noqa: F401


def audioclf_executable() -> str:
    found = shutil.which("audioclf") or shutil.which("audioclf", path=str(Path(sys.executable).parent))
    assert found, "the audioclf entry point is not installed"
    return found


def run(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [audioclf_executable(), *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def test_download_prints_the_snapshot_path_and_works_offline(hub, hub_env, tiny_models):
    repo = hub.add_repo("org/tiny")
    tagged = repo.commit(tiny_models.other_labels, tags=["v1"])
    main = repo.commit(tiny_models.everything)
    env = hub_env["env"]
    snapshots = hub_env["cache"].resolve() / "models--org--tiny" / "snapshots"

    first = run(env, "download", "org/tiny")
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"{snapshots / main}\n"
    assert sorted(hub.downloaded()) == ["config.json", "model.safetensors", "preprocessor_config.json"]
    assert (snapshots / main / "model.safetensors").read_bytes() == file_bytes(tiny_models.everything, "model.safetensors")

    pinned = run(env, "download", "org/tiny", "--revision", "v1")
    assert pinned.returncode == 0 and pinned.stdout == f"{snapshots / tagged}\n"
    assert tagged in pinned.stderr

    hub.reset_requests()
    again = run(env, "download", "org/tiny")
    assert again.returncode == 0 and again.stdout == first.stdout and hub.downloaded() == []

    hub.stop()
    offline = run({**env, "HF_HUB_OFFLINE": "1"}, "download", "org/tiny", "--revision", "v1")
    assert offline.returncode == 0 and offline.stdout == f"{snapshots / tagged}\n"
    down = run(env, "download", "org/tiny")
    assert down.returncode == 0 and down.stdout == first.stdout

    missing = run(env, "download", "org/other")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip().splitlines()[-1].startswith("error: the Hub at ")
    assert "`audioclf download org/other` with network access" in missing.stderr


def test_download_errors_and_tokens(hub, hub_env, tiny_models):
    hub.add_repo("org/private", private=True, token="hf_secret").commit(tiny_models.bin_only)
    env = hub_env["env"]

    denied = run(env, "download", "org/private")
    assert denied.returncode == 2 and denied.stdout == ""
    assert denied.stderr == "error: repository 'org/private' not found or private: pass --token/HF_TOKEN\n"

    with_option = run(env, "download", "org/private", "--token", "hf_secret", "--local-dir", str(hub_env["home"] / "x"))
    assert with_option.returncode == 0, with_option.stderr
    assert Path(with_option.stdout.strip(), "pytorch_model.bin").is_file()
    with_env = run({**env, "HF_TOKEN": "hf_secret"}, "download", "org/private")
    assert with_env.returncode == 0 and Path(with_env.stdout.strip(), "pytorch_model.bin").is_file()

    usage = run(env, "download", "no-slash")
    assert usage.returncode == 2 and usage.stderr.startswith("error: 'no-slash' is not a Hub model id")
    unknown = run(env, "download", "org/private", "--token", "hf_secret", "--revision", "nope")
    assert unknown.returncode == 2
    assert unknown.stderr == "error: revision 'nope' not found in repository 'org/private'\n"


def test_cache_list_and_rm(hub, hub_env, tiny_models):
    repo = hub.add_repo("org/tiny")
    repo.commit(tiny_models.other_labels, tags=["v1"])
    repo.commit(tiny_models.safetensors)
    env = {**hub_env["env"], "HF_HUB_OFFLINE": "1"}
    online = hub_env["env"]
    assert run(online, "download", "org/tiny", "--revision", "v1").returncode == 0
    assert run(online, "download", "org/tiny").returncode == 0
    hub.stop()

    listed = run(env, "cache", "list")  # stdout is a pipe: JSON Lines
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [row["repo_id"] for row in rows] == ["org/tiny"]
    assert [rev["refs"] for rev in rows[0]["revisions"]] == [["main"], ["v1"]]

    refused = run(env, "cache", "rm", "org/tiny")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    removed = run(env, "cache", "rm", "org/tiny", "--revision", "v1", "--yes")
    assert removed.returncode == 0 and removed.stdout == ""
    rows = [json.loads(line) for line in run(env, "cache", "list", "--json").stdout.splitlines()]
    assert [rev["refs"] for rev in rows[0]["revisions"]] == [["main"]]
    assert run(env, "cache", "rm", "org/tiny", "--yes").returncode == 0
    assert run(env, "cache", "list").stdout == ""
    assert run(env, "cache", "rm", "org/tiny", "--yes").returncode == 2
