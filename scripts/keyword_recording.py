#!/usr/bin/env python3
"""A long recording with keywords of the bundled model spoken by espeak-ng at known times, in noise.

For trying ``audioclf classify --events`` (and testing it): the keywords are spoken by voices the bundled model
never heard in training (its held-out accent ``en-029`` and held-out variants), one every ``--every`` seconds on
average at a random level, over pink noise. Writes the WAV (16 kHz mono) and, beside it, ``NAME.truth.jsonl``
with one ``{"label", "start", "end"}`` per keyword.

Example::

    python scripts/keyword_recording.py --out docs/example/keywords-2min.wav --seconds 120 --seed 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synth_keywords as synth  # noqa: E402

RATE = synth.SR
#: held-out voices of the bundled model: (accent, variant)
VOICES = [("en-029", ""), ("en-gb", "f2"), ("en-us", "m3"), ("en-gb-x-rp", "john"), ("en-us-nyc", "belinda"),
          ("en-gb-scotland", "Andy"), ("en-us", "steph2"), ("en-029", "klatt3")]


def speak(word: str, accent: str, variant: str, level_db: float) -> np.ndarray:
    """``word`` spoken by espeak-ng (16 kHz, trimmed), scaled to an RMS of ``level_db`` dBFS."""
    spec = synth.Spec(0, word, word, accent, variant, speed=150, pitch=50, amplitude=100, prange=None, punct="",
                      seed=1)
    spoken = synth.trim(synth.synthesize(spec))
    return spoken * np.float32(10 ** (level_db / 20) / synth.rms(spoken))


def build(plan: list[tuple[float, str, str, str, float]], seconds: float, noise_db: float = -55.0,
          seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    """``(wave float32 [seconds · 16000], truth)`` for ``plan``: ``(time s, word, accent, variant, level dBFS)``
    per keyword, over pink noise at ``noise_db`` dBFS RMS."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * RATE)
    wave = synth.coloured_noise(rng, frames, "pink") * np.float32(10 ** (noise_db / 20))
    truth = []
    for time, word, accent, variant, level in plan:
        spoken = speak(word, accent, variant, level)
        start = int(time * RATE)
        wave[start:start + spoken.shape[0]] += spoken[: frames - start]
        truth.append({"label": word, "start": round(time, 6), "end": round(time + spoken.shape[0] / RATE, 6)})
    return wave, truth


def random_plan(seconds: float, every: float, seed: int) -> list[tuple[float, str, str, str, float]]:
    """Keywords about every ``every`` seconds (at least 3 s apart), random words, voices and levels (-32 to -16
    dBFS)."""
    rng = np.random.default_rng(seed)
    plan, time = [], float(rng.uniform(1.0, every))
    while time < seconds - 2.0:
        accent, variant = VOICES[int(rng.integers(len(VOICES)))]
        plan.append((round(time, 2), str(rng.choice(synth.KEYWORDS)), accent, variant, float(rng.uniform(-32, -16))))
        time += float(rng.uniform(3.0, 2 * every - 3.0))
    return plan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the WAV file to write")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--every", type=float, default=10.0, help="mean seconds between keywords (more than 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng not found (Debian/Ubuntu: apt-get install espeak-ng)")
    import soundfile as sf

    wave, truth = build(random_plan(args.seconds, args.every, args.seed), args.seconds, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, wave, RATE, subtype="PCM_16")
    with open(out.with_suffix(".truth.jsonl"), "w") as stream:
        stream.writelines(json.dumps(item) + "\n" for item in truth)
    print(f"{out}: {args.seconds:g} s, {len(truth)} keywords: " + ", ".join(
        f"{item['label']}@{item['start']:g}" for item in truth))


if __name__ == "__main__":
    main()
