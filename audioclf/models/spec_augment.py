"""SpecAugment for the hidden frames: random time spans replaced by a learned vector, random channel spans zeroed.

The span sampler reproduces the reference implementation's sampler, including its sequence of numpy random calls
(one ``rand(1)`` for the rounding, then one ``choice`` per row), so that with the same numpy seed the masks are the
same.
"""

from __future__ import annotations

import numpy as np
import torch

from audioclf.errors import ModelError


def compute_mask_indices(shape: tuple[int, int], mask_prob: float, mask_length: int,
                         attention_mask: torch.Tensor | None = None, min_masks: int = 0,
                         random_state: np.random.RandomState | None = None) -> np.ndarray:
    """Random spans to mask along the second axis of ``shape`` ``(B, L)``: a boolean ``[B, L]`` array.

    Each row gets ``max(int(mask_prob · length / mask_length + ε), min_masks)`` span starts (``ε`` one uniform draw
    shared by the batch, for probabilistic rounding), capped so the spans fit the row; ``length`` is the row's valid
    length from ``attention_mask`` ``[B, L]`` (right-padded) or ``L``. Starts are drawn without replacement from the
    valid range; rows with fewer spans than the longest row repeat their first start, and spans are clipped to ``L``,
    so spans may overlap and ``mask_prob`` is an upper bound. ``random_state`` defaults to numpy's global one.
    """
    rng = np.random if random_state is None else random_state
    batch_size, sequence_length = shape
    if mask_length < 1:
        raise ModelError(f"mask length must be 1 or more, got {mask_length}")
    if mask_length > sequence_length:
        raise ModelError(f"SpecAugment spans of {mask_length} do not fit an input of {sequence_length} frames or "
                         "channels: use longer inputs or a shorter mask length")
    rounding = rng.rand(1).item()

    def spans_for(length: int) -> int:
        count = max(int(mask_prob * length / mask_length + rounding), min_masks)
        if count * mask_length > sequence_length:
            count = sequence_length // mask_length
        if length - (mask_length - 1) < count:
            count = max(length - (mask_length - 1), 0)
        return count

    lengths = (attention_mask.detach().sum(-1).tolist() if attention_mask is not None
               else [sequence_length] * batch_size)
    mask = np.zeros((batch_size, sequence_length), dtype=bool)
    most = spans_for(sequence_length)
    if most == 0:
        return mask
    starts = np.empty((batch_size, most), dtype=np.int64)
    for row, length in enumerate(lengths):
        count = spans_for(length)
        chosen = rng.choice(np.arange(length - (mask_length - 1)), count, replace=False)
        filler = chosen[0] if len(chosen) else sequence_length - 1  # a padded row end is a harmless filler
        starts[row, :count] = chosen
        starts[row, count:] = filler
    positions = (starts[:, :, None] + np.arange(mask_length)[None, None, :]).reshape(batch_size, -1)
    np.put_along_axis(mask, np.minimum(positions, sequence_length - 1), True, axis=-1)
    return mask


def spec_augment(hidden: torch.Tensor, masked_spec_embed: torch.Tensor | None, config,
                 frame_mask: torch.Tensor | None = None,
                 random_state: np.random.RandomState | None = None) -> torch.Tensor:
    """SpecAugment on ``hidden`` ``[B, T, D]`` (call in training only): time spans become ``masked_spec_embed``
    ``[D]`` (``mask_time_*`` fields; valid lengths from ``frame_mask`` ``[B, T]`` if given), then channel spans,
    shared by all frames of a row, become 0 (``mask_feature_*``). Returns a new tensor; nothing when
    ``apply_spec_augment`` is false."""
    if not config.apply_spec_augment:
        return hidden
    batch, frames, width = hidden.shape
    if config.mask_time_prob > 0:
        time_mask = compute_mask_indices((batch, frames), config.mask_time_prob, config.mask_time_length,
                                         frame_mask, config.mask_time_min_masks, random_state)
        time_mask = torch.from_numpy(time_mask).to(hidden.device)
        hidden = torch.where(time_mask[:, :, None], masked_spec_embed.to(hidden.dtype), hidden)
    if config.mask_feature_prob > 0:
        channel_mask = compute_mask_indices((batch, width), config.mask_feature_prob, config.mask_feature_length,
                                            None, config.mask_feature_min_masks, random_state)
        hidden = hidden.masked_fill(torch.from_numpy(channel_mask).to(hidden.device)[:, None, :], 0.0)
    return hidden
