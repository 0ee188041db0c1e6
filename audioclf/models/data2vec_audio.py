"""data2vec-audio sequence classifier: the Wav2Vec2-family base model with a LayerNorm on every feature-encoder
conv, a post-LN encoder, and a stack of plain convs as its positional embedding.

Positional stack (keys ``encoder.pos_conv_embed.layers.N.conv``): ``num_conv_pos_embeddings`` layers, each a grouped
``Conv1d(D, D, conv_pos_kernel_size)`` with "same" padding (an even kernel drops the last frame), a LayerNorm over
channels without parameters, and the ``feat_extract_activation``. Padded frames are zeroed before the stack only, so
from the second layer on they reach the last valid frames, as in the reference implementation: a padded batch
therefore differs slightly from its rows run alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audioclf.config import ModelConfig
from audioclf.models.blocks import TransformerEncoder, activation
from audioclf.models.classifier import AudioClassifier
from audioclf.models.speech import SpeechTransformerModel


class PositionalConvLayer(nn.Module):
    """``Conv1d`` → crop → LayerNorm (no parameters) → activation, channel-first: ``[B, D, T] -> [B, D, T]``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        kernel = config.conv_pos_kernel_size
        self.conv = nn.Conv1d(config.hidden_size, config.hidden_size, kernel, padding=kernel // 2,
                              groups=config.num_conv_pos_embedding_groups)
        self.trim_last = kernel % 2 == 0
        self.channels = config.hidden_size  # a constant shape, so a traced graph (ONNX export) keeps the LayerNorm
        self.activation = activation(config.feat_extract_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.trim_last:
            x = x[:, :, :-1]
        x = F.layer_norm(x.transpose(1, 2), (self.channels,)).transpose(1, 2)
        return self.activation(x)


class PositionalConvStack(nn.Module):
    """The positional embedding of data2vec-audio: ``[B, T, D] -> [B, D, T]`` (keys ``layers.N.conv``)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(PositionalConvLayer(config) for _ in range(config.num_conv_pos_embeddings))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = hidden.transpose(1, 2)
        for layer in self.layers:
            x = layer(x)
        return x


class Data2VecAudioForSequenceClassification(AudioClassifier):
    model_type = "data2vec-audio"

    def build_base(self, config: ModelConfig) -> SpeechTransformerModel:
        encoder = TransformerEncoder(config, stable=False, positional=PositionalConvStack(config))
        return SpeechTransformerModel(config, encoder=encoder, conv_norm="layer")
