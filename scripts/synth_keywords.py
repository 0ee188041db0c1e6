#!/usr/bin/env python3
"""Synthetic keyword-spotting data set built with the espeak-ng speech synthesizer.

Generates 1 s, 16 kHz mono clips for the twelve Speech Commands labels
(``yes no up down left right on off stop go _silence_ _unknown_``) from many
English espeak-ng voices x voice variants, with random speed, pitch, amplitude,
pitch range and intonation, then trims, shifts, filters, rescales and mixes in
background noise.

The train / test split is a split *by voice*: every (accent, variant) pair that
uses a held-out accent or a held-out variant is reserved for the test set and is
never used for training (see ``HELDOUT_ACCENTS`` / ``HELDOUT_VARIANTS``).

Output (``--out DIR``):

* ``train.npz`` / ``test.npz`` with ``audio`` (int16 [N, 16000]), ``labels``
  (int64 [N]), ``label_names`` (str [12]), ``voice`` (str [N], ``accent+variant``),
  ``text`` (str [N], the word spoken, empty for ``_silence_``), ``speed``,
  ``pitch`` (int [N]).
* ``manifest.json``: command line, seed, voices per split, counts, timing.

The same ``--seed`` (and the same espeak-ng version) gives identical arrays,
whatever ``--jobs`` is.

``--samples DIR`` instead writes a few clean demo WAVs spoken by held-out voices.

``--words W1,W2,... --folders DIR`` instead writes a labelled folder data set for other words (``audioclf train``'s
layout): ``DIR/train/<word>/*.wav`` from training voices and ``DIR/heldout/<word>/*.wav`` from held-out voices,
``--per-class-train`` / ``--per-class-test`` clips per word, with the same random speed, pitch, level, filtering and
background noise as the keyword set (:func:`write_folders`).

Examples::

    python scripts/synth_keywords.py --out data/synth-kws --seed 0 --jobs 2
    python scripts/synth_keywords.py --samples samples
    python scripts/synth_keywords.py --words cat,dog,bird,fish --folders data/animals --per-class-train 40
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

SR = 16000
CLIP = SR  # 1 s

LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_silence_", "_unknown_"]
KEYWORDS = LABELS[:10]

# espeak-ng's own (non-MBROLA) English voices.
ACCENTS = [
    "en-us",
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-us-nyc",
    "en-029",
]

# Voice variants shipped with espeak-ng 1.51 (file names under espeak-ng-data/voices/!v).
# "" means the accent's own default voice (no +variant).
VARIANTS = [
    "", "adam", "Alex", "Alicia", "Andrea", "Andy", "Annie", "antonio", "aunty", "belinda",
    "benjamin", "boris", "caleb", "david", "Demonic", "Denis", "Diogo", "ed", "edward",
    "edward2", "Gene", "Gene2", "gustave", "announcer", "Henrique", "Hugo", "iven", "iven2",
    "iven3", "iven4", "Jacky", "john", "kaukovalta", "Lee", "linda", "marcelo", "Marco",
    "Mario", "max", "Michael", "michel", "miguel", "Mike", "Mr", "Nguyen", "pablo", "paul",
    "pedro", "quincy", "RicishayMax", "RicishayMax2", "RicishayMax3", "rob", "robert",
    "robosoft", "robosoft2", "robosoft3", "robosoft4", "robosoft5", "robosoft6", "robosoft7",
    "robosoft8", "steph", "steph2", "steph3", "Storm", "Tweaky", "UniRobot", "zac", "anika",
    "anikaRobot", "AnxiousAndy", "fast", "f1", "f2", "f3", "f4", "f5", "whisperf", "grandpa",
    "grandma", "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "m1", "m2", "m3",
    "m4", "m5", "m6", "m7", "m8", "norbert", "sandro", "shelby", "travis", "victor",
    "whisper", "croak",
]

# Held out from training: every voice with one of these accents or variants is test-only.
HELDOUT_ACCENTS = ["en-029"]
HELDOUT_VARIANTS = [
    "f2", "f5", "m3", "m6", "klatt3", "Andy", "belinda", "john", "steph2", "max",
    "Gene", "iven3", "Alicia", "grandma", "Mr", "travis",
]

# Words for _unknown_.  Includes near-misses of the keywords; true homophones of a
# keyword ("know", "write", "rite", ...) are excluded and checked at start-up.
UNKNOWN_WORDS = [
    # Speech Commands auxiliary words
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "learn", "follow", "forward", "backward", "visual",
    # near misses
    "yet", "less", "yeah", "yep", "guess", "mess", "bless", "chess",       # yes
    "note", "nose", "now", "new", "snow", "known", "nope", "noon",         # no
    "cup", "pup", "us", "upper", "hop",                                    # up
    "town", "gown", "done", "dawn", "brown", "sound", "round",             # down
    "lift", "loft", "laughed", "deaf", "theft", "lest",                    # left
    "light", "bright", "ride", "ripe", "fight", "night", "white",          # right
    "an", "in", "own", "gone", "upon", "don", "honest",                    # on
    "of", "cough", "often", "awful", "soft", "scoff",                      # off
    "stub", "stock", "top", "shop", "step", "spot", "stomp", "stopped",    # stop
    "goat", "gold", "though", "slow", "grow", "toe", "code", "ghost",      # go
    # other words
    "hello", "music", "water", "please", "thanks", "computer", "apple", "window",
    "maybe", "okay", "morning", "table", "yellow", "orange", "purple", "garden",
    "money", "paper", "river", "rabbit", "little", "sister", "doctor", "pencil",
    "coffee", "button", "banana", "kitchen", "open", "close", "start", "pause",
    "again", "never", "about", "only", "under", "over", "after", "before",
]

EXTRA_HOMOPHONES = {"know", "noh", "write", "rite", "wright", "wrought", "awn", "oph"}

PUNCT = ["", ".", "!", "?"]
RANGES = [None, "x-low", "low", "medium", "high", "x-high"]


def voice_name(accent: str, variant: str) -> str:
    return f"{accent}+{variant}" if variant else accent


def split_voices(variants: list[str] | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    variants = VARIANTS if variants is None else variants
    train, test = [], []
    for a in ACCENTS:
        for v in variants:
            held = a in HELDOUT_ACCENTS or v in HELDOUT_VARIANTS
            (test if held else train).append((a, v))
    return train, test


# --------------------------------------------------------------------------- espeak


def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout
    return out.strip()


def available_variants() -> set[str]:
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5 and parts[4].startswith("!v/"):
            names.add(parts[4][3:])
    return names


@dataclass
class Spec:
    index: int
    label: str
    text: str  # word spoken ("" for silence)
    accent: str
    variant: str
    speed: int
    pitch: int
    amplitude: int
    prange: str | None
    punct: str
    seed: int


def espeak_cmd(spec: Spec, speed: int | None = None) -> list[str]:
    text = spec.text + spec.punct
    cmd = [
        "espeak-ng", "--stdout", "-z",
        "-v", voice_name(spec.accent, spec.variant),
        "-s", str(speed if speed is not None else spec.speed),
        "-p", str(spec.pitch),
        "-a", str(spec.amplitude),
    ]
    if spec.prange:
        cmd += ["-m"]
        text = f'<speak><prosody range="{spec.prange}">{text}</prosody></speak>'
    return cmd + [text]


def parse_wav_stream(buf: bytes) -> tuple[np.ndarray, int]:
    """Parse espeak-ng's --stdout WAV (its size fields are placeholders)."""
    if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
        raise RuntimeError("espeak-ng did not produce WAV output")
    pos, sr = 12, None
    while pos + 8 <= len(buf):
        cid, size = buf[pos:pos + 4], int.from_bytes(buf[pos + 4:pos + 8], "little")
        if cid == b"fmt ":
            sr = int.from_bytes(buf[pos + 12:pos + 16], "little")
            pos += 8 + size
        elif cid == b"data":
            data = buf[pos + 8:]
            data = data[: len(data) // 2 * 2]
            return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0, int(sr or 22050)
        else:
            pos += 8 + size
    raise RuntimeError("no data chunk in espeak-ng output")


def synthesize(spec: Spec, speed: int | None = None) -> np.ndarray:
    import soxr

    res = subprocess.run(espeak_cmd(spec, speed), capture_output=True, check=True)
    wav, sr = parse_wav_stream(res.stdout)
    if sr != SR:
        wav = soxr.resample(wav, sr, SR, quality="HQ").astype(np.float32)
    return wav


def trim(x: np.ndarray, top_db: float = 40.0, pad: int = 160) -> np.ndarray:
    hop = 160
    n = len(x) // hop
    if n == 0:
        return x
    env = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))
    peak = env.max()
    if peak <= 1e-6:
        return x[:0]
    idx = np.flatnonzero(env > peak * 10 ** (-top_db / 20))
    a = max(idx[0] * hop - pad, 0)
    b = min((idx[-1] + 1) * hop + pad, len(x))
    return x[a:b]


