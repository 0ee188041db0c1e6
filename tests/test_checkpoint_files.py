"""Files a checkpoint names (shard index entries, ``transformers_weights``) must stay inside its directory or repo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

try:
    from tests.hubserver import hub, hub_env  # noqa: F401
except ImportError:  # tests/ is not a package
    from hubserver import hub, hub_env  # noqa: F401

import audioclf
from audioclf.checkpoints.files import SAFETENSORS_INDEX_NAME, SAFETENSORS_NAME, find_weights, read_weights
from audioclf.checkpoints.hub import fetch_model
from audioclf.errors import CheckpointError

DEFAULT_MODEL = Path(audioclf.__file__).parent / "assets" / "default-model"
OUTSIDE_NAMES = ["../evil.safetensors", "sub/../../evil.safetensors", "..\\evil.safetensors", "ABSOLUTE"]


def _weight_keys() -> list[str]:
    from safetensors import safe_open

    with safe_open(str(DEFAULT_MODEL / SAFETENSORS_NAME), "pt") as weights:
        return list(weights.keys())


def _model_pointing_outside(root: Path, name: str) -> Path:
    """A model folder whose shard index names ``name`` for every tensor; a valid weights file waits outside it, so
    only the check stops the load."""
    shutil.copyfile(DEFAULT_MODEL / SAFETENSORS_NAME, root / "evil.safetensors")
    folder = root / "model"
    folder.mkdir()
    shutil.copyfile(DEFAULT_MODEL / "config.json", folder / "config.json")
    target = str(root / "evil.safetensors") if name == "ABSOLUTE" else name
    index = {"metadata": {}, "weight_map": {key: target for key in _weight_keys()}}
    (folder / SAFETENSORS_INDEX_NAME).write_text(json.dumps(index))
    return folder


def test_the_fixture_loads_when_the_shard_is_inside(tmp_path):
    """Negative control: the same index naming a shard inside the folder loads."""
    folder = _model_pointing_outside(tmp_path, "evil.safetensors")
    shutil.copyfile(tmp_path / "evil.safetensors", folder / "evil.safetensors")
    model = audioclf.AutoModelForAudioClassification.from_pretrained(folder)
    assert model.config.num_labels == 12


@pytest.mark.parametrize("name", OUTSIDE_NAMES)
def test_local_shard_index_pointing_outside_is_refused(tmp_path, name):
    folder = _model_pointing_outside(tmp_path, name)
    with pytest.raises(CheckpointError, match="names a file outside its directory") as info:
        read_weights(find_weights(folder))
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="outside its directory"):
        audioclf.AutoModelForAudioClassification.from_pretrained(folder)


def test_explicit_weights_outside_are_refused(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "transformers_weights": "../evil.safetensors"}))
    with pytest.raises(CheckpointError, match="transformers_weights in config.json names a file outside"):
        find_weights(folder)
    # inside the folder it is the file that is loaded
    (folder / SAFETENSORS_NAME).rename(folder / "renamed.safetensors")
    (folder / "config.json").write_text(json.dumps({**config, "transformers_weights": "renamed.safetensors"}))
    assert find_weights(folder).path == folder / "renamed.safetensors"


@pytest.mark.parametrize("name", ["../evil.safetensors", "/evil.safetensors"])
def test_hub_shard_index_pointing_outside_is_refused(hub, hub_env, tmp_path, name):
    folder = _model_pointing_outside(tmp_path, name)
    hub.add_repo("org/evil").commit(folder)
    with pytest.raises(CheckpointError, match="names a file outside its directory") as info:
        fetch_model("org/evil")
    assert "\n" not in str(info.value)
    assert hub.downloaded() == ["config.json", SAFETENSORS_INDEX_NAME]
    assert not any("evil.safetensors" in request.path for request in hub.requests)


def test_hub_explicit_weights_outside_are_refused(hub, hub_env, tmp_path):
    config = json.loads((DEFAULT_MODEL / "config.json").read_text())
    hub.add_repo("org/evil").commit({"config.json": json.dumps({**config, "transformers_weights": "../x.safetensors"})
                                     .encode(), SAFETENSORS_NAME: b"unused"})
    with pytest.raises(CheckpointError, match="transformers_weights in config.json names a file outside"):
        fetch_model("org/evil")
    assert hub.downloaded() == ["config.json"]
