"""One config type for every architecture, described by a declared schema.

Each architecture declares the ``config.json`` fields its model reads (:data:`ARCHITECTURES`): a default, a one-line
doc and a check per field, shared fields declared once and reused. :class:`ModelConfig` fills what a ``config.json``
leaves out with the defaults of its ``model_type``, keeps every key it does not know and writes it back unchanged,
and validates the declared fields, failing with one line. Sizes are capped by :data:`SIZE_LIMITS` so that a hostile
config cannot ask for an absurd allocation; every published checkpoint fits well inside them, and a caller with a
larger model raises a cap by assigning to that dict.

Keys the reference implementation's sequence classifiers do not read either are not declared, so they are kept and
written back but change nothing: ``final_dropout`` (used by CTC heads only), SEW-D's ``hidden_dropout`` and
``layerdrop``, the adapter, quantizer, CTC and x-vector settings.

Adding an architecture: declare its own fields (if any) beside the groups below and register an
:class:`Architecture` listing the groups it reads and its default overrides.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from audioclf.errors import ConfigError
from audioclf.fileio import write_text_atomic

CONFIG_NAME = "config.json"

#: Caps on sizes (inclusive). Far above any published checkpoint (the largest wav2vec2, XLS-R 2B: 1920 hidden,
#: 48 layers, 7680 intermediate); assign to raise one for a model beyond them.
SIZE_LIMITS: dict[str, int] = {
    "hidden_size": 8192,
    "num_hidden_layers": 256,
    "num_attention_heads": 256,
    "intermediate_size": 65536,
    "conv_dim": 8192,  # channels of one conv layer
    "conv_kernel": 4096,
    "conv_stride": 1024,
    "conv_layers": 64,  # length of conv_dim / conv_kernel / conv_stride
    "num_conv_pos_embeddings": 4096,
    "classifier_proj_size": 65536,
    "num_labels": 100_000,
    "adapter_attn_dim": 65536,
    "squeeze_factor": 64,
    "position_buckets": 65536,
    "max_position_embeddings": 65536,
    "spectrogram_patches": 65536,  # AST patches per input (the position table has one row each); AudioSet AST: 1212
    "num_mel_bins": 512,
    "mask_length": 100_000,  # mask_time_length, mask_feature_length and the min_masks counts
    # weights of the transformer layers, num_hidden_layers * (4 D^2 + 2 D I): XLS-R 2B has 2.1e9
    "transformer_parameters": 20_000_000_000,
}

#: Activation names accepted for ``hidden_act`` / ``feat_extract_activation`` (see :func:`audioclf.models.blocks.activation`).
ACTIVATIONS = frozenset(
    {"gelu", "gelu_python", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "quick_gelu", "relu", "relu6",
     "silu", "swish", "tanh", "sigmoid", "mish", "linear"}
)
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


# ---------------------------------------------------------------------------------------------------------------------
# Checks: each takes (name, value) and raises a one-line ConfigError
# ---------------------------------------------------------------------------------------------------------------------
Check = Callable[[str, Any], None]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def integer(minimum: int, limit: str | None = None) -> Check:
    """An integer ``>= minimum`` and, with ``limit``, ``<= SIZE_LIMITS[limit]``."""
    def check(name: str, value: Any) -> None:
        if not _is_int(value) or value < minimum:
            raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if limit is not None and value > SIZE_LIMITS[limit]:
            raise ConfigError(f"{name} = {value} exceeds the limit {SIZE_LIMITS[limit]} "
                              f"(audioclf.config.SIZE_LIMITS[{limit!r}])")
    return check


def optional(inner: Check) -> Check:
    """``None`` or a value passing ``inner``."""
    def check(name: str, value: Any) -> None:
        if value is not None:
            inner(name, value)
    return check


def probability(name: str, value: Any) -> None:
    if not _is_real(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}")


def epsilon(name: str, value: Any) -> None:
    if not _is_real(value) or not 0.0 < value <= 1.0:
        raise ConfigError(f"{name} must be a number in (0, 1], got {value!r}")


def positive_real(name: str, value: Any) -> None:
    if not _is_real(value) or value <= 0.0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


def boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")


def one_of(*options: Any) -> Check:
    def check(name: str, value: Any) -> None:
        if value not in options:
            raise ConfigError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return check


def activation_name(name: str, value: Any) -> None:
    if value not in ACTIVATIONS:
        raise ConfigError(f"unsupported {name} {value!r}; supported: {', '.join(sorted(ACTIVATIONS))}")


def integer_list(limit: str) -> Check:
    """A non-empty list of positive integers, each ``<= SIZE_LIMITS[limit]``, at most ``SIZE_LIMITS['conv_layers']``
    long."""
    def check(name: str, value: Any) -> None:
        if not isinstance(value, (list, tuple)) or not value or not all(_is_int(v) and v > 0 for v in value):
            raise ConfigError(f"{name} must be a non-empty list of positive integers, got {value!r}")
        if len(value) > SIZE_LIMITS["conv_layers"]:
            raise ConfigError(f"{name} has {len(value)} entries, more than the limit {SIZE_LIMITS['conv_layers']} "
                              "(audioclf.config.SIZE_LIMITS['conv_layers'])")
        if max(value) > SIZE_LIMITS[limit]:
            raise ConfigError(f"{name} holds {max(value)}, more than the limit {SIZE_LIMITS[limit]} "
                              f"(audioclf.config.SIZE_LIMITS[{limit!r}])")
    return check


def attention_terms(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, (str, list, tuple)):
        raise ConfigError(f"{name} must be a list of 'c2p' / 'p2c' or a '|'-separated string, got {value!r}")
    unknown = set(_attention_terms(value)) - {"c2p", "p2c"}
    if unknown:
        raise ConfigError(f"{name} may only contain 'c2p' and 'p2c', got {sorted(unknown)}")


def text(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")


def _attention_terms(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split("|")
    return tuple(str(v).strip().lower() for v in value or () if str(v).strip())


# ---------------------------------------------------------------------------------------------------------------------
# The schema
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One ``config.json`` key a model reads: its default, a one-line doc, and its check."""

    default: Any
    doc: str
    check: Check


