"""fetch_model against a loopback Hub: what is downloaded, caching, revisions, offline use, errors, faults."""

from __future__ import annotations

from pathlib import Path

import pytest

try:
    from tests.hubserver import file_bytes, git_blob_sha1, hub, hub_env, tiny_models  # noqa: F401
except ImportError:  # tests/ is not a package
    from hubserver import file_bytes, git_blob_sha1, hub, hub_env, tiny_models  # noqa: F401

from audioclf.checkpoints.hub import FetchedModel, cache_status, fetch_model, is_valid_repo_id
from audioclf.errors import HubError


def _same_files(fetched: FetchedModel, source: Path, names) -> None:
    for name in names:
        assert (fetched.path / name).read_bytes() == file_bytes(source, name), name


def test_download_then_reuse_cache_with_hub_stopped(hub, hub_env, tiny_models):
    repo = hub.add_repo("org/tiny")
    commit = repo.commit(tiny_models.safetensors)

    fetched = fetch_model("org/tiny")
    assert fetched.commit == commit and fetched.revision == "main" and not fetched.from_cache
    assert fetched.path == hub_env["cache"].resolve() / "models--org--tiny" / "snapshots" / commit
    assert fetched.files == ["config.json", "preprocessor_config.json", "model.safetensors"]
    assert fetched.weights == ["model.safetensors"]
    _same_files(fetched, tiny_models.safetensors, fetched.files)
    assert (hub_env["cache"] / "models--org--tiny" / "refs" / "main").read_text() == commit
    assert sorted(hub.downloaded()) == sorted(fetched.files)

    # Online again: nothing is downloaded a second time.
    hub.reset_requests()
    again = fetch_model("org/tiny")
    assert again.path == fetched.path and again.commit == commit
    assert hub.downloaded() == []

    # Hub down: the cached snapshot is used.
    hub.stop()
    cached = fetch_model("org/tiny")
    assert cached.from_cache and cached.commit == commit and cached.path == fetched.path
    assert cached.files == fetched.files


def test_not_cached_and_hub_down_says_how_to_get_it(hub, hub_env):
    hub.stop()
    with pytest.raises(HubError) as info:
        fetch_model("org/absent", revision="v2")
    message = str(info.value)
    assert "\n" not in message
    assert "unreachable" in message and "not in the cache" in message
    assert "audioclf download org/absent --revision v2" in message


def test_revision_pinning_tag_main_and_commit(hub, hub_env, tiny_models):
    repo = hub.add_repo("org/pinned")
    old = repo.commit(tiny_models.other_labels, tags=["v1.0"])
    new = repo.commit(tiny_models.sharded)
    assert old != new

    tagged = fetch_model("org/pinned", revision="v1.0")
    main = fetch_model("org/pinned")
    assert tagged.commit == old and tagged.revision == "v1.0"
    assert main.commit == new
    assert tagged.weights == ["model.safetensors"]
    assert main.weights[0] == "model.safetensors.index.json" and len(main.weights) > 2
    assert (tagged.path / "config.json").read_bytes() == file_bytes(tiny_models.other_labels, "config.json")
    refs = hub_env["cache"] / "models--org--pinned" / "refs"
    assert (refs / "v1.0").read_text() == old and (refs / "main").read_text() == new

    by_commit = fetch_model("org/pinned", revision=old)
    assert by_commit.commit == old and by_commit.path == tagged.path

    # main moves on the Hub: the new commit is fetched, the tag keeps its files.
    newest = repo.commit(tiny_models.bin_only)
    moved = fetch_model("org/pinned")
    assert moved.commit == newest and moved.weights == ["pytorch_model.bin"]
    assert (tagged.path / "model.safetensors").is_file()

    # Offline, each revision resolves through refs/ to what was last seen.
    hub.stop()
    assert fetch_model("org/pinned").commit == newest
    assert fetch_model("org/pinned", revision="v1.0").commit == old
    assert fetch_model("org/pinned", revision=new).commit == new


