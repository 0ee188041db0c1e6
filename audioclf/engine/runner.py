"""The model side of the engine: a classifier loaded once, placed, and run on collated batches.

:func:`load_runner` picks the backend (:func:`choose_backend`): this module's torch :class:`ModelRunner`, or
:class:`~audioclf.engine.onnx_runner.OnnxRunner` (ONNX Runtime, no torch import once the graph is cached). Both give
the same attributes and :meth:`forward`.

:class:`ModelRunner` loads a model by name (``from_pretrained``: directory, weights file, Hub id) or takes a given
``nn.Module``; sets torch's threads, the device and dtype, and optionally int8 dynamic quantization. A model it
loaded itself is private to it, so it also switches on the inference-only fast paths
(``optimize_for_inference()``); a model passed in is only moved and put in eval mode. :meth:`ModelRunner.forward`
runs one batch of the featurizer's arrays and returns numpy logits (and, on request, every hidden state).
:func:`resolve_activation` / :func:`activate` turn logits into scores.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from audioclf.audio.features import Featurizer, load_featurizer
from audioclf.data.failures import one_line
from audioclf.errors import OptionError

__all__ = ["ACTIVATIONS", "BACKENDS", "DEVICES", "DTYPES", "ModelRunner", "RunOutput", "activate", "choose_backend",
           "load_runner", "resolve_activation"]

ACTIVATIONS = ("auto", "softmax", "sigmoid", "none")
BACKENDS = ("auto", "torch", "onnx")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class RunOutput:
    """One batch through the model: ``logits`` ``float32 [B, num_labels]``; ``hidden_states`` (when asked for)
    ``num_hidden_layers + 1`` arrays ``float32 [B, T, D]`` (frames ``T`` after the conv stack, padding included)."""

    logits: np.ndarray
    hidden_states: tuple[np.ndarray, ...] | None = None


class ModelRunner:
    """A classifier ready for batches.

    Args:
        model: model directory, weights file, Hub id (``None``: the default model), or a loaded classifier.
        revision: Hub revision of a model loaded by name.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``/``"cuda:N"`` or ``"mps"``.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        quantize: ``"int8"``: dynamic int8 quantization of the linear layers (CPU only); ``None``: none.
        threads: ``torch.set_num_threads``; ``None`` leaves torch's default.

    Attributes:
        model, config: the module (eval mode) and its config.
        name: the model's name for records; ``revision``: its resolved Hub commit (``None`` for local files).
        directory: where its config files are (``None`` for a module without a source).
        device, dtype: where and in what precision it runs.

    Raises :class:`OptionError` for an unusable device, dtype or quantization, and the loader's errors for a model
    that cannot be loaded.
    """

    def __init__(self, model: Any = None, *, revision: str | None = None, device: str = "auto",
                 dtype: str = "float32", quantize: str | None = None, threads: int | None = None) -> None:
        import torch

        from audioclf.auto import DEFAULT_MODEL_NAME, AutoModelForAudioClassification

        if threads is not None:
            torch.set_num_threads(threads)
        self.device = _resolve_device(device)
        self.dtype = getattr(torch, str(dtype).removeprefix("torch."))
        if self.device.type == "cuda" and self.dtype == torch.float32:
            # float32 means float32: no TF32 tensor-core rounding in the convs (cuDNN's default) or matmuls, so GPU
            # scores equal the CPU's within float32 rounding
            torch.backends.cudnn.conv.fp32_precision = "ieee"
            torch.backends.cuda.matmul.fp32_precision = "ieee"
        if model is None or isinstance(model, (str, os.PathLike)):
            self.name = os.fspath(model) if model is not None else DEFAULT_MODEL_NAME
            loaded = AutoModelForAudioClassification.from_pretrained(self.name, dtype=self.dtype, revision=revision)
            # a model loaded here is private to the runner: fold weight norm and cached projections once
            loaded = loaded.to(self.device).optimize_for_inference()
        else:
            self.name = str(getattr(model, "name_or_path", type(model).__name__))
            loaded = model.to(self.dtype)
        loaded = loaded.to(self.device).eval()
        if quantize == "int8":
            if self.device.type != "cpu":
                raise OptionError("quantize", "int8 runs on the CPU only (use device cpu)")
            import warnings

            with warnings.catch_warnings():  # eager dynamic quantization is deprecated upstream but still works
                warnings.simplefilter("ignore")
                loaded = torch.ao.quantization.quantize_dynamic(loaded, {torch.nn.Linear}, dtype=torch.qint8)
        self.model = loaded
        self.config = loaded.config
        source = getattr(loaded, "source", None)
        self.revision: str | None = getattr(source, "commit", None)
        directory = getattr(source, "directory", None)
        self.directory: Path | None = None if directory is None else Path(directory)

    def featurizer(self) -> Featurizer:
        """The model's featurizer, from its ``preprocessor_config.json`` (the defaults when there is none)."""
        return load_featurizer(self.directory)

    def forward(self, batch: Mapping[str, np.ndarray], hidden_states: bool = False) -> RunOutput:
        """Run one collated batch (the featurizer's arrays: ``input_values`` ``[B, N]`` and, when the model takes
        one, ``attention_mask`` ``[B, N]``) under ``torch.inference_mode``."""
        import torch

        inputs = {name: torch.from_numpy(array).to(self.device, self.dtype if array.dtype.kind == "f" else None)
                  for name, array in batch.items()}
        with torch.inference_mode():
            output = self.model(**inputs, output_hidden_states=hidden_states)
            logits = output.logits.float().cpu().numpy()
            states = None
            if hidden_states:
                states = tuple(state.float().cpu().numpy() for state in output.hidden_states)
        return RunOutput(logits, states)


