#!/usr/bin/env python3
"""Peak memory and throughput of ``audioclf classify`` on one long file with a wav2vec2-base-sized model.

Steps:

1. stream-write a long 16 kHz mono WAV (default 60 minutes; written in 10 s blocks, never held in memory);
2. build a randomly initialised wav2vec2-base-sized classifier (hidden 768, 12 layers, 12 heads, 3072 intermediate,
   the default conv stack, 12 labels) with ``AutoModelForAudioClassification.from_config`` and save it;
3. run the installed ``audioclf classify`` on the file in a subprocess and report its peak RSS (``ru_maxrss`` of
   that child, via ``os.wait4``), wall time and throughput in audio-seconds per second.

With ``--clips 1 10`` it also measures throughput on directories of short clips (here 1 s and 10 s ones; each run in
its own subprocess, so the model load is included: see "startup" for that cost alone).

Examples::

    python scripts/measure_long_file.py                      # the 1-hour measurement (several minutes)
    python scripts/measure_long_file.py --minutes 2 --clips 1 10 --clip-count 64
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000


def write_long_wav(path: Path, minutes: float, seed: int = 0) -> float:
    """A noise-and-tone WAV of ``minutes`` minutes, written block by block; returns its duration in seconds."""
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * RATE)
    block = 10 * RATE
    with sf.SoundFile(path, "w", RATE, 1, "PCM_16") as handle:
        for start in range(0, total, block):
            frames = min(block, total - start)
            t = (start + np.arange(frames)) / RATE
            tone = 0.2 * np.sin(2 * np.pi * (220 + 110 * ((start // block) % 5)) * t)
            handle.write((tone + 0.05 * rng.standard_normal(frames)).astype(np.float32))
    return total / RATE


def write_clips(directory: Path, seconds: float, count: int, seed: int = 1) -> float:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(count):
        sf.write(directory / f"clip{k:04d}.wav", (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32),
                 RATE, subtype="PCM_16")
    return seconds * count


def build_model(directory: Path) -> None:
    """Random wav2vec2-base-sized classifier plus its preprocessor config."""
    from audioclf import AutoModelForAudioClassification
    from audioclf.audio import FeatureExtractorConfig
    from audioclf.config import ModelConfig

    config = ModelConfig(model_type="wav2vec2", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, num_labels=12)
    AutoModelForAudioClassification.from_config(config).save_pretrained(directory)
    FeatureExtractorConfig(return_attention_mask=False, do_normalize=True).save_pretrained(directory)


def run_classify(arguments: list[str]) -> tuple[float, int, int, int]:
    """Run ``audioclf classify`` with ``arguments``; return (wall seconds, peak RSS in bytes, exit status, lines)."""
    command = [sys.executable, "-m", "audioclf", "classify", "--quiet", *arguments]
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    lines = sum(1 for _ in process.stdout)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * 1024, process.returncode, lines  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the long file (default 60)")
    parser.add_argument("--workdir", type=Path, help="where to put the model and audio (default: a temporary dir)")
    parser.add_argument("--clips", type=float, nargs="*", default=[], help="also measure clips of these lengths (s)")
    parser.add_argument("--clip-count", type=int, default=64, help="clips per length (default 64)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more audioclf classify options")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="audioclf-measure-") as temporary:
        work = args.workdir or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        model = work / "wav2vec2-base-random"
        if not (model / "config.json").is_file():
            build_model(model)
        print(f"model: {model} ({sum(f.stat().st_size for f in model.iterdir()) / 2**20:.0f} MiB on disk)")
        common = ["--model", str(model), *args.extra]

        startup_clip = work / "startup.wav"
        sf.write(startup_clip, np.zeros(RATE, dtype=np.float32), RATE)
        wall, rss, status, _ = run_classify([*common, str(startup_clip)])
        print(f"startup (one 1 s clip): {wall:.2f} s wall, peak RSS {rss / 2**20:.0f} MiB, exit {status}")

        for seconds in args.clips:
            directory = work / f"clips-{seconds:g}s"
            audio = write_clips(directory, seconds, args.clip_count)
            wall, rss, status, lines = run_classify([*common, str(directory)])
            print(f"{args.clip_count} clips of {seconds:g} s: {wall:.1f} s wall, {audio / wall:.1f} audio-s/s "
                  f"(model load included), peak RSS {rss / 2**20:.0f} MiB, {lines} records, exit {status}")

        long_file = work / f"long-{args.minutes:g}min.wav"
        if not long_file.is_file():
            began = time.monotonic()
            write_long_wav(long_file, args.minutes)
            print(f"wrote {long_file} ({long_file.stat().st_size / 2**20:.0f} MiB) in {time.monotonic() - began:.1f} s")
        audio = sf.info(str(long_file)).duration
        wall, rss, status, lines = run_classify([*common, str(long_file)])
        print(f"long file ({audio / 60:.1f} min): {wall:.1f} s wall, {audio / wall:.1f} audio-s/s, "
              f"peak RSS {rss / 2**20:.0f} MiB, {lines} record(s), exit {status}")


if __name__ == "__main__":
    main()
