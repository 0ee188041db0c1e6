"""ONNX Runtime: sessions, offline graph optimization and int8 quantization of exported graphs (no torch).

* :func:`open_session` — a CPU session on a graph optimized beforehand (graph optimizations off at load, so opening
  costs little more than mapping the weights);
* :func:`optimize_graph` — ONNX Runtime's graph optimizations up to ``ORT_ENABLE_EXTENDED`` (constant folding,
  GELU / LayerNorm / MatMul+Add / attention fusions), saved; the hardware-specific layout level is left to load time
  because a saved graph must stay valid on any CPU that reads the cache;
* :func:`quantize_dynamic_graph` — int8 weights, activations quantized per batch at run time;
* :func:`quantize_static_graph` — int8 weights (per channel) and activations with ranges calibrated on audio,
  QDQ format, so the runtime fuses them into integer kernels. The matmuls only: the conv stack stays float32
  (quantizing its convs too cost the bundled model 3.3 points of held-out accuracy, 0.8 with the first conv kept
  float; the matmuls alone cost none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = ["DATA_SUFFIX", "open_session", "optimize_graph", "quantize_dynamic_graph", "quantize_static_graph",
           "runtime_version"]

#: the weights of a graph ``model.onnx`` are in ``model.onnx.data``
DATA_SUFFIX = ".data"
#: initializers at least this large go to the external data file
_EXTERNAL_MIN_BYTES = 1024


def runtime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _options(threads: int | None, *, optimize: bool, prepack: bool = True) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: ONNX Runtime's choice (one per physical core)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: the CLI's stderr carries no runtime notes
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    # decode threads share the cores: idle runtime threads sleep instead of spinning
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if not prepack:
        options.add_session_config_entry("session.disable_prepacking", "1")
    return options


def open_session(graph: Path, threads: int | None = None, *, prepack: bool = True) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU for an optimized ``graph``. ``prepack``: repack the weights for
    the GEMM kernels at load (a few tenths of a second for a base model, a few percent faster per batch)."""
    import onnxruntime as ort

    return ort.InferenceSession(str(graph), _options(threads, optimize=False, prepack=prepack),
                                providers=["CPUExecutionProvider"])


def optimize_graph(source: Path, target: Path, threads: int | None = None) -> None:
    """Save ``source`` with ONNX Runtime's portable graph optimizations applied as ``target`` (weights in
    ``target`` + :data:`DATA_SUFFIX`)."""
    import onnxruntime as ort

    options = _options(threads, optimize=True, prepack=False)
    options.optimized_model_filepath = str(target)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                     target.name + DATA_SUFFIX)
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes",
                                     str(_EXTERNAL_MIN_BYTES))
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def quantize_dynamic_graph(source: Path, target: Path) -> None:
    """int8 weights for the MatMul and Gemm nodes of ``source`` (activations quantized per batch), as ``target``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gemm"], use_external_data_format=True,
                     extra_options={"MatMulConstBOnly": True})


def quantize_static_graph(source: Path, target: Path, batches: Iterable[Mapping[str, np.ndarray]]) -> None:
    """int8 ``target`` from ``source`` with activation ranges calibrated on ``batches`` (the featurizer's arrays,
    one input per batch): the MatMul nodes' weights per output channel (symmetric), their activations asymmetric
    uint8 (percentile ranges ignore rare outliers), QDQ format; convolutions stay float32."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul"], calibrate_method=CalibrationMethod.Percentile,
                    use_external_data_format=True,
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True, "CalibPercentile": 99.999,
                                   "MatMulConstBOnly": True, "CalibTensorRangeSymmetric": False})
