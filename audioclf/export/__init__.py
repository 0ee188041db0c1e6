"""Our models as ONNX graphs, for runtimes other than torch.

* :mod:`audioclf.export.onnx` — trace a classifier into an ONNX graph (the only module here that imports torch);
* :mod:`audioclf.export.runtime` — ONNX Runtime: sessions, offline graph optimization, int8 quantization;
* :mod:`audioclf.export.cache` — graphs cached once per checkpoint in the Hugging Face cache, verified on use;
* :mod:`audioclf.export.artifacts` — a model's files → its cached graph for a variant (``fp32``, ``int8``,
  ``int8-static``), and the plain graph for ``audioclf export``.

The ONNX backend of the engine (:mod:`audioclf.engine.onnx_runner`) reads a cached graph and never imports torch.
"""
