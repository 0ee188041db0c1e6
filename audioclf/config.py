"""One config type for the six architectures.

:class:`ModelConfig` reads any ``config.json`` written for these models (old and new key sets), fills what is missing
with the defaults of its ``model_type``, keeps every key it does not know and writes it back unchanged, and checks the
fields the forward pass depends on, failing with one line.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Mapping

from audioclf.errors import ConfigError
from audioclf.fileio import write_text_atomic

CONFIG_NAME = "config.json"

#: model_type -> the attribute (and checkpoint key prefix) holding the base model.
BASE_PREFIXES: dict[str, str] = {
    "wav2vec2": "wav2vec2",
    "hubert": "hubert",
    "sew": "sew",
    "sew-d": "sew_d",
    "unispeech": "unispeech",
    "unispeech-sat": "unispeech_sat",
}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(BASE_PREFIXES)

_WAV2VEC2_CONV = {
    "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
}
_SEW_CONV = {
    "conv_dim": [64, 128, 128, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512],
    "conv_kernel": [10, 3, 1, 3, 1, 3, 1, 3, 1, 2, 1, 2, 1],
    "conv_stride": [5, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1],
}

#: Defaults shared by all six types (the values of a default-constructed config in the reference library).
_COMMON_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "feat_extract_norm": "group",
    "feat_extract_activation": "gelu",
    "conv_bias": False,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "use_weighted_layer_sum": False,
    "classifier_proj_size": 256,
    "mask_time_prob": 0.05,
    "mask_feature_prob": 0.0,
    "problem_type": None,
    "output_attentions": False,
    "output_hidden_states": False,
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.1,
    "feat_proj_dropout": 0.0,
    "final_dropout": 0.1,
    "layerdrop": 0.1,
    "initializer_range": 0.02,
}

_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "wav2vec2": {**_WAV2VEC2_CONV, "do_stable_layer_norm": False, "add_adapter": False, "adapter_attn_dim": None},
    "hubert": {**_WAV2VEC2_CONV, "do_stable_layer_norm": False, "feat_proj_layer_norm": True,
               "conv_pos_batch_norm": False},
    "unispeech": {**_WAV2VEC2_CONV, "do_stable_layer_norm": False},
    "unispeech-sat": {**_WAV2VEC2_CONV, "do_stable_layer_norm": False},
    "sew": {**_SEW_CONV, "squeeze_factor": 2},
    "sew-d": {
        **_SEW_CONV,
        "squeeze_factor": 2,
        "hidden_act": "gelu_python",
        "layer_norm_eps": 1e-7,
        "feature_layer_norm_eps": 1e-5,
        "max_position_embeddings": 512,
        "position_buckets": 256,
        "share_att_key": True,
        "relative_attention": True,
        "pos_att_type": ["p2c", "c2p"],
        "norm_rel_ebd": "layer_norm",
    },
}

#: Activation names accepted for ``hidden_act`` / ``feat_extract_activation`` (see :mod:`audioclf.models.blocks`).
ACTIVATIONS = frozenset(
    {"gelu", "gelu_python", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "quick_gelu", "relu", "relu6",
     "silu", "swish", "tanh", "sigmoid", "mish", "linear"}
)


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
        if not isinstance(num_labels, int) or num_labels < 1:
            raise ConfigError(f"num_labels must be a positive integer, got {num_labels!r}")
        id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
    if sorted(id2label) != list(range(len(id2label))):
        raise ConfigError(f"id2label keys must be 0..{len(id2label) - 1}, got {sorted(id2label)}")
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

    Attributes are plain instance attributes (``config.hidden_size``); every key of the source json is kept, known
    or not. ``num_labels`` is derived from ``id2label``; assigning it regenerates ``LABEL_i`` names.
    """

    def __init__(self, model_type: str = "wav2vec2", **kwargs: Any) -> None:
        if model_type not in _TYPE_DEFAULTS:
            raise ConfigError(
                f"unsupported model_type {model_type!r}; supported types: {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        values: dict[str, Any] = {**copy.deepcopy(_COMMON_DEFAULTS), **copy.deepcopy(_TYPE_DEFAULTS[model_type])}
        values.update(kwargs)
        id2label, label2id = _label_dicts(values)
        values.pop("num_labels", None)
        values["num_feat_extract_layers"] = len(values["conv_dim"]) if isinstance(values.get("conv_dim"), (list, tuple)) else 0
        values["id2label"], values["label2id"] = id2label, label2id
        object.__setattr__(self, "model_type", model_type)
        for key, value in values.items():
            object.__setattr__(self, key, value)
        self.validate()

    # -- labels ---------------------------------------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, value: int) -> None:
        if len(self.id2label) != value:
            self.id2label, self.label2id = _label_dicts({"num_labels": value})

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "id2label":
            value, label2id = _label_dicts({"id2label": value})
            object.__setattr__(self, "label2id", label2id)
        object.__setattr__(self, key, value)

    # -- derived facts used by the models -------------------------------------------------------------------------
    @property
    def base_prefix(self) -> str:
        """Attribute name and checkpoint key prefix of the base model (``sew_d`` for ``sew-d``)."""
        return BASE_PREFIXES[self.model_type]

    @property
    def uses_squeeze(self) -> bool:
        return self.model_type in ("sew", "sew-d")

    @property
    def has_masked_spec_embed(self) -> bool:
        """Whether checkpoints of this config carry ``masked_spec_embed`` (unused at inference)."""
        return self.model_type == "unispeech-sat" or self.mask_time_prob > 0 or self.mask_feature_prob > 0

    @property
    def position_attention_types(self) -> tuple[str, ...]:
        """SEW-D ``pos_att_type`` as a tuple of lower-case names (accepts ``"p2c|c2p"`` strings)."""
        value = getattr(self, "pos_att_type", None) or ()
        if isinstance(value, str):
            value = value.split("|")
        return tuple(str(v).strip().lower() for v in value if str(v).strip())

    # -- validation ---------------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigError` (one line) if the config cannot describe a working classifier."""
        for name in ("conv_dim", "conv_kernel", "conv_stride"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, int) and v > 0 for v in value):
                raise ConfigError(f"{name} must be a non-empty list of positive integers, got {value!r}")
        if not len(self.conv_dim) == len(self.conv_kernel) == len(self.conv_stride):
            raise ConfigError(
                "conv_dim, conv_kernel and conv_stride must have the same length, got "
                f"{len(self.conv_dim)}, {len(self.conv_kernel)} and {len(self.conv_stride)}"
            )
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "classifier_proj_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "num_hidden_layers" else 1):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})"
            )
        if self.hidden_size % self.num_conv_pos_embedding_groups:
            raise ConfigError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_conv_pos_embedding_groups "
                f"({self.num_conv_pos_embedding_groups})"
            )
        if self.feat_extract_norm not in ("group", "layer"):
            raise ConfigError(f"feat_extract_norm must be 'group' or 'layer', got {self.feat_extract_norm!r}")
        for name in ("hidden_act", "feat_extract_activation"):
            if getattr(self, name) not in ACTIVATIONS:
                raise ConfigError(f"unsupported {name} {getattr(self, name)!r}; supported: {', '.join(sorted(ACTIVATIONS))}")
        if getattr(self, "add_adapter", False):
            raise ConfigError("add_adapter=true is not supported by audio classifiers (the adapter changes the frame rate)")
        if self.uses_squeeze:
            if not isinstance(self.squeeze_factor, int) or self.squeeze_factor < 1:
                raise ConfigError(f"squeeze_factor must be a positive integer, got {self.squeeze_factor!r}")
        if self.model_type == "sew-d":
            unknown = set(self.position_attention_types) - {"c2p", "p2c"}
            if unknown:
                raise ConfigError(f"pos_att_type may only contain 'c2p' and 'p2c', got {sorted(unknown)}")
            if (getattr(self, "conv_kernel_size", 0) or 0) > 0:
                raise ConfigError("SEW-D conv_kernel_size > 0 (a DeBERTa convolution layer) is not supported")
        adapter = getattr(self, "adapter_attn_dim", None)
        if adapter is not None and (not isinstance(adapter, int) or adapter < 1):
            raise ConfigError(f"adapter_attn_dim must be a positive integer or null, got {adapter!r}")

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