def test_unknown_revision(hub, hub_env, tiny_models):
    hub.add_repo("org/tiny").commit(tiny_models.safetensors)
    with pytest.raises(HubError, match=r"^revision 'nope' not found in repository 'org/tiny'$"):
        fetch_model("org/tiny", revision="nope")


def test_offline_env_and_local_files_only(hub, hub_env, tiny_models, monkeypatch):
    hub.add_repo("org/tiny").commit(tiny_models.safetensors)

    with pytest.raises(HubError, match="local_files_only is set and model 'org/tiny' is not in the cache"):
        fetch_model("org/tiny", local_files_only=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set and model 'org/tiny' is not in the cache"):
        fetch_model("org/tiny")
    with pytest.raises(HubError, match="offline"):
        fetch_model("org/tiny", force_download=True)
    assert hub.requests == []

    monkeypatch.delenv("HF_HUB_OFFLINE")
    online = fetch_model("org/tiny")
    hub.reset_requests()

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = fetch_model("org/tiny")
    assert offline.from_cache and offline.path == online.path and offline.files == online.files
    monkeypatch.delenv("HF_HUB_OFFLINE")
    local = fetch_model("org/tiny", local_files_only=True)
    assert local.from_cache and local.commit == online.commit
    assert hub.requests == []  # neither touched the network


def test_bin_only_repo(hub, hub_env, tiny_models):
    hub.add_repo("org/bin").commit(tiny_models.bin_only)
    fetched = fetch_model("org/bin")
    assert fetched.files == ["config.json", "pytorch_model.bin"]
    _same_files(fetched, tiny_models.bin_only, fetched.files)

    with pytest.raises(HubError, match="has no weights file .*pytorch_model.bin weights: do not require safetensors"):
        fetch_model("org/bin", use_safetensors=True)


def test_sharded_safetensors_fetches_every_shard(hub, hub_env, tiny_models):
    hub.add_repo("org/sharded").commit(tiny_models.sharded)
    fetched = fetch_model("org/sharded")
    shards = sorted(p.name for p in tiny_models.sharded.glob("model-*.safetensors"))
    assert fetched.weights == ["model.safetensors.index.json", *shards]
    _same_files(fetched, tiny_models.sharded, fetched.files)
    hub.stop()
    assert fetch_model("org/sharded").weights == fetched.weights


def test_sharded_bin(hub, hub_env, tiny_models):
    hub.add_repo("org/sharded-bin").commit(tiny_models.sharded_bin)
    fetched = fetch_model("org/sharded-bin")
    shards = sorted(p.name for p in tiny_models.sharded_bin.glob("pytorch_model-*.bin"))
    assert len(shards) == 3
    assert fetched.weights == ["pytorch_model.bin.index.json", *shards]
    _same_files(fetched, tiny_models.sharded_bin, fetched.files)


def test_only_needed_files_are_downloaded(hub, hub_env, tiny_models):
    hub.add_repo("org/all").commit(tiny_models.everything)

    fetched = fetch_model("org/all")
    assert fetched.files == ["config.json", "preprocessor_config.json", "model.safetensors"]
    assert sorted(hub.downloaded()) == sorted(fetched.files)
    assert not (fetched.path / "pytorch_model.bin").exists()
    assert not (fetched.path / "tf_model.h5").exists() and not (fetched.path / "README.md").exists()

    hub.reset_requests()
    as_bin = fetch_model("org/all", use_safetensors=False)
    assert as_bin.weights == ["pytorch_model.bin"] and hub.downloaded() == ["pytorch_model.bin"]

    hub.reset_requests()
    as_tf = fetch_model("org/all", from_tf=True)
    assert as_tf.weights == ["tf_model.h5"] and hub.downloaded() == ["tf_model.h5"]
    _same_files(as_tf, tiny_models.everything, ["tf_model.h5"])
    assert all(not request.path.endswith(("README.md",)) for request in hub.requests)


def test_tf_weights_need_from_tf(hub, hub_env, tmp_path, tiny_models):
    source = tmp_path / "tf_only"
    source.mkdir()
    (source / "config.json").write_bytes(file_bytes(tiny_models.safetensors, "config.json"))
    (source / "tf_model.h5").write_bytes(b"not really hdf5")
    hub.add_repo("org/tf").commit(source)
    with pytest.raises(HubError, match="holds TensorFlow weights: pass from_tf=True"):
        fetch_model("org/tf")
    assert fetch_model("org/tf", from_tf=True).weights == ["tf_model.h5"]


def test_subfolder_and_local_dir(hub, hub_env, tmp_path, tiny_models):
    repo = hub.add_repo("org/nested")
    commit = repo.commit(tiny_models.safetensors, subfolder="classifier")
    fetched = fetch_model("org/nested", subfolder="classifier")
    assert fetched.path.name == "classifier" and fetched.path.parent.name == commit
    _same_files(fetched, tiny_models.safetensors, fetched.files)

    target = tmp_path / "copy"
    local = fetch_model("org/nested", subfolder="classifier", local_dir=target)
    assert local.path == target.resolve() / "classifier" and local.commit == commit
    _same_files(local, tiny_models.safetensors, local.files)
    hub.stop()
    offline = fetch_model("org/nested", subfolder="classifier", local_dir=target)
    assert offline.from_cache and offline.commit == commit and offline.files == local.files


def test_missing_repo_config_and_file(hub, hub_env, tiny_models, tmp_path):
    with pytest.raises(HubError, match=r"^repository 'org/nothing' not found or private: pass --token/HF_TOKEN$"):
        fetch_model("org/nothing")

    no_config = tmp_path / "no_config"
    no_config.mkdir()
    (no_config / "model.safetensors").write_bytes(file_bytes(tiny_models.safetensors, "model.safetensors"))
    hub.add_repo("org/no-config").commit(no_config)
    with pytest.raises(HubError, match="'org/no-config' has no config.json"):
        fetch_model("org/no-config")

    # The listing shows the file but the Hub answers 404 for it.
    hub.add_repo("org/gone").commit(tiny_models.safetensors)
    hub.hide("org/gone", "model.safetensors")
    with pytest.raises(HubError, match=r"^file 'model.safetensors' not found in repository 'org/gone'$"):
        fetch_model("org/gone")

    with pytest.raises(HubError, match="not a Hub model id"):
        fetch_model("not a repo")


def test_private_repo_needs_token(hub, hub_env, tiny_models, monkeypatch):
    hub.add_repo("org/private", private=True, token="hf_secret").commit(tiny_models.safetensors)

    with pytest.raises(HubError, match=r"^repository 'org/private' not found or private: pass --token/HF_TOKEN$"):
        fetch_model("org/private")
    with pytest.raises(HubError, match="not found or private"):
        fetch_model("org/private", token="hf_wrong")
    assert hub.downloaded() == []
    assert all(request.status == 401 for request in hub.requests)

    fetched = fetch_model("org/private", token="hf_secret")
    assert fetched.files[-1] == "model.safetensors"
    assert all(r.authorization == "Bearer hf_secret" for r in hub.requests if r.status in (200, 206))

    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    fetched = fetch_model("org/private", force_download=True)
    _same_files(fetched, tiny_models.safetensors, fetched.files)


def test_cut_transfer_is_retried_to_an_identical_file(hub, hub_env, tiny_models):
    hub.add_repo("org/tiny").commit(tiny_models.safetensors)
    hub.inject("cut", "model.safetensors", after=1000)
    fetched = fetch_model("org/tiny")
    _same_files(fetched, tiny_models.safetensors, fetched.files)
    assert len(hub.file_requests("model.safetensors")) == 2


def test_cut_transfer_of_a_large_file_resumes_with_range(hub, hub_env, tiny_models):
    hub.add_repo("org/big").commit(tiny_models.big)
    size = (tiny_models.big / "model.safetensors").stat().st_size
    after = 10 * 1024 * 1024 + 4096  # past the client's first 10 MiB chunk
    hub.inject("cut", "model.safetensors", after=after)
    fetched = fetch_model("org/big")
    assert (fetched.path / "model.safetensors").read_bytes() == file_bytes(tiny_models.big, "model.safetensors")
    requests = hub.file_requests("model.safetensors")
    assert [r.status for r in requests] == [200, 206]
    resumed_from = int(requests[1].range.split("=")[1].rstrip("-"))
    assert 0 < resumed_from <= after < size


def test_truncated_transfer_is_never_trusted(hub, hub_env, tiny_models, monkeypatch):
    hub.add_repo("org/tiny").commit(tiny_models.safetensors)
    hub.inject("short", "model.safetensors", after=1000)
    with pytest.raises(HubError, match=r"^download of 'model.safetensors' from 'org/tiny' failed: Consistency check"):
        fetch_model("org/tiny")
    repo_folder = hub_env["cache"] / "models--org--tiny"
    assert not list(repo_folder.glob("blobs/*.incomplete"))
    snapshot = next(repo_folder.glob("snapshots/*"))
    assert not (snapshot / "model.safetensors").exists()
    blobs = {blob.name for blob in repo_folder.glob("blobs/*")}
    expected = {git_blob_sha1(file_bytes(tiny_models.safetensors, name)) for name in ("config.json", "preprocessor_config.json")}
    assert blobs == expected  # nothing of the weights was kept

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match=r"^HF_HUB_OFFLINE is set and model 'org/tiny' is only partly in the cache .*\(no weights file\)"):
        fetch_model("org/tiny")
    monkeypatch.delenv("HF_HUB_OFFLINE")

    fetched = fetch_model("org/tiny")
    _same_files(fetched, tiny_models.safetensors, fetched.files)


