"""Base models: the part every architecture shares, and the Wav2Vec2-family base model.

:class:`SpeechModel` holds the conv feature encoder, the learned ``masked_spec_embed`` and SpecAugment.
:class:`SpeechTransformerModel` (Wav2Vec2, HuBERT, UniSpeech, UniSpeechSat): waveform ``[B, N]`` → conv feature
encoder ``[B, T, C]`` → feature projection ``[B, T, D]`` → SpecAugment (training) → transformer encoder.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from audioclf.config import ModelConfig
from audioclf.models.blocks import ConvFeatureEncoder, EncoderOutput, FeatureProjection, TransformerEncoder, frame_mask
from audioclf.models.spec_augment import spec_augment


class SpeechModel(nn.Module):
    """Conv feature encoder (key ``feature_extractor``) and SpecAugment state (key ``masked_spec_embed`` ``[D]``).

    ``masked_spec_embed`` exists when ``with_masked_spec_embed`` is given as True, or by default when the config
    masks anything (``mask_time_prob > 0`` or ``mask_feature_prob > 0``), as in the published checkpoints.
    ``time_masks_respect_padding``: time-mask spans are drawn within each row's valid frames (Wav2Vec2, UniSpeech,
    UniSpeechSat) or over the whole padded length (HuBERT, SEW, SEW-D), as in the reference implementations.
    ``mask_random_state``: a ``numpy.random.RandomState`` for the SpecAugment masks (None: numpy's global one).
    ``conv_norm`` fixes the conv stack's norm for configs without ``feat_extract_norm``
    (:class:`~audioclf.models.blocks.ConvFeatureEncoder`); ``conv_features=False`` builds no conv stack, for models
    fed precomputed frames (``feature_extractor`` is then None and frame masks equal sample masks).
    """

    def __init__(self, config: ModelConfig, with_masked_spec_embed: bool | None = None,
                 time_masks_respect_padding: bool = True, conv_norm: str | None = None,
                 conv_features: bool = True) -> None:
        super().__init__()
        self.config = config
        self.time_masks_respect_padding = time_masks_respect_padding
        self.feature_extractor = ConvFeatureEncoder(config, norm=conv_norm) if conv_features else None
        if with_masked_spec_embed is None:
            with_masked_spec_embed = config.mask_time_prob > 0 or config.mask_feature_prob > 0
        self.masked_spec_embed = nn.Parameter(torch.empty(config.hidden_size)) if with_masked_spec_embed else None
        self.mask_random_state: np.random.RandomState | None = None

    def frame_mask(self, attention_mask: torch.Tensor | None, num_frames: int) -> torch.Tensor | None:
        """Sample mask ``[B, N]`` -> frame mask ``[B, T]`` (None stays None)."""
        if attention_mask is None:
            return None
        lengths = attention_mask.sum(-1)
        if self.feature_extractor is not None:
            lengths = self.feature_extractor.output_lengths(lengths)
        return frame_mask(lengths, num_frames)

    def augment(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """SpecAugment on ``[B, T, D]`` in training (valid lengths from the frame ``mask`` ``[B, T]`` when the time
        masks respect padding); identity in eval mode."""
        if not self.training:
            return hidden
        valid = mask if self.time_masks_respect_padding else None
        return spec_augment(hidden, self.masked_spec_embed, self.config, valid, self.mask_random_state)


class SpeechTransformerModel(SpeechModel):
    """Conv feature encoder, feature projection, SpecAugment and a post-LN or stable transformer encoder.

    ``projection_layer_norm=False`` drops the LayerNorm before the projection (HuBERT ``feat_proj_layer_norm``);
    ``pos_conv_batch_norm=True`` selects HuBERT's BatchNorm positional conv. ``encoder`` replaces the
    :class:`~audioclf.models.blocks.TransformerEncoder` the config describes (any module called as
    ``encoder(hidden [B, T, D], frame_mask [B, T] or None, output_hidden_states, output_attentions)`` returning an
    :class:`~audioclf.models.blocks.EncoderOutput`); ``conv_norm`` as in :class:`SpeechModel`.
    """

    def __init__(self, config: ModelConfig, projection_layer_norm: bool = True, pos_conv_batch_norm: bool = False,
                 with_masked_spec_embed: bool | None = None, time_masks_respect_padding: bool = True,
                 encoder: nn.Module | None = None, conv_norm: str | None = None) -> None:
        super().__init__(config, with_masked_spec_embed, time_masks_respect_padding, conv_norm=conv_norm)
        self.feature_projection = FeatureProjection(config.conv_dim[-1], config.hidden_size, config.layer_norm_eps,
                                                    config.feat_proj_dropout, layer_norm=projection_layer_norm)
        self.encoder = encoder if encoder is not None else TransformerEncoder(
            config, stable=config.do_stable_layer_norm, pos_conv_batch_norm=pos_conv_batch_norm,
            adapter_dim=config.adapter_attn_dim)

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> EncoderOutput:
        """``input_values`` ``[B, N]``, sample mask ``attention_mask`` ``[B, N]`` -> ``[B, T, D]``."""
        features = self.feature_extractor(input_values).transpose(1, 2)
        mask = self.frame_mask(attention_mask, features.shape[1])
        hidden = self.augment(self.feature_projection(features), mask)
        return self.encoder(hidden, mask, output_hidden_states, output_attentions)
