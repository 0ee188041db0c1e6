"""Map TensorFlow Wav2Vec2/HuBERT variables to PyTorch state-dict keys and layouts.

The keys produced are the ``transformers`` PyTorch keys (``wav2vec2.encoder.layers.0.attention.q_proj.weight``,
``wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.original0``, ``projector.weight``, ``layer_weights``...).
Rules, per TF variable name (``<model scope>/wav2vec2/encoder/layers.0/attention/q_proj/kernel:0``):

* drop ``:0`` and the Keras model scope (everything before the base layer ``wav2vec2``/``hubert`` or a head
  layer ``projector``/``classifier``/``layer_weights``/``lm_head``); TF lists ``layers.N`` become ``layers.N``;
* Dense ``kernel`` [in, out] -> ``weight`` [out, in]; Conv1D ``kernel`` [k, in, out] -> ``weight`` [out, in, k];
* weight-norm ``weight_g`` [K, 1, 1] -> ``parametrizations.weight.original0`` [1, 1, K],
  ``weight_v`` [D, D/G, K] -> ``parametrizations.weight.original1`` (already PyTorch order);
* ``gamma``/``beta`` -> ``weight``/``bias``; ``moving_mean``/``moving_variance`` -> ``running_mean``/``running_var``;
* ``masked_spec_embed`` (SpecAugment's trained vector) is kept; ``lm_head`` (CTC models) is ignored.

The weight-norm names and the head keys are the loader's (:mod:`audioclf.checkpoints.keys`).

Object-path names from a bundle without an object graph (``wav2vec2/encoder/layer/0/.../kernel``,
``.../pos_conv_embed/conv/kernel`` for ``weight_v``) are normalised to the Keras form first.

:func:`load_tf_state_dict` reads lazily: the state dict's tensors are made when looked up, and
:func:`check_expected_keys` checks every shape against the model before it reads the tensors the model takes (and
no others), so a checkpoint's unused tensors, however large they claim to be, cost nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audioclf.checkpoints.keys import HEAD_LAYERS, WEIGHT_NORM_RENAMES, is_head_key, is_unused_at_inference
from audioclf.checkpoints.tf._lazy import LazyArray, TensorMap
from audioclf.checkpoints.tf.bundle import read_bundle_variables, resolve_bundle_prefix
from audioclf.checkpoints.tf.keras_h5 import (
    H5_INDEX_NAME,
    H5_WEIGHTS_NAME,
    is_hdf5_file,
    read_keras_h5,
    read_sharded_keras_h5,
)
from audioclf.errors import TFCheckpointError
from audioclf.fileio import read_json_file

__all__ = [
    "TFLoadResult",
    "ExpectedKeysReport",
    "BASE_PREFIXES",
    "tf_name_to_pt",
    "map_tf_variables",
    "check_expected_keys",
    "tf_config_overrides",
    "load_tf_state_dict",
]

BASE_PREFIXES = ("wav2vec2", "hubert")
_IGNORED_LAYERS = {"lm_head": "CTC language-model head (not used by the classifier)"}
_TOP_LEVEL = set(BASE_PREFIXES) | HEAD_LAYERS | set(_IGNORED_LAYERS)

# Keras variable names -> PyTorch names (the last key component); weight norm by the loader's rule
_LEAF_RENAMES = {
    "gamma": "weight",
    "beta": "bias",
    "embeddings": "weight",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
    **WEIGHT_NORM_RENAMES,
}


@dataclass
class TFLoadResult:
    """What was read from a TensorFlow checkpoint.

    ``state_dict``: PyTorch keys -> float32 (or integer) tensors (a :class:`~._lazy.TensorMap`: each read when
    looked up; ``state_dict.shape(key)`` without reading), base layer prefixed (``wav2vec2.``/``hubert.``)
    as in the ``*ForSequenceClassification`` models. ``ignored``: TF variables/keys deliberately skipped
    (optimizer state, counters, ``lm_head``, the object graph). ``unexpected``: TF variables with names that
    do not belong to a Wav2Vec2/HuBERT model. ``base_prefix``: ``"wav2vec2"`` or ``"hubert"``.
    ``source_format``: ``"h5"``, ``"sharded_h5"``, ``"bundle"`` (object-based) or ``"bundle_names"``
    (name-based). ``config``: the ``config.json`` found next to the weights, if any; ``config_overrides``:
    what :func:`tf_config_overrides` says to set on it.
    """

    state_dict: Mapping[str, torch.Tensor]
    ignored: list[str]
    unexpected: list[str]
    base_prefix: str
    source_format: str = ""
    source: str = ""
    tf_names: dict[str, str] = field(default_factory=dict)  # PyTorch key -> TF variable name
    config: dict[str, Any] | None = None
    config_overrides: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class ExpectedKeysReport:
    """Outcome of matching a :class:`TFLoadResult` against the keys of the model being built.

    ``state_dict`` is adapted to the model (base prefix stripped for a bare base model, unexpected keys
    removed); ``missing`` are the head/unused parameters the checkpoint lacks (they keep their initial values),
    with one line each in ``notes``; ``unexpected`` are checkpoint keys the model has no place for.
    """

    state_dict: dict[str, torch.Tensor]
    missing: list[str]
    unexpected: list[str]
    notes: list[str]


# ---------------------------------------------------------------------------------------------------------------
# names


def _object_path_to_keras(parts: list[str]) -> list[str]:
    """``encoder/layer/0`` -> ``encoder/layers.0``, ``conv_layers/1`` -> ``conv_layers.1``,
    ``pos_conv_embed/conv/kernel`` -> ``.../weight_v``."""
    out: list[str] = []
    for part in parts:
        if part.isdigit() and out:
            prev = out.pop()
            if prev == "layer":
                prev = "layers"
            out.append(f"{prev}.{part}")
        else:
            out.append(part)
    if len(out) >= 3 and out[-3:-1] == ["pos_conv_embed", "conv"] and out[-1] == "kernel":
        out[-1] = "weight_v"
    return out


def _strip_scope(parts: list[str]) -> list[str] | None:
    for i, part in enumerate(parts):
        if part in _TOP_LEVEL:
            nxt = parts[i + 1] if i + 1 < len(parts) else None
            if part in BASE_PREFIXES and nxt in BASE_PREFIXES:
                continue  # a Keras model scope that happens to be called "wav2vec2"/"hubert"
            return parts[i:]
    return None


def tf_name_to_pt(name: str, array: np.ndarray, *, object_path: bool = False) -> tuple[str, np.ndarray] | None:
    """PyTorch key and array for one TF variable, or None if the name has no Wav2Vec2/HuBERT layer in it.

    Returns the key with the base prefix (``wav2vec2.``/``hubert.``); head and ``lm_head`` keys unprefixed.
    """
    if name.endswith(":0"):
        name = name[:-2]
    name = name.replace("_._", "/")
    parts = [re.sub(r"^.*___", "", p) for p in name.split("/") if p]
    if object_path:
        parts = _object_path_to_keras(parts)
    stripped = _strip_scope(parts)
    if not stripped:
        return None
    leaf = stripped[-1]
    arr = array if isinstance(array, LazyArray) else np.asarray(array)
    if leaf == "kernel":
        stripped[-1] = "weight"
        if arr.ndim == 2:
            arr = arr.T
        elif arr.ndim == 3:
            arr = arr.transpose(2, 1, 0)
        elif arr.ndim == 4:
            arr = arr.transpose(3, 2, 0, 1)
    elif leaf == "weight_g":
        stripped[-1] = _LEAF_RENAMES[leaf]
        if arr.ndim == 3:
            arr = arr.transpose(2, 1, 0)  # [K, 1, 1] -> [1, 1, K]
    elif leaf in _LEAF_RENAMES:
        stripped[-1] = _LEAF_RENAMES[leaf]
    return ".".join(stripped), arr


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float32, copy=False)
    elif arr.dtype == np.uint16 or arr.dtype == np.uint32 or arr.dtype == np.uint64:
        arr = arr.astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(arr).copy())


def map_tf_variables(
    variables: Mapping[str, np.ndarray], *, object_path: bool = False, ignored: Iterable[str] = ()
) -> TFLoadResult:
    """Map TF variables (Keras names, or object paths with ``object_path=True``; arrays or lazy arrays) to a
    PyTorch state dict, made lazily (see :class:`TFLoadResult`)."""
    state_dict: dict[str, Any] = {}
    tf_names: dict[str, str] = {}
    ignored_out = list(ignored)
    unexpected: list[str] = []
    prefixes: set[str] = set()
    notes: list[str] = []
    for name, array in variables.items():
        mapped = tf_name_to_pt(name, array, object_path=object_path)
        if mapped is None:
            unexpected.append(name)
            continue
        key, arr = mapped
        top = key.split(".", 1)[0]
        if top in _IGNORED_LAYERS:
            ignored_out.append(name)
            note = f"ignored {top}: {_IGNORED_LAYERS[top]}"
            if note not in notes:
                notes.append(note)
            continue
        if top in BASE_PREFIXES:
            prefixes.add(top)
        if key in state_dict:
            raise TFCheckpointError(f"TF variables {tf_names[key]!r} and {name!r} both map to {key}")
        state_dict[key] = arr
        tf_names[key] = name
    if len(prefixes) > 1:
        raise TFCheckpointError("the TF checkpoint mixes Wav2Vec2 and HuBERT weights")
    if not prefixes:
        raise TFCheckpointError(
            "no Wav2Vec2 or HuBERT weights in the TF checkpoint (no variable under a 'wav2vec2' or 'hubert' layer)"
        )
    return TFLoadResult(
        state_dict=TensorMap(state_dict, _to_tensor),
        ignored=ignored_out,
        unexpected=unexpected,
        base_prefix=prefixes.pop(),
        tf_names=tf_names,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------------------------
# matching against the model


def check_expected_keys(
    result: TFLoadResult, expected: Iterable[str] | Mapping[str, Any], *, strict_shapes: bool = True
) -> ExpectedKeysReport:
    """Match the checkpoint against the parameter keys of the model the caller builds.

    ``expected`` is an iterable of keys, or a mapping key -> tensor/shape (then shapes are checked too).
    A bare base model (keys without the ``wav2vec2.``/``hubert.`` prefix) gets the prefix stripped from the
    checkpoint keys. Absent head parameters (``projector``, ``classifier``, ``layer_weights``) and absent
    ``masked_spec_embed`` are reported as initialised at load; any other absent parameter raises
    :class:`TFCheckpointError` naming it. Checkpoint keys the model does not have are listed as unexpected.
    """
    shapes: dict[str, tuple[int, ...]] | None = None
    if isinstance(expected, Mapping):
        shapes = {}
        for k, v in expected.items():
            shape = getattr(v, "shape", v)
            shapes[k] = tuple(int(d) for d in shape)
        keys = list(expected.keys())
    else:
        keys = list(expected)
    expected_set = set(keys)
    prefix = result.base_prefix + "."
    stored = result.state_dict
    state = {key: key for key in stored}  # model key -> stored key
    other = next(
        (p for p in BASE_PREFIXES if p != result.base_prefix and any(k.startswith(p + ".") for k in expected_set)),
        None,
    )
    if other is not None and not any(k.startswith(prefix) for k in expected_set):
        raise TFCheckpointError(
            f"the TF checkpoint holds a {result.base_prefix!r} model but the model expects {other!r} weights"
        )
    if not any(k.startswith(prefix) for k in expected_set):
        # a bare base model: its keys carry no prefix
        state = {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state.items()}

    def shape_of(key: str) -> tuple[int, ...]:
        return stored.shape(state[key]) if isinstance(stored, TensorMap) else tuple(stored[state[key]].shape)

    missing = sorted(k for k in expected_set if k not in state)
    bad = [k for k in missing if not is_head_key(k) and not is_unused_at_inference(k)]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise TFCheckpointError(f"the TF checkpoint has no weight for {bad[0]}{more}")
    notes = []
    for k in missing:
        if is_head_key(k):
            notes.append(f"{k}: not in the TF checkpoint, initialised at load")
        else:
            notes.append(f"{k}: not in the TF checkpoint (unused at inference), initialised at load")
    unexpected = sorted(k for k in state if k not in expected_set)
    taken = [k for k in state if k in expected_set]
    if shapes is not None and strict_shapes:
        for k in taken:  # before anything is read
            if shape_of(k) != shapes[k]:
                raise TFCheckpointError(
                    f"TF weight for {k} has shape {list(shape_of(k))}, the model expects {list(shapes[k])}"
                )
    adapted = {k: stored[state[k]] for k in taken}
    return ExpectedKeysReport(state_dict=adapted, missing=missing, unexpected=unexpected, notes=notes)


# ---------------------------------------------------------------------------------------------------------------
# config semantics


def tf_config_overrides(config_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Config changes that make the PyTorch model compute what the TF model computed.

    The TF classes (transformers 4.x) report as the last hidden state of a stable-LayerNorm model the tensor
    *after* the final encoder LayerNorm, and feed the weighted layer sum with it; ``tie_last_hidden_states = True``
    selects that rule (it changes the logits only together with ``use_weighted_layer_sum``).
    """
    if config_dict.get("do_stable_layer_norm"):
        return {"tie_last_hidden_states": True}
    return {}