_W2V_CONV = dict(conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2))
_SEW_CONV = dict(conv_dim=(64, 128, 128, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512),
                 conv_kernel=(10, 3, 1, 3, 1, 3, 1, 3, 1, 2, 1, 2, 1),
                 conv_stride=(5, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1))

CONV_FEATURE_ENCODER: dict[str, Field] = {
    "conv_dim": Field(list(_W2V_CONV["conv_dim"]), "output channels of each feature-encoder conv layer",
                      integer_list("conv_dim")),
    "conv_kernel": Field(list(_W2V_CONV["conv_kernel"]), "kernel width of each conv layer", integer_list("conv_kernel")),
    "conv_stride": Field(list(_W2V_CONV["conv_stride"]), "stride of each conv layer", integer_list("conv_stride")),
    "conv_bias": Field(False, "whether the feature-encoder convs have a bias", boolean),
    "feat_extract_norm": Field("group", "'group': GroupNorm on the first conv only; 'layer': LayerNorm after every conv",
                               one_of("group", "layer")),
    "feat_extract_activation": Field("gelu", "activation of the conv layers, positional conv and SEW upsample",
                                     activation_name),
}

TRANSFORMER: dict[str, Field] = {
    "hidden_size": Field(768, "transformer width D", integer(1, "hidden_size")),
    "num_hidden_layers": Field(12, "number of transformer layers", integer(0, "num_hidden_layers")),
    "num_attention_heads": Field(12, "attention heads per layer (must divide hidden_size)",
                                 integer(1, "num_attention_heads")),
    "intermediate_size": Field(3072, "feed-forward inner width", integer(1, "intermediate_size")),
    "hidden_act": Field("gelu", "feed-forward activation", activation_name),
    "layer_norm_eps": Field(1e-5, "epsilon of every transformer-side LayerNorm", epsilon),
    "num_conv_pos_embeddings": Field(128, "kernel width of the positional convolution",
                                     integer(1, "num_conv_pos_embeddings")),
    "num_conv_pos_embedding_groups": Field(16, "groups of the positional convolution (must divide hidden_size)",
                                           integer(1, "hidden_size")),
}

