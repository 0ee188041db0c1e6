"""The training recipe: every option of ``audioclf train``, its default, and why.

The defaults follow what people fine-tune audio classifiers with (``transformers``' ``run_audio_classification.py``
and ``Trainer``), so a user need not touch them:

* **start point**: ``model`` (anything ``from_pretrained`` takes; default the bundled ``audioclf/default``) gets a new
  ``classifier`` layer sized to the labels; ``config`` (a ``config.json`` or a ``model_type`` name) trains from
  scratch instead;
* **regularisation**: whatever the model's config says (dropouts, LayerDrop, SpecAugment) — nothing is changed;
* **freezing**: the conv feature encoder is frozen when fine-tuning (``freeze_feature_encoder``, as the transformers
  recipe does) and trained from scratch; ``freeze_base`` trains the head alone (a linear probe);
* **optimiser**: AdamW with ``Trainer``'s defaults (betas 0.9/0.999, eps 1e-8, weight decay 0, none on biases and
  norm weights); learning rate 3e-5 for fine-tuning a pretrained model of Hub size (the transformers recipe), 1e-3
  from scratch, for the head alone, or for a small model (under ``SMALL_MODEL_PARAMETERS``, such as the bundled
  one, which learns far too slowly at 3e-5); linear warm-up over
  ``warmup_ratio`` of the steps, then linear decay to 0 (``Trainer``'s default schedule); gradients clipped to norm
  ``max_grad_norm``; ``accumulate`` batches per step;
* **data**: training clips longer than ``max_seconds`` are cut to a random crop of that length each epoch
  (validation uses whole clips, chunked as ``classify`` does); each training clip is augmented with probability
  ``augment`` (random gain, background noise at a random SNR, time shift); ``balanced`` draws every label equally
  often; ``label_smoothing`` for the cross entropy;
* **speed**: the output of a frozen part (the conv encoder, or the whole base model with ``freeze_base``) is computed
  once per clip and kept within ``cache_mb`` when the clip reaches it unchanged (not cropped, not augmented);
  decoded training audio is kept within ``audio_cache_mb``; clips are decoded ahead on ``workers`` threads; batches
  group clips of similar length; bf16 autocast on accelerators that have it (``precision``).

Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from audioclf.errors import OptionError

__all__ = ["FINE_TUNE_LR", "PRECISIONS", "SCRATCH_LR", "SMALL_MODEL_PARAMETERS", "Recipe", "RUNTIME_FIELDS"]

#: learning rate when fine-tuning a pretrained model, and when training from scratch, the head alone or a small model
FINE_TUNE_LR = 3e-5
SCRATCH_LR = 1e-3
#: below this many parameters a start model is fine-tuned at SCRATCH_LR (published checkpoints have 20 M or more)
SMALL_MODEL_PARAMETERS = 10_000_000
PRECISIONS = ("auto", "float32", "bfloat16")
#: fields that change how fast a run goes, not what it computes: a resumed run may change them
RUNTIME_FIELDS = ("device", "threads", "workers", "cache_mb", "audio_cache_mb", "keep_checkpoints", "checkpoint_steps",
                  "cache_dir")


@dataclass
class Recipe:
    """Everything that shapes a training run besides the data and the output directory.

    Attributes:
        model: start checkpoint (directory, Hub id, ``audioclf/default``); a new head replaces its classifier.
        revision, token, cache_dir: Hub revision, access token and cache folder of a start model given by Hub id
            (the token is never written to the report).
        config: train from scratch with this config (a ``config.json`` path or a ``model_type`` name).
        seed: every random draw (initialisation, order, crops, augmentation, dropout) derives from it.
        epochs: passes over the training clips.
        batch_size: clips per batch.
        accumulate: batches per optimiser step (gradient accumulation).
        lr: peak learning rate; None: 3e-5 for fine-tuning, 1e-3 from scratch, with ``freeze_base`` or for a start
            model under ``SMALL_MODEL_PARAMETERS``.
        weight_decay, adam_beta1, adam_beta2, adam_epsilon: AdamW's settings (``Trainer``'s defaults).
        warmup_ratio: fraction of the optimiser steps with a linear warm-up; then linear decay to 0.
        max_grad_norm: clip the gradient norm to this (0: no clipping).
        label_smoothing: cross-entropy label smoothing.
        val_split: fraction of each label's clips held out for validation (stratified, seeded) when no validation
            data is given; 0: no validation (the last epoch's model is kept).
        max_seconds: training clips longer than this are randomly cropped to it each epoch.
        augment: probability that a training clip is augmented in an epoch (0: never).
        gain_db: augmentation gain range, ±dB.
        snr_db: augmentation background-noise SNR range ``(low, high)`` in dB.
        shift_seconds: augmentation time shift range, ± seconds.
        balanced: sample every label equally often (with replacement) instead of every clip once per epoch.
        patience: stop after this many epochs without a better validation accuracy (0: never stop early).
        freeze_feature_encoder: no gradients for the conv feature encoder; None: frozen when fine-tuning.
        freeze_base: train the head alone; the base model runs in eval mode (no dropout), its outputs cached.
        gradient_checkpointing: recompute transformer layers in the backward pass (less memory, more time).
        channels: channel policy for multi-channel files: ``mix``, ``first`` or a 0-based channel number.
        chunk: validation clips longer than this many seconds are classified in chunks, as ``classify`` does.
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``/``cuda:N``, ``mps``.
        precision: ``auto`` (bf16 autocast where the accelerator supports it, else float32), ``float32``,
            ``bfloat16``.
        threads: torch CPU threads; None: torch's default.
        workers: decoding threads; None: ``min(4, CPUs)``.
        cache_mb: memory for the cached outputs of frozen parts.
        audio_cache_mb: memory for decoded training audio (the rest is decoded again each epoch).
        checkpoint_steps: also write a checkpoint every this many optimiser steps (0: after each epoch only).
        keep_checkpoints: keep the ``checkpoints/`` folder after a successful run.
    """

    model: str | None = None
    revision: str | None = None
    token: str | bool | None = dataclasses.field(default=None, repr=False)
    cache_dir: str | None = None
    config: str | None = None
    seed: int = 0
    epochs: int = 10
    batch_size: int = 32
    accumulate: int = 1
    lr: float | None = None
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    label_smoothing: float = 0.0
    val_split: float = 0.1
    max_seconds: float = 5.0
    augment: float = 0.5
    gain_db: float = 6.0
    snr_db: tuple[float, float] = (10.0, 40.0)
    shift_seconds: float = 0.1
    balanced: bool = False
    patience: int = 0
    freeze_feature_encoder: bool | None = None
    freeze_base: bool = False
    gradient_checkpointing: bool = False
    channels: str = "mix"
    chunk: float = 30.0
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    workers: int | None = None
    cache_mb: float = 2048.0
    audio_cache_mb: float = 1024.0
    checkpoint_steps: int = 0
    keep_checkpoints: bool = False

    # -- derived ------------------------------------------------------------------------------------------------------
    @property
    def from_scratch(self) -> bool:
        return self.config is not None

    @property
    def hub_options(self) -> dict[str, Any]:
        """The Hub keyword arguments of ``from_pretrained`` for the start model."""
        return {"revision": self.revision, "token": self.token, "cache_dir": self.cache_dir}

    @property
    def start_model(self) -> str | None:
        """The checkpoint to start from (None when training from scratch)."""
        if self.from_scratch:
            return None
        from audioclf.auto import DEFAULT_MODEL_NAME

        return self.model or DEFAULT_MODEL_NAME

    @property
    def freezes_feature_encoder(self) -> bool:
        if self.freeze_feature_encoder is None:
            return not self.from_scratch
        return self.freeze_feature_encoder

    def learning_rate(self, parameters: int) -> float:
        """The peak learning rate for a model of ``parameters`` parameters (``lr`` when given)."""
        if self.lr is not None:
            return self.lr
        small = parameters < SMALL_MODEL_PARAMETERS
        return SCRATCH_LR if self.from_scratch or self.freeze_base or small else FINE_TUNE_LR

    # -- checks -------------------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`OptionError` (naming the field) for values that cannot work with any data or model."""
        _require(not (self.model and self.config), "config", "cannot be combined with --model (start from one or the "
                                                             "other)")
        for name in ("epochs", "batch_size", "accumulate"):
            value = getattr(self, name)
            _require(_integer(value) and value >= 1, name, f"must be 1 or more, got {value}")
        _require(_integer(self.seed) and self.seed >= 0, "seed", f"must be 0 or more, got {self.seed}")
        _require(self.lr is None or (_real(self.lr) and self.lr > 0), "lr", f"must be a positive number, got {self.lr}")
        for name in ("weight_decay", "adam_epsilon", "max_grad_norm", "label_smoothing", "gain_db", "shift_seconds"):
            value = getattr(self, name)
            _require(_real(value) and value >= 0, name, f"must be 0 or more, got {value}")
        for name in ("adam_beta1", "adam_beta2", "augment"):
            value = getattr(self, name)
            _require(_real(value) and 0 <= value <= 1, name, f"must be between 0 and 1, got {value}")
        _require(_real(self.warmup_ratio) and 0 <= self.warmup_ratio <= 1, "warmup_ratio",
                 f"must be between 0 and 1, got {self.warmup_ratio}")
        _require(self.label_smoothing < 1, "label_smoothing", f"must be below 1, got {self.label_smoothing}")
        _require(_real(self.val_split) and 0 <= self.val_split <= 0.5, "val_split",
                 f"must be between 0 and 0.5, got {self.val_split}")
        for name in ("max_seconds", "chunk"):
            value = getattr(self, name)
            _require(_real(value) and value > 0, name, f"must be a positive number of seconds, got {value}")
        low, high = self.snr_db
        _require(_real(low) and _real(high) and low <= high, "snr_db", f"must be LOW,HIGH with LOW <= HIGH, got "
                                                                         f"{low},{high}")
        _require(_integer(self.patience) and self.patience >= 0, "patience", f"must be 0 or more, got {self.patience}")
        _require(str(self.channels) != "each", "channels", "each is not supported for training (use mix, first or "
                                                           "a channel number)")
        _require(self.precision in PRECISIONS, "precision",
                 f"must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        _require(self.threads is None or (_integer(self.threads) and self.threads >= 1), "threads",
                 f"must be 1 or more, got {self.threads}")
        _require(self.workers is None or (_integer(self.workers) and self.workers >= 1), "workers",
                 f"must be 1 or more, got {self.workers}")
        for name in ("cache_mb", "audio_cache_mb"):
            value = getattr(self, name)
            _require(_real(value) and value >= 0, name, f"must be 0 or more, got {value}")
        _require(_integer(self.checkpoint_steps) and self.checkpoint_steps >= 0, "checkpoint_steps",
                 f"must be 0 or more, got {self.checkpoint_steps}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, plus the resolved learning rate and freezing."""
        values = dataclasses.asdict(self)
        values.pop("token")  # a secret: never in a report or a checkpoint
        values["snr_db"] = list(self.snr_db)
        values["resolved"] = {"start_model": self.start_model, "freeze_feature_encoder": self.freezes_feature_encoder}
        return values

    def result_fields(self) -> dict[str, Any]:
        """The fields that decide what a run computes (all but :data:`RUNTIME_FIELDS`), for checking a resume."""
        values = self.to_dict()
        for name in RUNTIME_FIELDS:
            values.pop(name)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Recipe":
        fields = {f.name for f in dataclasses.fields(cls)}
        kept = {key: value for key, value in values.items() if key in fields}
        if "snr_db" in kept:
            kept["snr_db"] = tuple(kept["snr_db"])
        return cls(**kept)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require(condition: bool, option: str, detail: str) -> None:
    if not condition:
        raise OptionError(option, detail)
