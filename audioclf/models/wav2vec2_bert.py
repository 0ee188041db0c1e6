"""wav2vec2-bert (w2v-BERT 2.0) sequence classifier: filter-bank frames instead of a waveform, a feature projection,
conformer layers (:mod:`audioclf.models.conformer`: ``relative_key`` positions by default, causal depthwise convs
with LayerNorm that never see padded frames), and optionally half of a ReLU feed-forward on the encoder output
(``use_intermediate_ffn_before_adapter``), then the shared head.

Input: ``input_features`` ``[B, T, feature_projection_input_dim]`` (the SeamlessM4T featurizer's stacked log-mel
frames, :class:`~audioclf.audio.spectral_features.SeamlessM4TFeatureExtractor`) with a frame mask ``attention_mask``
``[B, T]``. There is no conv feature encoder, so frames are the model's frames. The adapter of CTC checkpoints
(``add_adapter``) changes the frame rate and is refused, as the reference classifier refuses it.
"""

from __future__ import annotations

import torch

from audioclf.config import ModelConfig
from audioclf.errors import ModelError
from audioclf.models.blocks import EncoderOutput, FeatureProjection, FeedForward
from audioclf.models.classifier import AudioClassifier, ClassifierOutput
from audioclf.models.conformer import ConformerEncoder
from audioclf.models.speech import SpeechModel


class Wav2Vec2BertModel(SpeechModel):
    """Feature projection → SpecAugment (training) → conformer encoder → optional intermediate feed-forward.

    Keys ``feature_projection``, ``masked_spec_embed``, ``encoder``, ``intermediate_ffn``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, conv_features=False)
        self.feature_projection = FeatureProjection(config.feature_projection_input_dim, config.hidden_size,
                                                    config.layer_norm_eps, config.feat_proj_dropout)
        self.encoder = ConformerEncoder(config, layer_eps=config.layer_norm_eps, causal_conv=True,
                                        final_layer_norm=False, persistent_rotary=False)
        self.intermediate_ffn = FeedForward(config, act="relu") if config.use_intermediate_ffn_before_adapter else None

    def forward(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> EncoderOutput:
        """``input_features`` ``[B, T, F]``, frame mask ``attention_mask`` ``[B, T]`` -> ``[B, T, D]``."""
        mask = self.frame_mask(attention_mask, input_features.shape[1])
        hidden = self.augment(self.feature_projection(input_features), mask)
        encoded = self.encoder(hidden, mask, output_hidden_states, output_attentions)
        if self.intermediate_ffn is not None:
            last = encoded.last_hidden_state
            encoded.last_hidden_state = last + 0.5 * self.intermediate_ffn(last)
        return encoded


class Wav2Vec2BertForSequenceClassification(AudioClassifier):
    model_type = "wav2vec2-bert"

    def build_base(self, config: ModelConfig) -> Wav2Vec2BertModel:
        return Wav2Vec2BertModel(config)

    def forward(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_hidden_states: bool | None = None,
                output_attentions: bool | None = None) -> ClassifierOutput:
        """``input_features`` ``[B, T, F]`` float; frame mask ``attention_mask`` ``[B, T]``; the rest as in
        :meth:`AudioClassifier.forward`."""
        return super().forward(input_features, attention_mask, labels, output_hidden_states, output_attentions)

    def freeze_feature_encoder(self) -> None:
        raise ModelError("wav2vec2-bert has no conv feature encoder to freeze (it reads filter-bank frames); use "
                         "freeze_base_model()")
