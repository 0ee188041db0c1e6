"""Cache listing and removal, through the library and through the ``download``/``cache`` commands in-process."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

try:
    from tests.hubserver import hub, hub_env, tiny_models  # noqa: F401
except ImportError:  # tests/ is not a package
    from hubserver import hub, hub_env, tiny_models  # noqa: F401

from audioclf.checkpoints.hub import cache_status, fetch_model, list_cached_models, remove_cached_model
from audioclf.cli.cache import cache_app
from audioclf.cli.download import download
from audioclf.errors import HubError


def _app() -> typer.Typer:
    """The commands mounted the way the CLI root mounts them."""
    app = typer.Typer(add_completion=False)
    app.command()(download)
    app.add_typer(cache_app, name="cache")
    return app


def _run(*args: str):
    return CliRunner().invoke(_app(), list(args), env={"COLUMNS": "300"})


BERT_CONFIG = json.dumps({"model_type": "bert", "architectures": ["BertForMaskedLM"], "hidden_size": 8}).encode()


@pytest.fixture
def populated(hub, hub_env, tiny_models):
    """Two audio models (one with two revisions) and a text model in the cache."""
    tiny = hub.add_repo("org/tiny")
    old = tiny.commit(tiny_models.other_labels, tags=["v1"])
    new = tiny.commit(tiny_models.safetensors)
    hub.add_repo("org/bin").commit(tiny_models.bin_only)
    hub.add_repo("org/bert").commit({"config.json": BERT_CONFIG, "pytorch_model.bin": b"\0" * 64})
    fetch_model("org/tiny", revision="v1")
    fetch_model("org/tiny")
    fetch_model("org/bin")
    fetch_model("org/bert")
    hub.stop()  # everything below works offline
    return {"old": old, "new": new}


def test_list_cached_audio_models(populated):
    models = list_cached_models()
    assert [m.repo_id for m in models] == ["org/bin", "org/tiny"]
    tiny = models[1]
    assert tiny.model_type == "wav2vec2" and tiny.architectures == ("Wav2Vec2ForSequenceClassification",)
    assert [rev.commit for rev in tiny.revisions] == [populated["new"], populated["old"]]
    assert tiny.size_on_disk == sum(rev.size_on_disk for rev in tiny.revisions) - _shared(tiny)
    assert [m.repo_id for m in list_cached_models(audio_only=False)] == ["org/bert", "org/bin", "org/tiny"]


def _shared(model) -> int:
    """Bytes counted in several revisions (blobs shared between them)."""
    seen, shared = set(), 0
    for rev in model.revisions:
        for name in rev.files:
            blob = (rev.snapshot_path / name).resolve()
            if blob in seen:
                shared += blob.stat().st_size
            seen.add(blob)
    return shared


def test_remove_one_revision_then_the_repo(populated, hub_env):
    removed = remove_cached_model("org/tiny", "v1")
    assert removed.commits == (populated["old"],) and not removed.whole_repo and removed.freed > 0
    status = cache_status("org/tiny")
    assert [rev.commit for rev in status.revisions] == [populated["new"]]
    assert fetch_model("org/tiny").commit == populated["new"]  # still usable offline
    with pytest.raises(HubError, match="not in the cache"):
        fetch_model("org/tiny", revision="v1")

    with pytest.raises(HubError, match=r"revision 'v9' of 'org/tiny' is not in the cache \(cached: "):
        remove_cached_model("org/tiny", "v9")
    removed = remove_cached_model("org/tiny")
    assert removed.whole_repo
    assert not (hub_env["cache"] / "models--org--tiny").exists()
    assert not cache_status("org/tiny").cached
    with pytest.raises(HubError, match="model 'org/tiny' is not in the cache"):
        remove_cached_model("org/tiny")


def test_cache_commands(populated, hub_env):
    listed = _run("cache", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [row["repo_id"] for row in rows] == ["org/bin", "org/tiny"]
    assert rows[1]["revisions"][0]["refs"] == ["main"] and rows[1]["model_type"] == "wav2vec2"
    assert _run("cache", "list", "--all").stdout.count("\n") == 3
    assert json.loads(_run("cache", "list", "--format", "json").stdout) == rows
    table = _run("cache", "list", "--format", "table").stdout
    assert "org/tiny" in table and "org/bin" in table and "wav2vec2" in table
    assert f"{populated['new'][:12]} (main), {populated['old'][:12]} (v1)" in table

    refused = _run("cache", "rm", "org/tiny")  # stdin is not a terminal
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    one = _run("cache", "rm", "org/tiny", "--revision", "v1", "--yes")
    assert one.exit_code == 0 and one.stdout == "" and "removed 'org/tiny' revision 'v1'" in one.stderr
    missing = _run("cache", "rm", "org/nope", "--yes")
    assert missing.exit_code == 2 and missing.stderr.startswith("error: model 'org/nope' is not in the cache")
    gone = _run("cache", "rm", "org/tiny", "--yes")
    assert gone.exit_code == 0
    assert [json.loads(line)["repo_id"] for line in _run("cache", "list").stdout.splitlines()] == ["org/bin"]


def test_download_command(hub, hub_env, tiny_models):
    commit = hub.add_repo("org/tiny").commit(tiny_models.safetensors, tags=["v1"])
    result = _run("download", "org/tiny", "--revision", "v1")
    assert result.exit_code == 0, result.output
    snapshot = hub_env["cache"].resolve() / "models--org--tiny" / "snapshots" / commit
    assert result.stdout == f"{snapshot}\n"
    assert commit in result.stderr

    target = hub_env["home"] / "copy"
    local = _run("download", "org/tiny", "--local-dir", str(target), "--quiet")
    assert local.exit_code == 0 and local.stdout == f"{target.resolve()}\n" and local.stderr == ""
    assert (target / "model.safetensors").is_file()

    bad = _run("download", "not-a-repo")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: 'not-a-repo' is not a Hub model id")
    absent = _run("download", "org/absent")
    assert absent.exit_code == 2 and absent.stdout == ""
    assert absent.stderr == "error: repository 'org/absent' not found or private: pass --token/HF_TOKEN\n"

    hub.stop()
    offline = _run("download", "org/tiny", "--revision", "v1")
    assert offline.exit_code == 0 and offline.stdout == f"{snapshot}\n" and "from the cache" in offline.stderr
    forced = _run("download", "org/tiny", "--force")
    assert forced.exit_code == 2 and forced.stderr.startswith("error: ")
