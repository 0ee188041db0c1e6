"""Error types. Every error the user can cause is an :class:`AudioclfError` with a one-line message.

The library speaks of its own arguments (``batch_size must be 1 or more``); the command line maps them to its
flags (``--batch-size must be 1 or more``) and to exit codes in one place (:mod:`audioclf.cli._errors`). The CLI
prints ``error: <message>`` for these and never a traceback; the Python API raises them as they are.
"""

from __future__ import annotations


class AudioclfError(Exception):
    """Base class: a problem with the user's input, files or environment, explained in one line."""

    def __init__(self, message: str) -> None:
        # Keep messages on one line whatever the caller passed in.
        super().__init__(" ".join(str(message).split()))


class OptionError(AudioclfError, ValueError):
    """An argument value that cannot work: ``option`` is the argument's name (``batch_size``), ``detail`` what is
    wrong with it (``must be 1 or more, got 0``). ``str()`` gives ``"<option> <detail>"``; the CLI substitutes the
    flag for the name (:meth:`for_flag`)."""

    def __init__(self, option: str, detail: str) -> None:
        self.option = option
        self.detail = " ".join(str(detail).split())
        super().__init__(f"{option} {self.detail}")

    def for_flag(self, flag: str) -> str:
        """The message as the command line says it, naming ``flag`` instead of the argument."""
        return f"{flag} {self.detail}"


class ConfigError(AudioclfError, ValueError):
    """A config.json that cannot describe a supported model."""


class ModelError(AudioclfError, RuntimeError):
    """A model asked for something it cannot do: training a model optimized for inference, SpecAugment spans longer
    than the input."""


class CheckpointError(AudioclfError, OSError):
    """Weights that are missing, unreadable or do not fit the model."""


class TFCheckpointError(CheckpointError):
    """A TensorFlow checkpoint (tf_model.h5 or tensor bundle) that cannot be read or mapped."""


class AudioError(AudioclfError):
    """Audio that cannot be decoded or featurized."""


class DataError(AudioclfError):
    """A training or evaluation data set that cannot be used (too few labels, a label without clips, a bad
    manifest)."""


class OutputError(AudioclfError, OSError):
    """An output that cannot be written: a directory where a file is wanted, a missing or read-only directory, a
    full disk, or another process writing the same file."""


class HubError(AudioclfError, OSError):
    """A model that cannot be fetched from, or found in the cache of, the Hugging Face Hub."""


class RepoNotFoundError(HubError):
    """The repository does not exist, or is private and no valid token was given."""


class RevisionNotFoundError(HubError):
    """The repository exists but the branch, tag or commit does not."""


class EntryNotFoundError(HubError):
    """A file the model needs is not in the repository (at that revision)."""


class NotCachedError(HubError):
    """Offline (``HF_HUB_OFFLINE``, ``local_files_only``, or the Hub unreachable) and the files are not cached; or a
    cache command names a model or revision the cache does not hold."""


class HubConnectionError(HubError):
    """The Hub could not be reached, or a transfer broke off."""
