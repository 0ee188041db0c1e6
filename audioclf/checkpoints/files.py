"""Checkpoint files: their names, which weights file a model directory (or Hub repo) is loaded from, reading the
weights (safetensors, ``.bin``, shards) and writing safetensors.

Every file name the package uses for a checkpoint is defined here; the Hub client, the Auto classes, the converter,
the TensorFlow readers and the CLI take them from this module. ``.bin`` files are read with
``torch.load(weights_only=True)``: no pickled code is ever executed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Callable

from audioclf.errors import CheckpointError

if TYPE_CHECKING:  # torch is imported where tensors are read, so the file names here stay cheap to import
    import torch

CONFIG_NAME = "config.json"
PREPROCESSOR_CONFIG_NAME = "preprocessor_config.json"
#: transformers 5.x processors: the feature extractor's settings nested under ``"feature_extractor"``
PROCESSOR_CONFIG_NAME = "processor_config.json"
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
BIN_NAME = "pytorch_model.bin"
BIN_INDEX_NAME = "pytorch_model.bin.index.json"
TF_H5_NAME = "tf_model.h5"
TF_H5_INDEX_NAME = "tf_model.h5.index.json"
TF_CKPT_INDEX_NAME = "model.ckpt.index"
#: the data files of a ``model.ckpt`` tensor bundle start with this (``model.ckpt.data-00000-of-00001``)
TF_CKPT_DATA_PREFIX = "model.ckpt.data-"
#: TensorFlow weights in the order they are looked for with ``from_tf``
TF_WEIGHT_NAMES = (TF_H5_NAME, TF_H5_INDEX_NAME, TF_CKPT_INDEX_NAME)
#: endings of the files that hold weights or point at them (shown by ``inspect``)
WEIGHT_FILE_SUFFIXES = (".safetensors", ".bin", ".h5", ".index", ".index.json")
#: the config.json key naming the safetensors file to load instead of the default names (transformers 5.x)
EXPLICIT_WEIGHTS_KEY = "transformers_weights"


@dataclass(frozen=True)
class WeightsLocation:
    """Where a checkpoint's tensors are: one file, or an index json naming shards."""

    path: Path
    sharded: bool

    @property
    def is_safetensors(self) -> bool:
        name = self.path.name
        return name.endswith(".safetensors") or name.endswith(".safetensors.index.json")


def is_shard_index(name: str) -> bool:
    return name.endswith(".index.json")


def check_inside(name: Any, where: str) -> str:
    """``name`` if it is a relative path that stays inside its directory, else a one-line :class:`CheckpointError`
    naming ``where`` it came from (absolute paths, ``..``, backslashes and empty names are refused)."""
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{where} names an invalid file: {name!r}")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or ":" in path.parts[0]:
        raise CheckpointError(f"{where} names a file outside its directory: {name!r}")
    return name


def weight_candidates(use_safetensors: bool | None = None, from_tf: bool = False) -> list[str]:
    """File names looked for, in order of preference: safetensors first, ``.bin`` unless safetensors is required;
    with ``from_tf`` the TensorFlow names instead."""
    if from_tf:
        return list(TF_WEIGHT_NAMES)
    names = []
    if use_safetensors is not False:
        names += [SAFETENSORS_NAME, SAFETENSORS_INDEX_NAME]
    if use_safetensors is not True:
        names += [BIN_NAME, BIN_INDEX_NAME]
    return names


def explicit_weights_name(config_path: Path) -> str | None:
    """The weights file that ``transformers_weights`` in ``config.json`` names (a safetensors file or its index),
    None when the key is absent or the config cannot be read. A name outside the directory is refused."""
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = config.get(EXPLICIT_WEIGHTS_KEY) if isinstance(config, dict) else None
    if not isinstance(name, str) or not name.endswith((".safetensors", ".safetensors.index.json")):
        return None
    return check_inside(name, f"{EXPLICIT_WEIGHTS_KEY} in {config_path.name}")


