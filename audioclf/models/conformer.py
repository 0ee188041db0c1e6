"""Conformer blocks, shared by wav2vec2-conformer and wav2vec2-bert.

A conformer layer over ``[B, T, D]`` frames (keys ``ffn1_layer_norm``, ``ffn1``, ``self_attn_layer_norm``,
``self_attn``, ``conv_module``, ``ffn2_layer_norm``, ``ffn2``, ``final_layer_norm``)::

    h = h + ½ FFN₁(LN(h))
    h = h + drop(MHA(LN(h)))          drop: attention_dropout
    h = h + ConvModule(h)
    h = LN(h + ½ FFN₂(LN(h)))

The feed-forward halves are the wav2vec2 :class:`~audioclf.models.blocks.FeedForward`. Attention positions
(``position_embeddings_type``):

* ``rotary``: the layer input is rotated per head (``x·cos + rotate_half(x)·sin``) before the query and key
  projections (the values see the unrotated input);
* ``relative``: Transformer-XL terms: sinusoids for every distance ``i - j`` projected by ``linear_pos``; scores
  ``(q + u)·kᵀ + (q + v)·pᵢ₋ⱼᵀ``, both scaled (``u``, ``v``: ``pos_bias_u``, ``pos_bias_v``);
* ``relative_key`` (wav2vec2-bert): ``q·e(clip(j - i))ᵀ``, scaled, with a learned embedding per distance clipped to
  ``[-left_max_position_embeddings, right_max_position_embeddings]``;
* none.

Position terms are computed per distance (``[B, H, T, K]`` for ``K`` distances) and gathered into ``[B, H, T, T]``,
which equals the reference's pad-and-reshape and per-pair computations without a ``[T, T, d]`` intermediate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from audioclf.config import ModelConfig
from audioclf.models.blocks import (
    EncoderOutput,
    FeedForward,
    LayerStack,
    activation,
    attend,
    key_padding_mask,
)


# ---------------------------------------------------------------------------------------------------------------------
# Position embeddings
# ---------------------------------------------------------------------------------------------------------------------
class RotaryEmbedding(nn.Module):
    """Rotation tables for ``T`` frames: ``[2, T, 1, d]`` (cos, sin), in the dtype of the frames.

    Frequencies ``base^(-2i/d)`` are kept in ``inv_freq`` ``[d / 2]``, a checkpoint key when ``persistent``
    (wav2vec2-conformer) and recomputed from the config otherwise (wav2vec2-bert).
    """

    def __init__(self, head_dim: int, base: float, persistent: bool) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.base = base
        self.persistent = persistent
        if persistent:
            self.register_buffer("inv_freq", self.frequencies())

    def frequencies(self, device=None) -> torch.Tensor:
        exponents = torch.arange(0, self.head_dim, 2, dtype=torch.int64, device=device).float() / self.head_dim
        return 1.0 / (self.base ** exponents)

    def reset_own_parameters(self) -> None:
        if self.persistent:
            self.inv_freq.copy_(self.frequencies(self.inv_freq.device))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Tables for the frames ``hidden`` ``[B, T, D]``."""
        inv_freq = self.inv_freq if self.persistent else self.frequencies(hidden.device)
        angles = torch.arange(hidden.shape[1], device=inv_freq.device).type_as(inv_freq)[:, None] * inv_freq
        angles = torch.cat((angles, angles), dim=-1)[:, None, :]  # [T, 1, d]
        return torch.stack([angles.cos(), angles.sin()]).type_as(hidden)


def rotate(hidden: torch.Tensor, tables: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Rotary embedding of ``hidden`` ``[B, T, D]`` per head with ``tables`` ``[2, T, 1, d]``."""
    batch, length, width = hidden.shape
    x = hidden.view(batch, length, num_heads, width // num_heads)
    first, second = x.chunk(2, dim=-1)
    rotated = x * tables[0] + torch.cat((-second, first), dim=-1) * tables[1]
    return rotated.view(batch, length, width)


class SinusoidalRelativePositions(nn.Module):
    """Sinusoids for the distances ``i - j`` of ``T`` frames: ``[2T - 1, D]``, row ``m`` for distance
    ``T - 1 - m`` (columns: ``sin`` at even, ``cos`` at odd indices, frequencies ``10000^(-2i/D)``). No parameters."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        length, width, device = hidden.shape[1], self.hidden_size, hidden.device
        position = torch.arange(length, dtype=torch.int64, device=device).float()[:, None]
        frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.int64, device=device).float()
                              * -(math.log(10000.0) / width))
        table = torch.zeros(2, length, width, device=device)
        for row, sign in ((0, 1.0), (1, -1.0)):  # distances 0..T-1, then 0..-(T-1)
            angles = sign * position * frequency
            table[row, :, 0::2] = torch.sin(angles)
            table[row, :, 1::2] = torch.cos(angles)
        return torch.cat([table[0].flip(0), table[1, 1:]]).to(hidden.dtype)


