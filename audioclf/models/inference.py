"""Inference-only fast paths, installed by :meth:`AudioClassifier.optimize_for_inference` and nowhere else.

Each replaces the forward of one readable block (:mod:`audioclf.models.blocks`, :mod:`audioclf.models.sew_d`) by a
faster one computing the same values (to float rounding; the parity tests run both against the reference):

* **weight norm folded**: the positional convs hold a plain ``conv.weight`` (computed once, not every forward);
* **conv feature encoder** (:class:`InferenceConvFeatureEncoder`, :class:`InferenceConvLayer`): the first conv
  (one input channel) as a strided window view times the kernel matrix; norm and activation in place; the stack run
  over time tiles, with the first layer's GroupNorm statistics taken from the moments of the waveform's windows, so
  memory stays that of one tile whatever the input length;
* **SEW-D** (:class:`InferenceDisentangledEncoder`, :class:`InferenceDisentangledSelfAttention`): the normalised
  relative-position embeddings and every layer's projections of them computed once and kept as non-persistent
  buffers; attention through ``scaled_dot_product_attention`` with the position terms as an additive bias.
* **attention** (:class:`InferenceSelfAttention`): the query, key and value projections as one matrix product, their
  weights stacked once into one matrix whose rows the three projection weights then view (no weight held twice);
* **AST** (:class:`InferenceASTModel`, :class:`InferenceASTLayer`): the last layer computes only the two tokens the
  head pools (CLS and distillation; their queries still attend to every token), unless hidden states or attention
  maps are requested.

The swapped modules keep their parameters and names (the state dict is unchanged apart from the folded weight
norm). None of them can train: :func:`optimize_for_inference` turns gradients off and marks the model
``inference_only``, after which it refuses ``train()`` and forwards that need gradients.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from audioclf.models.ast import ASTLayer, ASTModel
from audioclf.models.blocks import ConvFeatureEncoder, ConvLayer, EncoderOutput, SelfAttention, key_padding_mask
from audioclf.models.sew_d import DisentangledEncoder, DisentangledSelfAttention


class InferenceConvLayer(ConvLayer):
    """:class:`~audioclf.models.blocks.ConvLayer` computing in place: one ``[B, C, T]`` tensor, not three."""

    def forward(self, x: torch.Tensor, statistics: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``statistics``: the group norm's per-channel ``(mean, inverse std)``, each ``[B, C, 1]``, measured
        beforehand over the whole input when ``x`` is only a time slice of it."""
        x = self.convolve(x).contiguous()
        if isinstance(self.layer_norm, nn.GroupNorm):
            group_norm_per_channel_(x, self.layer_norm, statistics)
        elif self.layer_norm is not None:
            x = self.layer_norm(x)
        apply_in_place(self.activation, x)
        return x

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


def group_norm_per_channel_(x: torch.Tensor, norm: nn.GroupNorm,
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


def apply_in_place(function: nn.Module, x: torch.Tensor, block: int = 8192) -> None:
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


class InferenceConvFeatureEncoder(ConvFeatureEncoder):
    """:class:`~audioclf.models.blocks.ConvFeatureEncoder` over time tiles: ``[B, N] -> [B, C, T]``.

    Exact: the layers are local in time, so output frames ``[j, j + F)`` depend only on samples
    ``[j·S, (j + F - 1)·S + R)``, with ``S`` the product of the strides and ``R`` the receptive field. The one
    non-local step, the first layer's group norm (statistics over the whole input), gets its per-channel statistics
    from the moments of the waveform's windows (:meth:`InferenceConvLayer.channel_statistics`). A 30 s input would
    otherwise hold a ``[1, 512, 96000]`` first-layer output (196 MB).
    """

    #: output frames computed per tile
    TILE_FRAMES = 256

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        waveform = input_values[:, None, :]
        stride, field = math.prod(self.strides), self.min_samples()
        total = (waveform.shape[-1] - field) // stride + 1
        first, rest = self.conv_layers[0], self.conv_layers[1:]
        statistics = first.channel_statistics(waveform) if isinstance(first.layer_norm, nn.GroupNorm) else None
        pieces = []
        for start in range(0, total, self.TILE_FRAMES):
            stop = min(start + self.TILE_FRAMES, total)
            piece = first(waveform[..., start * stride:(stop - 1) * stride + field], statistics)
            for layer in rest:
                piece = layer(piece)
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)


