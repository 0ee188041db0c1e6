"""SEW sequence classifier: the squeeze sandwich around a LayerNorm and the shared post-LN transformer layers."""

from __future__ import annotations

import torch
from torch import nn

from audioclf.config import ModelConfig
from audioclf.models.blocks import TransformerLayer, key_padding_mask, run_layers
from audioclf.models.head import AudioClassifier
from audioclf.models.squeeze import SqueezedEncoder, SqueezedSpeechModel


class SEWEncoder(SqueezedEncoder):
    """Squeezed frames → ``layer_norm`` → post-LN layers (keys ``layer_norm``, ``layers.N``)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(TransformerLayer(config, pre_norm=False) for _ in range(config.num_hidden_layers))

    def run_layers(self, hidden: torch.Tensor, mask: torch.Tensor | None, output_hidden_states: bool,
                   output_attentions: bool):
        return run_layers(self.layers, self.layer_norm(hidden), key_padding_mask(mask), output_hidden_states,
                          output_attentions)


class SEWForSequenceClassification(AudioClassifier):
    model_type = "sew"

    def build_base(self, config: ModelConfig) -> SqueezedSpeechModel:
        return SqueezedSpeechModel(config, SEWEncoder(config), feature_eps=config.layer_norm_eps)