# --------------------------------------------------------------------------- signal helpers


def coloured_noise(rng: np.random.Generator, n: int, colour: str) -> np.ndarray:
    alpha = {"white": 0.0, "pink": 1.0, "brown": 2.0, "blue": -1.0}[colour]
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.arange(n // 2 + 1, dtype=np.float64)
    f[0] = 1.0
    spec *= f ** (-alpha / 2)
    spec[0] = 0.0
    y = np.fft.irfft(spec, n)
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32)


def hum(rng: np.random.Generator, n: int) -> np.ndarray:
    f0 = rng.choice([50.0, 60.0]) * rng.uniform(0.99, 1.01)
    t = np.arange(n) / SR
    y = np.zeros(n)
    for h in range(1, int(rng.integers(2, 6)) + 1):
        y += rng.uniform(0.2, 1.0) / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12)


def random_filter(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    r = rng.random()
    if r < 0.15:  # band-limited ("telephone" / cheap microphone)
        sos = butter(4, [rng.uniform(150, 400), rng.uniform(3000, 4000)], btype="bandpass", fs=SR, output="sos")
    elif r < 0.30:
        sos = butter(2, rng.uniform(2500, 7000), btype="lowpass", fs=SR, output="sos")
    elif r < 0.40:
        sos = butter(2, rng.uniform(80, 500), btype="highpass", fs=SR, output="sos")
    else:
        return x
    return sosfilt(sos, x).astype(np.float32)


def background(rng: np.random.Generator, level_db: float) -> np.ndarray:
    colour = rng.choice(["white", "pink", "brown", "blue"], p=[0.3, 0.35, 0.3, 0.05])
    y = coloured_noise(rng, CLIP, str(colour))
    if rng.random() < 0.25:  # slow level fluctuation
        env = 1 + rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * rng.uniform(0.3, 4) * np.arange(CLIP) / SR + rng.uniform(0, 6.3))
        y = y * env.astype(np.float32)
    return y * np.float32(10 ** (level_db / 20))


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