class InferenceDisentangledSelfAttention(DisentangledSelfAttention):
    """SEW-D attention with the position projections cached (:meth:`cache_position_projections`) and the scores
    computed by ``scaled_dot_product_attention`` unless the probabilities are requested."""

    def cache_position_projections(self, rel_embeddings: torch.Tensor | None) -> None:
        """Project the fixed position embeddings ``[2S, D]`` once, into non-persistent buffers."""
        keys = queries = None
        if self.relative and self.terms:
            keys, queries = DisentangledSelfAttention.position_projections(self, rel_embeddings)
        self.register_buffer("position_keys", keys, persistent=False)
        self.register_buffer("position_queries", queries, persistent=False)

    def position_projections(self, rel_embeddings: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return self.position_keys, self.position_queries

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, relative: torch.Tensor | None,
                rel_embeddings: torch.Tensor | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        if output_attentions:
            return super().forward(hidden, mask, relative, rel_embeddings, output_attentions)
        batch, length, width = hidden.shape
        q = self.split_heads(self.query_proj(hidden))
        k = self.split_heads(self.key_proj(hidden))
        v = self.split_heads(self.value_proj(hidden))
        bias = None
        if self.relative and self.terms:
            bias = self.position_bias(q, k, relative, self.position_projections(rel_embeddings),
                                      rel_embeddings.shape[0] // 2)
        if mask is not None:  # padded keys as the dtype's minimum, added to the position terms
            bias = (q.new_zeros(()) if bias is None else bias).masked_fill(~mask, torch.finfo(q.dtype).min)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0 / self.scale)
        return context.transpose(1, 2).reshape(batch, length, width), None


class InferenceDisentangledEncoder(DisentangledEncoder):
    """SEW-D layer stack with the normalised position embeddings cached in a non-persistent buffer."""

    def cache_position_embeddings(self) -> None:
        """Compute the embeddings and every layer's projections of them (they depend on weights only)."""
        with torch.no_grad():
            self.register_buffer("position_embeddings", DisentangledEncoder.relative_embeddings(self),
                                 persistent=False)
            for layer in self.layer:
                layer.attention.self.cache_position_projections(self.position_embeddings)

    def relative_embeddings(self) -> torch.Tensor | None:
        return self.position_embeddings


class InferenceSelfAttention(SelfAttention):
    """:class:`~audioclf.models.blocks.SelfAttention` with one ``[3D, D]`` input projection
    (:meth:`fuse_projections`) and optionally fewer queries than keys. Projections replaced after fusing (dynamic
    int8 quantization swaps the linear layers) run one by one; with ``output_attentions`` the readable path runs."""

    def fuse_projections(self) -> None:
        """Stack the query, key and value weights into the buffer ``in_proj_weight`` ``[3D, D]`` and make the three
        projection weights views of its rows; ``in_proj_bias`` ``[3D]`` (zeros for a projection without bias)."""
        projections = (self.q_proj, self.k_proj, self.v_proj)
        weight = torch.cat([projection.weight.detach() for projection in projections])
        width = self.q_proj.out_features
        for index, projection in enumerate(projections):
            projection.weight = nn.Parameter(weight[index * width:(index + 1) * width], requires_grad=False)
        bias = torch.cat([weight.new_zeros(width) if projection.bias is None else projection.bias.detach()
                          for projection in projections])
        self.register_buffer("in_proj_weight", weight, persistent=False)
        self.register_buffer("in_proj_bias", bias, persistent=False)

    def project(self, hidden: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Queries of ``queries`` ``[B, Q, D]``, keys and values of ``hidden`` ``[B, T, D]``: ``[B, H, ·, d]``."""
        if type(self.q_proj) is not nn.Linear or getattr(self, "in_proj_weight", None) is None:
            q, k, v = self.q_proj(queries), self.k_proj(hidden), self.v_proj(hidden)
        elif queries is hidden:
            q, k, v = F.linear(hidden, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            width = self.q_proj.out_features
            q = F.linear(queries, self.in_proj_weight[:width], self.in_proj_bias[:width])
            k, v = F.linear(hidden, self.in_proj_weight[width:], self.in_proj_bias[width:]).chunk(2, dim=-1)
        return self.split_heads(q), self.split_heads(k), self.split_heads(v)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None, output_attentions: bool = False,
                queries: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``queries``: the states ``[B, Q, D]`` whose outputs are wanted (default: ``hidden``) → ``[B, Q, D]``."""
        if output_attentions:
            return super().forward(hidden, mask, output_attentions)
        queries = hidden if queries is None else queries
        q, k, v = self.project(hidden, queries)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scaling)
        batch, length, width = queries.shape
        return getattr(self, self.output_name)(context.transpose(1, 2).reshape(batch, length, width)), None


#: the tokens AST's head pools: CLS and distillation
AST_POOLED_TOKENS = 2


class InferenceASTLayer(ASTLayer):
    """:class:`~audioclf.models.ast.ASTLayer` that can compute the outputs of the first ``keep`` tokens only."""

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None, output_attentions: bool = False,
                keep: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``keep``: return ``[B, keep, D]``, the first ``keep`` tokens' outputs (their queries attend to all)."""
        if keep is None:
            return super().forward(hidden, mask, output_attentions)
        normed = self.layernorm_before(hidden)
        attended, _ = self.attention(normed, mask, queries=normed[:, :keep])
        hidden = hidden[:, :keep] + attended
        return hidden + self.mlp(self.layernorm_after(hidden)), None


class InferenceASTModel(ASTModel):
    """:class:`~audioclf.models.ast.ASTModel` whose last layer computes the two pooled tokens only: its
    ``last_hidden_state`` is then ``[B, 2, D]``, all the head reads. Code that needs every token's output (embeddings)
    asks for hidden states, which turns this off (``partial_last_hidden_state``)."""

    #: without hidden states or attention maps, ``last_hidden_state`` holds only the tokens the head pools
    partial_last_hidden_state = True

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> EncoderOutput:
        if output_hidden_states or output_attentions or not len(self.layers):
            return super().forward(input_values, attention_mask, output_hidden_states, output_attentions)
        hidden = self.embeddings(input_values)
        mask = key_padding_mask(self.frame_mask(attention_mask, hidden.shape[1]))
        for layer in self.layers[:-1]:
            hidden, _ = layer(hidden, mask)
        hidden, _ = self.layers[-1](hidden, mask, keep=AST_POOLED_TOKENS)
        return EncoderOutput(self.layernorm(hidden))


#: readable block -> its inference version (exact types: a subclass keeps its own forward)
FAST_PATHS: dict[type[nn.Module], type[nn.Module]] = {
    ConvLayer: InferenceConvLayer,
    ConvFeatureEncoder: InferenceConvFeatureEncoder,
    DisentangledSelfAttention: InferenceDisentangledSelfAttention,
    DisentangledEncoder: InferenceDisentangledEncoder,
    SelfAttention: InferenceSelfAttention,
    ASTLayer: InferenceASTLayer,
    ASTModel: InferenceASTModel,
}


def fold_weight_norm(model: nn.Module) -> None:
    """Eval mode, no gradients, and every weight-norm parametrization replaced by the plain weight it computes.

    The shared first step of :func:`optimize_for_inference` and of the export-friendly form (:func:`export_form`)."""
    model.eval()
    model.requires_grad_(False)
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


def export_form(model: nn.Module) -> None:
    """Prepare ``model`` in place for tracing into a graph (ONNX export): weight norm folded, the readable blocks
    kept. The fast paths above are not installed: their time tiling and window views are Python loops over the
    input length, which a trace would freeze at the example's length; a graph runtime fuses the readable ops itself.
    Like :func:`optimize_for_inference` it marks the model ``inference_only``."""
    fold_weight_norm(model)
    model.inference_only = True


def optimize_for_inference(model: nn.Module) -> None:
    """Install the fast paths in ``model`` (an :class:`~audioclf.models.classifier.AudioClassifier`) in place:
    eval mode, no gradients, weight norm folded, blocks swapped for their inference versions, caches filled."""
    fold_weight_norm(model)
    for module in model.modules():
        fast = FAST_PATHS.get(type(module))
        if fast is not None:
            module.__class__ = fast
    for module in model.modules():
        if isinstance(module, InferenceDisentangledEncoder):
            module.cache_position_embeddings()
        elif isinstance(module, InferenceSelfAttention):
            module.fuse_projections()
    model.inference_only = True
