"""The SEW / SEW-D base model: conv features, a time squeeze (``squeeze_factor``) around the transformer, and an
upsample back to the frame rate.

Frames ``[B, T, D]`` → squeeze: ``AvgPool(s)`` plus a strided weight-normed positional conv, cropped to their common
length ``T' = T // s`` → transformer layers at ``T'`` → upsample: ``Linear(D, s·D)``, each squeezed frame expanded to
``s`` consecutive frames, zero-padded back to ``T``.

The squeezed padding mask is a max-pool of the frame mask (a squeezed frame is valid if any of its frames is), as in
``transformers`` 5.x. Hidden states (and so the weighted layer sum) stay at the squeezed length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audioclf.config import ModelConfig
from audioclf.models.blocks import ConvFeatureEncoder, EncoderOutput, PositionalConv, activation
from audioclf.models.speech import SpeechModel


class Upsample(nn.Module):
    """``[B, T', D] -> [B, T'·s, D]``: ``act(Linear(D, s·D))`` with each row split into ``s`` consecutive frames."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.factor = config.squeeze_factor
        self.projection = nn.Linear(config.hidden_size, config.hidden_size * config.squeeze_factor)
        self.activation = activation(config.feat_extract_activation)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = self.activation(self.projection(hidden))
        batch, length, width = hidden.shape
        return hidden.reshape(batch, length * self.factor, width // self.factor)


class SqueezedEncoder(nn.Module):
    """Squeeze → :meth:`encode` (the architecture's layers) → upsample. Keys ``pos_conv_embed``, ``upsample``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.factor = config.squeeze_factor
        self.pos_conv_embed = PositionalConv(config, stride=config.squeeze_factor)
        self.upsample = Upsample(config)

    def squeeze(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``[B, T, D]`` frames (and frame mask ``[B, T]``) -> ``[B, T', D]`` squeezed frames (and mask ``[B, T']``)."""
        squeezed_mask = None
        if mask is not None:
            hidden = hidden.masked_fill(~mask[:, :, None], 0.0)
            squeezed_mask = F.max_pool1d(mask[:, None, :].float(), self.factor, self.factor)[:, 0] > 0
        positional = self.pos_conv_embed(hidden)
        pooled = F.avg_pool1d(hidden.transpose(1, 2), self.factor, self.factor)
        length = min(positional.shape[-1], pooled.shape[-1])
        return (pooled[..., :length] + positional[..., :length]).transpose(1, 2), squeezed_mask

    def encode(self, hidden: torch.Tensor, mask: torch.Tensor | None, output_hidden_states: bool,
               output_attentions: bool) -> EncoderOutput:
        """The layers over squeezed frames ``[B, T', D]`` with the squeezed frame mask (or None)."""
        raise NotImplementedError

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, output_hidden_states: bool = False,
                output_attentions: bool = False) -> EncoderOutput:
        """``hidden`` ``[B, T, D]``, frame mask ``[B, T]`` or None -> upsampled ``[B, T, D]`` (states at ``T'``)."""
        num_frames = hidden.shape[1]
        squeezed, squeezed_mask = self.squeeze(hidden, mask)
        encoded = self.encode(squeezed, squeezed_mask, output_hidden_states, output_attentions)
        upsampled = self.upsample(encoded.last_hidden_state)
        if upsampled.shape[1] < num_frames:
            upsampled = F.pad(upsampled, (0, 0, 0, num_frames - upsampled.shape[1]))
        encoded.last_hidden_state = upsampled
        return encoded


class SqueezedSpeechModel(SpeechModel):
    """Conv features → model-level LayerNorm → ``Linear(C, D)`` only when ``C != D`` → dropout → SpecAugment
    (training) → a :class:`SqueezedEncoder`.

    Keys: ``feature_extractor``, ``layer_norm``, optional ``feature_projection``, ``masked_spec_embed``, ``encoder``.
    """

    def __init__(self, config: ModelConfig, encoder: SqueezedEncoder, feature_eps: float) -> None:
        super().__init__(config, time_masks_respect_padding=False)
        channels = config.conv_dim[-1]
        self.layer_norm = nn.LayerNorm(channels, eps=feature_eps)
        self.feature_projection = nn.Linear(channels, config.hidden_size) if channels != config.hidden_size else None
        self.feature_dropout = nn.Dropout(config.feat_proj_dropout)
        self.encoder = encoder

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> EncoderOutput:
        """``input_values`` ``[B, N]``, sample mask ``[B, N]`` -> upsampled ``[B, T, D]`` (states at ``T'``)."""
        hidden = self.layer_norm(self.feature_extractor(input_values).transpose(1, 2))
        if self.feature_projection is not None:
            hidden = self.feature_projection(hidden)
        mask = self.frame_mask(attention_mask, hidden.shape[1])
        hidden = self.augment(self.feature_dropout(hidden), mask)
        return self.encoder(hidden, mask, output_hidden_states, output_attentions)