# --------------------------------------------------------------------------- clip makers


def make_silence(spec: Spec) -> np.ndarray:
    rng = np.random.default_rng(spec.seed)
    r = rng.random()
    if r < 0.15:  # digital near-silence: dither only
        x = rng.standard_normal(CLIP).astype(np.float32) * np.float32(10 ** (rng.uniform(-100, -75) / 20))
    else:
        x = background(rng, rng.uniform(-85, -22))
    if rng.random() < 0.2:
        x = x + hum(rng, CLIP) * np.float32(10 ** (rng.uniform(-70, -30) / 20))
    if rng.random() < 0.2:
        x = random_filter(rng, x)
    return to_int16(x)


def make_speech(spec: Spec, clean: bool = False) -> np.ndarray:
    rng = np.random.default_rng(spec.seed)
    speed = spec.speed
    for _ in range(6):
        w = trim(synthesize(spec, speed))
        if 0 < len(w) <= int(0.95 * CLIP):
            break
        speed = int(speed * 1.25) + 10
    if len(w) == 0:
        raise RuntimeError(f"espeak-ng produced silence for {spec}")
    if len(w) > int(0.95 * CLIP):  # still too long: keep the middle
        a = (len(w) - int(0.95 * CLIP)) // 2
        w = w[a:a + int(0.95 * CLIP)]
    if not clean:
        w = random_filter(rng, w)
    x = np.zeros(CLIP, dtype=np.float32)
    off = (CLIP - len(w)) // 2 if clean else int(rng.integers(0, CLIP - len(w) + 1))
    # Level: speech RMS (over the voiced part) between -36 and -12 dBFS.
    target_db = -20.0 if clean else rng.uniform(-36, -12)
    w = w * np.float32(10 ** (target_db / 20) / rms(w))
    x[off:off + len(w)] = w
    if clean:
        noise_db = target_db - 45
        x += coloured_noise(rng, CLIP, "pink") * np.float32(10 ** (noise_db / 20))
    else:
        if rng.random() < 0.85:
            x += background(rng, target_db - rng.uniform(5, 40))
        else:
            x += rng.standard_normal(CLIP).astype(np.float32) * np.float32(10 ** (rng.uniform(-100, -75) / 20))
        if rng.random() < 0.15:
            x += hum(rng, CLIP) * np.float32(10 ** ((target_db - rng.uniform(15, 45)) / 20))
    peak = np.abs(x).max()
    if peak > 0.99:
        x *= np.float32(0.99 / peak)
    return to_int16(x)


