#!/usr/bin/env python3
"""Accuracy and throughput of int8 against float32 on a trained model and labelled clips.

Default: the bundled model on tests/data/heldout (240 one-second clips, labels in its ``manifest.json``). Variants,
each timed in this process, interleaved, over ``--repeats`` passes (median throughput):

* ``fp32``        - the default backend (ONNX Runtime, float32);
* ``fp32-torch``  - the torch backend, float32;
* ``int8``        - ``quantize="int8"``: ONNX Runtime dynamic int8 linear layers;
* ``int8-static`` - ``quantize="int8", calibrate=...``: static int8 (linear and conv layers) calibrated on audio.
  Calibration never sees a clip it is scored on: the clips are split in two folds (alternate clips per label); each
  fold is classified by a graph calibrated on the other, and the accuracy is over both folds (all clips);
* ``int8-torch``  - the torch backend with ``torch.ao`` dynamic int8 linear layers.

Throughput is audio seconds per wall second of ``Classifier.classify`` over the whole set (model loaded and graph
built beforehand; for int8-static the two folds' times are summed). Scores are compared with fp32's: top-1
agreement and max |score difference|.

    python scripts/quant_accuracy.py                       # bundled model, held-out clips, 2 threads
    python scripts/quant_accuracy.py --model DIR --clips DIR --repeats 5
    python scripts/quant_accuracy.py --variants fp32,int8,int8-static --repeats 1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("fp32", "fp32-torch", "int8", "int8-static", "int8-torch")


def labelled_clips(directory: Path) -> dict[str, str]:
    """path -> label: from ``manifest.json`` (``clips: [{file, label}]``) when there is one, else the name's prefix
    before the last underscore."""
    manifest = directory / "manifest.json"
    if manifest.is_file():
        return {str(directory / c["file"]): c["label"] for c in json.loads(manifest.read_text())["clips"]}
    return {str(p): p.stem.rsplit("_", 1)[0] for p in sorted(directory.iterdir()) if p.suffix in (".wav", ".flac")}


def folds(labels: dict[str, str]) -> tuple[list[str], list[str]]:
    """Two halves, alternate clips of each label in each."""
    by_label: dict[str, list[str]] = {}
    for path, label in sorted(labels.items()):
        by_label.setdefault(label, []).append(path)
    return ([p for paths in by_label.values() for p in paths[0::2]],
            [p for paths in by_label.values() for p in paths[1::2]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model directory or id (default: the bundled model)")
    parser.add_argument("--clips", type=Path, default=ROOT / "tests" / "data" / "heldout")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, fp32 first (default "
                        f"{','.join(VARIANTS)})")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not variants or variants[0] != "fp32" or not set(variants) <= set(VARIANTS):
        parser.error(f"--variants: fp32 first, then any of {', '.join(VARIANTS[1:])}")

    import soundfile as sf

    from audioclf.engine.classify import Classifier

    labels = labelled_clips(args.clips)
    fold_a, fold_b = folds(labels)
    audio = sum(sf.info(p).duration for p in labels)

    def classifier(**options):
        return Classifier(args.model, top_k=0, threads=args.threads, **options)

    def torch_int8():
        import torch

        from audioclf.auto import DEFAULT_MODEL_NAME, AutoModelForAudioClassification

        torch.set_num_threads(args.threads)
        model = AutoModelForAudioClassification.from_pretrained(args.model or DEFAULT_MODEL_NAME).eval()
        torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        return Classifier(model, top_k=0, threads=args.threads)

    # variant -> [(classifier, the clips it scores)]
    builders = {
        "fp32": lambda: [(classifier(), list(labels))],
        "fp32-torch": lambda: [(classifier(backend="torch"), list(labels))],
        "int8": lambda: [(classifier(quantize="int8"), list(labels))],
        "int8-static": lambda: [(classifier(quantize="int8", calibrate=fold_b), fold_a),
                                (classifier(quantize="int8", calibrate=fold_a), fold_b)],
        "int8-torch": lambda: [(torch_int8(), list(labels))],
    }
    plan = {name: builders[name]() for name in variants}
    scores: dict[str, dict[str, dict[str, float]]] = {}
    rates: dict[str, list[float]] = {name: [] for name in plan}
    for name, parts in plan.items():  # warm-up: one clip through every classifier
        for clf, clips in parts:
            list(clf.classify(clips[:1]))
    for _ in range(args.repeats):
        for name, parts in plan.items():
            wall = 0.0
            for clf, clips in parts:
                started = time.perf_counter()
                records = list(clf.classify(clips))
                wall += time.perf_counter() - started
                for record in records:
                    if "error" in record:
                        raise SystemExit(f"{record['path']}: {record['error']}")
                    scores.setdefault(name, {})[record["path"]] = {x["label"]: x["score"] for x in record["labels"]}
            rates[name].append(audio / wall)

    def top(s: dict[str, float]) -> str:
        return max(s, key=s.get)

    reference = scores["fp32"]
    rows = []
    for name in plan:
        got = scores[name]
        accuracy = sum(top(got[p]) == labels[p] for p in labels) / len(labels)
        rows.append({"variant": name, "clips": len(labels), "accuracy": accuracy,
                     "audio_s_per_s": statistics.median(rates[name]), "runs": rates[name],
                     "top1_agreement_vs_fp32": sum(top(got[p]) == top(reference[p]) for p in labels) / len(labels),
                     "max_score_diff_vs_fp32": max(abs(got[p][k] - reference[p][k]) for p in labels
                                                   for k in reference[p])})
    fp32 = rows[0]
    print(f"model {args.model or 'bundled default'}, {len(labels)} clips ({audio:.0f} s), {args.threads} threads, "
          f"{args.repeats} passes, load average {os.getloadavg()[0]:.1f}")
    print("| variant | accuracy | vs fp32 (points) | audio-s/s | speed vs fp32 | top-1 agreement | max score diff |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['variant']} | {100 * row['accuracy']:.2f} % | {100 * (row['accuracy'] - fp32['accuracy']):+.2f} "
              f"| {row['audio_s_per_s']:.0f} | {row['audio_s_per_s'] / fp32['audio_s_per_s']:.2f}x "
              f"| {row['top1_agreement_vs_fp32']:.4f} | {row['max_score_diff_vs_fp32']:.1e} |")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "threads": args.threads, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
