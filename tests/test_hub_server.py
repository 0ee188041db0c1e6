"""The loopback Hub speaks what the installed huggingface_hub client calls (checked with the client's own API)."""

from __future__ import annotations

from pathlib import Path

import pytest

try:
    from tests.hubserver import file_bytes, hub, hub_env, tiny_models  # noqa: F401
except ImportError:  # tests/ is not a package
    from hubserver import file_bytes, hub, hub_env, tiny_models  # noqa: F401


def test_client_api_against_loopback_hub(hub, hub_env, tiny_models):
    import huggingface_hub
    from huggingface_hub import errors

    repo = hub.add_repo("org/all")
    tagged = repo.commit(tiny_models.bin_only, tags=["v1"])
    main = repo.commit(tiny_models.everything, subfolder="nested")
    api = huggingface_hub.HfApi(endpoint=hub.url)

    assert api.model_info("org/all").sha == main
    assert api.model_info("org/all", revision="v1").sha == tagged
    assert api.model_info("org/all", revision=tagged[:10]).sha == tagged
    assert sorted(api.list_repo_files("org/all", revision="v1")) == ["config.json", "pytorch_model.bin"]
    top = list(api.list_repo_tree("org/all"))
    assert [(type(e).__name__, e.path) for e in top] == [("RepoFolder", "nested")]
    files = {e.path: e for e in api.list_repo_tree("org/all", path_in_repo="nested")}
    assert files["nested/model.safetensors"].lfs.sha256 and files["nested/config.json"].lfs is None

    folder = huggingface_hub.snapshot_download("org/all", revision="v1", cache_dir=hub_env["cache"], endpoint=hub.url)
    assert Path(folder).name == tagged
    assert (Path(folder) / "pytorch_model.bin").read_bytes() == file_bytes(tiny_models.bin_only, "pytorch_model.bin")

    with pytest.raises(errors.RemoteEntryNotFoundError):
        huggingface_hub.hf_hub_download("org/all", "missing.bin", cache_dir=hub_env["cache"], endpoint=hub.url)
    with pytest.raises(errors.RevisionNotFoundError):
        api.model_info("org/all", revision="v404")
    with pytest.raises(errors.RepositoryNotFoundError):
        api.model_info("org/none")

    hub.add_repo("org/private", private=True, token="hf_x").commit(tiny_models.bin_only)
    with pytest.raises(errors.RepositoryNotFoundError):
        api.model_info("org/private", token=False)
    assert api.model_info("org/private", token="hf_x").private is True
