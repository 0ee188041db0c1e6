"""Typed Hub errors, raised against the loopback Hub, and the one exit code and line every command gives them."""

from __future__ import annotations

import subprocess
import sys

import pytest

try:
    from tests.hubserver import hub, hub_env, tiny_models  # noqa: F401
except ImportError:  # tests/ is not a package
    from hubserver import hub, hub_env, tiny_models  # noqa: F401

import audioclf.checkpoints.hub as hub_api
from audioclf.checkpoints.hub import fetch_model
from audioclf.cli import main
from audioclf.errors import (EntryNotFoundError, HubConnectionError, HubError, NotCachedError, RepoNotFoundError,
                             RevisionNotFoundError)


def _raised(call) -> HubError:
    with pytest.raises(HubError) as info:
        call()
    assert "\n" not in str(info.value)
    return info.value


def test_each_failure_has_its_type(hub, hub_env, tiny_models, monkeypatch):
    hub.add_repo("org/tiny").commit(tiny_models.safetensors)
    hub.add_repo("org/gone").commit(tiny_models.safetensors)
    hub.hide("org/gone", "config.json")  # listed, but the Hub answers 404 for it
    hub.add_repo("org/private", private=True, token="hf_secret").commit(tiny_models.safetensors)

    assert type(_raised(lambda: fetch_model("org/absent"))) is RepoNotFoundError
    assert type(_raised(lambda: fetch_model("org/private"))) is RepoNotFoundError
    assert type(_raised(lambda: fetch_model("org/tiny", revision="v404"))) is RevisionNotFoundError
    assert type(_raised(lambda: fetch_model("org/tiny", revision="f" * 40))) is RevisionNotFoundError
    missing = _raised(lambda: fetch_model("org/gone"))
    assert type(missing) is EntryNotFoundError and "config.json" in str(missing)
    bin_only = _raised(lambda: fetch_model("org/tiny", use_safetensors=False))
    assert type(bin_only) is EntryNotFoundError and "has no weights file" in str(bin_only)

    offline = _raised(lambda: fetch_model("org/tiny", local_files_only=True))
    assert type(offline) is NotCachedError and "`audioclf download org/tiny` with network access" in str(offline)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert type(_raised(lambda: fetch_model("org/tiny", revision="v1"))) is NotCachedError
    monkeypatch.delenv("HF_HUB_OFFLINE")

    fetch_model("org/tiny")
    hub.stop()
    unreachable = _raised(lambda: fetch_model("org/other"))
    assert type(unreachable) is NotCachedError and "unreachable" in str(unreachable)
    again = _raised(lambda: fetch_model("org/tiny", force_download=True))
    assert type(again) is HubConnectionError and "unreachable" in str(again)


def test_a_hub_answering_5xx_counts_as_unreachable(hub, hub_env, tiny_models):
    hub.add_repo("org/tiny").commit(tiny_models.safetensors)
    cached = fetch_model("org/tiny")
    hub.fail_status = 503
    assert fetch_model("org/tiny").from_cache
    assert type(_raised(lambda: fetch_model("org/other"))) is NotCachedError
    assert cached.path == fetch_model("org/tiny").path


# -- one exit code and one line per error type, whichever command meets it ----------------------------------------

HUB_ERRORS = [
    RepoNotFoundError("repository 'org/m' not found or private: pass --token/HF_TOKEN"),
    RevisionNotFoundError("revision 'v9' not found in repository 'org/m'"),
    EntryNotFoundError("file 'config.json' not found in repository 'org/m'"),
    NotCachedError("HF_HUB_OFFLINE is set and model 'org/m' is not in the cache at /c; run `audioclf download org/m` "
                   "with network access"),
    HubConnectionError("download of 'model.safetensors' from 'org/m' failed (connection reset); run it again"),
    HubError("the Hub answered HTTP 418 for 'org/m'"),
]

#: each command, the library function through which it meets the Hub (patched to fail), and its arguments
COMMANDS = {
    "download": ("fetch_model", ["download", "org/m"]),
    "inspect": ("fetch_model", ["inspect", "org/m"]),
    "classify": ("fetch_model", ["classify", "--model", "org/m", "samples"]),
    "cache list": ("list_cached_models", ["cache", "list"]),
    "cache rm": ("plan_removal", ["cache", "rm", "org/m", "--yes"]),
}


def _run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    sys_argv = sys.argv
    sys.argv = ["audioclf", *argv]
    try:
        main()
        code = 0
    except SystemExit as exit:
        code = exit.code
    finally:
        sys.argv = sys_argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("error", HUB_ERRORS, ids=lambda error: type(error).__name__)
def test_every_command_gives_a_hub_error_exit_2_and_its_line(error, monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise error

    for command, (function, argv) in COMMANDS.items():
        monkeypatch.setattr(hub_api, function, fail)
        code, out, err = _run_main(argv, capsys)
        assert (code, out, err) == (2, "", f"error: {error}\n"), command


def test_one_hub_failure_reads_the_same_from_every_command(hub, hub_env, tiny_models):
    """End to end against the loopback Hub: the installed entry point, three commands, one unknown revision."""
    hub.add_repo("org/tiny").commit(tiny_models.safetensors)
    expected = "error: revision 'v9' not found in repository 'org/tiny'\n"
    commands = [["download", "org/tiny", "--revision", "v9"], ["inspect", "org/tiny", "--revision", "v9"],
                ["classify", "--model", "org/tiny", "--revision", "v9", "samples"]]
    processes = [subprocess.Popen([sys.executable, "-m", "audioclf", *argv], env=hub_env["env"], text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for argv in commands]
    for argv, process in zip(commands, processes):
        out, err = process.communicate(timeout=120)
        assert (process.returncode, out, err) == (2, "", expected), argv
