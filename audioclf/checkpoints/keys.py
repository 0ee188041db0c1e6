"""Checkpoint key rules, in one place for the PyTorch loader and the TensorFlow mapping.

* Legacy weight norm: ``…weight_g`` / ``…weight_v`` are ``…parametrizations.weight.original0`` / ``original1``.
* ``LayerNorm.gamma`` / ``LayerNorm.beta`` are ``LayerNorm.weight`` / ``LayerNorm.bias`` (only modules named
  ``LayerNorm``, as in ``transformers`` 5.x; a ``layer_norm.gamma`` is not renamed).
* The classification head (``projector``, ``classifier``, ``layer_weights``) is what a base-model checkpoint lacks.
* The base-model prefix (``wav2vec2.``) is stripped when the stripped key exists in the model, or added when that
  exists, so bare base-model checkpoints load into the classifier.
* Per architecture (:data:`ARCHITECTURE_RENAMES`), keys written by other versions or classes: AST's ViT-style names
  (``transformers`` 4.x, and 5.x ``save_pretrained`` still writes them), the encoder of a Whisper
  ``WhisperForConditionalGeneration`` (``model.encoder.``). Its decoder keys keep their names and are reported as
  unexpected.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence, TypeVar

Value = TypeVar("Value")

#: weight-norm factor names -> parametrization names (the last key component)
WEIGHT_NORM_RENAMES: dict[str, str] = {
    "weight_g": "parametrizations.weight.original0",
    "weight_v": "parametrizations.weight.original1",
}
#: key suffix renames applied to PyTorch checkpoints
LEGACY_RENAMES: tuple[tuple[str, str], ...] = (
    *((f".{old}", f".{new}") for old, new in WEIGHT_NORM_RENAMES.items()),
    ("LayerNorm.gamma", "LayerNorm.weight"),
    ("LayerNorm.beta", "LayerNorm.bias"),
)
#: every key of the classification head (``layer_weights`` only with ``use_weighted_layer_sum``)
HEAD_KEYS: tuple[str, ...] = ("projector.weight", "projector.bias", "classifier.weight", "classifier.bias",
                              "layer_weights")
#: the head's top-level names
HEAD_LAYERS: frozenset[str] = frozenset(key.split(".")[0] for key in HEAD_KEYS)


#: model_type -> regular-expression renames of checkpoint keys, applied in order to every key
ARCHITECTURE_RENAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "audio-spectrogram-transformer": (
        (r"(^|\.)encoder\.layer\.(\d+)\.", r"\1layers.\2."),
        (r"\.attention\.attention\.query\.", ".attention.q_proj."),
        (r"\.attention\.attention\.key\.", ".attention.k_proj."),
        (r"\.attention\.attention\.value\.", ".attention.v_proj."),
        (r"\.attention\.output\.dense\.", ".attention.o_proj."),
        (r"\.intermediate\.dense\.", ".mlp.fc1."),
        (r"\.output\.dense\.", ".mlp.fc2."),
    ),
    "whisper": ((r"^model\.encoder\.", "encoder."),),
}


def is_head_key(key: str) -> bool:
    """Whether ``key`` belongs to the classification head."""
    return key.split(".")[0] in HEAD_LAYERS


def rename_legacy_key(key: str) -> str:
    """``key`` with a legacy suffix (weight norm, ``LayerNorm.gamma/beta``) renamed."""
    for old, new in LEGACY_RENAMES:
        if key.endswith(old):
            return key[: -len(old)] + new
    return key


def normalise_keys(state: Mapping[str, Value], model_keys: set[str], prefix: str,
                   renames: Sequence[tuple[str, str]] = ()) -> dict[str, Value]:
    """Rename checkpoint keys to the model's names (legacy names, the architecture's ``renames`` (see
    :data:`ARCHITECTURE_RENAMES`), base prefix added or stripped)."""
    renamed: dict[str, Value] = {}
    dotted = prefix + "."
    patterns = [(re.compile(pattern), replacement) for pattern, replacement in renames]
    for key, value in state.items():
        key = rename_legacy_key(key)
        for pattern, replacement in patterns:
            key = pattern.sub(replacement, key)
        if key not in model_keys:
            if key.startswith(dotted) and key[len(dotted):] in model_keys:
                key = key[len(dotted):]
            elif dotted + key in model_keys:
                key = dotted + key
        renamed[key] = value
    return renamed