# ---------------------------------------------------------------------------------------------------------------
# SOURCE forms


def _read_config(directory: Path) -> dict[str, Any] | None:
    path = directory / "config.json"
    if not path.is_file():
        return None
    try:
        data = read_json_file(path, TFCheckpointError)
    except TFCheckpointError:
        return None
    return data if isinstance(data, dict) else None


def _detect(source: Path) -> tuple[str, Path]:
    """(format, path) for a SOURCE: ``sharded_h5``/``h5`` with the file, or ``bundle`` with the prefix."""
    if source.is_dir():
        if (source / H5_INDEX_NAME).is_file():
            return "sharded_h5", source / H5_INDEX_NAME
        if (source / H5_WEIGHTS_NAME).is_file():
            return "h5", source / H5_WEIGHTS_NAME
        if (source / "checkpoint").is_file() or any(source.glob("*.index")):
            return "bundle", Path(resolve_bundle_prefix(source))
        raise TFCheckpointError(
            f"no TensorFlow weights in {source} (expected {H5_WEIGHTS_NAME}, {H5_INDEX_NAME}, "
            "a 'checkpoint' file or a *.index bundle)"
        )
    name = source.name
    if not source.exists() and source.suffix in (".h5", ".hdf5", ".json"):
        raise TFCheckpointError(f"{source} does not exist")
    if name.endswith(".index.json") and source.is_file():
        return "sharded_h5", source
    if source.is_file() and is_hdf5_file(source):
        return "h5", source
    if source.suffix in (".h5", ".hdf5") and source.is_file():
        raise TFCheckpointError(f"{name} is not an HDF5 file")
    return "bundle", Path(resolve_bundle_prefix(source))


