"""SEW sequence classifier: the squeeze sandwich around a LayerNorm and the shared post-LN transformer layers."""

from __future__ import annotations

import torch
from torch import nn

from audioclf.config import ModelConfig
from audioclf.models.blocks import EncoderOutput, LayerStack, TransformerLayer, key_padding_mask
from audioclf.models.classifier import AudioClassifier
from audioclf.models.squeeze import SqueezedEncoder, SqueezedSpeechModel


class SEWEncoder(SqueezedEncoder):
    """Squeezed frames → ``layer_norm`` → ``hidden_dropout`` → post-LN layers with LayerDrop (keys ``layer_norm``,
    ``layers.N``)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layers = nn.ModuleList(TransformerLayer(config, pre_norm=False) for _ in range(config.num_hidden_layers))
        self.stack = LayerStack(config.layerdrop)

    def encode(self, hidden: torch.Tensor, mask: torch.Tensor | None, output_hidden_states: bool,
               output_attentions: bool) -> EncoderOutput:
        hidden = self.dropout(self.layer_norm(hidden))
        return self.stack.run(self.layers, hidden, key_padding_mask(mask), output_hidden_states=output_hidden_states,
                              output_attentions=output_attentions)


class SEWForSequenceClassification(AudioClassifier):
    model_type = "sew"

    def build_base(self, config: ModelConfig) -> SqueezedSpeechModel:
        return SqueezedSpeechModel(config, SEWEncoder(config), feature_eps=config.layer_norm_eps)
