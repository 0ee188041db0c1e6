"""Building blocks shared by every architecture.

Shapes: ``B`` batch, ``N`` samples, ``T`` frames, ``C`` conv channels, ``D`` hidden size, ``H`` heads.
Module and parameter names reproduce the checkpoint keys of the published models, so a state dict loads as is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from audioclf.config import ModelConfig


def activation(name: str) -> nn.Module:
    """The activation module for a config name (``gelu`` is the exact erf form)."""
    if name in ("gelu", "gelu_python"):
        return nn.GELU()
    if name in ("gelu_new", "gelu_fast", "gelu_pytorch_tanh"):
        return nn.GELU(approximate="tanh")
    table = {
        "quick_gelu": _QuickGELU,
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


class _QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


# ---------------------------------------------------------------------------------------------------------------------
# Conv feature encoder
# ---------------------------------------------------------------------------------------------------------------------
class _ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of a ``[B, C, T]`` tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ConvLayer(nn.Module):
    """``Conv1d`` → optional norm (``layer_norm``) → activation; ``[B, C_in, L] -> [B, C_out, L']``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, bias: bool,
                 norm: str | None, act: str) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, stride=stride, bias=bias)
        if norm == "group":  # per-channel normalisation over time (padding included)
            self.layer_norm = nn.GroupNorm(out_channels, out_channels, affine=True)
        elif norm == "layer":
            self.layer_norm = _ChannelLayerNorm(out_channels, elementwise_affine=True)
        else:
            self.layer_norm = None
        self.activation = activation(act)

    def forward(self, x: torch.Tensor, statistics: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``statistics`` (inference only): the group norm's per-channel ``(mean, inverse std)``, each ``[B, C, 1]``,
        measured beforehand over the whole input when ``x`` is only a time slice of it."""
        x = self.convolve(x)
        if not torch.is_grad_enabled():
            # inference: normalise and activate in place, so a long input holds one [B, C, T] tensor, not three
            x = x.contiguous()
            if isinstance(self.layer_norm, nn.GroupNorm):
                _group_norm_per_channel_(x, self.layer_norm, statistics)
            elif self.layer_norm is not None:
                x = self.layer_norm(x)
            _apply_in_place(self.activation, x)
            return x
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return self.activation(x)

    def convolve(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution alone: ``[B, C_in, L] -> [B, C_out, L']``."""
        conv = self.conv
        if conv.in_channels != 1:
            return conv(x)
        # One input channel: the [C, k] kernel times a strided window view runs at matmul speed, several
        # times faster than conv1d for this shape, and yields the [B, C, T] layout the norms want directly.
        # [B, 1, N] -> windows [B, k, T]; [C, k] @ [B, k, T] -> [B, C, T]
        windows = x[:, 0].unfold(-1, conv.kernel_size[0], conv.stride[0]).transpose(1, 2)
        x = torch.matmul(conv.weight[:, 0], windows)
        if conv.bias is not None:
            x = x + conv.bias[:, None]
        return x

    def channel_statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel ``(mean, inverse std)`` ``[B, C, 1]`` of this one-input-channel layer's conv output over all of
        ``x`` ``[B, 1, N]``, without computing that output.

        Output channel ``c`` at frame ``t`` is ``w_c · x_t + b_c`` for the length-``k`` window ``x_t``, so its mean
        over time is ``w_c · μ + b_c`` and its variance ``w_cᵀ Σ w_c``, with ``μ`` ``[k]`` and ``Σ`` ``[k, k]`` the
        mean and covariance of the windows: a ``k × k`` problem instead of a pass over a ``[B, C, T]`` tensor.
        Computed in float64; equal to a ``var_mean`` over the output to float32 rounding.
        """
        conv = self.conv
        windows = x[:, 0].unfold(-1, conv.kernel_size[0], conv.stride[0]).double()  # [B, T, k]
        window_mean = windows.mean(dim=1, keepdim=True)  # [B, 1, k]
        windows -= window_mean
        covariance = windows.transpose(1, 2) @ windows / windows.shape[1]  # [B, k, k]
        weight = conv.weight[:, 0].double()  # [C, k]
        mean = (window_mean @ weight.T).transpose(1, 2)  # [B, C, 1]
        if conv.bias is not None:
            mean = mean + conv.bias.double()[:, None]
        variance = ((weight @ covariance) * weight).sum(dim=-1, keepdim=True)  # [B, C, 1]
        return mean.to(x.dtype), torch.rsqrt(variance + self.layer_norm.eps).to(x.dtype)


def _group_norm_per_channel_(x: torch.Tensor, norm: nn.GroupNorm,
                             statistics: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
    """``GroupNorm(C, C)`` on ``[B, C, T]`` in place: each channel normalised over time, then scaled and shifted.

    ``statistics``: ``(mean, inverse std)`` ``[B, C, 1]`` to use instead of measuring them on ``x``.
    """
    if statistics is None:
        var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
        scale = torch.rsqrt(var + norm.eps)
    else:
        mean, scale = statistics
    if norm.weight is not None:
        scale = scale * norm.weight[:, None]
    x.sub_(mean).mul_(scale)
    if norm.bias is not None:
        x.add_(norm.bias[:, None])


def _apply_in_place(function: nn.Module, x: torch.Tensor, block: int = 8192) -> None:
    """Apply an elementwise ``function`` to ``x`` ``[B, C, T]`` in place (in ``block``-frame slices when there is no
    in-place kernel)."""
    if isinstance(function, nn.GELU):
        torch.ops.aten.gelu_(x, approximate=function.approximate)
        return
    if isinstance(function, nn.ReLU):
        x.relu_()
        return
    for start in range(0, x.shape[-1], block):
        part = x[..., start:start + block]
        part.copy_(function(part))


class ConvFeatureEncoder(nn.Module):
    """The strided conv stack turning a waveform into frames: ``[B, N] -> [B, C, T]``.

    ``feat_extract_norm="group"`` puts a GroupNorm on the first layer only; ``"layer"`` a LayerNorm on every layer.
    Conv-stack norms always use eps 1e-5.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        layers = []
        in_channels = 1
        for index, (channels, kernel, stride) in enumerate(zip(config.conv_dim, config.conv_kernel, config.conv_stride)):
            if config.feat_extract_norm == "layer":
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
        if torch.is_grad_enabled():
            for layer in self.conv_layers:
                x = layer(x)
            return x
        return self._tiled(x)

    #: output frames computed per tile at inference
    TILE_FRAMES = 256

    def _tiled(self, waveform: torch.Tensor) -> torch.Tensor:
        """The conv stack over time tiles of ``waveform`` ``[B, 1, N]`` -> ``[B, C, T]``, at inference.

        Exact: the layers are local in time, so output frames ``[j, j + F)`` depend only on samples
        ``[j·S, (j + F - 1)·S + R)``, with ``S`` the product of the strides and ``R`` the receptive field. The one
        non-local step, the first layer's group norm (statistics over the whole input), gets its per-channel
        statistics from the moments of the waveform's windows (``ConvLayer.channel_statistics``). So memory stays
        that of one tile whatever the length: a 30 s chunk would otherwise hold a ``[1, 512, 96000]`` first-layer
        output (196 MB).
        """
        stride, field = math.prod(self.strides), self.min_samples()
        total = (waveform.shape[-1] - field) // stride + 1
        first, rest = self.conv_layers[0], self.conv_layers[1:]
        statistics = first.channel_statistics(waveform) if isinstance(first.layer_norm, nn.GroupNorm) else None
        if total <= self.TILE_FRAMES:
            x = first(waveform, statistics)
            for layer in rest:
                x = layer(x)
            return x
        pieces = []
        for start in range(0, total, self.TILE_FRAMES):
            stop = min(start + self.TILE_FRAMES, total)
            piece = first(waveform[..., start * stride:(stop - 1) * stride + field], statistics)
            for layer in rest:
                piece = layer(piece)
            pieces.append(piece)
        return torch.cat(pieces, dim=-1)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames produced for ``lengths`` samples (any integer tensor): ``floor((L - k) / s) + 1`` per layer."""
        for kernel, stride in zip(self.kernels, self.strides):
            lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
        return lengths

    def min_samples(self) -> int:
        """The fewest input samples that give one output frame."""
        needed = 1
        for kernel, stride in reversed(list(zip(self.kernels, self.strides))):
            needed = (needed - 1) * stride + kernel
        return needed


def frame_mask(frame_lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Boolean ``[B, T]`` mask, True for the first ``frame_lengths[b]`` frames of each row."""
    return torch.arange(num_frames, device=frame_lengths.device)[None, :] < frame_lengths[:, None]


class FeatureProjection(nn.Module):
    """Optional LayerNorm then Linear: ``[B, T, C] -> [B, T, D]`` (keys ``layer_norm``, ``projection``)."""

    def __init__(self, in_features: int, out_features: int, eps: float, layer_norm: bool = True) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(in_features, eps=eps) if layer_norm else None
        self.projection = nn.Linear(in_features, out_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.layer_norm is not None:
            features = self.layer_norm(features)
        return self.projection(features)


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
        conv = nn.Conv1d(config.hidden_size, config.hidden_size, kernel, padding=kernel // 2,
                         groups=config.num_conv_pos_embedding_groups, stride=stride)
        if batch_norm:
            self.batch_norm = nn.BatchNorm1d(config.hidden_size)
            self.conv = conv
        else:
            self.batch_norm = None
            nn.utils.parametrize.register_parametrization(conv, "weight", TapWeightNorm(), unsafe=True)
            self.conv = conv
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
    """``[B, T]`` validity mask -> boolean ``[B, 1, 1, T]`` (True = attend); None when nothing is padded."""
    if mask is None or bool(mask.all()):
        return None
    return mask[:, None, None, :]


class SelfAttention(nn.Module):
    """Multi-head self-attention with a key-padding mask: ``[B, T, D] -> [B, T, D]``.

    Uses ``scaled_dot_product_attention``; when attention probabilities are requested it computes them explicitly
    and returns them as ``[B, H, T, T]``.
    """

    def __init__(self, hidden_size: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``mask``: boolean ``[B, 1, 1, T]`` from :func:`key_padding_mask` or None."""
        batch, length, width = hidden.shape
        q, k, v = self._heads(self.q_proj(hidden)), self._heads(self.k_proj(hidden)), self._heads(self.v_proj(hidden))
        probs = None
        if output_attentions:
            scores = torch.matmul(q, k.transpose(-1, -2)) * (self.head_dim ** -0.5)
            if mask is not None:
                scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            probs = scores.softmax(dim=-1)
            context = torch.matmul(probs, v)
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        context = context.transpose(1, 2).reshape(batch, length, width)
        return self.out_proj(context), probs


class FeedForward(nn.Module):
    """``Linear(D, I) → act → Linear(I, D)`` (keys ``intermediate_dense``, ``output_dense``)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = activation(config.hidden_act)
        self.output_dense = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output_dense(self.intermediate_act_fn(self.intermediate_dense(hidden)))


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

    Post-LN: ``h = LN(h + MHA(h)); h = LN(h + FFN(h))``. Pre-LN: ``h = h + MHA(LN(h)); h = h + FFN(LN(h))``,
    then ``h = h + Adapter(h)`` when ``adapter_attn_dim`` is set.
    """

    def __init__(self, config: ModelConfig, pre_norm: bool) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.attention = SelfAttention(config.hidden_size, config.num_attention_heads)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        adapter_dim = getattr(config, "adapter_attn_dim", None)
        self.adapter_layer = AttentionAdapter(config.hidden_size, adapter_dim) if pre_norm and adapter_dim else None

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.pre_norm:
            attended, probs = self.attention(self.layer_norm(hidden), mask, output_attentions)
            hidden = hidden + attended
            hidden = hidden + self.feed_forward(self.final_layer_norm(hidden))
            if self.adapter_layer is not None:
                hidden = hidden + self.adapter_layer(hidden)
        else:
            attended, probs = self.attention(hidden, mask, output_attentions)
            hidden = self.layer_norm(hidden + attended)
            hidden = self.final_layer_norm(hidden + self.feed_forward(hidden))
        return hidden, probs


class EncoderOutput:
    """What an encoder returns: the final ``[B, T, D]`` states, per-layer states and attention maps."""

    __slots__ = ("last_hidden_state", "hidden_states", "attentions", "frame_mask")

    def __init__(self, last_hidden_state: torch.Tensor, hidden_states: tuple[torch.Tensor, ...] | None,
                 attentions: tuple[torch.Tensor, ...] | None, frame_mask: torch.Tensor | None = None) -> None:
        self.last_hidden_state = last_hidden_state
        self.hidden_states = hidden_states
        self.attentions = attentions
        self.frame_mask = frame_mask


def run_layers(layers: nn.ModuleList, hidden: torch.Tensor, mask: torch.Tensor | None, output_hidden_states: bool,
               output_attentions: bool) -> tuple[torch.Tensor, list[torch.Tensor] | None, list[torch.Tensor] | None]:
    """Apply ``layers`` in order, collecting the input of the first layer and every layer's output if asked."""
    states = [hidden] if output_hidden_states else None
    maps = [] if output_attentions else None
    for layer in layers:
        hidden, probs = layer(hidden, mask, output_attentions)
        if states is not None:
            states.append(hidden)
        if maps is not None:
            maps.append(probs)
    return hidden, states, maps


class TransformerEncoder(nn.Module):
    """Positional conv + transformer layers over ``[B, T, D]`` frames (keys ``pos_conv_embed``, ``layer_norm``,
    ``layers.N``).

    Post-LN (``stable=False``): ``LN(h + P)`` feeds the layers. Stable: ``h + P`` feeds pre-LN layers and the LayerNorm
    runs after the last one. ``hidden_states`` holds the input of layer 0 and the output of every layer (for stable
    models the last entry is taken before the final LayerNorm, as ``transformers`` 5.x does).
    """

    def __init__(self, config: ModelConfig, stable: bool, pos_conv_batch_norm: bool = False) -> None:
        super().__init__()
        self.stable = stable
        self.pos_conv_embed = PositionalConv(config, batch_norm=pos_conv_batch_norm)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(TransformerLayer(config, pre_norm=stable) for _ in range(config.num_hidden_layers))

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, output_hidden_states: bool = False,
                output_attentions: bool = False) -> EncoderOutput:
        """``hidden`` ``[B, T, D]``; ``mask`` boolean ``[B, T]`` of valid frames or None."""
        if mask is not None:
            hidden = hidden.masked_fill(~mask[:, :, None], 0.0)  # padded frames must not leak through the conv
        hidden = hidden + self.pos_conv_embed(hidden).transpose(1, 2)
        if not self.stable:
            hidden = self.layer_norm(hidden)
        hidden, states, maps = run_layers(self.layers, hidden, key_padding_mask(mask), output_hidden_states,
                                          output_attentions)
        if self.stable:
            hidden = self.layer_norm(hidden)
        return EncoderOutput(hidden, tuple(states) if states is not None else None,
                             tuple(maps) if maps is not None else None, mask)
