"""The one table of size limits: what a file (config, audio, checkpoint) may ask of memory and time.

Every reader checks what a file declares against these limits *before* it allocates or decodes anything, so a
few-kilobyte hostile file fails with one line instead of costing gigabytes or minutes. Every published checkpoint
and every ordinary recording fits well inside them.

Each limit is overridable: set the environment variable ``AUDIOCLF_LIMIT_<NAME>`` (``AUDIOCLF_LIMIT_AUDIO_SECONDS=
172800``), or assign in Python (``audioclf.limits.LIMITS["audio_seconds"] = 172800``; the environment wins).
Error messages name the variable to set. :func:`limits_table` lists them all (name, value, what it bounds).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass

__all__ = ["LIMITS", "MODEL_SIZE_LIMITS", "Limit", "LimitTable", "env_name", "exceeds", "limits_table"]


@dataclass(frozen=True)
class Limit:
    """One limit: its default (inclusive bound) and what it bounds."""

    default: int
    doc: str


#: model sizes a config.json may declare; the largest published wav2vec2, XLS-R 2B, has 1920 hidden, 48 layers, 7680 ffn
_MODEL_SIZES: dict[str, Limit] = {
    "hidden_size": Limit(8192, "transformer width (hidden_size)"),
    "num_hidden_layers": Limit(256, "transformer layers (num_hidden_layers)"),
    "num_attention_heads": Limit(256, "attention heads per layer"),
    "intermediate_size": Limit(65536, "feed-forward inner width (intermediate_size)"),
    "conv_dim": Limit(8192, "channels of one feature-encoder conv layer (conv_dim entries)"),
    "conv_kernel": Limit(4096, "kernel width of one conv layer (conv_kernel entries)"),
    "conv_stride": Limit(1024, "stride of one conv layer (conv_stride entries)"),
    "conv_layers": Limit(64, "feature-encoder conv layers (length of conv_dim / conv_kernel / conv_stride)"),
    "num_conv_pos_embeddings": Limit(4096, "kernel width of the positional convolution"),
    "classifier_proj_size": Limit(65536, "width of the classifier projection"),
    "num_labels": Limit(100_000, "labels of one model"),
    "adapter_attn_dim": Limit(65536, "width of the attention adapters"),
    "squeeze_factor": Limit(64, "SEW time downsampling"),
    "position_buckets": Limit(65536, "relative-position buckets (SEW-D, WavLM)"),
    "max_position_embeddings": Limit(65536, "relative distance range (SEW-D, WavLM, wav2vec2-bert)"),
    "spectrogram_patches": Limit(65536, "AST patches per input (one position-table row each; AudioSet AST: 1212)"),
    "num_mel_bins": Limit(512, "mel bins of a spectrogram frame (AST patch sizes and strides too)"),
    "mask_length": Limit(100_000, "SpecAugment span lengths and minimum span counts"),
    "transformer_parameters": Limit(20_000_000_000, "weights of all transformer layers together "
                                                    "(layers x (4 D^2 + 2 D I); XLS-R 2B has 2.1e9)"),
}
#: what a file may declare
_FILES: dict[str, Limit] = {
    "json_bytes": Limit(16 << 20, "bytes of one JSON file read as a config or index (config.json, "
                                  "preprocessor_config.json, shard indexes)"),
    "json_depth": Limit(64, "nesting depth of such a JSON file"),
    "sample_rate": Limit(1_000_000, "sample rate of an audio file, in Hz (files below min_sample_rate or above "
                                    "this are refused)"),
    "min_sample_rate": Limit(1000, "lowest sample rate of an audio file, in Hz (a lower bound)"),
    "model_sample_rate": Limit(192_000, "sample rate a model's preprocessor config may ask for, in Hz"),
    "channels": Limit(256, "channels of one audio file"),
    "audio_seconds": Limit(86_400, "decoded length of one audio file, in seconds (24 hours)"),
    "tf_index_bytes": Limit(256 << 20, "bytes of a TensorFlow checkpoint index (.index) file"),
}
_DECLARED: dict[str, Limit] = {**_MODEL_SIZES, **_FILES}

#: the limits that are lower bounds: a value below them is refused
LOWER_BOUNDS = frozenset({"min_sample_rate"})


def env_name(name: str) -> str:
    """The environment variable that overrides limit ``name``: ``AUDIOCLF_LIMIT_<NAME>``."""
    return "AUDIOCLF_LIMIT_" + name.upper()


class LimitTable(MutableMapping):
    """Limits by name: the environment variable if set, else a value assigned here, else the default.

    ``names`` restricts the view to some limits (``audioclf.config.SIZE_LIMITS`` shows the model sizes only); every
    view shares the same assigned values."""

    _assigned: dict[str, int] = {}

    def __init__(self, names: tuple[str, ...] | None = None) -> None:
        self._names = tuple(_DECLARED) if names is None else names

    def __getitem__(self, name: str) -> int:
        if name not in self._names:
            raise KeyError(name)
        text = os.environ.get(env_name(name))
        if text is not None and text.strip():
            try:
                value = int(float(text))
            except ValueError:
                from audioclf.errors import AudioclfError

                raise AudioclfError(f"{env_name(name)}={text!r} is not a number") from None
            return value
        return self._assigned.get(name, _DECLARED[name].default)

    def __setitem__(self, name: str, value: int) -> None:
        if name not in self._names:
            raise KeyError(f"no limit named {name!r}")
        self._assigned[name] = int(value)

    def __delitem__(self, name: str) -> None:
        self._assigned.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


#: every limit
LIMITS = LimitTable()
#: the model-size limits (config.json), a view of :data:`LIMITS`
MODEL_SIZE_LIMITS = LimitTable(tuple(_MODEL_SIZES))


def exceeds(name: str, value: int | float) -> str | None:
    """``None`` when ``value`` is within limit ``name``, else the end of a one-line message: ``"exceeds the limit N
    (set AUDIOCLF_LIMIT_NAME to allow more)"`` (or ``"is below ..."`` for a lower bound)."""
    limit = LIMITS[name]
    if name in LOWER_BOUNDS:
        if value >= limit:
            return None
        return f"is below the limit {limit} (set {env_name(name)} to allow less)"
    if value <= limit:
        return None
    return f"exceeds the limit {limit} (set {env_name(name)} to allow more)"


def limits_table() -> list[tuple[str, int, str, str]]:
    """``(name, current value, environment variable, what it bounds)`` for every limit."""
    return [(name, LIMITS[name], env_name(name), spec.doc) for name, spec in _DECLARED.items()]
