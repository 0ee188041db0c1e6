"""audioclf: audio classification with plain-PyTorch Wav2Vec2, HuBERT, SEW, SEW-D, UniSpeech, UniSpeechSat, AST
and Whisper models.

Public API:

* :func:`classify` — classify files, directories, globs, or audio in memory (numpy arrays, ``(array, rate)``
  pairs, ``{"array", "sampling_rate"}`` dicts); yields one record per input (or window / channel) in input order.
* :class:`Classifier` — a model loaded once, with options, for many :meth:`Classifier.classify` calls.
* :class:`AutoConfig`, :class:`AutoModelForAudioClassification`, :class:`AutoFeatureExtractor` —
  ``from_pretrained`` like ``transformers``, for a directory, a weights file or a Hub id.
* :class:`ModelConfig` — the one config type of every architecture.
* Record types (``TypedDict``): :class:`ClassifyRecord`, :class:`ErrorRecord`, :class:`LabelScore`, and
  :data:`Record` (either record).
* :class:`AudioclfError` — the base of every error a user can cause (one-line messages).

Heavy submodules (torch and the models) are imported on first use, so ``import audioclf`` stays cheap; ``dir()``
and ``help()`` still list the whole API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "AutoConfig": "audioclf.auto",
    "AutoModelForAudioClassification": "audioclf.auto",
    "AutoFeatureExtractor": "audioclf.auto",
    "ModelConfig": "audioclf.config",
    "AudioclfError": "audioclf.errors",
    "Classifier": "audioclf.engine.classify",
    "classify": "audioclf.engine.classify",
    "ClassifyRecord": "audioclf.engine.records",
    "ErrorRecord": "audioclf.engine.records",
    "LabelScore": "audioclf.engine.records",
    "Record": "audioclf.engine.records",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from audioclf.auto import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification
    from audioclf.config import ModelConfig
    from audioclf.engine.classify import Classifier, classify
    from audioclf.engine.records import ClassifyRecord, ErrorRecord, LabelScore, Record
    from audioclf.errors import AudioclfError


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'audioclf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    """The public API and the module's own dunder attributes (not the helpers this file imports)."""
    return sorted({name for name in globals() if name.startswith("__")} | set(__all__))
