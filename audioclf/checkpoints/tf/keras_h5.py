"""Read Keras 2 HDF5 weight files (``tf_model.h5``) and their sharded form, through ``h5py``.

A Keras weights file lists its top-level layers in the root attribute ``layer_names`` (chunked into
``layer_names0``, ``layer_names1``... when large); each layer group lists full variable names in its
``weight_names`` attribute, with the datasets at ``group/<name>``. Model-level variables (e.g. ``layer_weights``
of ``TFWav2Vec2ForSequenceClassification``) are in a ``top_level_model_weights`` group that is not in
``layer_names``; it is read too.

A sharded save is ``tf_model.h5.index.json`` (``{"weight_map": {variable name: shard file}}``) plus shard files
whose root ``layer_names`` attribute lists dataset paths directly (the variable name without the model scope).

With ``lazy=True`` the readers return :class:`~._lazy.LazyArray` objects: the metadata (names, shapes, dtypes) is read
and checked, the data only when a tensor is used, so datasets a model does not need are never read (a compressed
dataset that was never written would otherwise expand to its full size). HDF5 links that leave the file (external
links, external storage, virtual datasets) are followed only to files inside the weights file's directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from audioclf.checkpoints.files import TF_H5_INDEX_NAME as H5_INDEX_NAME, check_inside
from audioclf.checkpoints.files import TF_H5_NAME as H5_WEIGHTS_NAME
from audioclf.checkpoints.tf._lazy import LazyArray, materialise
from audioclf.errors import TFCheckpointError
from audioclf.fileio import read_json_file

__all__ = ["read_keras_h5", "read_sharded_keras_h5", "is_hdf5_file", "H5_WEIGHTS_NAME", "H5_INDEX_NAME"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
TOP_LEVEL_GROUP = "top_level_model_weights"


def _h5py():
    try:
        import h5py  # noqa: PLC0415
    except ImportError:  # pragma: no cover - h5py is an optional dependency
        raise TFCheckpointError("reading tf_model.h5 needs h5py: pip install 'audioclf[tf]'") from None
    return h5py


def is_hdf5_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` starts with the HDF5 signature (at 0 or a power-of-two user-block offset)."""
    try:
        with open(path, "rb") as fh:
            offset = 0
            while True:
                fh.seek(offset)
                head = fh.read(8)
                if len(head) < 8:
                    return False
                if head == _HDF5_SIGNATURE:
                    return True
                offset = 512 if offset == 0 else offset * 2
                if offset > 1 << 20:
                    return False
    except OSError:
        return False


def _attr_strings(obj, name: str) -> list[str] | None:
    """A string-list attribute, re-joining Keras' chunked ``name0``, ``name1``... form. None when absent."""
    attrs = obj.attrs
    if name in attrs:
        chunks = [attrs[name]]
    elif f"{name}0" in attrs:
        chunks = []
        i = 0
        while f"{name}{i}" in attrs:
            chunks.append(attrs[f"{name}{i}"])
            i += 1
    else:
        return None
    out: list[str] = []
    for chunk in chunks:
        for item in np.atleast_1d(np.asarray(chunk, dtype=object)).reshape(-1):
            if isinstance(item, bytes | np.bytes_):
                try:
                    item = bytes(item).decode("utf-8")
                except UnicodeDecodeError:
                    raise TFCheckpointError(f"attribute {name!r} holds a name that is not UTF-8") from None
            if not isinstance(item, str):
                raise TFCheckpointError(f"attribute {name!r} does not hold strings")
            out.append(item)
    return out


