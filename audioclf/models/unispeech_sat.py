"""UniSpeechSat sequence classifier: the Wav2Vec2-family base model (post-LN or stable encoder) plus the shared head.

Unlike the others it always has ``masked_spec_embed``, whatever the masking probabilities.
"""

from __future__ import annotations

from audioclf.config import ModelConfig
from audioclf.models.classifier import AudioClassifier
from audioclf.models.speech import SpeechTransformerModel


class UniSpeechSatForSequenceClassification(AudioClassifier):
    model_type = "unispeech-sat"

    def build_base(self, config: ModelConfig) -> SpeechTransformerModel:
        return SpeechTransformerModel(config, with_masked_spec_embed=True)