def make_clip(spec: Spec) -> np.ndarray:
    if spec.label == "_silence_":
        return make_silence(spec)
    return make_speech(spec)


# --------------------------------------------------------------------------- planning


def plan_split(rng: np.random.Generator, voices: list[tuple[str, str]], per_class: int, start: int,
               labels: list[str] | None = None) -> list[Spec]:
    """Specs of ``per_class`` clips per label (the keyword labels by default; any other label is spoken as
    itself), voices drawn from ``voices``."""
    specs = []
    i = start
    for label in LABELS if labels is None else labels:
        for _ in range(per_class):
            a, v = voices[int(rng.integers(len(voices)))]
            if label == "_unknown_":
                text = UNKNOWN_WORDS[int(rng.integers(len(UNKNOWN_WORDS)))]
            elif label == "_silence_":
                text, a, v = "", "", ""
            else:
                text = label
            specs.append(Spec(
                index=i, label=label, text=text, accent=a, variant=v,
                speed=int(rng.integers(80, 231)),
                pitch=int(rng.integers(15, 86)),
                amplitude=int(rng.integers(60, 181)),
                prange=RANGES[int(rng.integers(len(RANGES)))],
                punct=PUNCT[int(rng.integers(len(PUNCT)))],
                seed=int(rng.integers(0, 2**63 - 1)),
            ))
            i += 1
    return specs


def phonemes(accent: str, words: list[str]) -> list[str]:
    out = subprocess.run(["espeak-ng", "-q", "-x", "-v", accent, " ".join(words)],
                         capture_output=True, text=True, check=True).stdout
    toks = out.split()
    if len(toks) != len(words):  # fall back to one call per word
        toks = [subprocess.run(["espeak-ng", "-q", "-x", "-v", accent, w], capture_output=True,
                               text=True, check=True).stdout.strip() for w in words]
    return [re.sub(r"[',_:;!=]", "", t) for t in toks]


def check_unknown_words() -> None:
    """Refuse _unknown_ words that espeak-ng pronounces exactly like a keyword."""
    bad = sorted(EXTRA_HOMOPHONES & set(UNKNOWN_WORDS))
    for accent in ACCENTS:
        kw = dict(zip(phonemes(accent, KEYWORDS), KEYWORDS))
        for w, ph in zip(UNKNOWN_WORDS, phonemes(accent, UNKNOWN_WORDS)):
            if ph in kw:
                bad.append(f"{w} (= {kw[ph]} in {accent})")
    if bad:
        raise SystemExit(f"unknown-word list contains keyword homophones: {bad}")


