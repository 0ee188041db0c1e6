"""Training and evaluating classifiers on the user's own labelled audio (``audioclf train`` / ``evaluate``).

* :mod:`audioclf.train.recipe` — :class:`~audioclf.train.recipe.Recipe`, every option and its default;
* :mod:`audioclf.train.dataset` — data layouts, the stratified split, the scan that reports unusable clips;
* :mod:`audioclf.train.sampling` — seeded epoch order, length-bucketed batches, per-clip random draws;
* :mod:`audioclf.train.augment` — random crops and waveform augmentation;
* :mod:`audioclf.train.frozen` — frozen parts computed outside the autograd graph, cached per clip;
* :mod:`audioclf.train.loop` — :func:`~audioclf.train.loop.train`, the run itself;
* :mod:`audioclf.train.checkpoint` — atomic checkpoints and exact resume;
* :mod:`audioclf.train.evaluation` — predictions and metrics through the classify engine;
* :mod:`audioclf.train.report` — the output directory: model files, report, pictures.

Importing this package does not import torch.
"""
