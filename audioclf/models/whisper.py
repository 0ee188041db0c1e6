"""Whisper audio classifier: the Whisper encoder plus the shared pooled-frames head.

``input_features`` ``[B, M, 2·S]`` (log-mel features of 30 s from :class:`WhisperFeatureExtractor`; ``S`` =
``max_source_positions``) → ``gelu(conv1)`` (kernel 3) → ``gelu(conv2)`` (kernel 3, stride 2) → ``[B, S, D]`` → plus
the position table (sinusoids in every published checkpoint, frozen as in ``transformers``) → ``dropout`` → pre-LN
layers → final LayerNorm. Head: optional weighted layer sum → projector → mean over all ``S`` frames (Whisper attends
to every frame; an attention mask is accepted and ignored, as in ``transformers``) → classifier.

The classifier's encoder lives under ``encoder.``: checkpoints of ``WhisperForConditionalGeneration``
(``model.encoder.``), ``WhisperModel`` (``encoder.``) and of the bare encoder load into it, their decoder and LM head
reported as unused. The config uses Whisper's field names (``d_model``, ``encoder_layers``, …; ``hidden_size`` and
``num_hidden_layers`` are aliases). SpecAugment fields are kept but unused: ``transformers`` applies them in
``WhisperModel`` only, never in the classifier.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from audioclf.config import ModelConfig
from audioclf.errors import ModelError
from audioclf.models.blocks import EncoderOutput, LayerStack, SelfAttention, activation
from audioclf.models.classifier import AudioClassifier, ClassifierOutput


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """Whisper's position table ``[length, channels]``: ``sin`` in the first half of the channels, ``cos`` in the
    second, timescales geometric from 1 to ``max_timescale`` (``channels`` even, at least 4)."""
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inverse_timescales = torch.exp(-increment * torch.arange(channels // 2))
    angles = torch.arange(length)[:, None] * inverse_timescales[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class WhisperEncoderLayer(nn.Module):
    """Pre-LN layer: ``h = h + drop(MHA(LN(h))); h = h + drop(fc2(act_drop(act(fc1(LN(h))))))`` on ``[B, T, D]``
    (keys ``self_attn`` (no key bias), ``self_attn_layer_norm``, ``fc1``, ``fc2``, ``final_layer_norm``); ``drop``
    is ``dropout``, ``act_drop`` is ``activation_dropout``. Float16 states are clamped to the finite range after each
    layer, as in ``transformers``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        width = config.d_model
        self.self_attn = SelfAttention(width, config.encoder_attention_heads, config.attention_dropout, key_bias=False)
        self.self_attn_layer_norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, config.encoder_ffn_dim)
        self.activation_fn = activation(config.activation_function)
        self.activation_dropout = nn.Dropout(config.activation_dropout)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, width)
        self.final_layer_norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``mask``: key mask ``[B, 1, 1, T]`` or None."""
        attended, probs = self.self_attn(self.self_attn_layer_norm(hidden), mask, output_attentions)
        hidden = hidden + self.dropout(attended)
        update = self.fc2(self.activation_dropout(self.activation_fn(self.fc1(self.final_layer_norm(hidden)))))
        hidden = hidden + self.dropout(update)
        if hidden.dtype == torch.float16:
            limit = torch.finfo(hidden.dtype).max - 1000
            hidden = hidden.clamp(-limit, limit)
        return hidden, probs


class WhisperEncoder(nn.Module):
    """Convs, positions, layers and the final LayerNorm: ``[B, M, 2·S] -> [B, S, D]`` (keys ``conv1``, ``conv2``,
    ``embed_positions``, ``layers.N``, ``layer_norm``). LayerDrop with ``encoder_layerdrop``.

    ``hidden_states``: the input of the first layer and every layer's output; the classifier replaces the last one
    by the final LayerNorm's output (``tie_last_hidden_states``, true by default for Whisper), as ``transformers``
    does."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        width = config.d_model
        self.conv1 = nn.Conv1d(config.num_mel_bins, width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(config.max_source_positions, width)
        self.embed_positions.requires_grad_(False)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(WhisperEncoderLayer(config) for _ in range(config.encoder_layers))
        self.layer_norm = nn.LayerNorm(width)
        self.stack = LayerStack(config.encoder_layerdrop)
        self.input_shape = (config.num_mel_bins, 2 * config.max_source_positions)

    def frame_mask(self, attention_mask: torch.Tensor | None, num_frames: int) -> None:
        """None: every frame counts (Whisper takes no attention mask)."""
        return None

    def forward(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> EncoderOutput:
        """``input_features`` ``[B, num_mel_bins, 2 · max_source_positions]``; ``attention_mask`` is ignored."""
        if tuple(input_features.shape[1:]) != self.input_shape:
            bins, frames = self.input_shape
            raise ModelError(f"Whisper expects input_features of shape [batch, {bins}, {frames}] (num_mel_bins by "
                             f"twice max_source_positions), got {list(input_features.shape)}")
        hidden = F.gelu(self.conv2(F.gelu(self.conv1(input_features)))).transpose(1, 2)
        hidden = self.dropout(hidden + self.embed_positions.weight)
        encoded = self.stack.run(self.layers, hidden, None, output_hidden_states=output_hidden_states,
                                 output_attentions=output_attentions)
        encoded.last_hidden_state = self.layer_norm(encoded.last_hidden_state)
        return encoded


class WhisperForAudioClassification(AudioClassifier):
    """The Whisper encoder with the pooled-frames head; ``forward(input_features, ...)``. ``freeze_encoder()``
    (``transformers``' name) freezes the encoder, like ``freeze_base_model()``."""

    model_type = "whisper"

    def build_base(self, config: ModelConfig) -> WhisperEncoder:
        return WhisperEncoder(config)

    def forward(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_hidden_states: bool | None = None,
                output_attentions: bool | None = None) -> ClassifierOutput:
        """``input_features`` ``[B, num_mel_bins, 2 · max_source_positions]``; the rest as
        :meth:`AudioClassifier.forward` (``attention_mask`` is ignored)."""
        return self.classify(input_features, attention_mask, labels, output_hidden_states, output_attentions)

    def freeze_encoder(self) -> None:
        """No gradients for the encoder: only the head trains."""
        self.freeze_base_model()

    @property
    def initializer_std(self) -> float:
        return self.config.init_std

    def _init_module(self, module: nn.Module) -> None:
        super()._init_module(module)
        if module is self.base_model.embed_positions:
            with torch.no_grad():
                module.weight.copy_(sinusoids(*module.weight.shape))
