"""SEW-D sequence classifier: the squeeze sandwich around a DeBERTa-v2 disentangled-attention encoder.

Attention scores add to the content term ``q·kᵀ`` a content-to-position term (``c2p``: queries against projected
relative-position embeddings) and a position-to-content term (``p2c``: keys against them), all divided by
``sqrt(head_dim · (1 + #terms))``. Relative distances are log-bucketed beyond ``position_buckets // 2``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from audioclf.config import ModelConfig
from audioclf.models.blocks import activation
from audioclf.models.head import AudioClassifier
from audioclf.models.squeeze import SqueezedEncoder, SqueezedSpeechModel


def relative_positions(length: int, buckets: int, max_position: int, device=None) -> torch.Tensor:
    """``[T, T]`` int64 relative positions ``i - j``, log-bucketed when ``buckets > 0`` and ``max_position > 0``.

    Distances up to ``buckets // 2`` stay exact; larger ones become
    ``sign · (ceil(log(|r| / mid) / log((max_position - 1) / mid) · (mid - 1)) + mid)`` (computed in float32).
    """
    ids = torch.arange(length, device=device)
    relative = ids[:, None] - ids[None, :]
    if buckets > 0 and max_position > 0:
        mid = buckets // 2
        sign = torch.sign(relative)
        inside = (relative < mid) & (relative > -mid)
        magnitude = torch.where(inside, torch.full_like(relative, mid - 1), relative.abs())
        log_scale = torch.log(torch.tensor((max_position - 1) / mid))
        log_position = torch.ceil(torch.log(magnitude / mid) / log_scale * (mid - 1)) + mid
        relative = torch.where(magnitude <= mid, relative.to(log_position.dtype), log_position * sign)
    return relative.long()


class DisentangledSelfAttention(nn.Module):
    """Content + relative-position attention: ``[B, T, D] -> [B, T, D]`` (keys ``query_proj``, ``key_proj``,
    ``value_proj``; ``pos_key_proj`` / ``pos_query_proj`` when ``share_att_key`` is false)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        width = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = width // self.num_heads
        self.query_proj = nn.Linear(width, width)
        self.key_proj = nn.Linear(width, width)
        self.value_proj = nn.Linear(width, width)
        self.terms = config.position_attention_types
        self.relative = bool(getattr(config, "relative_attention", False))
        self.share_keys = bool(getattr(config, "share_att_key", False))
        if self.relative and not self.share_keys:
            if "c2p" in self.terms:
                self.pos_key_proj = nn.Linear(width, width)
            if "p2c" in self.terms:
                self.pos_query_proj = nn.Linear(width, width)
        self.scale = math.sqrt(self.head_dim * (1 + len(self.terms)))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, D] -> [B, H, T, d]``."""
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def position_projections(self, rel_embeddings: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Keys and queries of the relative-position embeddings ``[2S, D]`` -> ``[1, H, 2S, d]`` each (or None)."""
        embeddings = rel_embeddings[None]
        position_keys = position_queries = None
        if "c2p" in self.terms:
            projection = self.key_proj if self.share_keys else self.pos_key_proj
            position_keys = self._heads(projection(embeddings))
        if "p2c" in self.terms:
            projection = self.query_proj if self.share_keys else self.pos_query_proj
            position_queries = self._heads(projection(embeddings))
        return position_keys, position_queries

    def cache_position_projections(self, rel_embeddings: torch.Tensor | None) -> None:
        """Project the (fixed) position embeddings once; forward then reuses them instead of recomputing."""
        self._cached_positions = (self.position_projections(rel_embeddings)
                                  if self.relative and self.terms and rel_embeddings is not None else None)

    def position_bias(self, q: torch.Tensor, k: torch.Tensor, relative: torch.Tensor,
                      rel_embeddings: torch.Tensor) -> torch.Tensor:
        """c2p + p2c scores ``[B, H, T, T]``, already divided by the scale."""
        batch, _, length, _ = q.shape
        span = rel_embeddings.shape[0] // 2
        cached = getattr(self, "_cached_positions", None)
        position_keys, position_queries = cached if cached is not None else self.position_projections(rel_embeddings)
        index_shape = (batch, self.num_heads, length, length)
        bias = q.new_zeros(())
        if position_keys is not None:
            index = torch.clamp(relative + span, 0, 2 * span - 1).expand(index_shape)
            bias = bias + torch.matmul(q, position_keys.transpose(-1, -2)).gather(-1, index)
        if position_queries is not None:
            index = torch.clamp(-relative + span, 0, 2 * span - 1).expand(index_shape)
            bias = bias + torch.matmul(k, position_queries.transpose(-1, -2)).gather(-1, index).transpose(-1, -2)
        return bias / self.scale

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, relative: torch.Tensor | None,
                rel_embeddings: torch.Tensor | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``mask`` boolean ``[B, T]`` (valid keys) or None; ``relative`` ``[T, T]`` positions; returns the context
        ``[B, T, D]`` and, if asked, the probabilities ``[B, H, T, T]`` (masked keys get probability 0)."""
        batch, length, width = hidden.shape
        q = self._heads(self.query_proj(hidden))
        k = self._heads(self.key_proj(hidden))
        v = self._heads(self.value_proj(hidden))
        bias = None
        if self.relative and self.terms:
            bias = self.position_bias(q, k, relative, rel_embeddings)
        padded = ~mask[:, None, None, :] if mask is not None else None
        probs = None
        if output_attentions:
            scores = torch.matmul(q, k.transpose(-1, -2) / self.scale)
            if bias is not None:
                scores = scores + bias
            if padded is not None:
                scores = scores.masked_fill(padded, torch.finfo(scores.dtype).min)
            probs = scores.softmax(dim=-1)
            if padded is not None:
                probs = probs.masked_fill(padded, 0.0)
            context = torch.matmul(probs, v)
        else:
            # the position terms enter SDPA as an additive bias; padded keys as the dtype's minimum
            if padded is not None:
                fill = torch.zeros((), dtype=q.dtype, device=q.device)
                bias = (fill if bias is None else bias).masked_fill(padded, torch.finfo(q.dtype).min)
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0 / self.scale)
        context = context.transpose(1, 2).reshape(batch, length, width)
        return context, probs


class ResidualNorm(nn.Module):
    """``LayerNorm(dense(x) + residual)`` (keys ``dense``, ``LayerNorm``)."""

    def __init__(self, in_features: int, config: ModelConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class DisentangledAttention(nn.Module):
    """Keys ``self`` (the attention) and ``output`` (dense + residual LayerNorm)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.self = DisentangledSelfAttention(config)
        self.output = ResidualNorm(config.hidden_size, config)


