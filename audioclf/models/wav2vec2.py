"""Wav2Vec2 sequence classifier: the Wav2Vec2-family base model (post-LN or stable encoder) plus the shared head."""

from __future__ import annotations

from audioclf.config import ModelConfig
from audioclf.models.classifier import AudioClassifier
from audioclf.models.speech import SpeechTransformerModel


class Wav2Vec2ForSequenceClassification(AudioClassifier):
    model_type = "wav2vec2"

    def build_base(self, config: ModelConfig) -> SpeechTransformerModel:
        return SpeechTransformerModel(config)
