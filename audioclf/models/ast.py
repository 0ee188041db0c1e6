"""Audio Spectrogram Transformer (AST) classifier: a ViT over patches of a Kaldi log-mel spectrogram.

``input_values`` ``[B, T, M]`` (``max_length`` frames of ``num_mel_bins``, from :class:`ASTFeatureExtractor`) →
square patches of ``patch_size`` every ``frequency_stride`` mel bins and ``time_stride`` frames, each projected to
``D`` (one strided conv) → ``[B, P, D]`` → CLS and distillation tokens in front, position embeddings added
``[B, P + 2, D]`` → pre-LN layers (shared attention, ``fc1 → act → fc2`` MLP) → final LayerNorm. Head: LayerNorm and
Dense on the mean of the two tokens. Keys are those of ``transformers`` 5.x; 4.x checkpoints (ViT key names) are
renamed on loading (:mod:`audioclf.checkpoints.keys`).
"""

from __future__ import annotations

import torch
from torch import nn

from audioclf.config import ModelConfig, patch_grid
from audioclf.errors import ModelError
from audioclf.models.blocks import EncoderOutput, LayerStack, SelfAttention, activation, key_padding_mask
from audioclf.models.classifier import AudioClassifier


class PatchEmbeddings(nn.Module):
    """Spectrogram ``[B, T, M]`` → patch embeddings ``[B, P, D]``, patches ordered mel-major (key ``projection``)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.projection = nn.Conv2d(1, config.hidden_size, kernel_size=config.patch_size,
                                    stride=(config.frequency_stride, config.time_stride))

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        # [B, T, M] -> [B, 1, M, T] -> [B, D, F', T'] -> [B, F'·T', D]
        return self.projection(spectrogram.transpose(1, 2)[:, None]).flatten(2).transpose(1, 2)


class ASTEmbeddings(nn.Module):
    """Patches, the two learned tokens and the position table: ``[B, T, M] -> [B, P + 2, D]`` (keys ``cls_token``,
    ``distillation_token`` ``[1, 1, D]``, ``patch_embeddings``, ``position_embeddings`` ``[1, P + 2, D]``), then
    ``hidden_dropout_prob``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        patches = patch_grid(config)[0] * patch_grid(config)[1]
        self.cls_token = nn.Parameter(torch.empty(1, 1, config.hidden_size))
        self.distillation_token = nn.Parameter(torch.empty(1, 1, config.hidden_size))
        self.patch_embeddings = PatchEmbeddings(config)
        self.position_embeddings = nn.Parameter(torch.empty(1, patches + 2, config.hidden_size))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.input_shape = (config.max_length, config.num_mel_bins)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        if tuple(spectrogram.shape[1:]) != self.input_shape:
            frames, bins = self.input_shape
            raise ModelError(f"AST expects input_values of shape [batch, {frames}, {bins}] (max_length frames of "
                             f"num_mel_bins), got {list(spectrogram.shape)}")
        batch = spectrogram.shape[0]
        tokens = torch.cat([self.cls_token.expand(batch, -1, -1), self.distillation_token.expand(batch, -1, -1),
                            self.patch_embeddings(spectrogram)], dim=1)
        return self.dropout(tokens + self.position_embeddings)


class MLP(nn.Module):
    """``fc1 → act → fc2``: ``[B, T, D] -> [B, T, D]``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation_fn = activation(config.hidden_act)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(hidden)))


class ASTLayer(nn.Module):
    """Pre-LN ViT layer: ``h = h + drop(MHA(LN(h))); h = h + drop(MLP(LN(h)))`` on ``[B, T, D]`` (keys ``attention``
    with ``o_proj``, ``layernorm_before``, ``mlp``, ``layernorm_after``); ``drop`` is ``hidden_dropout_prob``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attention = SelfAttention(config.hidden_size, config.num_attention_heads,
                                       config.attention_probs_dropout_prob, qkv_bias=config.qkv_bias,
                                       output_name="o_proj")
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLP(config)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``mask``: key mask ``[B, 1, 1, T]`` or None."""
        attended, probs = self.attention(self.layernorm_before(hidden), mask, output_attentions)
        hidden = hidden + self.dropout(attended)
        hidden = hidden + self.dropout(self.mlp(self.layernorm_after(hidden)))
        return hidden, probs


class ASTModel(nn.Module):
    """Embeddings, layers and the final LayerNorm (keys ``embeddings``, ``layers.N``, ``layernorm``).

    ``hidden_states``: the embeddings and every layer's output, the last one before the final LayerNorm (unless
    ``tie_last_hidden_states``), as in ``transformers``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embeddings = ASTEmbeddings(config)
        self.layers = nn.ModuleList(ASTLayer(config) for _ in range(config.num_hidden_layers))
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.stack = LayerStack()

    def frame_mask(self, attention_mask: torch.Tensor | None, num_frames: int) -> torch.Tensor | None:
        """The token mask ``[B, P + 2]`` as given (bool), or None."""
        return None if attention_mask is None else attention_mask.bool()

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> EncoderOutput:
        """``input_values`` ``[B, max_length, num_mel_bins]``; ``attention_mask``: an optional token mask
        ``[B, P + 2]`` (1 = attend), which the feature extractor never produces → ``[B, P + 2, D]``."""
        hidden = self.embeddings(input_values)
        mask = key_padding_mask(self.frame_mask(attention_mask, hidden.shape[1]))
        encoded = self.stack.run(self.layers, hidden, mask, output_hidden_states=output_hidden_states,
                                 output_attentions=output_attentions)
        encoded.last_hidden_state = self.layernorm(encoded.last_hidden_state)
        return encoded


class ASTClassificationHead(nn.Module):
    """``LayerNorm → Dense``: ``[B, D] -> [B, num_labels]`` (keys ``layernorm``, ``dense``)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dense = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.dense(self.layernorm(pooled))


class ASTForAudioClassification(AudioClassifier):
    """AST with its head on the mean of the CLS and distillation tokens. ``forward(input_values, ...)`` takes the
    spectrograms ``[B, max_length, num_mel_bins]``. No ``freeze_feature_encoder`` (there is no conv encoder), as in
    ``transformers``; ``freeze_base_model`` trains the head only."""

    model_type = "audio-spectrogram-transformer"

    def build_base(self, config: ModelConfig) -> ASTModel:
        return ASTModel(config)

    def build_head(self, config: ModelConfig) -> None:
        self.classifier = ASTClassificationHead(config)

    @property
    def uses_all_hidden_states(self) -> bool:
        return False

    def logits_from(self, last_hidden_state: torch.Tensor, hidden_states: tuple[torch.Tensor, ...] | None,
                    attention_mask: torch.Tensor | None) -> torch.Tensor:
        """``[B, P + 2, D]`` → the mean of tokens 0 and 1 → head: ``[B, num_labels]``."""
        return self.classifier((last_hidden_state[:, 0] + last_hidden_state[:, 1]) / 2)

    def _init_module(self, module: nn.Module) -> None:
        super()._init_module(module)
        if isinstance(module, ASTEmbeddings):  # as transformers initialises them
            for tensor in (module.cls_token, module.distillation_token, module.position_embeddings):
                nn.init.zeros_(tensor)
