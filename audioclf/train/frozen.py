"""A frozen part of the model computed outside the autograd graph, once per clip where possible.

Two parts can be frozen:

* the **conv feature encoder** (fine-tuning's default): it has no dropout and its norms behave the same in train
  and eval mode, so its output for a clip is a fixed function of the clip. It is computed by an inference-optimised
  copy (:func:`audioclf.models.inference.optimize_for_inference` on a copy, called explicitly here; the model
  itself keeps its readable blocks);
* the **whole base model** (``freeze_base``): it runs in eval mode — no dropout, LayerDrop or SpecAugment inside the
  frozen part, unlike ``transformers``, which keeps them on in a frozen base in train mode — so its output too is a
  fixed function of the clip, and only the head trains.

Each clip's output is computed on the clip alone (batch of one, no padding), so it does not depend on which clips
share its batch: a value computed in one epoch, in a resumed run, or again after the cache filled up is the same
bit for bit. Clips whose waveform reaches the model unchanged (not cropped, not augmented) keep their output in a
cache of at most ``budget_bytes``; the others are computed each time, in groups of equal length. A batch's outputs
are right-padded with zeros along time and handed to the model in place of the part's own computation
(:meth:`FrozenPart.supplying`).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from audioclf.models.blocks import EncoderOutput

__all__ = ["FrozenPart"]


class FrozenPart:
    """The frozen conv encoder (``kind="features"``) or base model (``kind="base"``) of ``model``, and its cache.

    Args:
        model: the classifier being trained (its frozen part must not require gradients).
        kind: ``"features"`` or ``"base"``.
        collate: the featurizer's ``collate`` (featurized clips → model keyword arrays).
        device: where the model runs.
        budget_bytes: most memory for cached outputs (kept on ``device``).
    """

    def __init__(self, model: nn.Module, kind: str, collate: Callable[[list[np.ndarray]], dict[str, np.ndarray]],
                 device: torch.device, budget_bytes: float) -> None:
        self.kind = kind
        self.collate = collate
        self.device = device
        self.budget_bytes = budget_bytes
        self.used_bytes = 0
        self.cache: dict[int, tuple[torch.Tensor, ...]] = {}
        self.hits = self.misses = 0
        base = model.base_model
        if kind == "features":
            from audioclf.models.inference import optimize_for_inference

            self.module = base.feature_extractor
            self._runner = copy.deepcopy(self.module)
            optimize_for_inference(self._runner)
        elif kind == "base":
            self.module = base
            self._runner = base
            self._all_states = bool(model.config.use_weighted_layer_sum)
        else:
            raise ValueError(f"unknown frozen part {kind!r}")

    @classmethod
    def for_model(cls, model: nn.Module, freeze_base: bool, freeze_feature_encoder: bool, **kwargs: Any
                  ) -> "FrozenPart | None":
        """The part a recipe freezes, or None (nothing frozen, or a model without a conv feature encoder)."""
        if freeze_base:
            return cls(model, "base", **kwargs)
        if freeze_feature_encoder and getattr(model.base_model, "feature_extractor", None) is not None:
            return cls(model, "features", **kwargs)
        return None

    # -- computing ----------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _run(self, features: list[np.ndarray]) -> list[tuple[torch.Tensor, ...]]:
        """Outputs of equal-length featurized clips, one tuple per clip: ``([C, T],)`` for the conv encoder,
        ``([T, D],)`` or ``([T, D], [L + 1, T, D])`` (every hidden state, for a weighted layer sum) for the base."""
        batch = {key: torch.from_numpy(value).to(self.device) for key, value in self.collate(features).items()}
        values = batch.pop(next(iter(batch)))  # the model input comes first (input_values / input_features)
        if self.kind == "features":
            return [(row,) for row in self._runner(values)]
        was_training = self._runner.training
        self._runner.eval()
        try:
            encoded = self._runner(values, batch.get("attention_mask"), self._all_states, False)
        finally:
            self._runner.train(was_training)
        if not self._all_states:
            return [(row,) for row in encoded.last_hidden_state]
        states = torch.stack(encoded.hidden_states, dim=1)  # [B, L + 1, T, D]
        return [(last, every) for last, every in zip(encoded.last_hidden_state, states)]

    def outputs(self, clips: Sequence[int], features: Sequence[np.ndarray], unchanged: Sequence[bool]
                ) -> list[tuple[torch.Tensor, ...]]:
        """The part's output for each clip of a batch (``clips``: clip numbers, ``features``: featurized clips,
        ``unchanged``: whether the clip's output may be cached)."""
        results: list[tuple[torch.Tensor, ...] | None] = [None] * len(clips)
        fresh: dict[int, list[int]] = {}
        for position, (clip, same) in enumerate(zip(clips, unchanged)):
            if same:
                cached = self.cache.get(int(clip))
                if cached is None:
                    self.misses += 1
                    cached = self._run([features[position]])[0]
                    self._keep(int(clip), cached)
                else:
                    self.hits += 1
                results[position] = cached
            else:
                fresh.setdefault(features[position].shape[0], []).append(position)
        for positions in fresh.values():
            for position, output in zip(positions, self._run([features[p] for p in positions])):
                results[position] = output
        return results  # type: ignore[return-value]

    def _keep(self, clip: int, output: tuple[torch.Tensor, ...]) -> None:
        size = sum(t.numel() * t.element_size() for t in output)
        if self.used_bytes + size <= self.budget_bytes:
            self.cache[clip] = tuple(t.clone() for t in output)  # own storage: not a view of a batch
            self.used_bytes += size

    def batch(self, outputs: Sequence[tuple[torch.Tensor, ...]]) -> Any:
        """A batch's per-clip outputs padded along time: ``[B, C, T]`` features, or an
        :class:`~audioclf.models.blocks.EncoderOutput` for the base."""
        if self.kind == "features":
            return _pad([o[0] for o in outputs], dim=-1)
        last = _pad([o[0] for o in outputs], dim=0)
        states = None
        if self._all_states:
            stacked = _pad([o[1] for o in outputs], dim=1)  # [B, L + 1, T, D]
            states = tuple(stacked.unbind(dim=1))
        return EncoderOutput(last, states)

    @contextlib.contextmanager
    def supplying(self, output: Any) -> Iterator[None]:
        """Within the block, calling the frozen module returns ``output`` instead of computing it (an instance-level
        ``forward``, removed on leaving)."""
        self.module.forward = lambda *args, **kwargs: output
        try:
            yield
        finally:
            del self.module.forward

    def summary(self) -> dict[str, Any]:
        return {"part": "conv feature encoder" if self.kind == "features" else "base model",
                "cached_clips": len(self.cache), "cached_mb": round(self.used_bytes / 2 ** 20, 1),
                "hits": self.hits, "misses": self.misses}


def _pad(tensors: Sequence[torch.Tensor], dim: int) -> torch.Tensor:
    """Stack per-clip tensors, right-padding axis ``dim`` (of each tensor) with zeros to the longest."""
    longest = max(t.shape[dim] for t in tensors)
    padded = []
    for tensor in tensors:
        missing = longest - tensor.shape[dim]
        if missing:
            shape = list(tensor.shape)
            shape[dim] = missing
            tensor = torch.cat([tensor, tensor.new_zeros(shape)], dim=dim)
        padded.append(tensor)
    return torch.stack(padded)