def gather_distances(scores: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``scores`` ``[B, H, T, K]`` per distance slot -> ``[B, H, T, T']`` with entry ``[.., i, j]`` taken from slot
    ``index[i, j]`` (``index`` ``[T, T']`` int64)."""
    return scores.gather(-1, index.expand(*scores.shape[:2], *index.shape))


# ---------------------------------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------------------------------
class ConformerSelfAttention(nn.Module):
    """Multi-head self-attention with the conformer position terms: ``[B, T, D] -> [B, T, D]``.

    Keys ``linear_q``, ``linear_k``, ``linear_v``, ``linear_out``; ``relative`` adds ``linear_pos`` (no bias),
    ``pos_bias_u`` and ``pos_bias_v`` ``[H, d]``; ``relative_key`` adds ``distance_embedding``
    (``left + right + 1`` rows of width ``d``).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        width = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = width // self.num_heads
        self.scaling = self.head_dim ** -0.5
        self.dropout = config.attention_dropout
        self.position_type = config.position_embeddings_type
        self.linear_q = nn.Linear(width, width)
        self.linear_k = nn.Linear(width, width)
        self.linear_v = nn.Linear(width, width)
        self.linear_out = nn.Linear(width, width)
        if self.position_type == "relative":
            self.linear_pos = nn.Linear(width, width, bias=False)
            self.pos_bias_u = nn.Parameter(torch.zeros(self.num_heads, self.head_dim))
            self.pos_bias_v = nn.Parameter(torch.zeros(self.num_heads, self.head_dim))
        elif self.position_type == "relative_key":
            self.left = config.left_max_position_embeddings
            self.right = config.right_max_position_embeddings
            distances = self.left + self.right + 1  # storage given, not drawn (see WavLM's position table)
            self.distance_embedding = nn.Embedding(distances, self.head_dim,
                                                   _weight=torch.empty(distances, self.head_dim))

    def reset_own_parameters(self) -> None:
        if self.position_type == "relative":
            nn.init.xavier_uniform_(self.pos_bias_u)
            nn.init.xavier_uniform_(self.pos_bias_v)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, D] -> [B, H, T, d]``."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, positions: torch.Tensor | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``mask``: key mask ``[B, 1, 1, T]`` or None; ``positions``: rotary tables ``[2, T, 1, d]`` or the
        sinusoid table ``[2T - 1, D]`` (``relative``), else None. Returns the output and the maps ``[B, H, T, T]``
        (or None)."""
        batch, length, width = hidden.shape
        rotated = rotate(hidden, positions, self.num_heads) if self.position_type == "rotary" else hidden
        q = self.split_heads(self.linear_q(rotated))
        k = self.split_heads(self.linear_k(rotated))
        v = self.split_heads(self.linear_v(hidden))
        frames = torch.arange(length, device=hidden.device)
        offsets = frames[None, :] - frames[:, None]  # j - i
        bias = None
        if self.position_type == "relative":
            projected = self.linear_pos(positions).view(-1, self.num_heads, self.head_dim)  # [2T - 1, H, d]
            by_distance = torch.matmul(q + self.pos_bias_v[:, None, :], projected.permute(1, 2, 0))
            bias = gather_distances(by_distance, offsets + (length - 1)) * self.scaling
            q = q + self.pos_bias_u[:, None, :]
        elif self.position_type == "relative_key":
            by_distance = torch.matmul(q, self.distance_embedding.weight.to(q.dtype).T)  # [B, H, T, L + R + 1]
            bias = gather_distances(by_distance, offsets.clamp(-self.left, self.right) + self.left) * self.scaling
        context, probs = attend(q, k, v, mask, bias, self.dropout if self.training else 0.0, self.scaling,
                                output_attentions)
        return self.linear_out(context.transpose(1, 2).reshape(batch, length, width)), probs


class ConformerConvModule(nn.Module):
    """``LN → pointwise conv (D → 2D) → GLU → depthwise conv (K) → norm → act → pointwise conv → dropout``:
    ``[B, T, D] -> [B, T, D]``.

    wav2vec2-conformer: "same" padding and a BatchNorm (key ``batch_norm``). wav2vec2-bert (``causal=True``): the
    depthwise conv sees only past frames (``K - 1`` zeros on the left), a LayerNorm follows it (key
    ``depthwise_layer_norm``), and padded frames are zeroed after the first LayerNorm. Keys ``layer_norm``,
    ``pointwise_conv1``, ``depthwise_conv``, ``pointwise_conv2`` (convs without bias).
    """

    def __init__(self, config: ModelConfig, eps: float, causal: bool) -> None:
        super().__init__()
        width, kernel = config.hidden_size, config.conv_depthwise_kernel_size
        self.causal = causal
        self.layer_norm = nn.LayerNorm(width, eps=eps)
        self.pointwise_conv1 = nn.Conv1d(width, 2 * width, 1, bias=False)
        self.depthwise_conv = nn.Conv1d(width, width, kernel, padding=0 if causal else (kernel - 1) // 2,
                                        groups=width, bias=False)
        if causal:
            self.depthwise_layer_norm = nn.LayerNorm(width, eps=eps)
        else:
            self.batch_norm = nn.BatchNorm1d(width)
        self.activation = activation(config.hidden_act)
        self.pointwise_conv2 = nn.Conv1d(width, width, 1, bias=False)
        self.dropout = nn.Dropout(config.conformer_conv_dropout)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask``: frame mask ``[B, T]`` (used by the causal variant) or None."""
        hidden = self.layer_norm(hidden)
        if self.causal and mask is not None:
            hidden = hidden.masked_fill(~mask[:, :, None], 0.0)
        x = F.glu(self.pointwise_conv1(hidden.transpose(1, 2)), dim=1)
        if self.causal:
            x = self.depthwise_conv(F.pad(x, (self.depthwise_conv.kernel_size[0] - 1, 0)))
            x = self.depthwise_layer_norm(x.transpose(1, 2)).transpose(1, 2)
        else:
            x = self.batch_norm(self.depthwise_conv(x))
        x = self.dropout(self.pointwise_conv2(self.activation(x)))
        return x.transpose(1, 2)


class ConformerLayer(nn.Module):
    """One conformer layer (see the module doc): ``[B, T, D] -> [B, T, D]``; its LayerNorms use ``eps``."""

    def __init__(self, config: ModelConfig, eps: float, causal_conv: bool) -> None:
        super().__init__()
        width = config.hidden_size
        self.ffn1_layer_norm = nn.LayerNorm(width, eps=eps)
        self.ffn1 = FeedForward(config)
        self.self_attn_layer_norm = nn.LayerNorm(width, eps=eps)
        self.self_attn_dropout = nn.Dropout(config.attention_dropout)
        self.self_attn = ConformerSelfAttention(config)
        self.conv_module = ConformerConvModule(config, eps, causal=causal_conv)
        self.ffn2_layer_norm = nn.LayerNorm(width, eps=eps)
        self.ffn2 = FeedForward(config)
        self.final_layer_norm = nn.LayerNorm(width, eps=eps)

    def forward(self, hidden: torch.Tensor, key_mask: torch.Tensor | None, frame_mask: torch.Tensor | None,
                positions: torch.Tensor | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``key_mask`` ``[B, 1, 1, T]``, ``frame_mask`` ``[B, T]`` (each or None), ``positions`` as in
        :meth:`ConformerSelfAttention.forward`."""
        hidden = self.ffn1(self.ffn1_layer_norm(hidden)) * 0.5 + hidden
        attended, probs = self.self_attn(self.self_attn_layer_norm(hidden), key_mask, positions,
                                         output_attentions=output_attentions)
        hidden = self.self_attn_dropout(attended) + hidden
        hidden = hidden + self.conv_module(hidden, frame_mask)
        hidden = self.ffn2(self.ffn2_layer_norm(hidden)) * 0.5 + hidden
        return self.final_layer_norm(hidden), probs


class ConformerEncoder(nn.Module):
    """Padded frames zeroed → ``hidden_dropout`` → conformer layers with LayerDrop → optional final LayerNorm
    (``layer_norm_eps``): ``[B, T, D] -> [B, T, D]``.

    Keys ``embed_positions`` (``inv_freq`` for persistent rotary tables), ``layers.N``, ``layer_norm`` (with
    ``final_layer_norm``). ``hidden_states``: the input of the first layer and every layer's output (before the
    final LayerNorm). ``layer_eps``: epsilon of the layers' LayerNorms; ``causal_conv``: the wav2vec2-bert conv
    module; ``persistent_rotary``: ``inv_freq`` is a checkpoint key.
    """

    def __init__(self, config: ModelConfig, layer_eps: float, causal_conv: bool, final_layer_norm: bool,
                 persistent_rotary: bool) -> None:
        super().__init__()
        kind, rotary_base = config.position_embeddings_type, config.rotary_embedding_base
        if kind == "rotary":
            head_dim = config.hidden_size // config.num_attention_heads
            self.embed_positions = RotaryEmbedding(head_dim, rotary_base, persistent_rotary)
        elif kind == "relative":
            self.embed_positions = SinusoidalRelativePositions(config.hidden_size)
        else:
            self.embed_positions = None
        self.causal_conv = causal_conv
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layers = nn.ModuleList(ConformerLayer(config, layer_eps, causal_conv)
                                    for _ in range(config.num_hidden_layers))
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if final_layer_norm else None
        self.stack = LayerStack(config.layerdrop)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, output_hidden_states: bool = False,
                output_attentions: bool = False) -> EncoderOutput:
        """``hidden`` ``[B, T, D]``; ``mask`` frame mask ``[B, T]`` or None."""
        if mask is not None:
            hidden = hidden.masked_fill(~mask[:, :, None], 0.0)
        hidden = self.dropout(hidden)
        positions = self.embed_positions(hidden) if self.embed_positions is not None else None
        encoded = self.stack.run(self.layers, hidden, key_padding_mask(mask), mask if self.causal_conv else None,
                                 positions, output_hidden_states=output_hidden_states,
                                 output_attentions=output_attentions)
        if self.layer_norm is not None:
            encoded.last_hidden_state = self.layer_norm(encoded.last_hidden_state)
        return encoded