HEAD: dict[str, Field] = {
    "use_weighted_layer_sum": Field(False, "classify a softmax-weighted sum of all hidden states (adds layer_weights)",
                                    boolean),
    "classifier_proj_size": Field(256, "width of the projector applied before pooling",
                                  integer(1, "classifier_proj_size")),
    "problem_type": Field(None, "loss: regression (MSE), single_label_classification (cross entropy), "
                                "multi_label_classification (BCE); null infers it from num_labels and the labels",
                          optional(one_of(*PROBLEM_TYPES))),
    "output_hidden_states": Field(False, "return every hidden state unless forward says otherwise", boolean),
    "output_attentions": Field(False, "return every attention map unless forward says otherwise", boolean),
    "tie_last_hidden_states": Field(False, "make the last hidden state the encoder output after its final LayerNorm "
                                           "(transformers 4.x for stable models, TF checkpoints; Whisper's default)",
                                    boolean),
    "initializer_range": Field(0.02, "standard deviation of the random initialisation of linear layers",
                               positive_real),
}

#: Dropouts of the conv/transformer path; SEW-D reads a subset (see :data:`SEW_D_DROPOUT`).
DROPOUT: dict[str, Field] = {
    "hidden_dropout": Field(0.1, "dropout on the encoder input and on each residual branch's output",
                            probability),
    "attention_dropout": Field(0.1, "dropout on the attention probabilities", probability),
    "activation_dropout": Field(0.1, "dropout after the feed-forward activation", probability),
    "feat_proj_dropout": Field(0.0, "dropout after the feature projection", probability),
}

LAYERDROP: dict[str, Field] = {
    "layerdrop": Field(0.1, "probability of skipping each transformer layer in training (one torch.rand draw per "
                            "layer)", probability),
}

SPEC_AUGMENT: dict[str, Field] = {
    "apply_spec_augment": Field(True, "apply SpecAugment masking in training", boolean),
    "mask_time_prob": Field(0.05, "fraction of frames to replace by masked_spec_embed in training (> 0 with "
                                  "mask_feature_prob > 0 creates masked_spec_embed)", probability),
    "mask_time_length": Field(10, "frames per time-mask span", integer(1, "mask_length")),
    "mask_time_min_masks": Field(2, "minimum number of time-mask spans", integer(0, "mask_length")),
    "mask_feature_prob": Field(0.0, "fraction of hidden channels to zero in training", probability),
    "mask_feature_length": Field(10, "channels per feature-mask span", integer(1, "mask_length")),
    "mask_feature_min_masks": Field(0, "minimum number of feature-mask spans", integer(0, "mask_length")),
}

WAV2VEC2_FAMILY: dict[str, Field] = {
    "do_stable_layer_norm": Field(False, "pre-LN layers with a final LayerNorm (true) or post-LN layers (false)",
                                  boolean),
    "adapter_attn_dim": Field(None, "width of the residual adapter after each stable layer's feed-forward; null: none",
                              optional(integer(1, "adapter_attn_dim"))),
}

HUBERT: dict[str, Field] = {
    "feat_proj_layer_norm": Field(True, "LayerNorm before the feature projection", boolean),
    "conv_pos_batch_norm": Field(False, "BatchNorm on the positional conv input and no weight norm", boolean),
}

SQUEEZE: dict[str, Field] = {
    "squeeze_factor": Field(2, "time downsampling around the transformer (average pool, strided positional conv)",
                            integer(1, "squeeze_factor")),
}

#: SEW-D's DeBERTa layers read no ``hidden_dropout`` and no ``layerdrop``: ``activation_dropout`` drops the output of
#: both residual branches and the relative-position embeddings, ``attention_dropout`` the attention probabilities.
SEW_D_DROPOUT: dict[str, Field] = {
    "attention_dropout": DROPOUT["attention_dropout"],
    "activation_dropout": replace(DROPOUT["activation_dropout"],
                                  doc="dropout on each residual branch's output and on the position embeddings"),
    "feat_proj_dropout": DROPOUT["feat_proj_dropout"],
}

SEW_D: dict[str, Field] = {
    "feature_layer_norm_eps": Field(1e-5, "epsilon of the LayerNorm after the conv feature encoder", epsilon),
    "max_position_embeddings": Field(512, "relative distance range when max_relative_positions < 1",
                                     integer(1, "max_position_embeddings")),
    "max_relative_positions": Field(-1, "relative distance range; < 1 means max_position_embeddings",
                                    integer(-1, "max_position_embeddings")),
    "position_buckets": Field(256, "log-bucketed relative positions when > 0 (the embedding table has 2x rows)",
                              integer(-1, "position_buckets")),
    "relative_attention": Field(True, "add relative-position terms to the attention scores", boolean),
    "pos_att_type": Field(["p2c", "c2p"], "relative-position terms: c2p (content to position), p2c (position to "
                                          "content)", attention_terms),
    "share_att_key": Field(True, "position terms reuse the query/key projections", boolean),
    "norm_rel_ebd": Field("layer_norm", "'layer_norm' normalises the relative-position embeddings", text),
}

