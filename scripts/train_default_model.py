#!/usr/bin/env python3
"""Train the small keyword-spotting classifier shipped as audioclf's default model.

A tiny Wav2Vec2-architecture audio classifier (conv feature encoder + pre-LN transformer + mean-pooled head),
trained from scratch on the synthetic espeak-ng keyword data set made by ``scripts/synth_keywords.py``.
Evaluation uses that data set's test split, whose voices never occur in training.

Writes to ``--out`` (default ``audioclf/assets/default-model/``): ``model.safetensors``, ``config.json``,
``preprocessor_config.json`` and ``metrics.json`` (held-out accuracy, confusion matrix, timing, seed, commands).

Usage::

    python scripts/synth_keywords.py --out data/synth-kws --seed 0 --jobs 2
    python scripts/train_default_model.py --data data/synth-kws --seed 0
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SR = 16000
MAX_WEIGHTS_BYTES = 5_000_000

PREPROCESSOR_CONFIG = {
    "feature_extractor_type": "Wav2Vec2FeatureExtractor",
    "feature_size": 1,
    "sampling_rate": 16000,
    "padding_value": 0.0,
    "do_normalize": True,
    "return_attention_mask": False,
    "padding_side": "right",
}


# --------------------------------------------------------------------------- data


def load_split(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Per-clip zero mean / unit variance, as Wav2Vec2FeatureExtractor(do_normalize=True) does."""
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-7)