def test_cache_status_reports_revisions(hub, hub_env, tiny_models):
    repo = hub.add_repo("org/tiny")
    first = repo.commit(tiny_models.other_labels, tags=["v1"])
    second = repo.commit(tiny_models.safetensors)
    assert not cache_status("org/tiny").cached
    fetch_model("org/tiny", revision="v1")
    fetch_model("org/tiny")
    status = cache_status("org/tiny")
    assert status.cached and status.size_on_disk > 0
    assert {rev.commit: rev.refs for rev in status.revisions} == {first: ("v1",), second: ("main",)}
    assert status.revisions[0].commit == second  # main first
    assert status.revision("v1").commit == first and status.revision(second[:10]).commit == second
    assert "model.safetensors" in status.revision("main").files


def test_repo_id_rules():
    assert is_valid_repo_id("superb/wav2vec2-base-superb-ks") and is_valid_repo_id("org/name.v2_x")
    for bad in ("single", "a/b/c", "org/", "/abs/path", "org/na--me", "org/../x", "org/name.git", ""):
        assert not is_valid_repo_id(bad), bad


def test_cache_is_shared_with_transformers(hub, hub_env, tiny_models):
    """transformers loads what fetch_model cached, and fetch_model reuses what transformers downloaded."""
    import torch
    from transformers import AutoModelForAudioClassification

    hub.add_repo("org/ours").commit(tiny_models.safetensors)
    hub.add_repo("org/theirs").commit(tiny_models.sharded)
    cache = str(hub_env["cache"])
    fetch_model("org/ours")
    theirs = AutoModelForAudioClassification.from_pretrained("org/theirs", cache_dir=cache)

    hub.stop()
    ours = AutoModelForAudioClassification.from_pretrained("org/ours", cache_dir=cache, local_files_only=True)
    assert ours.config.num_labels == 3
    fetched = fetch_model("org/theirs")
    assert fetched.from_cache and fetched.weights[0] == "model.safetensors.index.json"
    reloaded = AutoModelForAudioClassification.from_pretrained(fetched.path)
    for key, value in theirs.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[key]), key