def choose_weights(exists: Callable[[str], bool], config_path: Path | None, use_safetensors: bool | None = None,
                   from_tf: bool = False) -> tuple[str | None, list[str]]:
    """The weights file to load and the names that were looked for.

    ``exists`` says whether a file is there (in a directory, a repo listing or a cache snapshot); ``config_path`` is
    the local ``config.json``, read for ``transformers_weights``. Returns ``(None, candidates)`` when none exists.
    """
    explicit = None if from_tf or config_path is None else explicit_weights_name(config_path)
    candidates = [explicit] if explicit else weight_candidates(use_safetensors, from_tf)
    return next((name for name in candidates if exists(name)), None), candidates


def missing_weights_hint(exists: Callable[[str], bool], use_safetensors: bool | None, from_tf: bool) -> str:
    """Why no candidate was found when other weights are there ('' when there are none at all)."""
    if not from_tf and any(exists(name) for name in TF_WEIGHT_NAMES):
        return "; it holds TensorFlow weights: pass from_tf=True (or convert them with `audioclf convert --from-tf`)"
    if use_safetensors is True and any(exists(name) for name in (BIN_NAME, BIN_INDEX_NAME)):
        return f"; it holds {BIN_NAME} weights: do not require safetensors"
    if use_safetensors is False and any(exists(name) for name in (SAFETENSORS_NAME, SAFETENSORS_INDEX_NAME)):
        return "; it holds safetensors weights: do not set use_safetensors=False"
    return ""


def find_weights(directory: Path, use_safetensors: bool | None = None) -> WeightsLocation:
    """Pick the weights file in ``directory``; one-line error naming every file looked for when there is none."""
    exists = lambda name: (directory / name).is_file()  # noqa: E731
    chosen, candidates = choose_weights(exists, directory / CONFIG_NAME, use_safetensors)
    if chosen is None:
        hint = missing_weights_hint(exists, use_safetensors, from_tf=False)
        raise CheckpointError(f"no weights in {directory}: looked for {', '.join(candidates)}{hint}")
    return WeightsLocation(directory / chosen, sharded=is_shard_index(chosen))


def list_weight_files(directory: Path) -> list[str]:
    """Names of the files in ``directory`` that hold weights or index them, sorted."""
    return sorted(path.name for path in directory.iterdir() if path.name.endswith(WEIGHT_FILE_SUFFIXES))


def location_for_file(path: Path) -> WeightsLocation:
    """A weights location for an explicit file path (a weights file or a shard index)."""
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    return WeightsLocation(path, sharded=is_shard_index(path.name))


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"cannot read {path}: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None


def _read_bin(path: Path) -> dict[str, torch.Tensor]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or hostile files
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"cannot read {path} as a PyTorch weights file: {message}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return state


def read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of one (unsharded) weights file."""
    if path.name.endswith(".safetensors"):
        return _read_safetensors(path)
    return _read_bin(path)


def read_shard_index(path: Path) -> dict[str, str]:
    """The ``weight_map`` (key → shard file name) of a ``*.index.json``; every shard name must stay inside the
    index's directory."""
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        weight_map = index["weight_map"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"{path} is not a valid shard index (expected a JSON object with 'weight_map')") from None
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"{path}: 'weight_map' must map tensor names to shard files")
    for shard in weight_map.values():
        check_inside(shard, f"shard index {path.name}")
    return weight_map


def shard_names(index_path: Path) -> list[str]:
    """The distinct shard files a ``*.index.json`` names, sorted (checked as in :func:`read_shard_index`)."""
    return sorted(set(read_shard_index(index_path).values()))


def read_weights(location: WeightsLocation) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint, reading every shard named by an index."""
    if not location.sharded:
        return read_weights_file(location.path)
    state: dict[str, torch.Tensor] = {}
    for shard in shard_names(location.path):
        shard_path = location.path.parent / shard
        if not shard_path.is_file():
            raise CheckpointError(f"shard {shard} named by {location.path.name} is missing from {location.path.parent}")
        state.update(read_weights_file(shard_path))
    return state


def save_safetensors(state: dict[str, torch.Tensor], target: Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``state`` to ``target`` atomically."""
    from safetensors.torch import save_file

    from audioclf.fileio import atomic_path

    with atomic_path(target) as temporary:
        save_file(state, str(temporary), metadata={"format": "pt", **(metadata or {})})
