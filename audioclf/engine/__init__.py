"""Models on the streaming data path, and the records they give.

* :mod:`audioclf.engine.runner` — :class:`~audioclf.engine.runner.ModelRunner`: load and place a model, run a batch;
* :mod:`audioclf.engine.stream` — :class:`~audioclf.engine.stream.SegmentStream`: sources → segments → batches →
  a computation per segment → one result per input, in input order;
* :mod:`audioclf.engine.pipeline` — :class:`~audioclf.engine.pipeline.ModelPipeline`: runner + segmenter + stream
  for one per-batch computation, and the options every model command shares;
* :mod:`audioclf.engine.records` — the record schema (TypedDicts), record builders, reading records back;
* :mod:`audioclf.engine.classify` — :class:`~audioclf.engine.classify.Classifier` / :func:`audioclf.classify`;
* :mod:`audioclf.engine.embed` — :class:`~audioclf.engine.embed.Embedder` / :func:`~audioclf.engine.embed.embed`:
  pooled hidden states (``audioclf embed``);
* :mod:`audioclf.engine.events` — detection events from window records (``classify --events``, ``segments``);
* :mod:`audioclf.engine.ray` — the same on a Ray cluster (``audioclf classify --engine ray``).
"""
