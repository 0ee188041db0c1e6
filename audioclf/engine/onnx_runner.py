"""The ONNX Runtime backend of the engine: :class:`OnnxRunner`, a drop-in for
:class:`~audioclf.engine.runner.ModelRunner` on the CPU that never imports torch once its graph is cached.

The model's graph comes from the export cache (:func:`audioclf.export.artifacts.cached_graph`): built the first
time a checkpoint is used (that run imports torch to trace our own model), then only mapped and run. A graph that
the runtime cannot load is discarded and built again once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from audioclf.engine.runner import RunOutput
from audioclf.errors import OptionError

__all__ = ["OnnxRunner"]


class _Cpu:
    """What the engine asks of a runner's device (``device.type``)."""

    type = "cpu"

    def __str__(self) -> str:
        return "cpu"


class OnnxRunner:
    """A classifier run by ONNX Runtime on the CPU.

    Args:
        model: model directory, weights file, Hub id, or ``None`` for the default model.
        revision, token, cache_dir: Hub revision, access token and cache folder of a model loaded by name.
        quantize: ``None`` (float32), ``"int8"`` (dynamic int8 linear layers) or, with ``calibrate``, static int8 of
            the linear layers (matmuls) with activation ranges measured on that audio.
        calibrate: audio files or directories for static int8.
        threads: runtime threads (``None``: one per core).
        prepack: repack the weights for the GEMM kernels when the session opens (see
            :func:`audioclf.export.runtime.open_session`).

    Attributes: ``name``, ``revision``, ``directory``, ``config``, ``device`` (``.type == "cpu"``), ``dtype``
    (``"float32"``), ``variant`` (``fp32``, ``int8``, ``int8-static``) and ``graph`` (the cached graph's path).
    """

    def __init__(self, model: Any = None, *, revision: str | None = None, token: str | bool | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, quantize: str | None = None,
                 calibrate: Sequence[str | os.PathLike[str]] | None = None, threads: int | None = None,
                 prepack: bool = True) -> None:
        from audioclf.export.artifacts import GRAPH_NAME, cached_graph, model_files
        from audioclf.export.cache import discard
        from audioclf.export.runtime import open_session

        if quantize not in (None, "int8"):
            raise OptionError("quantize", f"must be int8, got {quantize!r}")
        if calibrate and quantize != "int8":
            raise OptionError("calibrate", "needs quantize int8")
        self.variant = "fp32" if quantize is None else ("int8-static" if calibrate else "int8")
        self.files = files = model_files(model, revision, token=token, cache_dir=cache_dir)
        self.name, self.revision, self.directory, self.config = files.name, files.revision, files.directory, files.config
        self.device, self.dtype = _Cpu(), "float32"
        for attempt in (1, 2):
            entry = cached_graph(files, self.variant, calibrate, threads=threads)
            self.graph = entry.path(GRAPH_NAME)
            try:
                self.session = open_session(self.graph, threads, prepack=prepack)
                break
            except Exception:  # the runtime refused the cached graph: never trust it, build it again once
                discard(entry.directory)
                if attempt == 2:
                    raise
        self.input_names = [node.name for node in self.session.get_inputs()]

    def featurizer(self) -> Any:
        return self.files.featurizer

    def forward(self, batch: Mapping[str, np.ndarray], hidden_states: bool = False) -> RunOutput:
        """Logits ``float32 [B, num_labels]`` of one collated batch (the featurizer's arrays)."""
        if hidden_states:
            raise OptionError("backend", "onnx gives logits only; use the torch backend for hidden states")
        feeds = {name: np.ascontiguousarray(batch[name]) for name in self.input_names}
        (logits,) = self.session.run(["logits"], feeds)
        return RunOutput(np.asarray(logits, dtype=np.float32))
