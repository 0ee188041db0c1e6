"""``audioclf train``: a thin command-line layer over :func:`audioclf.train.loop.train`.

Imports neither torch nor the training package until the command runs. Progress goes to stderr: a progress bar with
the running loss and accuracy on a terminal, one line per epoch otherwise.
"""

from __future__ import annotations

import functools
import inspect
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from audioclf.cli._errors import handles_errors
from audioclf.cli._options import CacheDir, Revision, Token, examples
from audioclf.errors import OptionError

ENGINES = ("local", "ray")

EXAMPLES = examples(
    ("audioclf train my-sounds/ -o my-model", "one folder per label; fine-tunes the built-in model"),
    ("audioclf train clips.csv -o my-model -m superb/wav2vec2-base-superb-ks --epochs 5", "a manifest, a Hub model"),
    ("audioclf train my-sounds/ -o my-model --resume", "continue a stopped run"),
    ("audioclf train s3data/ -o s3://bucket/model --engine ray --address auto --workers 4", "on a Ray cluster"),
)


@handles_errors()
def train(
    data: Annotated[Path, typer.Argument(help="A directory with one folder per label, or a .csv/.tsv/.jsonl "
                                              "manifest with path,label.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for the trained model, its report and "
                                         "pictures.", show_default=False)],
    validation: Annotated[Optional[Path], typer.Option(help="Validation data (same layouts; default: --val-split "
                                                       "of DATA).", show_default=False)] = None,
    val_split: Annotated[float, typer.Option(help="Fraction of each label's clips held out for validation "
                                             "(stratified, seeded; 0: none).")] = 0.1,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Start from this model (directory, Hub id; "
                                                 "default: the built-in model); its head is replaced.",
                                                 show_default=False)] = None,
    revision: Revision = None,
    token: Token = None,
    cache_dir: CacheDir = None,
    config: Annotated[Optional[str], typer.Option(help="Train from scratch: a config.json or a model type "
                                                  "(wav2vec2, hubert, ...).", show_default=False)] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the training clips.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Clips per batch.")] = 32,
    accumulate: Annotated[int, typer.Option(help="Batches per optimiser step (gradient accumulation).")] = 1,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (default: 3e-5 fine-tuning a model of 10 M "
                                                "parameters or more; 1e-3 for smaller ones, from scratch or with "
                                                "--freeze-base).", show_default=False)] = None,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay (not on biases and norms).")] = 0.0,
    warmup_ratio: Annotated[float, typer.Option(help="Fraction of the steps with linear warm-up, then linear "
                                                "decay to 0.")] = 0.1,
    max_grad_norm: Annotated[float, typer.Option(help="Clip the gradient norm to this (0: off).")] = 1.0,
    label_smoothing: Annotated[float, typer.Option(help="Cross-entropy label smoothing.")] = 0.0,
    max_seconds: Annotated[float, typer.Option(help="Training clips longer than this are randomly cropped to it.")] = 5.0,
    augment: Annotated[float, typer.Option(help="Probability that a training clip gets random gain, noise and "
                                           "shift in an epoch (0: off).")] = 0.5,
    gain_db: Annotated[float, typer.Option(help="Augmentation gain range, +-dB.")] = 6.0,
    snr_db: Annotated[str, typer.Option(help="Augmentation noise SNR range LOW,HIGH in dB.")] = "10,40",
    shift_seconds: Annotated[float, typer.Option(help="Augmentation time shift range, +- seconds.")] = 0.1,
    balanced: Annotated[bool, typer.Option("--balanced", help="Draw every label equally often.")] = False,
    patience: Annotated[int, typer.Option(help="Stop after this many epochs without better validation accuracy "
                                          "(0: never).")] = 0,
    freeze_feature_encoder: Annotated[Optional[bool], typer.Option(
        "--freeze-feature-encoder/--train-feature-encoder", help="Freeze the conv feature encoder (default: frozen "
        "when fine-tuning, trained from scratch).", show_default=False)] = None,
    freeze_base: Annotated[bool, typer.Option("--freeze-base", help="Train the head only (the base model runs in "
                                              "eval mode, its outputs cached).")] = False,
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing", help="Less memory, more "
                                                         "time.")] = False,
    channels: Annotated[str, typer.Option(help="mix | first | N (0-based) for multi-channel files.")] = "mix",
    chunk: Annotated[float, typer.Option(help="Validation clips longer than this are classified in chunks.")] = 30.0,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | mps.")] = "auto",
    precision: Annotated[str, typer.Option(help="auto (bf16 autocast where the accelerator has it) | float32 | "
                                           "bfloat16.")] = "auto",
    threads: Annotated[Optional[int], typer.Option(help="Torch CPU threads (default: torch's choice).",
                                                   show_default=False)] = None,
    workers: Annotated[Optional[int], typer.Option(help="Decoding threads (default: up to 4); --engine ray: "
                                                   "data-parallel training workers (default: one per GPU, else one "
                                                   "per node).", show_default=False)] = None,
    engine: Annotated[str, typer.Option(help="local | ray (Ray Train: --workers DDP processes on a Ray "
                                        "cluster).")] = "local",
    address: Annotated[Optional[str], typer.Option(help="--engine ray: cluster address (host:port, auto; "
                                                   "default: RAY_ADDRESS, else a local Ray).",
                                                   show_default=False)] = None,
    cache_mb: Annotated[float, typer.Option(help="Memory for cached outputs of frozen parts.")] = 2048.0,
    audio_cache_mb: Annotated[float, typer.Option(help="Memory for decoded training audio.")] = 1024.0,
    checkpoint_steps: Annotated[int, typer.Option(help="Also checkpoint every N optimiser steps (0: per epoch "
                                                  "only).")] = 0,
    keep_checkpoints: Annotated[bool, typer.Option("--keep-checkpoints", help="Keep OUTPUT/checkpoints after "
                                                   "success.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the interrupted run in --output (same "
                                         "command, same data).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start over in a non-empty --output (removes its "
                                        "checkpoints and model files).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or log lines on stderr.")] = False,
) -> None:
    """Train a classifier for your own labels and write a transformers checkpoint.

    DATA is a directory with one sub-directory per label (DATA/<label>/*.wav, any format classify reads, any rate
    or channels) or a manifest (.csv/.tsv with a header naming path and label, or .jsonl objects with "path" and
    "label"; relative paths resolve against the manifest). Labels are the sorted label names. Files that cannot be
    decoded, are empty or too short are skipped and named on stderr and in the report.

    The start model (--model, default the built-in model) gets a new classifier layer sized to the labels;
    --config trains from scratch. The recipe follows transformers' run_audio_classification.py: the model's own
    dropouts, LayerDrop and SpecAugment; frozen conv feature encoder when fine-tuning; AdamW with linear warm-up
    and decay; gradient clipping; random crops of --max-seconds; plus waveform augmentation. Every epoch is
    validated (accuracy, macro-F1) through the classify engine on whole clips; the best epoch is kept.

    OUTPUT gets config.json, model.safetensors and preprocessor_config.json (loadable by transformers and by
    audioclf classify --model OUTPUT), training_report.json, training_curves.png and confusion_matrix.png (with
    pip install 'audioclf[plot]'). OUTPUT/checkpoints holds a checkpoint after every epoch; after an interruption
    (Ctrl-C, kill -9) the same command with --resume continues from it and ends with the same weights as an
    uninterrupted run (same seed and --threads on the CPU). It is removed after success unless --keep-checkpoints.

    --engine ray trains on a Ray cluster (pip install 'audioclf[ray]') with --workers data-parallel processes
    (PyTorch DDP; each decodes its share of the clips; --batch-size per worker, so a step averages --workers x
    --batch-size clips; --threads CPUs or, with --device cuda, one GPU each). DATA, --validation and OUTPUT must be
    reachable from every node (shared paths or URIs such as s3://); checkpoints go to OUTPUT/checkpoints every
    epoch, a lost worker is restarted from the last one, and --resume continues a stopped run.

    Exit status: 0 trained; 2 usage error or unusable data (fewer than 2 labels, a label without usable clips, an
    OUTPUT that exists without --resume/--force, a model that cannot be loaded); 130 interrupted.
    """
    from audioclf.train.recipe import Recipe

    recipe = Recipe(model=model, revision=revision, token=token, cache_dir=None if cache_dir is None else str(cache_dir),
                    config=config, seed=seed, epochs=epochs, batch_size=batch_size,
                    accumulate=accumulate, lr=lr, weight_decay=weight_decay, warmup_ratio=warmup_ratio,
                    max_grad_norm=max_grad_norm, label_smoothing=label_smoothing, val_split=val_split,
                    max_seconds=max_seconds, augment=augment, gain_db=gain_db, snr_db=_pair(snr_db),
                    shift_seconds=shift_seconds, balanced=balanced, patience=patience,
                    freeze_feature_encoder=freeze_feature_encoder, freeze_base=freeze_base,
                    gradient_checkpointing=gradient_checkpointing, channels=channels, chunk=chunk, device=device,
                    precision=precision, threads=threads, cache_mb=cache_mb,
                    workers=workers if engine == "local" else None,  # --engine ray: counts training workers
                    audio_cache_mb=audio_cache_mb, checkpoint_steps=checkpoint_steps,
                    keep_checkpoints=keep_checkpoints)
    recipe.validate()  # before importing torch: mistakes are reported at once
    if engine not in ENGINES:
        raise OptionError("engine", f"must be one of {', '.join(ENGINES)}, got {engine!r}")
    if address is not None and engine != "ray":
        raise OptionError("address", "needs --engine ray")
    started = time.monotonic()
    if engine == "ray":
        from audioclf.train.ray import import_ray_train, train_on_ray

        import_ray_train()  # before anything slow: say at once when Ray is missing
        events = _Events(quiet, terminal=False)  # rank 0 prints lines, which Ray forwards
        run_training = functools.partial(train_on_ray, address=address, workers=workers, quiet=quiet)
    else:
        from audioclf.train.loop import train as run_training

        events = _Events(quiet, sys.stderr.isatty())
    try:
        result = run_training(data, output, recipe, validation=validation, resume=resume, force=force, events=events)
    except KeyboardInterrupt:
        events.close()
        if not quiet and (output / "checkpoints" / "last.pt").is_file():
            typer.echo(f"the last checkpoint is in {output / 'checkpoints'}: run the same command with --resume to "
                       "continue", err=True)
        raise
    events.close()
    if not quiet:
        report = result.report
        kept = report["kept_epoch"]
        validation_report = report["validation"]
        score = (f"validation accuracy {validation_report['accuracy']:.4f}, macro-F1 "
                 f"{validation_report['macro_f1']:.4f} (epoch {kept})" if validation_report else f"epoch {kept}")
        typer.echo(f"wrote {output}: {score}; {time.monotonic() - started:.1f} s", err=True)


