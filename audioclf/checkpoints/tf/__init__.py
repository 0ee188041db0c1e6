"""TensorFlow checkpoints without TensorFlow: tensor bundles, Keras HDF5 weights, and the TF -> PyTorch mapping.

* :mod:`.bundle` reads ``<prefix>.index`` / ``<prefix>.data-NNNNN-of-MMMMM`` tensor bundles (object-based and
  name-based).
* :mod:`.keras_h5` reads ``tf_model.h5`` and sharded ``tf_model.h5.index.json`` saves (needs ``h5py``).
* :mod:`.mapping` turns TF Wav2Vec2/HuBERT variables into ``transformers``-style PyTorch state dicts;
  :func:`load_tf_state_dict` accepts any SOURCE form.

Names are resolved on first use so that ``import audioclf.checkpoints.tf.bundle`` does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "read_bundle": "bundle",
    "read_bundle_variables": "bundle",
    "resolve_bundle_prefix": "bundle",
    "TensorBundle": "bundle",
    "read_keras_h5": "keras_h5",
    "read_sharded_keras_h5": "keras_h5",
    "TFLoadResult": "mapping",
    "ExpectedKeysReport": "mapping",
    "load_tf_state_dict": "mapping",
    "map_tf_variables": "mapping",
    "check_expected_keys": "mapping",
    "tf_config_overrides": "mapping",
    "tf_name_to_pt": "mapping",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
