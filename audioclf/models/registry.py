"""``model_type`` → classifier class, imported on demand."""

from __future__ import annotations

import importlib

from audioclf.config import SUPPORTED_MODEL_TYPES, ModelConfig
from audioclf.errors import ConfigError
from audioclf.models.classifier import AudioClassifier

_CLASSES: dict[str, tuple[str, str]] = {
    "wav2vec2": ("audioclf.models.wav2vec2", "Wav2Vec2ForSequenceClassification"),
    "hubert": ("audioclf.models.hubert", "HubertForSequenceClassification"),
    "unispeech": ("audioclf.models.unispeech", "UniSpeechForSequenceClassification"),
    "unispeech-sat": ("audioclf.models.unispeech_sat", "UniSpeechSatForSequenceClassification"),
    "sew": ("audioclf.models.sew", "SEWForSequenceClassification"),
    "sew-d": ("audioclf.models.sew_d", "SEWDForSequenceClassification"),
    "wavlm": ("audioclf.models.wavlm", "WavLMForSequenceClassification"),
    "data2vec-audio": ("audioclf.models.data2vec_audio", "Data2VecAudioForSequenceClassification"),
    "wav2vec2-conformer": ("audioclf.models.wav2vec2_conformer", "Wav2Vec2ConformerForSequenceClassification"),
    "wav2vec2-bert": ("audioclf.models.wav2vec2_bert", "Wav2Vec2BertForSequenceClassification"),
    "audio-spectrogram-transformer": ("audioclf.models.ast", "ASTForAudioClassification"),
    "whisper": ("audioclf.models.whisper", "WhisperForAudioClassification"),
}
assert set(_CLASSES) == set(SUPPORTED_MODEL_TYPES)


def model_class(model_type: str) -> type[AudioClassifier]:
    """The classifier class for ``model_type``; one-line :class:`ConfigError` for anything else."""
    try:
        module, name = _CLASSES[model_type]
    except KeyError:
        raise ConfigError(
            f"unsupported model_type {model_type!r}; supported types: {', '.join(SUPPORTED_MODEL_TYPES)}"
        ) from None
    return getattr(importlib.import_module(module), name)


def build_model(config: ModelConfig) -> AudioClassifier:
    """A randomly initialised classifier for ``config``, in eval mode."""
    return model_class(config.model_type)(config).eval()
