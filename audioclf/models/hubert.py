"""HuBERT sequence classifier: the Wav2Vec2-family base model with HuBERT's two switches
(``feat_proj_layer_norm``, ``conv_pos_batch_norm``) plus the shared head. Its SpecAugment time masks span the whole
padded length."""

from __future__ import annotations

from audioclf.config import ModelConfig
from audioclf.models.classifier import AudioClassifier
from audioclf.models.speech import SpeechTransformerModel


class HubertForSequenceClassification(AudioClassifier):
    model_type = "hubert"

    def build_base(self, config: ModelConfig) -> SpeechTransformerModel:
        return SpeechTransformerModel(config, projection_layer_norm=config.feat_proj_layer_norm,
                                      pos_conv_batch_norm=config.conv_pos_batch_norm, time_masks_respect_padding=False)
