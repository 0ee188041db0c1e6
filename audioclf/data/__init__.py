"""The streaming data path every command reads: inputs → sources → segments → batches.

* :mod:`audioclf.data.sources` — inputs (paths, globs, directories, path lists, URIs, in-memory audio) → ordered
  :class:`~audioclf.data.sources.SourceItem` objects;
* :mod:`audioclf.data.segments` — :class:`~audioclf.data.segments.Segmenter`: one source → featurized segments
  (decode, channel policy, resample, chunks or windows, featurizer), built from a model's config files alone;
* :mod:`audioclf.data.batching` — :class:`~audioclf.data.batching.BatchPool`: length bucketing of waiting segments;
* :mod:`audioclf.data.prefetch` — :class:`~audioclf.data.prefetch.Prefetch`: work ahead on threads, bounded,
  per-item errors, clean stop;
* :mod:`audioclf.data.failures` — the one-line reason an input failed.

Nothing here imports torch; :mod:`audioclf.engine` runs models on what this produces.
"""
