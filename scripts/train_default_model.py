#!/usr/bin/env python3
"""Train the small keyword-spotting classifier shipped as audioclf's default model, with ``audioclf.train``.

A tiny Wav2Vec2-architecture audio classifier (conv feature encoder + pre-LN transformer + mean-pooled head),
trained from scratch on the synthetic espeak-ng keyword data set made by ``scripts/synth_keywords.py``. This script
only prepares the data and the config and reports: the recipe (crops, augmentation, AdamW, warm-up and decay,
clipping, label smoothing, checkpoints) is :func:`audioclf.train.loop.train`'s. Evaluation uses the data set's test
split, whose voices never occur in training, through :mod:`audioclf.train.evaluation`.

Writes to ``--out`` (default ``audioclf/assets/default-model/``): ``model.safetensors``, ``config.json``,
``preprocessor_config.json`` and ``metrics.json`` (held-out accuracy, confusion matrix, seed, commands); the
training report and pictures stay in ``DATA/wav/run/``.

Usage::

    python scripts/synth_keywords.py --out data/synth-kws --seed 0 --jobs 2
    python scripts/train_default_model.py --data data/synth-kws --seed 0
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SR = 16000
MAX_WEIGHTS_BYTES = 5_000_000


def export_split(npz: Path, folder: Path, limit: int, seed: int) -> None:
    """The clips of one ``train.npz`` / ``test.npz`` as ``folder/<label>/NNNNN.wav`` (once; ``limit``: a seeded
    subset)."""
    import soundfile as sf

    if (folder / ".complete").is_file():
        return
    with np.load(npz) as data:
        audio, labels, names = data["audio"], data["labels"], [str(s) for s in data["label_names"]]
    keep = np.arange(len(labels))
    if limit:
        keep = np.sort(np.random.default_rng(seed).permutation(len(labels))[:limit])
    for index in keep.tolist():
        target = folder / names[labels[index]] / f"{index:05d}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        sf.write(target, audio[index], SR, subtype="PCM_16")
    (folder / ".complete").write_text("")


def accuracy_by_group(predictions: list, npz: Path, heldout_accents: list[str]) -> dict[str, float]:
    """Held-out accuracy of the clips whose voice has a held-out accent, and of those with a held-out variant only
    (the voice of an exported clip is found through its file name, the clip's index in ``npz``)."""
    with np.load(npz) as data:
        voices = [str(v) for v in data["voice"]]
    groups: dict[str, list[bool]] = {"heldout_accent": [], "heldout_variant_only": []}
    for prediction in predictions:
        voice = voices[int(Path(prediction.clip.path).stem)]
        if voice:
            group = "heldout_accent" if voice.split("+")[0] in heldout_accents else "heldout_variant_only"
            groups[group].append(prediction.correct)
    return {name: round(float(np.mean(hits)), 4) for name, hits in groups.items() if hits}


def model_config(args: argparse.Namespace) -> dict:
    """The architecture (labels are set by the trainer); every dropout, LayerDrop and SpecAugment off."""
    return {
        "model_type": "wav2vec2", "hidden_size": args.hidden_size, "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads, "intermediate_size": args.intermediate_size,
        "conv_dim": list(args.conv_dim), "conv_kernel": list(args.conv_kernel), "conv_stride": list(args.conv_stride),
        "conv_bias": True, "feat_extract_norm": args.feat_extract_norm, "feat_extract_activation": args.conv_activation,
        "do_stable_layer_norm": True, "num_conv_pos_embeddings": args.pos_conv_kernel,
        "num_conv_pos_embedding_groups": args.pos_conv_groups, "classifier_proj_size": args.proj_size,
        "use_weighted_layer_sum": False, "mask_time_prob": 0.0, "mask_feature_prob": 0.0, "hidden_dropout": 0.0,
        "attention_dropout": 0.0, "activation_dropout": 0.0, "feat_proj_dropout": 0.0, "final_dropout": 0.0,
        "layerdrop": 0.0, "initializer_range": args.init_std,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/synth-kws", help="folder with train.npz / test.npz / manifest.json")
    p.add_argument("--out", default=str(REPO / "audioclf" / "assets" / "default-model"))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup", type=float, default=0.1, help="fraction of steps with linear warm-up")
    p.add_argument("--label-smoothing", type=float, default=0.05)
    p.add_argument("--augment", type=float, default=0.5, help="probability that a clip is augmented in an epoch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit-train", type=int, default=0, help="use only this many training clips (smoke tests)")
    p.add_argument("--limit-test", type=int, default=0)
    # architecture
    p.add_argument("--conv-dim", type=int, nargs="+", default=[32, 32, 64, 64, 64, 64, 64])
    p.add_argument("--conv-kernel", type=int, nargs="+", default=[10, 3, 3, 3, 3, 2, 2])
    p.add_argument("--conv-stride", type=int, nargs="+", default=[5, 2, 2, 2, 2, 2, 2])
    p.add_argument("--feat-extract-norm", choices=["layer", "group"], default="group",
                   help="group: one GroupNorm on the first conv (about twice as fast to train as 'layer')")
    p.add_argument("--conv-activation", default="relu",
                   help="activation of the conv stack and positional conv (relu trains much faster than gelu)")
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--intermediate-size", type=int, default=256)
    p.add_argument("--pos-conv-kernel", type=int, default=32)
    p.add_argument("--pos-conv-groups", type=int, default=8)
    p.add_argument("--proj-size", type=int, default=128)
    p.add_argument("--init-std", type=float, default=0.05, help="std of the random initialisation of linear layers")
    args = p.parse_args(argv)

    from audioclf.engine.classify import Classifier
    from audioclf.train.dataset import read_labelled
    from audioclf.train.evaluation import evaluate
    from audioclf.train.loop import TrainingEvents, train
    from audioclf.train.recipe import Recipe

    class PrintedEvents(TrainingEvents):
        def message(self, text: str) -> None:
            print(text, flush=True)

        def epoch_finished(self, row: dict) -> None:
            print(f"epoch {row['epoch']}/{args.epochs}: train loss {row['train_loss']:.4f} "
                  f"acc {row['train_accuracy']:.3f}  validation acc {row.get('val_accuracy', float('nan')):.3f}  "
                  f"{row['seconds']:.1f} s", flush=True)

    data = Path(args.data)
    wav = data / "wav"
    export_split(data / "train.npz", wav / "train", args.limit_train, args.seed)
    export_split(data / "test.npz", wav / "test", args.limit_test, args.seed)
    config_path = wav / "config.json"
    config_path.write_text(json.dumps(model_config(args), indent=1))

    out = Path(args.out)
    run = wav / "run"  # the full output of audioclf train; the model files are copied to --out
    recipe = Recipe(config=str(config_path), seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
                    lr=args.lr, weight_decay=args.weight_decay, adam_beta2=0.98, warmup_ratio=args.warmup,
                    label_smoothing=args.label_smoothing, augment=args.augment, gain_db=0.0, max_seconds=1.0,
                    val_split=0.05, threads=args.threads)
    result = train(wav / "train", run, recipe, force=True, events=PrintedEvents())
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "preprocessor_config.json"):
        shutil.copyfile(run / name, out / name)

    parameters = result.report["start"]["parameters"]
    weights_bytes = (out / "model.safetensors").stat().st_size
    if weights_bytes > MAX_WEIGHTS_BYTES:
        raise SystemExit(f"model.safetensors is {weights_bytes} bytes, over the 5 MB budget")
    test = read_labelled(wav / "test")
    heldout = evaluate(Classifier(str(out), top_k=0, threads=args.threads), test.clips)
    metrics = heldout.metrics
    labels = list(metrics.labels)
    print(f"held-out-voice accuracy: {metrics.accuracy:.4f} over {metrics.count} clips")
    manifest = json.loads((data / "manifest.json").read_text()) if (data / "manifest.json").is_file() else {}
    by_group = accuracy_by_group(heldout.predictions, data / "test.npz", manifest.get("heldout_accents") or [])
    if by_group:
        print("accuracy by held-out group:", by_group)
    summary = {
        "task": "keyword spotting (Speech Commands labels), synthetic espeak-ng data, held-out voices",
        "accuracy": round(metrics.accuracy, 4),
        "accuracy_by_group": by_group,
        "per_class_accuracy": {label: round(float(r), 4) for label, r in zip(labels, metrics.recall)},
        "labels": labels,
        "confusion": metrics.confusion.tolist(),
        "confusion_axes": "rows = true label, columns = predicted label",
        "test_clips": metrics.count,
        "train_clips": result.report["data"]["train"]["clips"],
        "heldout_accents": manifest.get("heldout_accents"),
        "heldout_variants": manifest.get("heldout_variants"),
        "epochs": result.report["epochs"],
        "training_seconds": result.report["timings"]["train_seconds"],
        "seed": args.seed,
        "parameters": parameters,
        "weights_bytes": weights_bytes,
        "data_command": manifest.get("command"),
        "espeak_ng": manifest.get("espeak_ng"),
        "train_command": " ".join(["python", "scripts/train_default_model.py"] + [
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])]),
        "recipe": result.report["arguments"],
        "versions": result.report["versions"],
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {out} ({weights_bytes / 1e6:.2f} MB weights)")


if __name__ == "__main__":
    main()