# -- WavLM, data2vec-audio, wav2vec2-conformer, wav2vec2-bert ------------------------------------------------------
#: the transformer width fields without the positional conv (models that have none, or a different one)
TRANSFORMER_LAYERS: dict[str, Field] = {name: spec for name, spec in TRANSFORMER.items()
                                        if name not in ("num_conv_pos_embeddings", "num_conv_pos_embedding_groups")}

STABLE_LAYER_NORM: dict[str, Field] = {"do_stable_layer_norm": WAV2VEC2_FAMILY["do_stable_layer_norm"]}

WAVLM: dict[str, Field] = {
    "num_buckets": Field(320, "buckets of the relative-position attention bias, half for each direction (>= 4)",
                         integer(4, "position_buckets")),
    "max_bucket_distance": Field(800, "relative distance where the log-spaced buckets end (> num_buckets / 4)",
                                 integer(1, "max_position_embeddings")),
}

DATA2VEC_AUDIO: dict[str, Field] = {
    **{name: spec for name, spec in CONV_FEATURE_ENCODER.items() if name != "feat_extract_norm"},
    **TRANSFORMER_LAYERS,
    "num_conv_pos_embeddings": Field(5, "number of layers of the positional conv stack", integer(1, "conv_layers")),
    "conv_pos_kernel_size": Field(19, "kernel width of each positional conv layer",
                                  integer(1, "num_conv_pos_embeddings")),
    "num_conv_pos_embedding_groups": TRANSFORMER["num_conv_pos_embedding_groups"],
}

#: the conformer blocks shared by wav2vec2-conformer and wav2vec2-bert
CONFORMER: dict[str, Field] = {
    "position_embeddings_type": Field("relative", "attention positions: 'relative' (sinusoids with learned biases), "
                                                  "'rotary', or null (none)", one_of("relative", "rotary", None)),
    "rotary_embedding_base": Field(10000, "base of the rotary frequencies", positive_real),
    "conv_depthwise_kernel_size": Field(31, "kernel width of the conv module's depthwise conv (odd)",
                                        integer(1, "num_conv_pos_embeddings")),
    "conformer_conv_dropout": Field(0.1, "dropout on the conv module's output", probability),
}

WAV2VEC2_BERT: dict[str, Field] = {
    "feature_projection_input_dim": Field(160, "width of an input feature frame (mel bins x stacked frames)",
                                          integer(1, "conv_dim")),
    "position_embeddings_type": Field("relative_key", "attention positions: 'relative_key' (learned embeddings of "
                                                      "clipped distances), 'relative', 'rotary', or null (none)",
                                      one_of("relative_key", "relative", "rotary", None)),
    "left_max_position_embeddings": Field(64, "relative_key: farthest distance to the left with its own embedding",
                                          integer(0, "max_position_embeddings")),
    "right_max_position_embeddings": Field(8, "relative_key: farthest distance to the right with its own embedding",
                                           integer(0, "max_position_embeddings")),
    "use_intermediate_ffn_before_adapter": Field(False, "add half of a ReLU feed-forward to the encoder output",
                                                 boolean),
}


@dataclass(frozen=True)
class Architecture:
    """What one ``model_type`` reads: its checkpoint key prefix and its declared fields (with its defaults).

    ``aliases``: other names of declared fields (``transformers``' ``attribute_map``): read and assigned as the field
    they name, and a ``config.json`` value under an alias wins over the field's own key, as in ``transformers``.
    ``feed_forward_field``: the field holding the feed-forward width (for the size limit and descriptions).
    ``check``: architecture-specific validation beyond the per-field checks (raises :class:`ConfigError`).
    """

    model_type: str
    base_prefix: str
    fields: Mapping[str, Field] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    feed_forward_field: str = "intermediate_size"
    check: Callable[["ModelConfig"], None] | None = None


ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(model_type: str, base_prefix: str, *groups: Mapping[str, Field],
                          aliases: Mapping[str, str] | None = None, feed_forward_field: str = "intermediate_size",
                          check: Callable[["ModelConfig"], None] | None = None, **defaults: Any) -> Architecture:
    """Declare ``model_type``: the union of field ``groups``, with ``defaults`` overriding their defaults (see
    :class:`Architecture` for the other arguments)."""
    fields: dict[str, Field] = {}
    for group in groups:
        fields.update(group)
    unknown = set(defaults) - set(fields)
    if unknown:
        raise ValueError(f"defaults for undeclared fields of {model_type}: {sorted(unknown)}")
    for name, value in defaults.items():
        fields[name] = replace(fields[name], default=value)
    aliases = dict(aliases or {})
    if not set(aliases.values()) | {feed_forward_field} <= set(fields):
        raise ValueError(f"aliases or feed_forward_field of {model_type} name undeclared fields")
    ARCHITECTURES[model_type] = Architecture(model_type, base_prefix, fields, aliases, feed_forward_field, check)
    return ARCHITECTURES[model_type]