def _check_link_target(name: Any, directory: Path, where: str, path: str) -> None:
    """Refuse an HDF5 external file name (a link, external storage, a virtual dataset's source) that is not a file
    inside ``directory``; ``"."`` (the file itself) is fine."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "surrogateescape")
    if name == ".":
        return
    try:
        check_inside(name, f"{where}: {path!r}")
    except Exception:
        raise TFCheckpointError(f"{where}: {path!r} refers to a file outside the model directory ({name!r})") from None
    target = (directory / name).resolve()
    if directory.resolve() not in target.parents:
        raise TFCheckpointError(f"{where}: {path!r} refers to a file outside the model directory ({name!r})")


def _member(group, path: str, h5py, where: str, directory: Path):
    """``group[path]``, following external links only into ``directory``."""
    current = group
    for part in (p for p in path.split("/") if p):
        try:
            link = current.get(part, getlink=True)
        except Exception:  # a broken link or a malformed name
            link = None
        if link is None:
            raise KeyError(path)
        if isinstance(link, h5py.ExternalLink):
            _check_link_target(link.filename, directory, where, path)
        current = current[part]
    return current


def _dataset(group, path: str, h5py, where: str, directory: Path):
    """The dataset at ``path`` of ``group``, checked: a real array of numbers whose data stays in ``directory``."""
    try:
        obj = _member(group, path, h5py, where, directory)
    except (KeyError, ValueError):
        raise TFCheckpointError(f"{where}: weight {path!r} is listed but not stored") from None
    if not isinstance(obj, h5py.Dataset):
        raise TFCheckpointError(f"{where}: {path!r} is not a dataset")
    for name, *_ in obj.external or ():
        _check_link_target(name, directory, where, path)
    if obj.is_virtual:
        for source in obj.virtual_sources():
            _check_link_target(source.file_name, directory, where, path)
    if obj.dtype.kind not in "fiub":
        raise TFCheckpointError(f"{where}: weight {path!r} has unsupported dtype {obj.dtype}")
    return obj


def _lazy_dataset(file: Path, group_path: str, path: str, where: str, h5py, shape, dtype) -> LazyArray:
    """A :class:`LazyArray` of the dataset ``path`` in the group ``group_path`` of the HDF5 ``file``."""

    def load() -> np.ndarray:
        with _open(file, h5py) as handle:
            try:
                group = _member(handle, group_path, h5py, where, file.parent)
                return np.asarray(_dataset(group, path, h5py, where, file.parent)[()])
            except TFCheckpointError:
                raise
            except Exception as exc:  # h5py raises a variety of types on corrupt data
                raise TFCheckpointError(f"{where}: cannot read {path!r}: {exc}") from None

    return LazyArray(shape, dtype, load)


def _open(path: Path, h5py):
    if not path.is_file():
        raise TFCheckpointError(f"{path} does not exist")
    if not is_hdf5_file(path):
        raise TFCheckpointError(f"{path.name} is not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except Exception as exc:
        raise TFCheckpointError(f"cannot open {path.name} as HDF5: {exc}") from None


def read_keras_h5(path: str | os.PathLike[str], *, lazy: bool = False) -> dict[str, Any]:
    """All variables of a Keras HDF5 weights file, keyed by their full Keras name without ``:0``: arrays, or
    :class:`~._lazy.LazyArray` objects with ``lazy``."""
    h5py = _h5py()
    path = Path(path)
    with _open(path, h5py) as f:
        try:
            root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
            layer_names = _attr_strings(root, "layer_names")
            if layer_names is None:
                raise TFCheckpointError(f"{path.name} is an HDF5 file but not Keras weights (no 'layer_names')")
            if "weight_names" not in root.attrs and _looks_sharded(root, layer_names, h5py):
                listed = [("", name) for name in layer_names]
            else:
                groups = list(layer_names)
                if TOP_LEVEL_GROUP in root and TOP_LEVEL_GROUP not in groups:
                    groups.append(TOP_LEVEL_GROUP)
                listed = []
                for layer in groups:
                    try:
                        group = _member(root, layer, h5py, path.name, path.parent)
                    except (KeyError, ValueError):
                        group = None
                    if not isinstance(group, h5py.Group):
                        raise TFCheckpointError(f"{path.name}: layer {layer!r} is listed but has no group")
                    weight_names = _attr_strings(group, "weight_names")
                    if weight_names is None:
                        raise TFCheckpointError(f"{path.name}: layer {layer!r} has no 'weight_names' attribute")
                    listed += [(layer, name) for name in weight_names]
            out: dict[str, Any] = {}
            for layer, name in listed:
                key = name[:-2] if name.endswith(":0") else name
                if key in out:
                    raise TFCheckpointError(f"{path.name}: weight {name!r} is stored twice")
                group_path = f"{root.name.rstrip('/')}/{layer}"
                group = _member(f, group_path, h5py, path.name, path.parent)
                dataset = _dataset(group, name, h5py, path.name, path.parent)
                out[key] = _lazy_dataset(path, group_path, name, path.name, h5py, dataset.shape, dataset.dtype)
        except TFCheckpointError:
            raise
        except Exception as exc:  # corrupt HDF5 structures surface as assorted h5py errors
            raise TFCheckpointError(f"cannot read {path.name}: {exc}") from None
    return out if lazy else {key: materialise(value) for key, value in out.items()}


def _looks_sharded(root, layer_names: list[str], h5py) -> bool:
    """Shard files list dataset paths in ``layer_names`` instead of layer groups."""
    return bool(layer_names) and all(
        name in root and isinstance(root[name], h5py.Dataset) for name in layer_names
    )


def read_sharded_keras_h5(index_path: str | os.PathLike[str], *, lazy: bool = False) -> dict[str, Any]:
    """All variables of a sharded save described by ``tf_model.h5.index.json`` (lazy: see :func:`read_keras_h5`).

    Keys are the names from ``weight_map`` (full Keras names, model scope included) without ``:0``.
    """
    index_path = Path(index_path)
    index = read_json_file(index_path, TFCheckpointError, index_path.name)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise TFCheckpointError(f"{index_path.name} has no valid 'weight_map'")
    by_file: dict[str, list[str]] = {}
    for name, shard in weight_map.items():
        if Path(shard).name != shard:
            raise TFCheckpointError(f"{index_path.name}: shard name {shard!r} is not a plain file name")
        by_file.setdefault(shard, []).append(name)
    out: dict[str, Any] = {}
    for shard, names in by_file.items():
        stored = read_keras_h5(index_path.parent / shard, lazy=True)
        for name in names:
            key = name[:-2] if name.endswith(":0") else name
            # shard datasets drop the model scope (the first path component) unless the name has a single part
            candidates = [key, key.split("/", 1)[1] if "/" in key else key]
            found = next((c for c in candidates if c in stored), None)
            if found is None:
                raise TFCheckpointError(f"{shard}: weight {name!r} listed in {index_path.name} is not stored")
            out[key] = stored[found]
    return out if lazy else {key: materialise(value) for key, value in out.items()}
