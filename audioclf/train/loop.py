"""The training run behind ``audioclf train``: data → model → epochs → a transformers checkpoint in the output
directory.

Order of work, each failure reported before the next step starts:

1. read the data (:mod:`audioclf.train.dataset`) and the start model's config files; decode every clip once on
   worker threads (unusable clips are skipped and named); check the labels (at least two, each with usable clips);
   split off the validation clips (stratified) unless validation data is given;
2. build the model: the start checkpoint with a new ``classifier`` layer sized to the labels (or a model from a
   config), seeded; freeze what the recipe freezes; AdamW and the linear warm-up/decay schedule;
3. each epoch: clips in a seeded order (:mod:`audioclf.train.sampling`), prepared on worker threads (decoded audio,
   crop, augmentation, featurizer: :mod:`audioclf.train.augment`), batched by length; the frozen part's outputs
   from :mod:`audioclf.train.frozen`; forward, cross entropy, backward, clipping, step; then validation through the
   classify engine (:mod:`audioclf.train.evaluation`), the best epoch's weights kept (highest accuracy, then
   macro-F1, then lowest loss), early stopping, and a
   checkpoint (:mod:`audioclf.train.checkpoint`);
4. the best (or, without validation, the last) weights are written as a transformers checkpoint
   (``config.json``, ``model.safetensors``, ``preprocessor_config.json``), then ``training_report.json`` and the
   pictures (:mod:`audioclf.train.report`).

The library prints nothing: what happens is told to a :class:`TrainingEvents` object (the CLI draws a progress bar or
writes log lines).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audioclf.errors import DataError, OptionError
from audioclf.train.checkpoint import (BEST_NAME, CHECKPOINT_DIR, CheckpointState, capture_rng, data_fingerprint,
                                       load_checkpoint, restore_rng, save_checkpoint)
from audioclf.train.dataset import Clip, read_labelled, stratified_split
from audioclf.train.distributed import SingleProcess
from audioclf.train.recipe import Recipe

__all__ = ["OUTPUT_FILES", "TrainingEvents", "TrainingResult", "train"]

#: what a run writes into the output directory besides ``checkpoints/`` (``--force`` removes exactly these)
OUTPUT_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "training_report.json",
                "training_curves.png", "confusion_matrix.png")


class TrainingEvents:
    """What a run tells its caller; every method does nothing here (override the ones you need)."""

    def message(self, text: str) -> None:
        """A line worth showing (skipped files, the new head, resuming)."""

    def epoch_started(self, epoch: int, epochs: int, batches: int, done: int) -> None:
        """Epoch ``epoch`` (1-based) of ``epochs`` starts, ``batches`` batches long, ``done`` of them already done."""

    def batch_finished(self, done: int, loss: float, accuracy: float) -> None:
        """``done`` batches of the epoch are done; running mean training loss and accuracy."""

    def validating(self, clips: int) -> None:
        """Validation of ``clips`` clips starts."""

    def epoch_finished(self, row: dict[str, Any]) -> None:
        """One epoch's figures (a row of the report's ``epochs``)."""


@dataclass
class TrainingResult:
    output: Path
    report: dict[str, Any]


def train(data: str | os.PathLike[str], output: str | os.PathLike[str], recipe: Recipe | None = None, *,
          validation: str | os.PathLike[str] | None = None, resume: bool = False, force: bool = False,
          events: TrainingEvents | None = None, parallel: SingleProcess | None = None) -> TrainingResult:
    """Train a classifier on ``data`` (see :mod:`audioclf.train.dataset` for the layouts) and write it to
    ``output``. ``validation``: validation data (default: a stratified split of ``data``); ``resume``: continue the
    interrupted run in ``output``; ``force``: start over in a non-empty ``output``. Raises a one-line
    :class:`~audioclf.errors.AudioclfError` for bad options, data or models, before any training.

    ``parallel``: this process's part in a data-parallel run (:mod:`audioclf.train.distributed`); its ``restore``
    then decides whether to resume, and only rank 0 writes ``output``."""
    recipe = recipe or Recipe()
    recipe.validate()
    parallel = parallel or SingleProcess()
    run = _Run(recipe, Path(output), events or TrainingEvents(), parallel)
    if parallel.local:
        run.prepare_output(resume, force)
    else:
        resume = parallel.restore(run.checkpoints)
    run.load_data(Path(data), None if validation is None else Path(validation))
    run.build(resume)
    run.fit()
    return run.finish()


class _Run:
    """One training run's state, step by step (see the module docstring)."""

    def __init__(self, recipe: Recipe, output: Path, events: TrainingEvents, parallel: SingleProcess) -> None:
        self.recipe = recipe
        self.parallel = parallel
        self.output = output
        self.checkpoints = output / CHECKPOINT_DIR
        self.events = events
        self.started = time.monotonic()
        self.timings: dict[str, float] = {}
        self.workers = recipe.workers or max(1, min(4, os.cpu_count() or 1))

    # -- 0. output ----------------------------------------------------------------------------------------------------
    def prepare_output(self, resume: bool, force: bool) -> None:
        output = self.output
        if resume and force:
            raise OptionError("resume", "cannot be combined with --force")
        if output.exists() and not output.is_dir():
            raise OptionError("output", f"{output} exists and is not a directory")
        occupied = output.is_dir() and any(output.iterdir())
        if resume:
            if not (self.checkpoints / "last.pt").is_file():
                raise DataError(f"--resume: {output} holds no run to resume (no {CHECKPOINT_DIR}/last.pt)")
        elif occupied and not force:
            raise OptionError("output", f"{output} exists and is not empty: pass --resume to continue its run or "
                                        "--force to start over")
        elif occupied:
            shutil.rmtree(self.checkpoints, ignore_errors=True)
            for name in OUTPUT_FILES:
                (output / name).unlink(missing_ok=True)

    # -- 1. data ------------------------------------------------------------------------------------------------------
    def load_data(self, data: Path, validation: Path | None) -> None:
        from audioclf.data.segments import Segmenter

        recipe, events = self.recipe, self.events
        started = time.monotonic()
        train_data = read_labelled(data)
        val_data = read_labelled(validation) if validation is not None else None
        self.labels = train_data.labels
        if len(self.labels) < 2:
            named = f" ({self.labels[0]})" if self.labels else ""
            raise DataError(f"{data} has {len(self.labels)} label(s){named}: training needs at least 2")
        if val_data is not None:
            unknown = sorted(set(val_data.labels) - set(self.labels))
            if unknown:
                raise DataError(f"{validation} has label(s) the training data lacks: {', '.join(unknown)}")
        for ignored in (train_data.ignored, val_data.ignored if val_data else []):
            if ignored:
                events.message(f"ignored {len(ignored)} audio file(s) outside the label folders, e.g. {ignored[0]}")

        self.config, self.featurizer, self.start_directory = self._start_configs()
        segmenter = Segmenter.for_model(self.config, self.featurizer, channels=recipe.channels, chunk=recipe.chunk)
        self.segmenter = dataclasses.replace(segmenter, min_samples=self._min_samples(segmenter.min_samples))

        def skipped(clip: Clip, reason: str) -> None:
            events.message(f"skipped {clip.path}: {reason}")

        scanned = self.parallel.scan(train_data.clips, self.segmenter, workers=self.workers,
                       budget_bytes=recipe.audio_cache_mb * 2 ** 20, on_skip=skipped)
        self.skipped = list(scanned.skipped)
        usable = {clip.label for clip in scanned.clips}
        empty = [label for label in self.labels if label not in usable]
        if empty:
            raise DataError(f"label(s) without usable clips: {', '.join(empty)} (see the skipped files above)")
        if val_data is not None:
            val_scan = self.parallel.scan(val_data.clips, self.segmenter, workers=self.workers, budget_bytes=0, on_skip=skipped)
            self.skipped += val_scan.skipped
            self.train_scan, self.val_clips = scanned, val_scan.clips
        else:
            train_clips, self.val_clips = stratified_split(scanned.clips, recipe.val_split, recipe.seed)
            kept = {id(clip) for clip in train_clips}
            keep = [k for k, clip in enumerate(scanned.clips) if id(clip) in kept]
            self.train_scan = dataclasses.replace(scanned, clips=[scanned.clips[k] for k in keep],
                                                  lengths=scanned.lengths[keep], audio=[scanned.audio[k] for k in keep])
        if self.skipped:
            events.message(f"skipped {len(self.skipped)} unusable clip(s)")
        self.timings["scan_seconds"] = time.monotonic() - started

    def _start_configs(self) -> tuple[Any, Any, Path | None]:
        """The config and featurizer to train with, and the start model's directory (None from scratch)."""
        from audioclf.audio.features import FeatureExtractorConfig, load_featurizer
        from audioclf.auto import AutoConfig, resolve_source
        from audioclf.checkpoints.files import PREPROCESSOR_CONFIG_NAME
        from audioclf.config import SUPPORTED_MODEL_TYPES, ModelConfig

        recipe = self.recipe
        if not recipe.from_scratch:
            source = resolve_source(recipe.start_model, weights=False, hub=recipe.hub_options)
            return AutoConfig.from_pretrained(source.directory), load_featurizer(source.directory), source.directory
        path = Path(recipe.config)
        if path.exists():
            config = ModelConfig.from_pretrained(path)
            directory = path if path.is_dir() else path.parent
            if (directory / PREPROCESSOR_CONFIG_NAME).is_file():
                return config, load_featurizer(directory), None
        elif recipe.config in SUPPORTED_MODEL_TYPES:
            config = ModelConfig(model_type=recipe.config)
        else:
            raise OptionError("config", f"{recipe.config!r} is neither a config file nor a model type "
                                        f"({', '.join(SUPPORTED_MODEL_TYPES)})")
        from audioclf.audio.features import FeatureExtractor

        masked = getattr(config, "feat_extract_norm", None) == "layer"
        return config, FeatureExtractor(FeatureExtractorConfig(return_attention_mask=masked)), None

    def _min_samples(self, receptive_field: int) -> int:
        """The shortest usable clip: one model frame, and enough frames for SpecAugment's time spans when the
        model applies them in training."""
        config = self.config
        masks = (getattr(config, "apply_spec_augment", False) and getattr(config, "mask_time_prob", 0) > 0
                 and not self.recipe.freeze_base)
        if not masks:
            return receptive_field
        hop = math.prod(getattr(config, "conv_stride", [1]))
        return receptive_field + (config.mask_time_length - 1) * hop

    # -- 2. model -----------------------------------------------------------------------------------------------------
    def build(self, resume: bool) -> None:
        import torch

        from audioclf.engine.runner import resolve_device
        from audioclf.train.frozen import FrozenPart

        recipe = self.recipe
        self.fingerprint = data_fingerprint(self.train_scan.clips, self.val_clips)
        payload = load_checkpoint(self.checkpoints) if resume else None
        if payload is not None:
            self._check_resumable(payload)
        if recipe.threads is not None:
            torch.set_num_threads(recipe.threads)
        self.device = resolve_device(recipe.device)
        precision = recipe.precision
        if precision == "auto":
            precision = ("bfloat16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported()
                         else "float32")
        self.autocast_dtype = torch.bfloat16 if precision == "bfloat16" else None

        torch.manual_seed(recipe.seed)
        self.model = self._new_model()
        model = self.model.to(self.device)
        model.config.problem_type = "single_label_classification"
        model.config.architectures = [type(model).__name__]
        if recipe.freeze_base:
            model.freeze_base_model()
        elif recipe.freezes_feature_encoder and getattr(model.base_model, "feature_extractor", None) is not None:
            model.freeze_feature_encoder()
        if recipe.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        draws = self.parallel.seed(recipe.seed)  # the seed of this process's dropout and masks
        self.mask_random_state = None
        if hasattr(model.base_model, "mask_random_state"):  # SpecAugment draws from its own seeded generator
            self.mask_random_state = model.base_model.mask_random_state = np.random.RandomState(draws)
        np.random.seed(draws)
        if draws != recipe.seed:
            self._seed_draws(draws)
        self.frozen = FrozenPart.for_model(model, recipe.freeze_base, recipe.freezes_feature_encoder,
                                           collate=self.featurizer.collate, device=self.device,
                                           budget_bytes=recipe.cache_mb * 2 ** 20)

        decay, plain = [], []
        for parameter in model.parameters():
            if parameter.requires_grad:
                (decay if parameter.ndim >= 2 else plain).append(parameter)
        groups = [{"params": params, "weight_decay": wd}
                  for params, wd in ((decay, recipe.weight_decay), (plain, 0.0)) if params]
        self.learning_rate = recipe.learning_rate(sum(p.numel() for p in model.parameters()))
        self.optimizer = torch.optim.AdamW(groups, lr=self.learning_rate, betas=(recipe.adam_beta1, recipe.adam_beta2),
                                           eps=recipe.adam_epsilon)
        self.batch_size = recipe.batch_size * self.parallel.world  # clips per batch, all processes together
        self.batches_per_epoch = math.ceil(len(self.train_scan.clips) / self.batch_size)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / recipe.accumulate)
        total = self.steps_per_epoch * recipe.epochs
        warmup = math.ceil(recipe.warmup_ratio * total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, linear_schedule(warmup, total))
        self.state = CheckpointState()
        if payload is not None:
            model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scheduler.load_state_dict(payload["scheduler"])
            restore_rng(payload["rng"], self.mask_random_state)
            self.state = payload["state"]
            if draws != recipe.seed:  # only rank 0's random states are saved: the others draw anew
                self._seed_draws(int(np.random.SeedSequence([draws, self.state.steps_done]).generate_state(1)[0]))
            self.events.message(f"resuming after epoch {self.state.epochs_done}"
                                + (f", batch {self.state.batches_done}" if self.state.batches_done else ""))
        self.trained_model = self.parallel.wrap(model)  # what training forward passes call

    def _seed_draws(self, seed: int) -> None:
        """Seed every generator that dropout, LayerDrop and SpecAugment draw from."""
        import torch

        torch.manual_seed(seed)
        np.random.seed(seed)
        if self.mask_random_state is not None:
            self.mask_random_state.seed(seed)

    def _new_model(self) -> Any:
        """The start model with a new ``classifier`` sized to the labels, or a model built from the config."""
        from torch import nn

        from audioclf.auto import AutoModelForAudioClassification
        from audioclf.models import build_model

        id2label = dict(enumerate(self.labels))
        if self.recipe.from_scratch:
            config = self.config.copy()
            config.id2label = id2label
            return build_model(config)
        model = AutoModelForAudioClassification.from_pretrained(self.recipe.start_model, **self.recipe.hub_options)
        head = getattr(model, "classifier", None)
        if not isinstance(head, nn.Linear):
            raise DataError(f"{self.recipe.start_model}: no classifier layer to replace")
        old = list(model.config.id2label.values())
        model.config.id2label = id2label
        model.classifier = nn.Linear(head.in_features, len(self.labels))
        model.initialise(["classifier.weight", "classifier.bias"])
        shown = ", ".join(old[:6]) + (", …" if len(old) > 6 else "")
        self.events.message(f"new head: classifier {head.in_features} → {len(self.labels)} labels replaces the start "
                            f"model's {head.in_features} → {head.out_features} ({shown})")
        return model

    def _check_resumable(self, payload: dict[str, Any]) -> None:
        saved, now = payload["recipe"], self.recipe.result_fields()
        changed = [f"{key} {saved.get(key)!r} (now {now[key]!r})" for key in now if saved.get(key) != now[key]]
        if changed:
            raise DataError(f"--resume: the run in {self.output} was started with other options: {'; '.join(changed)}")
        if payload["fingerprint"] != self.fingerprint:
            raise DataError(f"--resume: the data differ from those the run in {self.output} started with")

    # -- 3. epochs ----------------------------------------------------------------------------------------------------
    def fit(self) -> None:
        from audioclf.data.prefetch import prefetch_map
        from audioclf.engine.classify import Classifier
        from audioclf.train.augment import ClipTransform
        from audioclf.train.sampling import epoch_batches, epoch_order

        recipe, state, events = self.recipe, self.state, self.events
        rate = self.segmenter.sampling_rate
        self.transform = ClipTransform(max(self.segmenter.min_samples, round(recipe.max_seconds * rate)),
                                       recipe.augment, recipe.gain_db, tuple(recipe.snr_db),
                                       round(recipe.shift_seconds * rate))
        self.label_ids = {label: k for k, label in enumerate(self.labels)}
        clip_labels = np.array([self.label_ids[c.label] for c in self.train_scan.clips], dtype=np.int64)
        lengths = np.minimum(self.train_scan.lengths, self.transform.max_samples)
        self.classifier = None
        if self.val_clips:
            self.classifier = Classifier(self.model, featurizer=self.featurizer, top_k=0, batch_size=recipe.batch_size,
                                         chunk=recipe.chunk, channels=recipe.channels, device=str(self.device),
                                         workers=self.workers)
        train_started = time.monotonic() - state.train_seconds
        for epoch in range(state.epochs_done, recipe.epochs):
            if state.stopped_early:
                break
            epoch_started = time.monotonic()
            order = epoch_order(clip_labels, recipe.seed, epoch, recipe.balanced)
            batches = epoch_batches(order, lengths, self.batch_size, recipe.seed, epoch)
            first = state.batches_done
            events.epoch_started(epoch + 1, recipe.epochs, len(batches), first)
            self.model.train()
            if state.running is None:
                state.running = {"loss": 0.0, "correct": 0, "seen": 0}
            running = state.running
            shares = [self.parallel.share(batch) for batch in batches[first:]]  # this process's part of each
            prepared = prefetch_map(shares, lambda share: self._prepare(share.clips, epoch), workers=self.workers)
            for number, (share, ready, error) in enumerate(prepared, start=first):
                if error is not None:
                    raise error
                loss, correct = self._step(share.clips, *ready, clip_labels, weight=share.weight)
                loss_sum, correct, seen = self.parallel.sum([loss * share.counted, correct if share.counted else 0,
                                                             share.counted])
                running["loss"] += loss_sum
                running["correct"] += int(correct)
                running["seen"] += int(seen)
                if (number + 1) % recipe.accumulate == 0 or number + 1 == len(batches):
                    self._optimizer_step()
                    if (recipe.checkpoint_steps and state.steps_done % recipe.checkpoint_steps == 0
                            and number + 1 < len(batches)):
                        state.batches_done = number + 1
                        state.train_seconds = time.monotonic() - train_started
                        self._save()
                events.batch_finished(number + 1, running["loss"] / running["seen"],
                                      running["correct"] / running["seen"])
            train_seconds = time.monotonic() - epoch_started
            row = {"epoch": epoch + 1, "train_loss": running["loss"] / max(running["seen"], 1),
                   "train_accuracy": running["correct"] / max(running["seen"], 1),
                   "lr": self.scheduler.get_last_lr()[0], "train_seconds": train_seconds}
            state.running = None
            row.update(self._validate(epoch + 1))
            row["seconds"] = time.monotonic() - epoch_started
            state.history.append(row)
            state.epochs_done, state.batches_done = epoch + 1, 0
            state.train_seconds = time.monotonic() - train_started
            events.epoch_finished(row)
            self._save()
            if recipe.patience and state.epochs_without_improvement >= recipe.patience:
                state.stopped_early = True
                events.message(f"stopping early: no better validation accuracy for {recipe.patience} epoch(s)")
                self._save()
        self.timings["train_seconds"] = state.train_seconds

    def _prepare(self, batch: np.ndarray, epoch: int) -> tuple[list[np.ndarray], list[bool], dict[str, np.ndarray]]:
        """On a worker thread: each clip of ``batch`` cropped, augmented and featurized, and the collated arrays."""
        from audioclf.train.sampling import clip_rng

        features, unchanged = [], []
        for clip in batch.tolist():
            wave, same = self.transform.apply(self.train_scan.waveform(clip, self.segmenter),
                                              clip_rng(self.recipe.seed, epoch, clip))
            features.append(self.featurizer.featurize(wave))
            unchanged.append(same)
        return features, unchanged, self.featurizer.collate(features)

    def _step(self, batch: np.ndarray, features: list[np.ndarray], unchanged: list[bool],
              arrays: dict[str, np.ndarray], clip_labels: np.ndarray, weight: float = 1.0) -> tuple[float, int]:
        """Forward and backward of one batch (the mean loss's gradient times ``weight``); returns its mean loss and
        number of correct predictions."""
        import torch
        import torch.nn.functional as F

        inputs = {key: torch.from_numpy(value).to(self.device) for key, value in arrays.items()}
        labels = torch.from_numpy(clip_labels[batch]).to(self.device)
        supplied = contextlib.nullcontext()
        if self.frozen is not None:
            supplied = self.frozen.supplying(self.frozen.batch(self.frozen.outputs(batch, features, unchanged)))
        autocast = (torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype is not None
                    else contextlib.nullcontext())
        with supplied, autocast:
            logits = self.trained_model(**inputs).logits
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.recipe.label_smoothing)
        (loss * weight / self.recipe.accumulate).backward()
        return float(loss.detach()), int((logits.detach().argmax(-1) == labels).sum())

    def _optimizer_step(self) -> None:
        import torch

        if self.recipe.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]],
                                           self.recipe.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.steps_done += 1

    def _validate(self, epoch: int) -> dict[str, Any]:
        """Validation figures of the model as it is now; keeps the best weights and counts epochs without
        improvement."""
        from audioclf.checkpoints.files import save_safetensors

        state = self.state
        if self.classifier is None:
            state.best = {"epoch": epoch}
            return {}
        started = time.monotonic()
        self.events.validating(len(self.val_clips))
        self.model.eval()
        try:
            result = self.parallel.evaluate(self.classifier, self.val_clips)
        finally:
            self.model.train()
        metrics = result.metrics
        row = {"val_loss": result.loss, "val_accuracy": metrics.accuracy, "val_macro_f1": metrics.macro_f1,
               "val_balanced_accuracy": metrics.balanced_accuracy, "val_seconds": time.monotonic() - started}
        best = state.best
        score = (metrics.accuracy, metrics.macro_f1, -result.loss)
        if best is None or score > (best["accuracy"], best["macro_f1"], -best["loss"]):
            state.best = {"epoch": epoch, "accuracy": metrics.accuracy, "macro_f1": metrics.macro_f1,
                          "loss": result.loss, "validation": result.report()}
            state.epochs_without_improvement = 0
            if self.parallel.writer:
                self.checkpoints.mkdir(parents=True, exist_ok=True)
                save_safetensors({k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()},
                                 self.checkpoints / BEST_NAME)
        else:
            state.epochs_without_improvement += 1
        return row

    def _save(self) -> None:
        if self.parallel.writer:
            save_checkpoint(self.checkpoints, state=self.state, model=self.model, optimizer=self.optimizer,
                            scheduler=self.scheduler, rng=capture_rng(self.mask_random_state),
                            recipe=self.recipe.result_fields(), fingerprint=self.fingerprint)
        self.parallel.checkpoint_saved(self.checkpoints, self.state)

    # -- 4. output ----------------------------------------------------------------------------------------------------
    def finish(self) -> TrainingResult:
        from audioclf.checkpoints.files import read_weights_file
        from audioclf.train.report import training_report, write_outputs

        model = self.model
        if self.classifier is not None and (self.checkpoints / BEST_NAME).is_file():
            model.load_state_dict(read_weights_file(self.checkpoints / BEST_NAME))
        model.eval()
        self.timings["total_seconds"] = time.monotonic() - self.started
        report = {**training_report(self), **self.parallel.report_fields()}
        if self.parallel.writer:
            write_outputs(self, report)
        if not self.recipe.keep_checkpoints:
            shutil.rmtree(self.checkpoints, ignore_errors=True)
        return TrainingResult(self.output, report)


def linear_schedule(warmup: int, total: int):
    """``transformers``' default schedule as a ``LambdaLR`` factor: ``step / warmup`` during the warm-up, then a
    linear decay from 1 to 0 at ``total`` steps."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor
