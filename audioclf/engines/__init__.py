"""Ways to run :mod:`audioclf.pipeline` beyond one process.

* :mod:`audioclf.engines.records` — reading back what a run wrote (``--resume``): record files of the local engine
  and shard directories of the Ray engine.
* :mod:`audioclf.engines.ray` — ``audioclf classify --engine ray``: decoding in Ray Data tasks, the model in an actor
  pool, records written as shards. Ray is imported there only, when the engine runs.
"""
