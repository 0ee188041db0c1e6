"""The base model of the Wav2Vec2 family (Wav2Vec2, HuBERT, UniSpeech, UniSpeechSat).

Waveform ``[B, N]`` → conv feature encoder ``[B, T, C]`` → feature projection ``[B, T, D]`` → transformer encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from audioclf.config import ModelConfig
from audioclf.models.blocks import ConvFeatureEncoder, EncoderOutput, FeatureProjection, TransformerEncoder, frame_mask


class SpeechTransformerModel(nn.Module):
    """Conv feature encoder, feature projection and a post-LN or stable transformer encoder.

    ``projection_layer_norm=False`` drops the LayerNorm before the projection (HuBERT ``feat_proj_layer_norm``);
    ``pos_conv_batch_norm=True`` selects HuBERT's BatchNorm positional conv.
    """

    def __init__(self, config: ModelConfig, projection_layer_norm: bool = True, pos_conv_batch_norm: bool = False):
        super().__init__()
        self.feature_extractor = ConvFeatureEncoder(config)
        self.feature_projection = FeatureProjection(config.conv_dim[-1], config.hidden_size, config.layer_norm_eps,
                                                    layer_norm=projection_layer_norm)
        self.encoder = TransformerEncoder(config, stable=config.do_stable_layer_norm,
                                          pos_conv_batch_norm=pos_conv_batch_norm)

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> EncoderOutput:
        """``input_values`` ``[B, N]``, ``attention_mask`` ``[B, N]`` (1 = sample, right-padded) -> ``[B, T, D]``."""
        features = self.feature_extractor(input_values).transpose(1, 2)
        mask = None
        if attention_mask is not None:
            lengths = self.feature_extractor.output_lengths(attention_mask.sum(-1))
            mask = frame_mask(lengths, features.shape[1])
        hidden = self.feature_projection(features)
        return self.encoder(hidden, mask, output_hidden_states, output_attentions)