def load_tf_state_dict(source: str | os.PathLike[str], *, verify_crc: bool = True) -> TFLoadResult:
    """Read TF Wav2Vec2/HuBERT weights from SOURCE and map them to PyTorch keys.

    SOURCE: a directory with ``tf_model.h5`` or ``tf_model.h5.index.json`` or a ``checkpoint`` file / one
    ``*.index`` bundle; a ``.h5`` file; a ``tf_model.h5.index.json``; a ``*.index`` file; a bundle prefix.
    """
    src = Path(source)
    fmt, path = _detect(src)
    if fmt == "h5":
        result = map_tf_variables(read_keras_h5(path, lazy=True))
        config_dir = path.parent
    elif fmt == "sharded_h5":
        result = map_tf_variables(read_sharded_keras_h5(path, lazy=True))
        config_dir = path.parent
    else:
        bv = read_bundle_variables(path, verify_crc=verify_crc, lazy=True)
        result = map_tf_variables(bv.variables, object_path=bv.kind == "object_path", ignored=bv.ignored)
        fmt = "bundle" if bv.object_based else "bundle_names"
        config_dir = Path(bv.prefix).parent
    result.source_format = fmt
    result.source = str(path)
    result.config = _read_config(config_dir)
    if result.config is not None:
        result.config_overrides = tf_config_overrides(result.config)
    return result
