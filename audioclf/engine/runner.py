"""The model side of the engine: a classifier loaded once, placed, and run on collated batches.

:func:`load_runner` picks the backend (:func:`choose_backend`): this module's torch :class:`ModelRunner`, or
:class:`~audioclf.engine.onnx_runner.OnnxRunner` (ONNX Runtime, no torch import once the graph is cached). Both give
the same attributes and :meth:`forward`.

:class:`ModelRunner` loads a model by name (``from_pretrained``: directory, weights file, Hub id) or takes a given
``nn.Module``; sets torch's threads, the device and dtype, and optionally int8 dynamic quantization. A model it
loaded itself is private to it, so it also switches on the inference-only fast paths
(``optimize_for_inference()``); a model passed in is only moved and put in eval mode. :meth:`ModelRunner.forward`
runs one batch of the featurizer's arrays and returns numpy logits (and, on request, every hidden state);
:meth:`ModelRunner.encode` returns chosen hidden states of the base model with each row's valid frame count, as
frame vectors or pooled (embeddings). :func:`resolve_activation` / :func:`activate` turn logits into scores.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from audioclf.audio.features import Featurizer, load_featurizer
from audioclf.data.failures import one_line
from audioclf.errors import OptionError

__all__ = ["ACTIVATIONS", "BACKENDS", "DEVICES", "DTYPES", "LayerStates", "ModelRunner", "RunOutput", "activate",
           "choose_backend", "load_runner", "resolve_activation", "resolve_device"]

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


@dataclass
class LayerStates:
    """One hidden state of a batch (:meth:`ModelRunner.encode`): ``values`` ``float32 [B, T, D]`` (frame vectors,
    padding included) or, pooled, ``float32 [B, D]`` (each row's mean over its valid frames); ``frames`` ``int64
    [B]``: how many frames of each row are valid (its first ``frames[b]``)."""

    values: np.ndarray
    frames: np.ndarray


class ModelRunner:
    """A classifier ready for batches.

    Args:
        model: model directory, weights file, Hub id (``None``: the default model), or a loaded classifier.
        revision, token, cache_dir: Hub revision, access token and cache folder of a model loaded by name.
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

    def __init__(self, model: Any = None, *, revision: str | None = None, token: str | bool | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, device: str = "auto",
                 dtype: str = "float32", quantize: str | None = None, threads: int | None = None) -> None:
        import torch

        from audioclf.auto import DEFAULT_MODEL_NAME, AutoModelForAudioClassification

        if threads is not None:
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        self.dtype = getattr(torch, str(dtype).removeprefix("torch."))
        if self.device.type == "cuda" and self.dtype == torch.float32:
            # float32 means float32: no TF32 tensor-core rounding in the convs (cuDNN's default) or matmuls, so GPU
            # scores equal the CPU's within float32 rounding
            torch.backends.cudnn.conv.fp32_precision = "ieee"
            torch.backends.cuda.matmul.fp32_precision = "ieee"
        if model is None or isinstance(model, (str, os.PathLike)):
            self.name = os.fspath(model) if model is not None else DEFAULT_MODEL_NAME
            # inference: every weight must be in the checkpoint (no random head, no random layer)
            loaded = AutoModelForAudioClassification.from_pretrained(self.name, dtype=self.dtype, revision=revision,
                                                                     token=token, cache_dir=cache_dir,
                                                                     missing_weights="none")
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

        inputs = self._tensors(batch)
        with torch.inference_mode():
            output = self.model(**inputs, output_hidden_states=hidden_states)
            logits = output.logits.float().cpu().numpy()
            states = None
            if hidden_states:
                states = tuple(state.float().cpu().numpy() for state in output.hidden_states)
        return RunOutput(logits, states)

    def encode(self, batch: Mapping[str, np.ndarray], layers: Sequence[int | None], pool: bool) -> list[LayerStates]:
        """Hidden states of the base model for one collated batch, one :class:`LayerStates` per entry of ``layers``.

        ``None`` is the encoder output, ``transformers``' ``last_hidden_state`` (for stable-layer-norm models after the
        final LayerNorm; for SEW / SEW-D upsampled to the frame rate); ``N`` is ``hidden_states[N]`` as
        ``transformers`` returns it: ``num_hidden_layers + 1`` states, the input of the first layer and the output of
        each layer (the last one before a stable model's final LayerNorm, unless the config ties it to the encoder
        output: ``tie_last_hidden_states``). Valid frames come from the sample mask through the model's frame mask
        (all frames without a mask); a squeezed state (SEW, SEW-D) counts a squeezed frame as valid when any of its
        frames is; models without a frame mask (AST, Whisper) count every token. ``pool``: the mean over the valid
        frames instead of the frame vectors. Only the head is skipped: the logits are not computed."""
        import torch

        inputs = self._tensors(batch)
        mask = inputs.pop("attention_mask", None)
        (values,) = inputs.values()
        base = self.model.base_model
        # a base model whose inference fast path shortens last_hidden_state computes it whole with hidden states
        want_states = any(layer is not None for layer in layers) or getattr(base, "partial_last_hidden_state", False)
        with torch.inference_mode():
            encoded = base(values, mask, want_states, False)
            states = encoded.hidden_states
            if states is not None and getattr(self.config, "tie_last_hidden_states", False):
                states = states[:-1] + (encoded.last_hidden_state,)  # the classifier's rule for hidden_states
            last = encoded.last_hidden_state
            frame_mask = base.frame_mask(mask, last.shape[1])
            found = []
            for layer in layers:
                state = (last if layer is None else states[layer]).float()
                frames = _valid_frames(frame_mask, state, last.shape[1], getattr(self.config, "squeeze_factor", 1))
                if pool:
                    valid = torch.arange(state.shape[1], device=state.device)[None, :] < frames[:, None]
                    state = state.masked_fill(~valid[:, :, None], 0.0).sum(dim=1) / frames[:, None].clamp(min=1)
                found.append(LayerStates(state.cpu().numpy(), frames.cpu().numpy().astype(np.int64)))
        return found

    def _tensors(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """The batch's arrays as tensors on the model's device (floating arrays in the model's dtype)."""
        import torch

        return {name: torch.from_numpy(array).to(self.device, self.dtype if array.dtype.kind == "f" else None)
                for name, array in batch.items()}


def _valid_frames(frame_mask: Any, state: Any, full_frames: int, squeeze_factor: int) -> Any:
    """Valid frames per row (``int64 [B]``) of a ``state`` ``[B, T, D]``, from the frame mask ``[B, full_frames]`` of
    the encoder output (None: every frame is valid). A state shorter than the encoder output is squeezed by
    ``squeeze_factor``: a squeezed frame is valid when any of its frames is."""
    import torch

    batch, frames = state.shape[0], state.shape[1]
    if frame_mask is None:
        return torch.full((batch,), frames, dtype=torch.int64, device=state.device)
    counts = frame_mask.sum(dim=-1).to(torch.int64)
    if frames != full_frames:
        counts = torch.div(counts + squeeze_factor - 1, squeeze_factor, rounding_mode="floor")
    return counts.clamp(max=frames)


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


def load_runner(model: Any = None, *, backend: str = "auto", revision: str | None = None,
                token: str | bool | None = None, cache_dir: str | os.PathLike[str] | None = None,
                device: str = "auto", dtype: str = "float32", quantize: str | None = None, calibrate: Any = None,
                threads: int | None = None) -> Any:
    """A :class:`ModelRunner` or :class:`~audioclf.engine.onnx_runner.OnnxRunner` for ``model``, per
    :func:`choose_backend` (``calibrate`` asks for ONNX's static int8)."""
    chosen = choose_backend(model, "onnx" if calibrate else backend, device=device, dtype=dtype)
    if chosen == "onnx":
        from audioclf.engine.onnx_runner import OnnxRunner

        return OnnxRunner(model, revision=revision, token=token, cache_dir=cache_dir, quantize=quantize,
                          calibrate=calibrate, threads=threads)
    return ModelRunner(model, revision=revision, token=token, cache_dir=cache_dir, device=device, dtype=dtype,
                       quantize=quantize, threads=threads)


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


def resolve_device(name: str) -> Any:
    """The ``torch.device`` for ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``/``"cuda:N"`` or
    ``"mps"``; :class:`OptionError` (``device``) when it is not available."""
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