_BASE = (CONV_FEATURE_ENCODER, TRANSFORMER, HEAD)
register_architecture("wav2vec2", "wav2vec2", *_BASE, DROPOUT, LAYERDROP, SPEC_AUGMENT, WAV2VEC2_FAMILY)
register_architecture("hubert", "hubert", *_BASE, DROPOUT, LAYERDROP, SPEC_AUGMENT, WAV2VEC2_FAMILY, HUBERT)
register_architecture("sew", "sew", *_BASE, DROPOUT, LAYERDROP, SPEC_AUGMENT, SQUEEZE,
                      **{k: list(v) for k, v in _SEW_CONV.items()})
register_architecture("sew-d", "sew_d", *_BASE, SEW_D_DROPOUT, SPEC_AUGMENT, SQUEEZE, SEW_D,
                      **{k: list(v) for k, v in _SEW_CONV.items()}, hidden_act="gelu_python", layer_norm_eps=1e-7)
register_architecture("unispeech", "unispeech", *_BASE, DROPOUT, LAYERDROP, SPEC_AUGMENT, WAV2VEC2_FAMILY)
register_architecture("unispeech-sat", "unispeech_sat", *_BASE, DROPOUT, LAYERDROP, SPEC_AUGMENT, WAV2VEC2_FAMILY)

register_architecture("wavlm", "wavlm", *_BASE, DROPOUT, LAYERDROP, SPEC_AUGMENT, STABLE_LAYER_NORM, WAVLM)
register_architecture("data2vec-audio", "data2vec_audio", DATA2VEC_AUDIO, HEAD, DROPOUT, LAYERDROP, SPEC_AUGMENT)
register_architecture("wav2vec2-conformer", "wav2vec2_conformer", *_BASE, DROPOUT, LAYERDROP, SPEC_AUGMENT, CONFORMER)
register_architecture("wav2vec2-bert", "wav2vec2_bert", TRANSFORMER_LAYERS, HEAD, DROPOUT, LAYERDROP, SPEC_AUGMENT,
                      CONFORMER, WAV2VEC2_BERT, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                      intermediate_size=4096, hidden_act="swish", hidden_dropout=0.0, attention_dropout=0.0,
                      activation_dropout=0.0, classifier_proj_size=768)

#: architectures whose encoder lets padded frames reach valid ones whatever the mask (data2vec-audio's positional conv
#: stack and wav2vec2-conformer's depthwise convs see the padding, as in the reference implementations): a padded batch
#: then differs slightly from its rows run alone
PADDING_REACHES_VALID_FRAMES = frozenset({"data2vec-audio", "wav2vec2-conformer"})

# -- spectrogram transformers: AST (ViT over Kaldi fbank patches) and the Whisper encoder ----------------------------
#: the head's output switches, without the pooled-frames head's own fields (AST has a different head)
CLASSIFIER_OUTPUTS: dict[str, Field] = {name: HEAD[name] for name in (
    "problem_type", "output_hidden_states", "output_attentions", "tie_last_hidden_states")}
#: the pooled-frames head (projector, mean, classifier) and its optional weighted layer sum
POOLED_FRAMES_HEAD: dict[str, Field] = {name: HEAD[name] for name in ("use_weighted_layer_sum", "classifier_proj_size")}

