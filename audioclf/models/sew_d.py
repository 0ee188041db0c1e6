"""SEW-D sequence classifier: the squeeze sandwich around a DeBERTa-v2 disentangled-attention encoder.

Attention scores add to the content term ``q·kᵀ`` a content-to-position term (``c2p``: queries against projected
relative-position embeddings) and a position-to-content term (``p2c``: keys against them), all divided by
``sqrt(head_dim · (1 + #terms))``. Relative distances are log-bucketed beyond ``position_buckets // 2``.

Regularisation follows the reference implementation: ``activation_dropout`` on both residual branches' outputs and
(in every layer) on the relative-position embeddings, ``attention_dropout`` on the attention probabilities; no
``hidden_dropout`` and no LayerDrop. The two DeBERTa dropouts draw a Bernoulli keep-mask (:class:`BernoulliDropout`),
as the reference does on every device.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from audioclf.config import ModelConfig
from audioclf.models.blocks import EncoderOutput, LayerStack, activation, key_padding_mask
from audioclf.models.classifier import AudioClassifier
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


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis of ``scores`` ``[B, H, T, T]`` with masked keys (key mask ``[B, 1, 1, T]``, False =
    masked) filled with the dtype's minimum before and set to 0 after."""
    if mask is None:
        return scores.softmax(dim=-1)
    return scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(dim=-1).masked_fill(~mask, 0.0)


class BernoulliDropout(nn.Module):
    """Dropout that draws its keep-mask with ``bernoulli_(1 - p)`` on a tensor shaped like the input and scales
    kept values by ``1 / (1 - p)``: the draw DeBERTa's reference dropout makes on every device."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p >= 1:
            return torch.zeros_like(x)
        dropped = torch.empty_like(x).bernoulli_(1 - self.p) == 0
        return x.masked_fill(dropped, 0.0) * (1.0 / (1 - self.p))


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
        self.relative = config.relative_attention
        self.share_keys = config.share_att_key
        if self.relative and not self.share_keys:
            if "c2p" in self.terms:
                self.pos_key_proj = nn.Linear(width, width)
            if "p2c" in self.terms:
                self.pos_query_proj = nn.Linear(width, width)
        self.scale = math.sqrt(self.head_dim * (1 + len(self.terms)))
        self.pos_dropout = BernoulliDropout(config.activation_dropout)
        self.dropout = BernoulliDropout(config.attention_dropout)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, D] -> [B, H, T, d]``."""
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def position_projections(self, rel_embeddings: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Keys (for c2p) and queries (for p2c) of the position embeddings ``[2S, D]`` -> ``[1, H, 2S, d]`` each, or
        None for a term not in use."""
        embeddings = rel_embeddings[None]
        position_keys = position_queries = None
        if "c2p" in self.terms:
            projection = self.key_proj if self.share_keys else self.pos_key_proj
            position_keys = self.split_heads(projection(embeddings))
        if "p2c" in self.terms:
            projection = self.query_proj if self.share_keys else self.pos_query_proj
            position_queries = self.split_heads(projection(embeddings))
        return position_keys, position_queries

    def position_bias(self, q: torch.Tensor, k: torch.Tensor, relative: torch.Tensor,
                      projections: tuple[torch.Tensor | None, torch.Tensor | None], span: int) -> torch.Tensor:
        """c2p + p2c scores ``[B, H, T, T]`` (divided by the scale) from queries and keys ``[B, H, T, d]``,
        relative positions ``[T, T]`` and the position projections of :meth:`position_projections`."""
        batch, _, length, _ = q.shape
        position_keys, position_queries = projections
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
        """``hidden`` ``[B, T, D]``; key ``mask`` ``[B, 1, 1, T]`` or None; ``relative`` ``[T, T]`` positions;
        ``rel_embeddings`` ``[2S, D]``. Returns the context ``[B, T, D]`` and, if asked, the probabilities
        ``[B, H, T, T]`` (masked keys get probability 0)."""
        batch, length, width = hidden.shape
        q = self.split_heads(self.query_proj(hidden))
        k = self.split_heads(self.key_proj(hidden))
        v = self.split_heads(self.value_proj(hidden))
        scores = torch.matmul(q, k.transpose(-1, -2) / self.scale)
        if self.relative:
            embeddings = self.pos_dropout(rel_embeddings)
            if self.terms:
                projections = self.position_projections(embeddings)
                scores = scores + self.position_bias(q, k, relative, projections, embeddings.shape[0] // 2)
        probs = self.dropout(masked_softmax(scores, mask))
        context = torch.matmul(probs, v).transpose(1, 2).reshape(batch, length, width)
        return context, probs if output_attentions else None


class ResidualNorm(nn.Module):
    """``LayerNorm(drop(dense(x)) + residual)`` (keys ``dense``, ``LayerNorm``); ``drop`` is ``activation_dropout``."""

    def __init__(self, in_features: int, config: ModelConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.dropout = nn.Dropout(config.activation_dropout)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class DisentangledAttention(nn.Module):
    """Keys ``self`` (the attention) and ``output`` (dense + residual LayerNorm)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.self = DisentangledSelfAttention(config)
        self.output = ResidualNorm(config.hidden_size, config)


class Intermediate(nn.Module):
    """``act(Linear(D, I))`` (key ``dense``)."""

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
        self.relative = config.relative_attention
        self.max_relative = config.max_relative_distance
        self.buckets = config.position_buckets
        self.span = self.buckets if self.buckets > 0 else self.max_relative
        if self.relative:
            # given storage, not drawn: nn.Embedding's own random fill is skipped (it would be wasted on the meta
            # device and imports torch's compiler stack there); the model initialises or loads it
            self.rel_embeddings = nn.Embedding(2 * self.span, config.hidden_size,
                                               _weight=torch.empty(2 * self.span, config.hidden_size))
        norm_kinds = [part.strip() for part in config.norm_rel_ebd.lower().split("|")]
        self.LayerNorm = (nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
                          if "layer_norm" in norm_kinds else None)
        self.stack = LayerStack()

    def relative_embeddings(self) -> torch.Tensor | None:
        """``[2S, D]`` position embeddings, LayerNorm'd when ``norm_rel_ebd`` asks for it (None without relative
        attention)."""
        if not self.relative:
            return None
        embeddings = self.rel_embeddings.weight
        if self.LayerNorm is not None:
            embeddings = self.LayerNorm(embeddings)
        return embeddings[: 2 * self.span]

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, output_hidden_states: bool,
                output_attentions: bool) -> EncoderOutput:
        """``hidden`` ``[B, T', D]``, squeezed frame mask ``[B, T']`` or None."""
        relative = (relative_positions(hidden.shape[1], self.buckets, self.max_relative, hidden.device)
                    if self.relative else None)
        return self.stack.run(self.layer, hidden, key_padding_mask(mask), relative, self.relative_embeddings(),
                              output_hidden_states=output_hidden_states, output_attentions=output_attentions)


class SEWDEncoder(SqueezedEncoder):
    """Squeezed frames (no LayerNorm, no dropout) → the disentangled encoder (key ``encoder``)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.encoder = DisentangledEncoder(config)

    def encode(self, hidden: torch.Tensor, mask: torch.Tensor | None, output_hidden_states: bool,
               output_attentions: bool) -> EncoderOutput:
        return self.encoder(hidden, mask, output_hidden_states, output_attentions)


class SEWDForSequenceClassification(AudioClassifier):
    model_type = "sew-d"

    def build_base(self, config: ModelConfig) -> SqueezedSpeechModel:
        return SqueezedSpeechModel(config, SEWDEncoder(config), feature_eps=config.feature_layer_norm_eps)
