"""UniSpeech sequence classifier: the Wav2Vec2-family base model (post-LN or stable encoder) plus the shared head."""

from __future__ import annotations

from audioclf.config import ModelConfig
from audioclf.models.classifier import AudioClassifier
from audioclf.models.speech import SpeechTransformerModel


class UniSpeechForSequenceClassification(AudioClassifier):
    model_type = "unispeech"

    def build_base(self, config: ModelConfig) -> SpeechTransformerModel:
        return SpeechTransformerModel(config)
