"""audioclf: audio classification with plain-PyTorch Wav2Vec2, HuBERT, SEW, SEW-D, UniSpeech, UniSpeechSat, AST
and Whisper models.

Heavy submodules (torch and the models) are imported on first use, so ``import audioclf`` stays cheap.
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
    "classify": "audioclf.engine.classify",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from audioclf.auto import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification
    from audioclf.config import ModelConfig
    from audioclf.errors import AudioclfError
    from audioclf.engine.classify import classify


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'audioclf' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
