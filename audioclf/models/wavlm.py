"""WavLM sequence classifier: the Wav2Vec2-family base model whose attention adds a gated relative position bias.

The bias table is learned by the first layer only (``rel_attn_embed``: one value per head and distance bucket;
distances below ``num_buckets / 4`` get their own bucket, longer ones log-spaced buckets up to
``max_bucket_distance``, separately for each direction) and shared by every layer. Each layer scales it per head and
query frame by a gate computed from its own input: ``g = a · (b · c - 1) + 2`` with ``a, b`` sigmoids of a projection
of the query frame's head slice (``gru_rel_pos_linear``) and ``c`` a learned per-head constant
(``gru_rel_pos_const``). Otherwise the layers are the post-LN or stable ones of wav2vec2 (no adapter). LayerDrop
never drops the first layer. Attention maps, when requested, are the head average repeated for every head, as
``transformers`` returns them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from audioclf.config import ModelConfig
from audioclf.models.blocks import SelfAttention, TransformerEncoder
from audioclf.models.classifier import AudioClassifier
from audioclf.models.speech import SpeechTransformerModel


def relative_position_buckets(length: int, num_buckets: int, max_distance: int, device=None) -> torch.Tensor:
    """``[T, T]`` int64 bucket of the distance ``j - i`` from query ``i`` to key ``j``.

    The first ``num_buckets / 2`` buckets hold keys at or before the query, the others keys after it. Within a half,
    distances below ``num_buckets / 4`` are exact; longer ones get ``exact + log(d / exact) / log(max_distance / exact)
    · (half - exact)`` (float32, truncated), capped at the half's last bucket.
    """
    half = num_buckets // 2
    exact = half // 2
    positions = torch.arange(length, dtype=torch.long, device=device)
    relative = positions[None, :] - positions[:, None]
    buckets = (relative > 0).long() * half
    distance = relative.abs()
    scaled = torch.log(distance.clamp(min=1).float() / exact) / math.log(max_distance / exact) * (half - exact)
    far = (exact + scaled).long().clamp(max=half - 1)
    return buckets + torch.where(distance < exact, distance, far)


class GatedRelativeAttention(SelfAttention):
    """Self-attention plus a gated relative position bias: ``[B, T, D] -> [B, T, D]``.

    Keys ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``, ``gru_rel_pos_const`` ``[1, H, 1, 1]``,
    ``gru_rel_pos_linear`` (``d -> 8``) and, in the first layer only, ``rel_attn_embed`` (``num_buckets × H``).
    """

    def __init__(self, config: ModelConfig, has_position_table: bool) -> None:
        super().__init__(config.hidden_size, config.num_attention_heads, config.attention_dropout)
        self.gru_rel_pos_const = nn.Parameter(torch.ones(1, self.num_heads, 1, 1))
        self.gru_rel_pos_linear = nn.Linear(self.head_dim, 8)
        self.num_buckets = config.num_buckets
        self.max_distance = config.max_bucket_distance
        # given storage, not drawn (as SEW-D's table): a random fill on the meta device imports torch's compiler
        # stack; the model initialises or loads it
        self.rel_attn_embed = (nn.Embedding(config.num_buckets, self.num_heads,
                                            _weight=torch.empty(config.num_buckets, self.num_heads))
                               if has_position_table else None)

    def reset_own_parameters(self) -> None:
        nn.init.ones_(self.gru_rel_pos_const)

    def position_bias(self, length: int) -> torch.Tensor:
        """The shared, ungated bias ``[H, T, T]`` (first layer only)."""
        buckets = relative_position_buckets(length, self.num_buckets, self.max_distance,
                                            self.rel_attn_embed.weight.device)
        return self.rel_attn_embed(buckets).permute(2, 0, 1)

    def gate(self, hidden: torch.Tensor) -> torch.Tensor:
        """Per head and query frame factor ``[B, H, T, 1]`` of the position bias, from the layer input ``[B, T, D]``."""
        projected = self.gru_rel_pos_linear(self.split_heads(hidden))  # [B, H, T, 8]
        pair = projected.view(*projected.shape[:-1], 2, 4).sum(-1)  # [B, H, T, 2]
        update, reset = torch.sigmoid(pair).chunk(2, dim=-1)
        return update * (reset * self.gru_rel_pos_const - 1.0) + 2.0

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, position_bias: torch.Tensor,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``mask``: key mask ``[B, 1, 1, T]`` or None; ``position_bias`` ``[H, T, T]``. Maps: ``[B, H, T, T]``, each
        head holding the head average."""
        attended, probs = self.attend_with_bias(hidden, mask, self.gate(hidden) * position_bias, output_attentions)
        if probs is not None:
            probs = probs.mean(dim=1, keepdim=True).expand_as(probs)
        if self.training:  # time-major memory, as the reference's output: a dropout on it then draws the same mask
            attended = attended.transpose(0, 1).contiguous().transpose(0, 1)
        return attended, probs


class WavLMEncoder(TransformerEncoder):
    """The Wav2Vec2-family encoder with gated relative attention (keys as there, plus the attention's own)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, stable=config.do_stable_layer_norm,
                         attention=lambda index: GatedRelativeAttention(config, has_position_table=index == 0),
                         spare_first_layer=True)

    def layer_arguments(self, hidden: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.layers[0].attention.position_bias(hidden.shape[1]),)


class WavLMForSequenceClassification(AudioClassifier):
    model_type = "wavlm"

    def build_base(self, config: ModelConfig) -> SpeechTransformerModel:
        return SpeechTransformerModel(config, encoder=WavLMEncoder(config))