def noise_bank(rng: np.random.Generator, count: int, length: int) -> np.ndarray:
    """Unit-RMS white / pink / brown noise clips."""
    bank = np.empty((count, length), dtype=np.float32)
    f = np.arange(length // 2 + 1, dtype=np.float64)
    f[0] = 1.0
    for i in range(count):
        alpha = (0.0, 1.0, 2.0)[i % 3]
        spec = (rng.standard_normal(len(f)) + 1j * rng.standard_normal(len(f))) * f ** (-alpha / 2)
        spec[0] = 0.0
        y = np.fft.irfft(spec, length)
        bank[i] = y / (np.sqrt(np.mean(y**2)) + 1e-12)
    return bank


class Augmenter:
    """On-the-fly waveform augmentation: time shift, background noise at a random SNR, short time masks.

    A plain gain change would be undone by the per-clip input normalisation, so level is varied through the
    speech-to-noise ratio instead.
    """

    def __init__(self, rng: np.random.Generator, max_shift: float = 0.1, noise_prob: float = 0.5,
                 snr_db: tuple[float, float] = (10.0, 40.0), mask_prob: float = 0.15) -> None:
        self.rng = rng
        self.max_shift = int(max_shift * SR)
        self.noise_prob = noise_prob
        self.snr_db = snr_db
        self.mask_prob = mask_prob
        self.bank = noise_bank(rng, 96, SR)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        rng = self.rng
        out = np.zeros_like(batch)
        n = batch.shape[1]
        for i, x in enumerate(batch):
            s = int(rng.integers(-self.max_shift, self.max_shift + 1))
            if s >= 0:
                out[i, s:] = x[: n - s]
            else:
                out[i, :s] = x[-s:]
            if rng.random() < self.noise_prob:
                level = float(np.sqrt(np.mean(out[i] ** 2))) + 1e-5
                noise = np.roll(self.bank[int(rng.integers(len(self.bank)))], int(rng.integers(n)))
                out[i] += noise * np.float32(level * 10 ** (-rng.uniform(*self.snr_db) / 20))
            if rng.random() < self.mask_prob:
                width = int(rng.integers(SR // 50, SR // 20))
                start = int(rng.integers(0, n - width))
                out[i, start:start + width] = 0.0
        return out


# --------------------------------------------------------------------------- model


def build_config(args: argparse.Namespace, labels: list[str]):
    from audioclf.config import ModelConfig

    return ModelConfig(
        model_type="wav2vec2",
        hidden_size=args.hidden_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=args.intermediate_size,
        conv_dim=list(args.conv_dim),
        conv_kernel=list(args.conv_kernel),
        conv_stride=list(args.conv_stride),
        conv_bias=True,
        feat_extract_norm=args.feat_extract_norm,
        feat_extract_activation=args.conv_activation,
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=args.pos_conv_kernel,
        num_conv_pos_embedding_groups=args.pos_conv_groups,
        classifier_proj_size=args.proj_size,
        use_weighted_layer_sum=False,
        mask_time_prob=0.0,
        mask_feature_prob=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        final_dropout=0.0,
        layerdrop=0.0,
        initializer_range=args.init_std,
        id2label={i: name for i, name in enumerate(labels)},
    )


def lr_at(step: int, total: int, warmup: int, peak: float, floor: float = 0.02) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def predict(model, audio: np.ndarray, batch_size: int = 64) -> np.ndarray:
    model.eval()
    preds = []
    for i in range(0, len(audio), batch_size):
        x = torch.from_numpy(audio[i:i + batch_size].astype(np.float32) / 32768.0)
        preds.append(model(normalize(x)).logits.argmax(-1).numpy())
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    c = np.zeros((k, k), dtype=np.int64)
    np.add.at(c, (y_true, y_pred), 1)
    return c


def format_confusion(c: np.ndarray, labels: list[str]) -> str:
    short = [name.strip("_")[:5] for name in labels]
    lines = ["true \\ pred " + " ".join(f"{s:>5}" for s in short) + "   acc"]
    for i, name in enumerate(short):
        acc = c[i, i] / max(1, c[i].sum())
        lines.append(f"{name:>11} " + " ".join(f"{v:5d}" for v in c[i]) + f"  {acc:5.1%}")
    return "\n".join(lines)


def eval_sample_files(model, folder: Path, labels: list[str]) -> list[dict]:
    """Predict the demo clips in ``folder`` whose names carry a label (``synth_yes_*.wav``, ``*_no_1000ms*``)."""
    import soundfile as sf
    import soxr

    results = []
    if not folder.is_dir():
        return results
    for path in sorted(folder.glob("*.wav")):
        parts = path.stem.split("_")
        truth = next((p for p in parts if p in labels), None)
        if truth is None and "silence" in parts:
            truth = "_silence_"
        if truth is None:
            continue
        x, sr = sf.read(path, dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        if sr != SR:
            x = soxr.resample(x, sr, SR)
        with torch.no_grad():
            model.eval()
            probs = model(normalize(torch.from_numpy(np.ascontiguousarray(x))[None])).logits.softmax(-1)[0]
        k = int(probs.argmax())
        results.append({"file": path.name, "label": truth, "predicted": labels[k], "score": round(float(probs[k]), 4)})
    return results


# --------------------------------------------------------------------------- main


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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit-train", type=int, default=0, help="use only this many training clips (smoke tests)")
    p.add_argument("--limit-test", type=int, default=0)
    p.add_argument("--samples", default=str(REPO / "samples"), help="demo clips to report predictions for")
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

    from audioclf.auto import AutoModelForAudioClassification

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t_start = time.time()

    data_dir = Path(args.data)
    train = load_split(data_dir / "train.npz")
    test = load_split(data_dir / "test.npz")
    manifest = json.loads((data_dir / "manifest.json").read_text()) if (data_dir / "manifest.json").is_file() else {}
    labels = [str(s) for s in train["label_names"]]
    if [str(s) for s in test["label_names"]] != labels:
        raise SystemExit("train and test label names differ")
    if args.limit_train:
        keep = np.sort(rng.permutation(len(train["labels"]))[: args.limit_train])
        train = {k: (v[keep] if v.ndim and len(v) == len(train["labels"]) and k != "label_names" else v)
                 for k, v in train.items()}
    if args.limit_test:
        keep = np.sort(rng.permutation(len(test["labels"]))[: args.limit_test])
        test = {k: (v[keep] if v.ndim and len(v) == len(test["labels"]) and k != "label_names" else v)
                for k, v in test.items()}
    overlap = set(train["voice"].tolist()) & set(test["voice"].tolist()) - {""}
    if overlap:
        raise SystemExit(f"voices in both splits: {sorted(overlap)[:5]}")
    x_train = train["audio"].astype(np.float32) / 32768.0
    y_train = train["labels"].astype(np.int64)
    print(f"data: {len(y_train)} train / {len(test['labels'])} test clips, {len(labels)} labels from {data_dir}")

    config = build_config(args, labels)
    model = AutoModelForAudioClassification.from_config(config)
    n_params = sum(p.numel() for p in model.parameters())
    if n_params * 4 > MAX_WEIGHTS_BYTES:
        raise SystemExit(f"{n_params} parameters ({n_params * 4 / 1e6:.2f} MB in float32) exceed the 5 MB budget")
    print(f"model: wav2vec2, {n_params:,} parameters ({n_params * 4 / 1e6:.2f} MB float32)")

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98))
    steps_per_epoch = math.ceil(len(y_train) / args.batch_size)
    total = steps_per_epoch * args.epochs
    warmup = max(1, int(args.warmup * total))
    augment = Augmenter(rng)

    history = []
    step = 0
    t_train = time.time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.time()
        order = rng.permutation(len(y_train))
        loss_sum, correct = 0.0, 0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            xb = normalize(torch.from_numpy(augment(x_train[idx])))
            yb = torch.from_numpy(y_train[idx])
            lr = lr_at(step, total, warmup, args.lr)
            for group in opt.param_groups:
                group["lr"] = lr
            logits = model(xb).logits
            loss = F.cross_entropy(logits, yb, label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(-1) == yb).sum())
        test_acc = float((predict(model, test["audio"]) == test["labels"]).mean())
        row = {"epoch": epoch, "loss": round(loss_sum / len(order), 4), "train_acc": round(correct / len(order), 4),
               "heldout_acc": round(test_acc, 4), "lr": round(lr, 6), "seconds": round(time.time() - t0, 1)}
        history.append(row)
        print(f"epoch {epoch:3d}/{args.epochs}  loss {row['loss']:.4f}  train acc {row['train_acc']:.3f}  "
              f"held-out acc {test_acc:.3f}  lr {lr:.2e}  {row['seconds']:.0f} s", flush=True)
    train_seconds = time.time() - t_train

    y_test = test["labels"].astype(np.int64)
    pred = predict(model, test["audio"])
    cm = confusion(y_test, pred, len(labels))
    acc = float((pred == y_test).mean())
    print(f"\nheld-out-voice accuracy: {acc:.4f} ({int((pred == y_test).sum())}/{len(y_test)})")
    print(format_confusion(cm, labels))
    by_voice = {}
    heldout_accents = manifest.get("heldout_accents", [])
    for name, mask in (("heldout_accent", np.array([v.split("+")[0] in heldout_accents for v in test["voice"]])),
                       ("heldout_variant_only", np.array([bool(v) and v.split("+")[0] not in heldout_accents
                                                          for v in test["voice"]]))):
        if mask.any():
            by_voice[name] = round(float((pred[mask] == y_test[mask]).mean()), 4)
    if by_voice:
        print("accuracy by held-out group:", by_voice)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out)
    (out / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=2) + "\n")
    weights_bytes = (out / "model.safetensors").stat().st_size
    if weights_bytes > MAX_WEIGHTS_BYTES:
        raise SystemExit(f"model.safetensors is {weights_bytes} bytes, over the 5 MB budget")

    # Reload through the public API and check the saved model reproduces the trained one.
    reloaded = AutoModelForAudioClassification.from_pretrained(out)
    probe = normalize(torch.from_numpy(test["audio"][:16].astype(np.float32) / 32768.0))
    with torch.no_grad():
        diff = float((reloaded(probe).logits - model(probe).logits).abs().max())
    if diff > 1e-4:
        raise SystemExit(f"reloaded model differs from the trained one (max |logit diff| {diff:.2e})")

    samples = eval_sample_files(reloaded, Path(args.samples), labels)
    for r in samples:
        mark = "ok" if r["predicted"] == r["label"] else "WRONG"
        print(f"  {r['file']:48s} {r['label']:>10s} -> {r['predicted']:<10s} {r['score']:.3f}  {mark}")

    metrics = {
        "task": "keyword spotting (Speech Commands labels), synthetic espeak-ng data, held-out voices",
        "accuracy": round(acc, 4),
        "accuracy_by_group": by_voice,
        "per_class_accuracy": {labels[i]: round(float(cm[i, i] / max(1, cm[i].sum())), 4) for i in range(len(labels))},
        "labels": labels,
        "confusion": cm.tolist(),
        "confusion_axes": "rows = true label, columns = predicted label",
        "test_clips": int(len(y_test)),
        "train_clips": int(len(y_train)),
        "heldout_accents": manifest.get("heldout_accents"),
        "heldout_variants": manifest.get("heldout_variants"),
        "samples": samples,
        "epochs": history,
        "training_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - t_start, 1),
        "seed": args.seed,
        "parameters": n_params,
        "weights_bytes": weights_bytes,
        "data_command": manifest.get("command"),
        "data_seed": manifest.get("seed"),
        "espeak_ng": manifest.get("espeak_ng"),
        "train_command": " ".join(["python", "scripts/train_default_model.py"] + [shlex.quote(a) for a in
                                                                                  (argv if argv is not None else sys.argv[1:])]),
        "hyperparameters": {k: v for k, v in vars(args).items() if k not in ("data", "out", "samples")},
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(f"wrote {out} ({weights_bytes / 1e6:.2f} MB weights) in {metrics['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