AST: dict[str, Field] = {
    **{name: TRANSFORMER[name] for name in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                             "intermediate_size", "hidden_act", "layer_norm_eps")},
    "qkv_bias": Field(True, "bias on the query, key and value projections", boolean),
    "patch_size": Field(16, "side of the square patches cut from the spectrogram (frames and mel bins)",
                        integer(1, "num_mel_bins")),
    "frequency_stride": Field(10, "step between patches along the mel axis", integer(1, "num_mel_bins")),
    "time_stride": Field(10, "step between patches along the time axis", integer(1, "num_mel_bins")),
    "max_length": Field(1024, "spectrogram frames per input (fixes the number of patches and position embeddings)",
                        integer(1, "spectrogram_patches")),
    "num_mel_bins": Field(128, "mel bins per spectrogram frame", integer(1, "num_mel_bins")),
    "hidden_dropout_prob": Field(0.0, "dropout on the embeddings and on each residual branch's output", probability),
    "attention_probs_dropout_prob": Field(0.0, "dropout on the attention probabilities", probability),
    "initializer_range": HEAD["initializer_range"],
}


def patch_grid(config: "ModelConfig") -> tuple[int, int]:
    """AST's patches per input: ``(along the mel axis, along time)``."""
    return ((config.num_mel_bins - config.patch_size) // config.frequency_stride + 1,
            (config.max_length - config.patch_size) // config.time_stride + 1)


def _check_ast(config: "ModelConfig") -> None:
    if config.patch_size > min(config.num_mel_bins, config.max_length):
        raise ConfigError(f"patch_size ({config.patch_size}) must not exceed num_mel_bins ({config.num_mel_bins}) "
                          f"or max_length ({config.max_length})")
    patches = math.prod(patch_grid(config))
    if patches > SIZE_LIMITS["spectrogram_patches"]:
        raise ConfigError(f"{patches} patches per input exceed the limit {SIZE_LIMITS['spectrogram_patches']} "
                          "(audioclf.config.SIZE_LIMITS['spectrogram_patches'])")


WHISPER: dict[str, Field] = {
    "d_model": Field(384, "encoder width D (alias hidden_size)", integer(2, "hidden_size")),
    "encoder_layers": Field(4, "number of encoder layers (alias num_hidden_layers)", integer(0, "num_hidden_layers")),
    "encoder_attention_heads": Field(6, "attention heads per encoder layer (alias num_attention_heads; must divide "
                                        "d_model)", integer(1, "num_attention_heads")),
    "encoder_ffn_dim": Field(1536, "encoder feed-forward inner width", integer(1, "intermediate_size")),
    "activation_function": Field("gelu", "encoder feed-forward activation", activation_name),
    "num_mel_bins": Field(80, "mel bins of the input features", integer(1, "num_mel_bins")),
    "max_source_positions": Field(1500, "encoder frames; inputs have exactly twice as many mel frames",
                                  integer(1, "max_position_embeddings")),
    "dropout": Field(0.0, "dropout on the embeddings and on each residual branch's output", probability),
    "attention_dropout": Field(0.0, "dropout on the attention probabilities", probability),
    "activation_dropout": Field(0.0, "dropout after the feed-forward activation", probability),
    "encoder_layerdrop": Field(0.0, "probability of skipping each encoder layer in training", probability),
    "init_std": Field(0.02, "standard deviation of the random initialisation of linear and conv layers",
                      positive_real),
}

register_architecture("audio-spectrogram-transformer", "audio_spectrogram_transformer", AST, CLASSIFIER_OUTPUTS,
                      check=_check_ast, layer_norm_eps=1e-12)
# transformers' WhisperForAudioClassification ties the last hidden state to the final LayerNorm's output by default
register_architecture("whisper", "encoder", WHISPER, POOLED_FRAMES_HEAD, CLASSIFIER_OUTPUTS,
                      aliases={"hidden_size": "d_model", "num_hidden_layers": "encoder_layers",
                               "num_attention_heads": "encoder_attention_heads"},
                      feed_forward_field="encoder_ffn_dim", tie_last_hidden_states=True)

#: model_type -> the attribute (and checkpoint key prefix) holding the base model.
BASE_PREFIXES: dict[str, str] = {name: spec.base_prefix for name, spec in ARCHITECTURES.items()}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(ARCHITECTURES)


def _label_dicts(raw: Mapping[str, Any]) -> tuple[dict[int, str], dict[str, int]]:
    """Normalise ``id2label``/``label2id``/``num_labels`` into int-keyed / int-valued dicts."""
    id2label = raw.get("id2label")
    if id2label:
        try:
            id2label = {int(k): str(v) for k, v in dict(id2label).items()}
        except (TypeError, ValueError):
            raise ConfigError(f"id2label keys must be integers, got {list(dict(id2label))[:3]}") from None
    else:
        num_labels = raw.get("num_labels", 2)
        integer(1, "num_labels")("num_labels", num_labels)
        id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
    if len(id2label) > SIZE_LIMITS["num_labels"]:
        raise ConfigError(f"{len(id2label)} labels exceed the limit {SIZE_LIMITS['num_labels']} "
                          "(audioclf.config.SIZE_LIMITS['num_labels'])")
    if sorted(id2label) != list(range(len(id2label))):
        raise ConfigError(f"id2label keys must be 0..{len(id2label) - 1}, got {sorted(id2label)[:8]}")
    label2id = raw.get("label2id")
    if label2id:
        try:
            label2id = {str(k): int(v) for k, v in dict(label2id).items()}
        except (TypeError, ValueError):
            raise ConfigError("label2id values must be integers") from None
    else:
        label2id = {label: i for i, label in id2label.items()}
    return dict(sorted(id2label.items())), label2id


class ModelConfig:
    """Hyper-parameters of one classifier, readable from and writable to ``config.json``.

    Every field its architecture declares is an attribute (``config.hidden_size``), filled with the architecture's
    default when the source leaves it out; every other key of the source is kept as an attribute too and written
    back. ``num_labels`` is derived from ``id2label``; assigning it regenerates ``LABEL_i`` names. Call
    :meth:`validate` after changing attributes.
    """

    def __init__(self, model_type: str = "wav2vec2", **kwargs: Any) -> None:
        if model_type not in ARCHITECTURES:
            raise ConfigError(
                f"unsupported model_type {model_type!r}; supported types: {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        architecture = ARCHITECTURES[model_type]
        values = {name: copy.deepcopy(spec.default) for name, spec in architecture.fields.items()}
        values.update(kwargs)
        for alias, name in architecture.aliases.items():  # a value under an alias wins, as in transformers
            if alias in values:
                values[name] = values.pop(alias)
        id2label, label2id = _label_dicts(values)
        values.pop("num_labels", None)
        if "conv_dim" in architecture.fields:
            conv_dim = values.get("conv_dim")
            values["num_feat_extract_layers"] = len(conv_dim) if isinstance(conv_dim, (list, tuple)) else 0
        values["id2label"], values["label2id"] = id2label, label2id
        object.__setattr__(self, "model_type", model_type)
        for key, value in values.items():
            object.__setattr__(self, key, value)
        self.validate()

    # -- schema -------------------------------------------------------------------------------------------------------
    @property
    def architecture(self) -> Architecture:
        return ARCHITECTURES[self.model_type]

    @classmethod
    def fields(cls, model_type: str) -> Mapping[str, Field]:
        """The declared fields of ``model_type``: name -> :class:`Field` (default, doc, check)."""
        return ARCHITECTURES[model_type].fields

    # -- labels -------------------------------------------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, value: int) -> None:
        if len(self.id2label) != value:
            self.id2label, self.label2id = _label_dicts({"num_labels": value})

    def __getattr__(self, name: str) -> Any:
        """An alias (``hidden_size`` of Whisper) reads the field it names."""
        model_type = self.__dict__.get("model_type")
        target = ARCHITECTURES[model_type].aliases.get(name) if model_type in ARCHITECTURES else None
        if target is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(self, target)

    def __setattr__(self, key: str, value: Any) -> None:
        key = self.architecture.aliases.get(key, key)
        if key == "id2label":
            value, label2id = _label_dicts({"id2label": value})
            object.__setattr__(self, "label2id", label2id)
        object.__setattr__(self, key, value)

    # -- derived facts used by the models -----------------------------------------------------------------------------
    @property
    def base_prefix(self) -> str:
        """Attribute name and checkpoint key prefix of the base model (``sew_d`` for ``sew-d``)."""
        return self.architecture.base_prefix

    @property
    def masks_padding_exactly(self) -> bool:
        """Whether, given a mask, padded frames leave the valid frames' results unchanged inside the model (see
        :data:`PADDING_REACHES_VALID_FRAMES`; the conv feature encoder and the featurizer are judged separately)."""
        return self.model_type not in PADDING_REACHES_VALID_FRAMES

    @property
    def feed_forward_size(self) -> int:
        """The feed-forward inner width (``intermediate_size``; Whisper: ``encoder_ffn_dim``)."""
        return getattr(self, self.architecture.feed_forward_field)

    @property
    def position_attention_types(self) -> tuple[str, ...]:
        """SEW-D ``pos_att_type`` as a tuple of lower-case names (accepts ``"p2c|c2p"`` strings)."""
        return _attention_terms(self.pos_att_type)

    @property
    def max_relative_distance(self) -> int:
        """SEW-D relative distance range: ``max_relative_positions``, or ``max_position_embeddings`` when < 1."""
        return self.max_relative_positions if self.max_relative_positions >= 1 else self.max_position_embeddings

    # -- validation ---------------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigError` (one line) if the config cannot describe a working classifier."""
        architecture = self.architecture
        declared = set(architecture.fields) | set(architecture.aliases)
        for name, spec in architecture.fields.items():
            spec.check(name, getattr(self, name))
        if "conv_dim" in declared and not len(self.conv_dim) == len(self.conv_kernel) == len(self.conv_stride):
            raise ConfigError(
                "conv_dim, conv_kernel and conv_stride must have the same length, got "
                f"{len(self.conv_dim)}, {len(self.conv_kernel)} and {len(self.conv_stride)}"
            )
        for divisor in ("num_attention_heads", "num_conv_pos_embedding_groups"):
            if divisor in declared and self.hidden_size % getattr(self, divisor):
                raise ConfigError(f"hidden_size ({self.hidden_size}) must be divisible by {divisor} "
                                  f"({getattr(self, divisor)})")
        if architecture.check is not None:
            architecture.check(self)
        weights = self.num_hidden_layers * (4 * self.hidden_size ** 2 + 2 * self.hidden_size * self.feed_forward_size)
        if weights > SIZE_LIMITS["transformer_parameters"]:
            raise ConfigError(f"the transformer layers would hold {weights:.3g} weights, more than the limit "
                              f"{SIZE_LIMITS['transformer_parameters']:.3g} "
                              "(audioclf.config.SIZE_LIMITS['transformer_parameters'])")
        if "conv_depthwise_kernel_size" in declared and self.conv_depthwise_kernel_size % 2 == 0:
            raise ConfigError(f"conv_depthwise_kernel_size must be odd, got {self.conv_depthwise_kernel_size}")
        if "num_buckets" in declared and self.max_bucket_distance <= self.num_buckets // 4:
            raise ConfigError(f"max_bucket_distance ({self.max_bucket_distance}) must exceed num_buckets / 4 "
                              f"({self.num_buckets // 4})")
        if getattr(self, "add_adapter", False):
            raise ConfigError("add_adapter=true is not supported by audio classifiers (the adapter changes the frame rate)")
        if (getattr(self, "conv_kernel_size", 0) or 0) > 0:
            raise ConfigError("SEW-D conv_kernel_size > 0 (a DeBERTa convolution layer) is not supported")

    # -- (de)serialisation --------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> "ModelConfig":
        """Build from a ``config.json`` mapping; ``overrides`` replace attributes (``num_labels`` included)."""
        values = dict(data)
        values.update(overrides)
        if "num_labels" in overrides and "id2label" not in overrides:
            current = values.get("id2label") or {}
            if len(current) != overrides["num_labels"]:
                values.pop("id2label", None)
                values.pop("label2id", None)
        model_type = values.pop("model_type", None)
        if model_type is None:
            raise ConfigError("config has no model_type; supported types: " + ", ".join(SUPPORTED_MODEL_TYPES))
        return cls(model_type=model_type, **values)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **overrides: Any) -> "ModelConfig":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except OSError as error:
            raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path} is not valid JSON ({error.msg} at line {error.lineno})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object")
        try:
            return cls.from_dict(data, **overrides)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **overrides: Any) -> "ModelConfig":
        """Read ``path`` (a ``config.json`` file or a directory holding one). Hub ids go through :mod:`audioclf.auto`."""
        path = Path(path)
        if path.is_dir():
            path = path / CONFIG_NAME
        return cls.from_json_file(path, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """All attributes as JSON-ready values (``id2label`` keys as strings, like ``config.json``)."""
        data = {key: copy.deepcopy(value) for key, value in vars(self).items()}
        data["id2label"] = {str(k): v for k, v in self.id2label.items()}
        data["num_labels"] = self.num_labels
        return dict(sorted(data.items()))

    def to_json_string(self) -> str:
        data = self.to_dict()
        data.pop("num_labels")
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` into ``directory`` atomically; returns its path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / CONFIG_NAME
        write_text_atomic(target, self.to_json_string())
        return target

    def copy(self) -> "ModelConfig":
        return copy.deepcopy(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"ModelConfig({self.to_json_string()})"
