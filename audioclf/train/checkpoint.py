"""Checkpoints of a training run, for ``--resume``: everything needed to continue exactly where a run stopped.

A run keeps ``<output>/checkpoints/``:

* ``last.pt`` — written atomically after every epoch (and every ``checkpoint_steps`` optimiser steps): the model,
  optimiser and scheduler states, the position (epochs done, batches done in the current epoch, optimiser steps),
  the random states (python, numpy's global one, SpecAugment's own, torch's CPU and CUDA ones), the per-epoch
  history, the best result so far and the early-stopping count, the recipe and a fingerprint of the data;
* ``best.safetensors`` — the weights of the best epoch so far (by validation accuracy, then macro-F1).

A process killed at any moment (``kill -9`` included) leaves the previous ``last.pt`` whole: the next one replaces it
only once complete. Every random draw of the training loop either comes from these saved states or is derived from
``(seed, epoch, clip)`` (:mod:`audioclf.train.sampling`), so a resumed run ends with the same weights as an
uninterrupted one (same seed and threads, on the CPU). The folder is removed after a successful run unless
``keep_checkpoints``.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audioclf.errors import DataError
from audioclf.fileio import atomic_path

__all__ = ["CHECKPOINT_DIR", "CheckpointState", "capture_rng", "data_fingerprint", "load_checkpoint", "restore_rng",
           "save_checkpoint"]

CHECKPOINT_DIR = "checkpoints"
LAST_NAME = "last.pt"
BEST_NAME = "best.safetensors"
FORMAT = 1


@dataclass
class CheckpointState:
    """The position and bookkeeping of a run (the tensors' states travel beside it)."""

    epochs_done: int = 0
    batches_done: int = 0  # in the epoch after ``epochs_done``
    steps_done: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    epochs_without_improvement: int = 0
    stopped_early: bool = False
    train_seconds: float = 0.0
    #: the current epoch's running sums (``loss``, ``correct``, ``seen``) while it is under way
    running: dict[str, Any] | None = None


def data_fingerprint(train: list[Any], validation: list[Any]) -> str:
    """A digest of the training and validation clips (path and label, in order)."""
    text = json.dumps([[[c.path, c.label] for c in train], [[c.path, c.label] for c in validation]])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def capture_rng(mask_random_state: np.random.RandomState | None) -> dict[str, Any]:
    """Every random state the training loop draws from (numpy's as plain lists, so that the checkpoint loads with
    ``torch.load(weights_only=True)``)."""
    import torch

    states: dict[str, Any] = {"python": random.getstate(), "numpy": _plain(np.random.get_state()),
                              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if mask_random_state is not None:
        states["spec_augment"] = _plain(mask_random_state.get_state())
    return states


def restore_rng(states: dict[str, Any], mask_random_state: np.random.RandomState | None) -> None:
    """Put back the states :func:`capture_rng` took."""
    import torch

    random.setstate(states["python"])
    np.random.set_state(_numpy(states["numpy"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if mask_random_state is not None and "spec_augment" in states:
        mask_random_state.set_state(_numpy(states["spec_augment"]))


def _plain(state: tuple) -> list:
    name, keys, position, has_gauss, cached = state
    return [name, keys.tolist(), int(position), int(has_gauss), float(cached)]


def _numpy(state: list) -> tuple:
    name, keys, position, has_gauss, cached = state
    return name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached


def save_checkpoint(directory: Path, *, state: CheckpointState, model: Any, optimizer: Any, scheduler: Any,
                    rng: dict[str, Any], recipe: dict[str, Any], fingerprint: str) -> Path:
    """Write ``directory/last.pt`` atomically; returns its path."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "state": state.__dict__, "model": model.state_dict(),
               "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng,
               "recipe": recipe, "fingerprint": fingerprint}
    target = directory / LAST_NAME
    with atomic_path(target) as temporary:
        torch.save(payload, temporary)
    return target


def load_checkpoint(directory: Path) -> dict[str, Any]:
    """The content of ``directory/last.pt``; a one-line error when there is none or it cannot be read."""
    import torch

    path = directory / LAST_NAME
    if not path.is_file():
        raise DataError(f"--resume: no checkpoint to resume from ({path} does not exist)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged file: torch raises many types
        raise DataError(f"--resume: cannot read {path} ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"--resume: {path} is not a checkpoint of this audioclf version")
    payload["state"] = CheckpointState(**payload["state"])
    return payload
