"""Error types. Every error the user can cause is an :class:`AudioclfError` with a one-line message.

The CLI prints ``error: <message>`` for these and never a traceback; the Python API raises them as is.
"""

from __future__ import annotations


class AudioclfError(Exception):
    """Base class: a problem with the user's input, files or environment, explained in one line."""

    def __init__(self, message: str) -> None:
        # Keep messages on one line whatever the caller passed in.
        super().__init__(" ".join(str(message).split()))


class ConfigError(AudioclfError, ValueError):
    """A config.json that cannot describe a supported model."""


class CheckpointError(AudioclfError, OSError):
    """Weights that are missing, unreadable or do not fit the model."""


class AudioError(AudioclfError):
    """Audio that cannot be decoded or featurized."""


class HubError(AudioclfError, OSError):
    """A model that cannot be fetched from, or found in the cache of, the Hugging Face Hub."""


class TFCheckpointError(CheckpointError):
    """A TensorFlow checkpoint (tf_model.h5 or tensor bundle) that cannot be read or mapped."""
