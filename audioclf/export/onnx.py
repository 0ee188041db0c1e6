"""Tracing a classifier into an ONNX graph: the one place the export touches torch.

:func:`export_onnx` writes the readable forward of an :class:`~audioclf.models.classifier.AudioClassifier` (weight
norm folded, :func:`~audioclf.models.inference.export_form`) as an ONNX graph whose inputs are exactly the arrays
the model's featurizer collates (``input_values`` ``float32 [B, N]`` and, when the preprocessor returns one,
``attention_mask`` ``int32 [B, N]``), both axes dynamic, and whose output is ``logits`` ``float32 [B, num_labels]``.
Weights go to one external data file beside the graph (graphs over 2 GB cannot hold them inline, and a runtime can
map them instead of parsing them).

The trace runs on a batch of two example inputs of different lengths when the featurizer pads with a mask, so the
masked code path is the one recorded; without a mask the two examples have the same length (the engine only
batches equal lengths then).
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["EXPORT_OPSET", "export_onnx", "example_batch"]

#: the ONNX opset the graphs are written with
EXPORT_OPSET = 17


def example_batch(featurizer: Any, seconds: float = 1.0) -> dict[str, np.ndarray]:
    """Two featurized example waveforms collated as the engine collates a batch: lengths ``seconds`` and 3/4 of that
    when the featurizer pads exactly with a mask, else both ``seconds``."""
    rate = featurizer.sampling_rate
    frames = int(round(seconds * rate))
    rng = np.random.default_rng(0)
    masked = bool(getattr(featurizer, "return_attention_mask", False))
    lengths = (frames, frames * 3 // 4) if masked else (frames, frames)
    items = [featurizer.featurize(rng.standard_normal(n).astype(np.float32) * 0.1) for n in lengths]
    return featurizer.collate(items)


def export_onnx(model: Any, featurizer: Any, target: str | os.PathLike[str], *,
                data_name: str | None = None) -> list[str]:
    """Write ``model`` (a classifier; not changed: a copy is traced) as ONNX to ``target``, weights in
    ``data_name`` (default ``<target name>.data``) beside it. Returns the input names in graph order."""
    from audioclf.models.inference import export_form

    target = Path(target)
    traced = copy.deepcopy(model).float().cpu()
    export_form(traced)
    batch = example_batch(featurizer)
    names = list(batch)
    wrapper = _LogitsOnly(traced, names).eval()
    inputs = tuple(torch.from_numpy(batch[name]) for name in names)
    dynamic = {name: {0: "batch", 1: "samples"} for name in names}
    dynamic["logits"] = {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation notes about the TorchScript-based exporter
        torch.onnx.export(wrapper, inputs, str(target), input_names=names, output_names=["logits"],
                          dynamic_axes=dynamic, opset_version=EXPORT_OPSET, dynamo=False,
                          do_constant_folding=True)
    _move_weights_out(target, data_name or target.name + ".data")
    return names


class _LogitsOnly(torch.nn.Module):
    """``forward(*arrays)`` → ``logits`` ``[B, num_labels]``: the classifier called with the featurizer's arrays
    (in ``names`` order) as keywords."""

    def __init__(self, model: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *arrays: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, arrays))).logits


def _move_weights_out(target: Path, data_name: str) -> None:
    """Re-save ``target`` with every initializer over 1 KiB in the file ``data_name`` beside it."""
    import onnx

    graph = onnx.load(str(target), load_external_data=True)
    data = target.parent / data_name
    data.unlink(missing_ok=True)
    onnx.save_model(graph, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data_name, size_threshold=1024)