def _pair(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise OptionError("snr_db", f"must be LOW,HIGH in dB, got {text!r}") from None
    return low, high


class _Events:
    """Training events on stderr: a rich progress bar per epoch on a terminal, a line per epoch otherwise."""

    def __init__(self, quiet: bool, terminal: bool) -> None:
        self.quiet = quiet
        self.terminal = terminal and not quiet
        self._bar: Any = None
        self._task: Any = None

    def message(self, text: str) -> None:
        if not self.quiet:
            self._print(text)

    def epoch_started(self, epoch: int, epochs: int, batches: int, done: int) -> None:
        if not self.terminal:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.close()
        self._bar = Progress(TextColumn(f"epoch {epoch}/{epochs}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[figures]}"), TimeRemainingColumn(),
                             console=Console(stderr=True), transient=True)
        self._bar.__enter__()
        self._task = self._bar.add_task("train", total=batches, completed=done, figures="")

    def batch_finished(self, done: int, loss: float, accuracy: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, figures=f"loss {loss:.4f} acc {accuracy:.3f}")

    def validating(self, clips: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, figures=f"validating {clips} clips")

    def epoch_finished(self, row: dict[str, Any]) -> None:
        self.close()
        if self.quiet:
            return
        line = (f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.3f}")
        if "val_accuracy" in row:
            line += f"  validation acc {row['val_accuracy']:.3f} macro-F1 {row['val_macro_f1']:.3f}"
        self._print(f"{line}  lr {row['lr']:.2e}  {row['seconds']:.1f} s")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def _print(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            typer.echo(text, err=True)


# Typer keeps single line breaks of the help text; the docstring's paragraphs are written as wrapped source lines.
train.__doc__ = "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(train.__doc__ or "").split("\n\n"))