def choose_backend(model: Any, backend: str = "auto", *, device: str = "auto", dtype: str = "float32") -> str:
    """``"onnx"`` or ``"torch"``: ``backend`` itself (checked against ``device`` and ``dtype``), or for ``"auto"``
    ``onnx`` when the model is given by name (not as a module), runs in float32 on the CPU (``device`` ``cpu``, or
    ``auto`` on a machine where torch would find no CUDA device) and onnxruntime is installed; else ``torch``.

    Deciding never imports torch: ``auto`` tells CUDA from the installed torch build and the NVIDIA driver's files.
    """
    dtype = str(dtype).removeprefix("torch.")
    if backend == "onnx":
        if str(device) not in ("auto", "cpu"):
            raise OptionError("device", f"{device}: the onnx backend runs on the CPU (use backend torch)")
        if dtype != "float32":
            raise OptionError("dtype", f"{dtype}: the onnx backend runs float32 or int8 (use backend torch)")
        return "onnx"
    if backend != "auto":
        return backend
    by_name = model is None or isinstance(model, (str, os.PathLike))
    on_cpu = str(device) == "cpu" or (str(device) == "auto" and not _cuda_likely())
    if by_name and on_cpu and dtype == "float32" and importlib.util.find_spec("onnxruntime") is not None:
        return "onnx"
    return "torch"


def load_runner(model: Any = None, *, backend: str = "auto", revision: str | None = None, device: str = "auto",
                dtype: str = "float32", quantize: str | None = None, calibrate: Any = None,
                threads: int | None = None) -> Any:
    """A :class:`ModelRunner` or :class:`~audioclf.engine.onnx_runner.OnnxRunner` for ``model``, per
    :func:`choose_backend` (``calibrate`` asks for ONNX's static int8)."""
    chosen = choose_backend(model, "onnx" if calibrate else backend, device=device, dtype=dtype)
    if chosen == "onnx":
        from audioclf.engine.onnx_runner import OnnxRunner

        return OnnxRunner(model, revision=revision, quantize=quantize, calibrate=calibrate, threads=threads)
    return ModelRunner(model, revision=revision, device=device, dtype=dtype, quantize=quantize, threads=threads)


def _cuda_likely() -> bool:
    """Whether ``torch.cuda.is_available()`` would probably say yes, without importing torch: the installed torch is
    a CUDA build (``torch/version.py``) and an NVIDIA driver is loaded. Torch already imported is asked directly."""
    if "torch" in sys.modules:
        return bool(sys.modules["torch"].cuda.is_available())
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    try:
        text = (Path(list(spec.submodule_search_locations)[0]) / "version.py").read_text()
    except OSError:
        return True  # cannot tell: let torch decide
    cuda_build = any(line.startswith("cuda") and "None" not in line for line in text.splitlines())
    return cuda_build and (Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists())


def resolve_activation(activation: str, config: Any) -> str:
    """``"softmax"``, ``"sigmoid"`` or ``"none"``: ``activation`` itself, or for ``"auto"`` what the config's
    ``problem_type`` implies (multi-label → sigmoid, regression → none, else softmax)."""
    if activation != "auto":
        return activation
    problem_type = getattr(config, "problem_type", None) or ""
    return {"multi_label_classification": "sigmoid", "regression": "none"}.get(problem_type, "softmax")


def activate(logits: np.ndarray, activation: str) -> np.ndarray:
    """Scores ``float32 [B, L]`` from logits ``[B, L]`` (computed in float64): softmax over labels, sigmoid per
    label, or the logits as they are (``"none"``)."""
    x = logits.astype(np.float64)
    if activation == "softmax":
        x = np.exp(x - x.max(axis=-1, keepdims=True))
        x /= x.sum(axis=-1, keepdims=True)
    elif activation == "sigmoid":
        x = 1.0 / (1.0 + np.exp(-x))
    return x.astype(np.float32)


def _resolve_device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError("device", f"{name}: no CUDA device is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise OptionError("device", "mps: no MPS device is available")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise OptionError("device", f"{name}: {one_line(error)}") from None
