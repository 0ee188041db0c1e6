"""Weight files: finding them in a directory, reading them (safetensors, ``.bin``, shards), writing safetensors.

``.bin`` files are read with ``torch.load(weights_only=True)``: no pickled code is ever executed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from audioclf.errors import CheckpointError

if TYPE_CHECKING:  # torch is imported where tensors are read, so the file names here stay cheap to import
    import torch

SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
BIN_NAME = "pytorch_model.bin"
BIN_INDEX_NAME = "pytorch_model.bin.index.json"
TF_H5_NAME = "tf_model.h5"
TF_H5_INDEX_NAME = "tf_model.h5.index.json"
TF_CKPT_INDEX_NAME = "model.ckpt.index"


@dataclass(frozen=True)
class WeightsLocation:
    """Where a checkpoint's tensors are: one file, or an index json naming shards."""

    path: Path
    sharded: bool

    @property
    def is_safetensors(self) -> bool:
        name = self.path.name
        return name.endswith(".safetensors") or name.endswith(".safetensors.index.json")


def weight_candidates(use_safetensors: bool | None = None) -> list[str]:
    """File names looked for, in order of preference (safetensors first, ``.bin`` unless safetensors is required)."""
    names = []
    if use_safetensors is not False:
        names += [SAFETENSORS_NAME, SAFETENSORS_INDEX_NAME]
    if use_safetensors is not True:
        names += [BIN_NAME, BIN_INDEX_NAME]
    return names


def find_weights(directory: Path, use_safetensors: bool | None = None) -> WeightsLocation:
    """Pick the weights file in ``directory``; one-line error naming every file looked for when there is none."""
    candidates = weight_candidates(use_safetensors)
    for name in candidates:
        path = directory / name
        if path.is_file():
            return WeightsLocation(path, sharded=name.endswith(".index.json"))
    hint = ""
    if (directory / TF_H5_NAME).is_file() or (directory / TF_CKPT_INDEX_NAME).is_file():
        hint = "; it holds TensorFlow weights: pass from_tf=True or run `audioclf convert --from-tf`"
    raise CheckpointError(f"no weights in {directory}: looked for {', '.join(candidates)}{hint}")


def location_for_file(path: Path) -> WeightsLocation:
    """A weights location for an explicit file path (a weights file or a shard index)."""
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    return WeightsLocation(path, sharded=path.name.endswith(".index.json"))


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
    """The ``weight_map`` (key → shard file name) of a ``*.index.json``."""
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        weight_map = index["weight_map"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"{path} is not a valid shard index (expected a JSON object with 'weight_map')") from None
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"{path}: 'weight_map' must map tensor names to shard files")
    return weight_map


def read_weights(location: WeightsLocation) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint, reading every shard named by an index."""
    if not location.sharded:
        return read_weights_file(location.path)
    weight_map = read_shard_index(location.path)
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
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