def _stats(audio: np.ndarray, labels: np.ndarray) -> list[str]:
    lines = []
    x = audio.astype(np.float32) / 32768.0
    r = 20 * np.log10(np.sqrt(np.mean(x**2, axis=1)) + 1e-12)
    for k, name in enumerate(LABELS):
        m = labels == k
        if not m.any():
            continue
        lines.append(f"  {name:10s} n={int(m.sum()):5d}  rms dBFS min/med/max = "
                     f"{r[m].min():6.1f} / {np.median(r[m]):6.1f} / {r[m].max():6.1f}")
    return lines


def build(args: argparse.Namespace) -> None:
    t0 = time.time()
    check_unknown_words()
    have = available_variants()
    missing = [v for v in VARIANTS if v and v not in have]
    if missing:
        print(f"warning: espeak-ng lacks variants {missing}; they are skipped", file=sys.stderr)
    variants = [v for v in VARIANTS if not v or v in have]
    train_voices, test_voices = split_voices(variants)
    rng = np.random.default_rng(args.seed)
    plans = {
        "train": plan_split(rng, train_voices, args.per_class_train, 0),
        "test": plan_split(rng, test_voices, args.per_class_test, args.per_class_train * len(LABELS)),
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, ".gitignore"), "w") as f:
        f.write("# generated by scripts/synth_keywords.py\n*\n")
    summary = {}
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for split, specs in plans.items():
            t1 = time.time()
            clips = list(pool.map(make_clip, specs, chunksize=16))
            audio = np.stack(clips)
            labels = np.array([LABELS.index(s.label) for s in specs], dtype=np.int64)
            np.savez_compressed(
                os.path.join(args.out, f"{split}.npz"),
                audio=audio,
                labels=labels,
                label_names=np.array(LABELS),
                voice=np.array([voice_name(s.accent, s.variant) if s.accent else "" for s in specs]),
                text=np.array([s.text for s in specs]),
                speed=np.array([s.speed for s in specs], dtype=np.int32),
                pitch=np.array([s.pitch for s in specs], dtype=np.int32),
            )
            dt = time.time() - t1
            print(f"{split}: {len(specs)} clips in {dt:.1f} s")
            for line in _stats(audio, labels):
                print(line)
            x = audio.astype(np.float32) / 32768.0
            kw = labels != LABELS.index("_silence_")
            peak_frame = np.abs(x).reshape(len(x), 100, 160).max(axis=2).max(axis=1)
            quiet = int((kw & (peak_frame < 10 ** (-45 / 20))).sum())
            if quiet:
                raise SystemExit(f"{split}: {quiet} speech clips are (nearly) silent")
            summary[split] = {
                "clips": len(specs),
                "per_class": {name: int((labels == k).sum()) for k, name in enumerate(LABELS)},
                "seconds": round(dt, 1),
            }
    manifest = {
        "command": " ".join(["python", "scripts/synth_keywords.py"] + [shlex.quote(a) for a in sys.argv[1:]]),
        "seed": args.seed,
        "espeak_ng": espeak_version(),
        "sampling_rate": SR,
        "labels": LABELS,
        "heldout_accents": HELDOUT_ACCENTS,
        "heldout_variants": HELDOUT_VARIANTS,
        "train_voices": [voice_name(a, v) for a, v in train_voices],
        "test_voices": [voice_name(a, v) for a, v in test_voices],
        "unknown_words": UNKNOWN_WORDS,
        "splits": summary,
        "total_seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"held-out accents: {HELDOUT_ACCENTS}")
    print(f"held-out variants: {HELDOUT_VARIANTS}")
    print(f"voices: {len(train_voices)} train, {len(test_voices)} test; wrote {args.out} in {manifest['total_seconds']} s")


# --------------------------------------------------------------------------- labelled folders


def trimmed(clip: np.ndarray, seed: int) -> np.ndarray:
    """``clip`` cut to its loud part (within 30 dB of its peak) plus a random margin of up to 0.15 s each side."""
    rng = np.random.default_rng(seed)
    hop = 160
    frames = len(clip) // hop
    energy = np.sqrt(np.mean((clip[: frames * hop].astype(np.float64) / 32768.0).reshape(frames, hop) ** 2, axis=1))
    active = np.flatnonzero(energy > energy.max() * 10 ** (-30 / 20))
    begin, end = active[0] * hop, (active[-1] + 1) * hop
    margin = int(0.15 * SR)
    begin = max(0, begin - int(rng.integers(0, margin + 1)))
    end = min(len(clip), end + int(rng.integers(0, margin + 1)))
    return clip[begin:end]


def write_folders(out: str, words: list[str], per_class_train: int, per_class_test: int, seed: int,
                  jobs: int, trim_clips: bool = False) -> dict[str, int]:
    """Write ``out/train/<word>/NNNN.wav`` (training voices) and ``out/heldout/<word>/NNNN.wav`` (held-out voices),
    16 kHz 16-bit mono, 1 s each (with ``trim_clips``, cut to the word plus a random margin: lengths vary);
    returns the clip count per split. The same seed gives the same files."""
    import soundfile as sf

    have = available_variants()
    variants = [v for v in VARIANTS if not v or v in have]
    train_voices, test_voices = split_voices(variants)
    rng = np.random.default_rng(seed)
    plans = {"train": plan_split(rng, train_voices, per_class_train, 0, words),
             "heldout": plan_split(rng, test_voices, per_class_test, per_class_train * len(words), words)}
    counts = {}
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        for split, specs in plans.items():
            for spec, clip in zip(specs, pool.map(make_speech, specs, chunksize=8)):
                if trim_clips:
                    clip = trimmed(clip, spec.seed)
                folder = os.path.join(out, split, spec.label)
                os.makedirs(folder, exist_ok=True)
                sf.write(os.path.join(folder, f"{spec.index:04d}.wav"), clip, SR, subtype="PCM_16")
            counts[split] = len(specs)
    return counts


# --------------------------------------------------------------------------- demo samples

# (word, accent, variant): all held-out voices.
DEMO = [
    ("yes", "en-gb", "f2"),
    ("no", "en-us", "m3"),
    ("stop", "en-029", ""),
    ("go", "en-gb-x-rp", "john"),
    ("up", "en-us-nyc", "belinda"),
]


def write_samples(out: str, seed: int) -> None:
    import soundfile as sf

    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    for word, accent, variant in DEMO:
        assert accent in HELDOUT_ACCENTS or variant in HELDOUT_VARIANTS
        spec = Spec(0, word, word, accent, variant, speed=150, pitch=50, amplitude=100, prange=None,
                    punct="", seed=int(rng.integers(0, 2**63 - 1)))
        x = make_speech(spec, clean=True)
        path = os.path.join(out, f"synth_{word}_{accent}.wav")
        sf.write(path, x, SR, subtype="PCM_16")
        cmd = " ".join(shlex.quote(c) for c in espeak_cmd(spec))
        print(f"{path}: {cmd}  (22.05 kHz -> 16 kHz soxr HQ, trimmed, centred in 1 s, pink noise 45 dB below the speech level)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="data/synth-kws", help="output folder for train.npz / test.npz / manifest.json")
    p.add_argument("--per-class-train", type=int, default=300)
    p.add_argument("--per-class-test", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2, help="parallel synthesis processes")
    p.add_argument("--samples", metavar="DIR", help="write demo WAVs from held-out voices to DIR and exit")
    p.add_argument("--words", help="comma-separated words for --folders")
    p.add_argument("--folders", metavar="DIR", help="write DIR/train/<word>/ and DIR/heldout/<word>/ WAV folders of "
                                                   "--words and exit")
    p.add_argument("--trim", action="store_true", help="with --folders: cut each clip to the word plus a margin")
    args = p.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng not found (Debian/Ubuntu: apt-get install espeak-ng)")
    if args.folders:
        if not args.words:
            raise SystemExit("--folders needs --words")
        counts = write_folders(args.folders, [w.strip() for w in args.words.split(",") if w.strip()],
                               args.per_class_train, args.per_class_test, args.seed, args.jobs, args.trim)
        print(f"wrote {args.folders}: {counts}")
    elif args.samples:
        write_samples(args.samples, args.seed)
    else:
        build(args)


if __name__ == "__main__":
    main()
