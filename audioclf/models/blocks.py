"""Building blocks shared by every architecture: the readable path, used for training and as the reference.

Shapes: ``B`` batch, ``N`` samples, ``T`` frames, ``C`` conv channels, ``D`` hidden size, ``H`` heads, ``d`` head
width (``D / H``), ``I`` feed-forward width.

Three mask conventions, each named once:

* **sample mask** ``attention_mask`` ``[B, N]`` (int or bool), 1 for a real sample, right-padded: what callers pass;
* **frame mask** ``[B, T]`` bool, True for a valid frame (:func:`frame_mask`);
* **key mask** ``[B, 1, 1, T]`` bool, True where attention may look (:func:`key_padding_mask`), None when nothing
  is padded.

Module and parameter names reproduce the checkpoint keys of the published models, so a state dict loads as is.
Dropout modules sit where the reference implementation has them and run in the same order, so a seeded
``train()`` forward draws the same random numbers. Inference-only shortcuts live in :mod:`audioclf.models.inference`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from typing import Callable

from torch import nn
from torch.utils.checkpoint import checkpoint

from audioclf.config import ModelConfig


def activation(name: str) -> nn.Module:
    """The activation module for a config name (``gelu`` is the exact erf form)."""
    if name in ("gelu", "gelu_python"):
        return nn.GELU()
    if name in ("gelu_new", "gelu_fast", "gelu_pytorch_tanh"):
        return nn.GELU(approximate="tanh")
    table = {
        "quick_gelu": QuickGELU,
        "relu": nn.ReLU,
        "relu6": nn.ReLU6,
        "silu": nn.SiLU,
        "swish": nn.SiLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "mish": nn.Mish,
        "linear": nn.Identity,
    }
    return table[name]()


class QuickGELU(nn.Module):
    """``x · sigmoid(1.702 x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


# ---------------------------------------------------------------------------------------------------------------------
# Conv feature encoder
# ---------------------------------------------------------------------------------------------------------------------
class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of a ``[B, C, T]`` tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ConvLayer(nn.Module):
    """``Conv1d`` → optional norm (key ``layer_norm``) → activation: ``[B, C_in, L] -> [B, C_out, L']``.

    ``norm="group"``: ``GroupNorm(C, C)``, each channel normalised over time (padding included); ``"layer"``: a
    LayerNorm over channels; ``None``: no norm. Norm eps is always 1e-5.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, bias: bool,
                 norm: str | None, act: str) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, stride=stride, bias=bias)
        if norm == "group":
            self.layer_norm = nn.GroupNorm(out_channels, out_channels, affine=True)
        elif norm == "layer":
            self.layer_norm = ChannelLayerNorm(out_channels, elementwise_affine=True)
        else:
            self.layer_norm = None
        self.activation = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return self.activation(x)


class ConvFeatureEncoder(nn.Module):
    """The strided conv stack turning a waveform into frames: ``[B, N] -> [B, C, T]``.

    ``feat_extract_norm="group"`` puts a GroupNorm on the first layer only; ``"layer"`` a LayerNorm on every layer.
    ``norm`` fixes that choice for an architecture whose config has no such field (data2vec-audio: ``"layer"``).
    """

    def __init__(self, config: ModelConfig, norm: str | None = None) -> None:
        super().__init__()
        layers = []
        in_channels = 1
        norm_kind = norm if norm is not None else config.feat_extract_norm
        self.norm = norm_kind  #: "group" (first layer only) or "layer" (every layer)
        for index, (channels, kernel, stride) in enumerate(zip(config.conv_dim, config.conv_kernel, config.conv_stride)):
            if norm_kind == "layer":
                norm = "layer"
            else:
                norm = "group" if index == 0 else None
            layers.append(ConvLayer(in_channels, channels, kernel, stride, config.conv_bias, norm,
                                    config.feat_extract_activation))
            in_channels = channels
        self.conv_layers = nn.ModuleList(layers)
        self.kernels = tuple(config.conv_kernel)
        self.strides = tuple(config.conv_stride)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        x = input_values[:, None, :]
        for layer in self.conv_layers:
            x = layer(x)
        return x

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames produced for ``lengths`` samples (any integer tensor): ``floor((L - k) / s) + 1`` per layer."""
        for kernel, stride in zip(self.kernels, self.strides):
            lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
        return lengths

    def min_samples(self) -> int:
        """The fewest input samples that give one output frame (the receptive field)."""
        needed = 1
        for kernel, stride in reversed(list(zip(self.kernels, self.strides))):
            needed = (needed - 1) * stride + kernel
        return needed


def frame_mask(frame_lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Boolean ``[B, T]`` frame mask, True for the first ``frame_lengths[b]`` frames of each row."""
    return torch.arange(num_frames, device=frame_lengths.device)[None, :] < frame_lengths[:, None]


class FeatureProjection(nn.Module):
    """Optional LayerNorm → Linear → dropout: ``[B, T, C] -> [B, T, D]`` (keys ``layer_norm``, ``projection``)."""

    def __init__(self, in_features: int, out_features: int, eps: float, dropout: float,
                 layer_norm: bool = True) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(in_features, eps=eps) if layer_norm else None
        self.projection = nn.Linear(in_features, out_features)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.layer_norm is not None:
            features = self.layer_norm(features)
        return self.dropout(self.projection(features))


# ---------------------------------------------------------------------------------------------------------------------
# Positional convolution
# ---------------------------------------------------------------------------------------------------------------------
class TapWeightNorm(nn.Module):
    """Weight norm with one gain per kernel tap: ``weight = g · v / ‖v‖``, the norm taken over both channel axes.

    A parametrization with the layout of torch's ``weight_norm(dim=2)``: ``original0`` is ``g`` ``[1, 1, K]``,
    ``original1`` is ``v`` ``[C_out, C_in / G, K]``. Unlike torch's, it registers on meta tensors without computing
    anything (models are built on the meta device before their weights load; a norm of a meta tensor would pull
    in torch's compiler stack, most of a second at start-up).
    """

    def forward(self, gain: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        return torch._weight_norm(direction, gain, 2)

    def right_inverse(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if weight.is_meta:
            return torch.empty((1, 1, weight.shape[2]), dtype=weight.dtype, device="meta"), weight
        return torch.linalg.vector_norm(weight, dim=(0, 1), keepdim=True), weight


class PositionalConv(nn.Module):
    """Grouped conv over time used as a relative positional embedding: ``[B, T, D] -> [B, D, T']``.

    The conv weight is weight-normalised per kernel tap (``g`` has shape ``[1, 1, K]``, keys
    ``conv.parametrizations.weight.original0/1``); with ``batch_norm=True`` (HuBERT ``conv_pos_batch_norm``) a
    BatchNorm runs on the input instead and the weight is plain. An even kernel drops the last output frame.
    ``stride > 1`` (SEW squeeze) gives ``T' ≈ T / stride``. The result stays channel-first for the caller to crop.
    """

    def __init__(self, config: ModelConfig, stride: int = 1, batch_norm: bool = False) -> None:
        super().__init__()
        kernel = config.num_conv_pos_embeddings
        self.conv = nn.Conv1d(config.hidden_size, config.hidden_size, kernel, padding=kernel // 2,
                              groups=config.num_conv_pos_embedding_groups, stride=stride)
        self.batch_norm = nn.BatchNorm1d(config.hidden_size) if batch_norm else None
        if not batch_norm:
            nn.utils.parametrize.register_parametrization(self.conv, "weight", TapWeightNorm(), unsafe=True)
        self.trim_last = kernel % 2 == 0
        self.activation = activation(config.feat_extract_activation)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = hidden.transpose(1, 2)
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        x = self.conv(x)
        if self.trim_last:
            x = x[:, :, :-1]
        return self.activation(x)


# ---------------------------------------------------------------------------------------------------------------------
# Transformer layers
# ---------------------------------------------------------------------------------------------------------------------
def key_padding_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
    """Frame mask ``[B, T]`` -> key mask ``[B, 1, 1, T]`` (True = attend); None when nothing is padded."""
    if mask is None or bool(mask.all()):
        return None
    return mask[:, None, None, :]


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
           bias: torch.Tensor | None = None, dropout: float = 0.0, scale: float | None = None,
           return_probs: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scaled dot-product attention: ``q``, ``k``, ``v`` ``[B, H, T, d]`` -> context ``[B, H, T, d]``.

    Scores are ``q·kᵀ·scale + bias`` (``bias``: additive ``[B or 1, H, T, T]`` position terms, or None); keys the key
    ``mask`` ``[B, 1, 1, T]`` excludes get the dtype's minimum; ``dropout`` (pass 0 in eval mode) drops
    probabilities. ``scaled_dot_product_attention`` computes it unless ``return_probs``, which computes the
    probabilities explicitly, with the same dropout draws, and returns them as ``[B, H, T, T]`` (else None).
    """
    if return_probs:
        scores = torch.matmul(q, k.transpose(-1, -2)) * (scale if scale is not None else q.shape[-1] ** -0.5)
        if bias is not None:
            scores = scores + bias
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        probs = F.dropout(scores.softmax(dim=-1), p=dropout, training=dropout > 0)
        return torch.matmul(probs, v), probs
    attn_mask = mask
    if bias is not None:
        attn_mask = bias if mask is None else bias.masked_fill(~mask, torch.finfo(bias.dtype).min)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout, scale=scale), None


class SelfAttention(nn.Module):
    """Multi-head self-attention with a key mask: ``[B, T, D] -> [B, T, D]`` (computed by :func:`attend`).

    ``dropout`` on the probabilities in training; when the probabilities are requested they are computed explicitly
    and returned as ``[B, H, T, T]``. Keys ``q_proj``, ``k_proj``, ``v_proj`` and the output projection
    ``output_name`` (``out_proj``; ViT-style checkpoints such as AST's: ``o_proj``). ``qkv_bias``: biases on the
    query, key and value projections; ``key_bias``: on the key projection (default: ``qkv_bias``; Whisper has none
    there).
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0, *, qkv_bias: bool = True,
                 key_bias: bool | None = None, output_name: str = "out_proj") -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.scaling = self.head_dim ** -0.5
        self.dropout = dropout
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=qkv_bias)
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=qkv_bias if key_bias is None else key_bias)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=qkv_bias)
        self.output_name = output_name
        self.add_module(output_name, nn.Linear(hidden_size, hidden_size))

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, D] -> [B, H, T, d]``."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``mask``: key mask ``[B, 1, 1, T]`` or None. Returns the output and the probabilities (or None)."""
        return self.attend_with_bias(hidden, mask, None, output_attentions)

    def attend_with_bias(self, hidden: torch.Tensor, mask: torch.Tensor | None, bias: torch.Tensor | None,
                         output_attentions: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The attention with additive ``bias`` ``[B or 1, H, T, T]`` (or None) on the scores."""
        batch, length, width = hidden.shape
        q = self.split_heads(self.q_proj(hidden))
        k = self.split_heads(self.k_proj(hidden))
        v = self.split_heads(self.v_proj(hidden))
        context, probs = attend(q, k, v, mask, bias, self.dropout if self.training else 0.0, self.scaling,
                                output_attentions)
        context = context.transpose(1, 2).reshape(batch, length, width)
        return getattr(self, self.output_name)(context), probs


class FeedForward(nn.Module):
    """``Linear(D, I) → act → dropout → Linear(I, D) → dropout`` (keys ``intermediate_dense``, ``output_dense``).

    ``act`` is ``hidden_act`` unless another activation name is given."""

    def __init__(self, config: ModelConfig, act: str | None = None) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = activation(act if act is not None else config.hidden_act)
        self.intermediate_dropout = nn.Dropout(config.activation_dropout)
        self.output_dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.output_dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = self.intermediate_dropout(self.intermediate_act_fn(self.intermediate_dense(hidden)))
        return self.output_dropout(self.output_dense(hidden))


class AttentionAdapter(nn.Module):
    """Residual bottleneck adapter of stable layers: ``LN(1e-5) → Linear(D, A) → ReLU → Linear(A, D)``."""

    def __init__(self, hidden_size: int, adapter_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size)
        self.linear_1 = nn.Linear(hidden_size, adapter_dim)
        self.linear_2 = nn.Linear(adapter_dim, hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.relu(self.linear_1(self.norm(hidden))))


class TransformerLayer(nn.Module):
    """One encoder layer, post-LN (``pre_norm=False``) or stable pre-LN (``pre_norm=True``): ``[B, T, D]``.

    Post-LN: ``h = LN(h + drop(MHA(h))); h = LN(h + FFN(h))``. Pre-LN: ``h = h + drop(MHA(LN(h)));
    h = h + FFN(LN(h))``, then ``h = h + Adapter(h)`` with ``adapter_dim``. ``drop`` is ``hidden_dropout``.
    ``attention`` replaces the plain :class:`SelfAttention` (WavLM's gated one); it is called as
    ``attention(hidden, key_mask, *attention_args, output_attentions=...)``.
    """

    def __init__(self, config: ModelConfig, pre_norm: bool, adapter_dim: int | None = None,
                 attention: nn.Module | None = None) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.attention = attention if attention is not None else SelfAttention(
            config.hidden_size, config.num_attention_heads, config.attention_dropout)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.adapter_layer = AttentionAdapter(config.hidden_size, adapter_dim) if adapter_dim else None

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, *attention_args: torch.Tensor,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``mask``: key mask ``[B, 1, 1, T]`` or None; ``attention_args`` go to the attention module."""
        if self.pre_norm:
            attended, probs = self.attention(self.layer_norm(hidden), mask, *attention_args,
                                             output_attentions=output_attentions)
            hidden = hidden + self.dropout(attended)
            hidden = hidden + self.feed_forward(self.final_layer_norm(hidden))
            if self.adapter_layer is not None:
                hidden = hidden + self.adapter_layer(hidden)
        else:
            attended, probs = self.attention(hidden, mask, *attention_args, output_attentions=output_attentions)
            hidden = self.layer_norm(hidden + self.dropout(attended))
            hidden = self.final_layer_norm(hidden + self.feed_forward(hidden))
        return hidden, probs


class EncoderOutput:
    """What a base model returns: the final ``[B, T, D]`` states, per-layer states and attention maps."""

    __slots__ = ("last_hidden_state", "hidden_states", "attentions")

    def __init__(self, last_hidden_state: torch.Tensor, hidden_states: tuple[torch.Tensor, ...] | None = None,
                 attentions: tuple[torch.Tensor | None, ...] | None = None) -> None:
        self.last_hidden_state = last_hidden_state
        self.hidden_states = hidden_states
        self.attentions = attentions


class LayerStack(nn.Module):
    """Runs a list of layers with LayerDrop and optional gradient checkpointing, collecting states and maps.

    Holds no parameters: an encoder owns its ``layers`` (their names are checkpoint keys) and calls :meth:`run`.
    LayerDrop: in training with ``layerdrop > 0`` one ``torch.rand([])`` is drawn before each layer and the layer is
    skipped when it is below ``layerdrop`` (an identity: its hidden state repeats the previous one, its attention
    map is None); with ``spare_first`` the first layer always runs and draws nothing (WavLM, whose first layer owns
    the relative position table). This is plain (single-process) training; the reference implementation runs a
    drawn-out layer anyway under DeepSpeed ZeRO-3 or FSDP. Gradient checkpointing (``checkpointing = True``)
    recomputes each layer in the backward pass (non-reentrant ``torch.utils.checkpoint``, random state replayed, so
    outputs and gradients are unchanged).
    """

    def __init__(self, layerdrop: float = 0.0, spare_first: bool = False) -> None:
        super().__init__()
        self.layerdrop = layerdrop
        self.spare_first = spare_first
        self.checkpointing = False

    def run(self, layers: nn.ModuleList, hidden: torch.Tensor, *layer_args, output_hidden_states: bool = False,
            output_attentions: bool = False) -> EncoderOutput:
        """Apply ``layers`` to ``hidden`` ``[B, T, D]``; each is called as ``layer(hidden, *layer_args,
        output_attentions=...)`` and returns ``(hidden, probs)``. ``hidden_states``: the input of the first layer and
        every layer's output."""
        states = [hidden] if output_hidden_states else None
        maps = [] if output_attentions else None
        for index, layer in enumerate(layers):
            probs = None
            skipped = (self.training and self.layerdrop > 0.0 and not (self.spare_first and index == 0)
                       and bool(torch.rand([]) < self.layerdrop))
            if not skipped:
                if self.checkpointing and self.training:
                    hidden, probs = checkpoint(layer, hidden, *layer_args, output_attentions=output_attentions,
                                               use_reentrant=False)
                else:
                    hidden, probs = layer(hidden, *layer_args, output_attentions=output_attentions)
            if states is not None:
                states.append(hidden)
            if maps is not None:
                maps.append(probs)
        return EncoderOutput(hidden, tuple(states) if states is not None else None,
                             tuple(maps) if maps is not None else None)


class TransformerEncoder(nn.Module):
    """Positional conv + transformer layers over ``[B, T, D]`` frames (keys ``pos_conv_embed``, ``layer_norm``,
    ``layers.N``).

    Post-LN (``stable=False``): ``drop(LN(h + P))`` feeds the layers. Stable: ``drop(h + P)`` feeds pre-LN layers and
    the LayerNorm runs after the last one. ``hidden_states`` holds the input of layer 0 and the output of every
    layer (for stable models the last entry is taken before the final LayerNorm, as ``transformers`` 5.x does).

    Variants: ``positional`` replaces the weight-normed :class:`PositionalConv` (any module mapping ``[B, T, D]`` to
    ``[B, D, T]``); ``attention(index)`` builds layer ``index``'s attention module; subclasses pass
    per-forward tensors to every layer's attention through :meth:`layer_arguments`; ``spare_first_layer`` exempts the
    first layer from LayerDrop.
    """

    def __init__(self, config: ModelConfig, stable: bool, pos_conv_batch_norm: bool = False,
                 adapter_dim: int | None = None, positional: nn.Module | None = None,
                 attention: Callable[[int], nn.Module] | None = None, spare_first_layer: bool = False) -> None:
        super().__init__()
        self.stable = stable
        self.pos_conv_embed = positional if positional is not None else PositionalConv(
            config, batch_norm=pos_conv_batch_norm)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layers = nn.ModuleList(
            TransformerLayer(config, pre_norm=stable, adapter_dim=adapter_dim if stable else None,
                             attention=attention(index) if attention is not None else None)
            for index in range(config.num_hidden_layers))
        self.stack = LayerStack(config.layerdrop, spare_first=spare_first_layer)

    def layer_arguments(self, hidden: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Extra tensors every layer's attention receives for the layer input ``hidden`` ``[B, T, D]`` (none)."""
        return ()

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, output_hidden_states: bool = False,
                output_attentions: bool = False) -> EncoderOutput:
        """``hidden`` ``[B, T, D]``; ``mask`` frame mask ``[B, T]`` or None."""
        if mask is not None:
            hidden = hidden.masked_fill(~mask[:, :, None], 0.0)  # padded frames must not leak through the conv
        hidden = hidden + self.pos_conv_embed(hidden).transpose(1, 2)
        if not self.stable:
            hidden = self.layer_norm(hidden)
        hidden = self.dropout(hidden)
        encoded = self.stack.run(self.layers, hidden, key_padding_mask(mask), *self.layer_arguments(hidden),
                                 output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        if self.stable:
            encoded.last_hidden_state = self.layer_norm(encoded.last_hidden_state)
        return encoded
