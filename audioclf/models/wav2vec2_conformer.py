"""wav2vec2-conformer sequence classifier: the wav2vec2 conv feature encoder and feature projection, then conformer
layers (:mod:`audioclf.models.conformer`) with rotary, relative or no position terms, "same"-padded depthwise convs
with BatchNorm, and a final LayerNorm.

The encoder holds a weight-normed positional conv (key ``encoder.pos_conv_embed``) that the reference implementation
builds and never applies; it is kept so that checkpoints load as they are, and it changes nothing. The depthwise
convs see padded frames (the reference does not zero them), so a padded batch differs slightly from its rows run
alone.
"""

from __future__ import annotations

from audioclf.config import ModelConfig
from audioclf.models.blocks import PositionalConv
from audioclf.models.classifier import AudioClassifier
from audioclf.models.conformer import ConformerEncoder
from audioclf.models.speech import SpeechTransformerModel


class Wav2Vec2ConformerEncoder(ConformerEncoder):
    """Conformer layers with LayerNorms at eps 1e-5, a final LayerNorm, and the unused ``pos_conv_embed``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, layer_eps=1e-5, causal_conv=False, final_layer_norm=True, persistent_rotary=True)
        self.pos_conv_embed = PositionalConv(config)  # a checkpoint key only: never applied


class Wav2Vec2ConformerForSequenceClassification(AudioClassifier):
    model_type = "wav2vec2-conformer"

    def build_base(self, config: ModelConfig) -> SpeechTransformerModel:
        return SpeechTransformerModel(config, encoder=Wav2Vec2ConformerEncoder(config))
