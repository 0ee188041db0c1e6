#!/usr/bin/env python3
"""Wall time per epoch and held-out accuracy of ``audioclf train`` against ``transformers``' ``Trainer``.

Both fine-tune the same start model on the same clips with the same recipe and the same torch threads, each in its
own process:

* ``audioclf`` — ``audioclf train TRAIN.csv --validation VAL.csv --augment 0 ...`` (its defaults otherwise: frozen
  conv encoder with its outputs cached, length-bucketed batches, decoding on worker threads);
* ``trainer``  — what ``transformers/examples/pytorch/audio-classification/run_audio_classification.py`` does, with a
  torch ``Dataset`` in place of ``datasets`` (soundfile decoding, soxr resampling, the script's
  ``random_subsample`` crop, the feature extractor per clip, ``DataCollatorWithPadding`` through
  ``processing_class``), ``freeze_feature_encoder()``, ``Trainer`` evaluating and saving every epoch and keeping the
  best epoch by accuracy.

Shared recipe: AdamW (lr ``--lr``, betas 0.9/0.999, eps 1e-8, no weight decay), linear warm-up over 10 % of the
steps then linear decay, gradient clipping at 1, ``--epochs`` epochs of batches of ``--batch-size``, random crops of
``--max-seconds``, no augmentation, seed ``--seed``. The train / validation split (stratified, 10 %) is made once and
given to both as manifests.

Figures: **s/epoch** — the wall time of the whole training loop (training, the per-epoch validation and checkpoint)
divided by the epochs, model loading and start-up excluded; **held-out acc** — ``audioclf evaluate`` of each
output on clips spoken by voices never used in training. Ratios first: these machines are shared and noisy.

Sizes: ``bundled`` (the built-in model, 0.67 M parameters, as the start point; words synthesized with espeak-ng
by ``scripts/synth_keywords.py --words ... --trim``, so clip lengths vary as real recordings do) and ``w2v2-base``
(a wav2vec2-base-sized model, 94 M parameters, random weights built with transformers: a few steps on a subset
time it; its accuracy means nothing). ``--quick``: a tiny model on synthetic tones, one epoch (the test suite's
smoke run).

Examples::

    python scripts/bench_train.py                          # both sizes (about 30 minutes on 2 cores)
    python scripts/bench_train.py --sizes bundled --epochs 8
    python scripts/bench_train.py --quick
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / ".bench-cache" / "train"
WORDS = ["bird", "cat", "dog", "fish", "frog", "horse"]
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 48,
        "conv_dim": [16] * 7, "num_conv_pos_embeddings": 8, "num_conv_pos_embedding_groups": 4,
        "classifier_proj_size": 16}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ======================================================================================================== data
def word_data(cache: Path, per_word: int, heldout: int) -> Path:
    """``cache/words/{train,heldout}/<word>/*.wav``, made once with espeak-ng."""
    root = cache / f"words-{per_word}-{heldout}"
    if not (root / "heldout").is_dir():
        if shutil.which("espeak-ng") is None:
            raise SystemExit("espeak-ng not found (Debian/Ubuntu: apt-get install espeak-ng)")
        sys.path.insert(0, str(ROOT / "scripts"))
        from synth_keywords import write_folders

        log(f"synthesizing {len(WORDS)} words x {per_word} + {heldout} clips into {root}")
        write_folders(str(root), WORDS, per_word, heldout, seed=0, jobs=2, trim_clips=True)
    return root


def tone_data(cache: Path) -> Path:
    """Tiny synthetic data (three tone labels, varied lengths) for ``--quick``."""
    import numpy as np
    import soundfile as sf

    root = cache / "tones"
    if (root / "heldout").is_dir():
        return root
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("heldout", 4)):
        for label, frequency in (("low", 300.0), ("mid", 800.0), ("high", 1800.0)):
            (root / split / label).mkdir(parents=True, exist_ok=True)
            for k in range(count):
                n = int(16000 * rng.uniform(0.3, 0.8))
                t = np.arange(n) / 16000
                wave = 0.3 * np.sin(2 * np.pi * frequency * rng.uniform(0.9, 1.1) * t) + 0.05 * rng.standard_normal(n)
                sf.write(root / split / label / f"{k}.wav", wave.astype(np.float32), 16000)
    return root


def split_manifests(data: Path, out: Path, seed: int, limit: int | None) -> tuple[Path, Path, int]:
    """``train.csv`` / ``val.csv`` of a stratified 10 % split of ``data/train`` (the first ``limit`` clips of each
    after a seeded shuffle, when given); returns their paths and the number of training clips."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from audioclf.train.dataset import read_labelled, stratified_split

    clips = read_labelled(data / "train").clips
    if limit is not None:
        order = np.random.default_rng(seed).permutation(len(clips))[:limit]
        clips = [clips[k] for k in sorted(order)]
    train, val = stratified_split(clips, 0.1, seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.csv", train), ("val.csv", val)):
        with open(out / name, "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["path", "label"])
            writer.writerows([clip.path, clip.label] for clip in rows)
    return out / "train.csv", out / "val.csv", len(train)


# ====================================================================================================== models
def model_dir(size: str, cache: Path, labels: list[str]) -> Path:
    """The start model of ``size``: the bundled one, or a random one built with transformers and saved."""
    if size == "bundled":
        return ROOT / "audioclf" / "assets" / "default-model"
    directory = cache / "models" / size
    if (directory / "model.safetensors").is_file():
        return directory
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    overrides = TINY if size == "tiny" else {}
    config = Wav2Vec2Config(num_labels=len(labels), **overrides)
    torch.manual_seed(0)
    Wav2Vec2ForSequenceClassification(config).save_pretrained(directory)
    Wav2Vec2FeatureExtractor(return_attention_mask=False, do_normalize=True).save_pretrained(directory)
    return directory


# ===================================================================================================== engines
def run_audioclf(args: argparse.Namespace, start: Path, train_csv: Path, val_csv: Path, out: Path) -> dict:
    command = [sys.executable, "-m", "audioclf", "train", str(train_csv), "--validation", str(val_csv), "--output",
               str(out), "--force", "--model", str(start), "--epochs", str(args.epochs), "--batch-size",
               str(args.batch_size), "--lr", str(args.lr), "--max-seconds", str(args.max_seconds), "--augment", "0",
               "--threads", str(args.threads), "--seed", str(args.seed), "--quiet"]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=thread_env(args.threads))
    if done.returncode != 0:
        raise SystemExit(f"audioclf train failed: {done.stderr[-3000:]}")
    report = json.loads((out / "training_report.json").read_text())
    epochs = report["epochs"]
    return {"seconds_per_epoch": report["timings"]["train_seconds"] / len(epochs),
            "process_seconds": time.monotonic() - started,
            "val_accuracy": report["validation"]["accuracy"] if report["validation"] else None,
            "steps": len(epochs) * -(-report["data"]["train"]["clips"] // args.batch_size)}


def run_trainer(args: argparse.Namespace, start: Path, train_csv: Path, val_csv: Path, out: Path) -> dict:
    spec = {"start": str(start), "train": str(train_csv), "val": str(val_csv), "out": str(out),
            "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "max_seconds": args.max_seconds,
            "threads": args.threads, "seed": args.seed}
    started = time.monotonic()
    done = subprocess.run([sys.executable, __file__, "--trainer-worker", json.dumps(spec)], capture_output=True,
                          text=True, env=thread_env(args.threads))
    if done.returncode != 0:
        raise SystemExit(f"transformers Trainer failed: {done.stderr[-3000:]}")
    result = json.loads((out / "bench_timing.json").read_text())
    result["process_seconds"] = time.monotonic() - started
    return result


def trainer_worker(spec: dict) -> None:
    """Runs in its own process: the transformers recipe (see the module docstring); writes ``bench_timing.json``."""
    import random

    import numpy as np
    import soundfile as sf
    import soxr
    import torch
    from transformers import (AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, Trainer,
                              TrainerCallback, TrainingArguments, set_seed)

    torch.set_num_threads(spec["threads"])
    set_seed(spec["seed"])

    def rows(path: str) -> list[tuple[str, str]]:
        with open(path, newline="") as stream:
            return [(row["path"], row["label"]) for row in csv.DictReader(stream)]

    train_rows, val_rows = rows(spec["train"]), rows(spec["val"])
    labels = sorted({label for _, label in train_rows})
    label2id = {label: k for k, label in enumerate(labels)}
    extractor = AutoFeatureExtractor.from_pretrained(spec["start"])
    rate = extractor.sampling_rate

    def decode(path: str) -> np.ndarray:
        wave, source_rate = sf.read(path, dtype="float32", always_2d=True)
        wave = wave.mean(axis=1)
        return soxr.resample(wave, source_rate, rate) if source_rate != rate else wave

    def random_subsample(wave: np.ndarray, max_length: float) -> np.ndarray:  # as run_audio_classification.py
        sample_length = int(round(rate * max_length))
        if len(wave) <= sample_length:
            return wave
        offset = random.randint(0, len(wave) - sample_length - 1)
        return wave[offset:offset + sample_length]

    class Clips(torch.utils.data.Dataset):
        def __init__(self, items: list[tuple[str, str]], train: bool) -> None:
            self.items, self.train = items, train

        def __len__(self) -> int:
            return len(self.items)

        def __getitem__(self, index: int) -> dict:
            path, label = self.items[index]
            wave = decode(path)
            if self.train:
                wave = random_subsample(wave, spec["max_seconds"])
            features = extractor(wave, sampling_rate=rate)
            return {"input_values": features["input_values"][0], "labels": label2id[label]}

    config = AutoConfig.from_pretrained(spec["start"], num_labels=len(labels), label2id=label2id,
                                        id2label=dict(enumerate(labels)), finetuning_task="audio-classification")
    model = AutoModelForAudioClassification.from_pretrained(spec["start"], config=config,
                                                            ignore_mismatched_sizes=True)
    model.freeze_feature_encoder()

    def accuracy(prediction) -> dict:
        return {"accuracy": float((np.argmax(prediction.predictions, axis=1) == prediction.label_ids).mean())}

    class Timing(TrainerCallback):
        def __init__(self) -> None:
            self.epochs: list[float] = []
            self.started = 0.0

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.started = time.monotonic()

        def on_epoch_end(self, args, state, control, **kwargs):
            self.epochs.append(time.monotonic() - self.started)

    arguments = TrainingArguments(
        output_dir=str(Path(spec["out"]) / "trainer"), per_device_train_batch_size=spec["batch_size"],
        per_device_eval_batch_size=spec["batch_size"], num_train_epochs=spec["epochs"], learning_rate=spec["lr"],
        warmup_steps=0.1, lr_scheduler_type="linear", weight_decay=0.0, max_grad_norm=1.0, optim="adamw_torch",
        eval_strategy="epoch", save_strategy="epoch", save_total_limit=1, load_best_model_at_end=True,
        metric_for_best_model="accuracy", logging_strategy="epoch", report_to="none", use_cpu=True,
        seed=spec["seed"], dataloader_num_workers=0, disable_tqdm=True)
    timing = Timing()
    trainer = Trainer(model=model, args=arguments, train_dataset=Clips(train_rows, True),
                      eval_dataset=Clips(val_rows, False), compute_metrics=accuracy, processing_class=extractor,
                      callbacks=[timing])
    started = time.monotonic()
    trainer.train()
    seconds = time.monotonic() - started
    metrics = trainer.evaluate()
    trainer.save_model(spec["out"])
    shutil.rmtree(Path(spec["out"]) / "trainer", ignore_errors=True)
    steps = trainer.state.global_step
    (Path(spec["out"]) / "bench_timing.json").write_text(json.dumps({
        "seconds_per_epoch": seconds / spec["epochs"], "training_only_seconds_per_epoch": timing.epochs,
        "val_accuracy": metrics.get("eval_accuracy"), "steps": steps}))


def heldout_accuracy(model: Path, heldout: Path, threads: int) -> float:
    done = subprocess.run([sys.executable, "-m", "audioclf", "evaluate", str(heldout), "--model", str(model),
                           "--format", "json", "--threads", str(threads), "--quiet"], capture_output=True, text=True,
                          env=thread_env(threads))
    if done.returncode != 0:
        raise SystemExit(f"audioclf evaluate failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)["accuracy"]


def thread_env(threads: int) -> dict:
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))


# ======================================================================================================== main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="bundled,w2v2-base", help="comma-separated: bundled, w2v2-base")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (both engines)")
    parser.add_argument("--max-seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-word", type=int, default=60, help="training clips per word")
    parser.add_argument("--heldout", type=int, default=15, help="held-out clips per word")
    parser.add_argument("--base-clips", type=int, default=48, help="w2v2-base: training clips (a few steps)")
    parser.add_argument("--engines", default="audioclf,trainer")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--quick", action="store_true", help="a tiny model on synthetic tones, one epoch")
    parser.add_argument("--trainer-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.trainer_worker:
        trainer_worker(json.loads(args.trainer_worker))
        return
    cache = args.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.epochs, sizes, data = 1, ["tiny"], tone_data(cache)
    else:
        sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
        data = word_data(cache, args.per_word, args.heldout)
    labels = sorted(p.name for p in (data / "train").iterdir())
    rows = []
    for size in sizes:
        limit = args.base_clips if size == "w2v2-base" else None
        epochs = args.epochs if size != "w2v2-base" else 1
        run_args = argparse.Namespace(**{**vars(args), "epochs": epochs,
                                         "lr": 3e-5 if size == "w2v2-base" else args.lr})
        train_csv, val_csv, clips = split_manifests(data, cache / "runs" / size, args.seed, limit)
        start = model_dir(size, cache, labels)
        results = {}
        for engine in [e.strip() for e in args.engines.split(",")]:
            out = cache / "runs" / size / engine
            log(f"{size}: {engine} ({clips} training clips, {epochs} epoch(s), {args.threads} threads)")
            runner = run_audioclf if engine == "audioclf" else run_trainer
            result = runner(run_args, start, train_csv, val_csv, out)
            result["heldout_accuracy"] = heldout_accuracy(out, data / "heldout", args.threads)
            results[engine] = result
            rows.append({"size": size, "engine": engine, "clips": clips, "epochs": epochs, **result})
        if "audioclf" in results and "trainer" in results:
            ratio = results["trainer"]["seconds_per_epoch"] / results["audioclf"]["seconds_per_epoch"]
            for row in rows[-2:]:
                row["speedup"] = ratio
    print("| size | engine | train clips | epochs | s/epoch | speed-up | val acc | held-out acc |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        speedup = f"{row['speedup']:.2f}x" if "speedup" in row and row["engine"] == "audioclf" else ""
        val = "" if row.get("val_accuracy") is None else f"{row['val_accuracy']:.3f}"
        print(f"| {row['size']} | {row['engine']} | {row['clips']} | {row['epochs']} | "
              f"{row['seconds_per_epoch']:.1f} | {speedup} | {val} | {row['heldout_accuracy']:.3f} |")
    if args.json:
        import torch
        import transformers

        args.json.write_text(json.dumps({"rows": rows, "machine": {
            "nproc": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
            "transformers": transformers.__version__}, "arguments": {k: str(v) for k, v in vars(args).items()}},
            indent=1))


if __name__ == "__main__":
    main()
