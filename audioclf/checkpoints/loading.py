"""Putting a checkpoint's tensors into a model: key normalisation, the loading report, and its rules.

Keys are normalised by the rules of :mod:`audioclf.checkpoints.keys` (legacy weight-norm and ``LayerNorm.gamma``
names, the architecture's renames, base-model prefix added or stripped). Keys the model has no use for
(pre-training heads, CTC ``lm_head``, ``masked_spec_embed`` when the config does not mask, a Whisper decoder) are
reported as unexpected and dropped. Missing head parameters keep their random initialisation and are named in a
warning.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import torch
from torch import nn

from audioclf.checkpoints.keys import ARCHITECTURE_RENAMES, is_head_key, normalise_keys
from audioclf.errors import CheckpointError


@dataclass
class LoadingReport:
    """What happened to each key: the ``output_loading_info`` dictionary of ``from_pretrained``."""

    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    mismatched_keys: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    error_msgs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        return {
            "missing_keys": list(self.missing_keys),
            "unexpected_keys": list(self.unexpected_keys),
            "mismatched_keys": list(self.mismatched_keys),
            "error_msgs": list(self.error_msgs),
        }


def load_state_dict_into(model: nn.Module, state: dict[str, torch.Tensor], *, prefix: str,
                         ignore_mismatched_sizes: bool = False, is_head=is_head_key,
                         source: str = "checkpoint", dtype: torch.dtype = torch.float32,
                         initialise=None) -> LoadingReport:
    """Put ``state`` into ``model`` (in place) and report missing / unexpected / mismatched keys.

    A model built on the ``meta`` device takes the checkpoint tensors themselves (converted to ``dtype``; no second
    copy of the weights is ever held), and only the parameters the checkpoint lacks are allocated and passed to
    ``initialise(names)``. A materialised model gets the values copied in.

    A shape mismatch raises a one-line :class:`CheckpointError` naming the key and both shapes, before anything is
    loaded, unless ``ignore_mismatched_sizes`` (then the parameter is initialised and reported).
    Buffers such as BatchNorm's ``num_batches_tracked`` count as keys too.
    """
    expected = model.state_dict()
    renames = ARCHITECTURE_RENAMES.get(getattr(model, "model_type", ""), ())
    state = normalise_keys(state, set(expected), prefix, renames)
    report = LoadingReport()
    to_load: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key not in expected:
            report.unexpected_keys.append(key)
            continue
        target_shape = tuple(expected[key].shape)
        if tuple(value.shape) != target_shape:
            if not ignore_mismatched_sizes:
                raise CheckpointError(
                    f"{source}: {key} has shape {list(value.shape)} but the model expects {list(target_shape)} "
                    "(pass ignore_mismatched_sizes=True to re-initialise it)"
                )
            report.mismatched_keys.append((key, tuple(value.shape), target_shape))
            continue
        if not (value.is_floating_point() or key.endswith("num_batches_tracked")):
            raise CheckpointError(f"{source}: {key} has non-float dtype {value.dtype}")
        to_load[key] = value
    report.missing_keys = [key for key in expected if key not in to_load and
                           key not in {m[0] for m in report.mismatched_keys}]
    if any(tensor.is_meta for tensor in expected.values()):
        converted = {key: (value.to(dtype) if value.is_floating_point() else value) for key, value in to_load.items()}
        model.load_state_dict(converted, strict=False, assign=True)
        unloaded = [key for key in expected if key not in to_load]
        _materialise(model, unloaded, dtype)
        if unloaded and initialise is not None:
            initialise(unloaded)
    else:
        with torch.no_grad():
            for key, value in to_load.items():
                expected[key].copy_(value.to(expected[key].dtype))
    if report.missing_keys:
        heads = [k for k in report.missing_keys if is_head(k)]
        others = [k for k in report.missing_keys if not is_head(k)]
        if heads:
            _warn(f"{source} has no {', '.join(heads)}: initialised at random (train or fine-tune before use)")
        if others:
            shown = ", ".join(others[:8]) + (f" and {len(others) - 8} more" if len(others) > 8 else "")
            _warn(f"{source} lacks {len(others)} model parameter(s), left at random initialisation: {shown}")
    if report.mismatched_keys:
        shown = ", ".join(f"{k} {list(a)}→{list(b)}" for k, a, b in report.mismatched_keys)
        _warn(f"re-initialised parameters whose shapes differ from the {source}: {shown}")
    return report


def _materialise(model: nn.Module, keys: list[str], dtype: torch.dtype) -> None:
    """Give the (meta) tensors named by ``keys`` real, uninitialised storage."""
    for key in keys:
        path, _, name = key.rpartition(".")
        module = model.get_submodule(path) if path else model
        if name in module._parameters:
            old = module._parameters[name]
            storage = torch.empty(old.shape, dtype=dtype if old.is_floating_point() else old.dtype)
            module._parameters[name] = nn.Parameter(storage, requires_grad=old.requires_grad)
        else:
            old = module._buffers[name]
            module._buffers[name] = torch.empty(old.shape, dtype=dtype if old.is_floating_point() else old.dtype)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