class Intermediate(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class DisentangledLayer(nn.Module):
    """Post-LN layer with disentangled attention: ``[B, T, D] -> [B, T, D]``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attention = DisentangledAttention(config)
        self.intermediate = Intermediate(config)
        self.output = ResidualNorm(config.intermediate_size, config)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, relative: torch.Tensor | None,
                rel_embeddings: torch.Tensor | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        context, probs = self.attention.self(hidden, mask, relative, rel_embeddings, output_attentions)
        attended = self.attention.output(context, hidden)
        return self.output(self.intermediate(attended), attended), probs


class DisentangledEncoder(nn.Module):
    """The DeBERTa-v2 layer stack (keys ``layer.N``, ``rel_embeddings``, ``LayerNorm`` for the embeddings)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(DisentangledLayer(config) for _ in range(config.num_hidden_layers))
        self.relative = bool(getattr(config, "relative_attention", False))
        max_relative = getattr(config, "max_relative_positions", -1) or -1
        self.max_relative = max_relative if max_relative >= 1 else config.max_position_embeddings
        self.buckets = getattr(config, "position_buckets", -1) or -1
        self.span = self.buckets if self.buckets > 0 else self.max_relative
        if self.relative:
            # given storage, not drawn: nn.Embedding's own random fill is skipped (it would be wasted on the meta
            # device and imports torch's compiler stack there); the model initialises or loads it
            self.rel_embeddings = nn.Embedding(2 * self.span, config.hidden_size,
                                               _weight=torch.empty(2 * self.span, config.hidden_size))
        norm_kinds = [part.strip() for part in str(getattr(config, "norm_rel_ebd", "none")).lower().split("|")]
        self.LayerNorm = (nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
                          if "layer_norm" in norm_kinds else None)

    def relative_embeddings(self) -> torch.Tensor | None:
        """``[2S, D]`` position embeddings, LayerNorm'd when ``norm_rel_ebd`` asks for it."""
        if not self.relative:
            return None
        embeddings = self.rel_embeddings.weight
        if self.LayerNorm is not None:
            embeddings = self.LayerNorm(embeddings)
        return embeddings[: 2 * self.span]

    def precompute_for_inference(self) -> None:
        """Fix the normalised position embeddings and each layer's projections of them (they depend on weights
        only), instead of recomputing them on every forward."""
        with torch.no_grad():
            self._cached_embeddings = self.relative_embeddings()
            for layer in self.layer:
                layer.attention.self.cache_position_projections(self._cached_embeddings)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, output_hidden_states: bool,
                output_attentions: bool):
        relative = relative_positions(hidden.shape[1], self.buckets, self.max_relative, hidden.device) \
            if self.relative else None
        embeddings = getattr(self, "_cached_embeddings", None)
        if embeddings is None:
            embeddings = self.relative_embeddings()
        states = [hidden] if output_hidden_states else None
        maps = [] if output_attentions else None
        for layer in self.layer:
            hidden, probs = layer(hidden, mask, relative, embeddings, output_attentions)
            if states is not None:
                states.append(hidden)
            if maps is not None:
                maps.append(probs)
        return hidden, states, maps


class SEWDEncoder(SqueezedEncoder):
    """Squeezed frames (no LayerNorm) → the disentangled encoder (key ``encoder``)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.encoder = DisentangledEncoder(config)

    def run_layers(self, hidden: torch.Tensor, mask: torch.Tensor | None, output_hidden_states: bool,
                   output_attentions: bool):
        return self.encoder(hidden, mask, output_hidden_states, output_attentions)


class SEWDForSequenceClassification(AudioClassifier):
    model_type = "sew-d"

    def build_base(self, config: ModelConfig) -> SqueezedSpeechModel:
        return SqueezedSpeechModel(config, SEWDEncoder(config), feature_eps=config.feature_layer_norm_eps)
