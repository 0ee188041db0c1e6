"""Time the spectral featurizers against transformers' extractors on the same 10 s of 16 kHz audio.

Prints, per featurizer, the median milliseconds per 10 s of audio for audioclf and for transformers (its numpy path;
for Whisper also the torch STFT path transformers takes whenever torch is installed), their ratio, and the largest
difference between the two outputs relative to the feature scale. Runs are interleaved so that load on a shared
machine hits both sides alike. Needs the test extra (transformers).

numpy's BLAS (used for the mel filter-bank product) runs on ``--blas-threads`` threads, 1 by default: featurizers
run on several decode threads at once, and a multi-threaded BLAS whose threads wait for a busy core makes them
several times slower.

    python scripts/bench_features.py [--repeats 7] [--seconds 10] [--threads 1] [--blas-threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

CLIP = Path(__file__).resolve().parents[1] / "tests" / "data" / "audio" / "librispeech_5703-47212-0000_16k_mono.ogg"
RATE = 16000


def median_ms(functions: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median wall time of each function in milliseconds, runs interleaved, one warm-up each."""
    for function in functions.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (at most 30)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for transformers' torch path")
    parser.add_argument("--blas-threads", type=int, default=1, help="numpy BLAS threads (0: the library's default)")
    args = parser.parse_args()
    if args.blas_threads:  # before numpy is imported
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.blas_threads)

    import logging
    import warnings

    import numpy as np
    import soundfile
    import torch
    import transformers
    from transformers import ASTFeatureExtractor as TheirAST
    from transformers import SeamlessM4TFeatureExtractor as TheirSeamless
    from transformers import WhisperFeatureExtractor as TheirWhisper

    from audioclf.audio.spectral_features import (
        ASTFeatureExtractor,
        SeamlessM4TFeatureExtractor,
        WhisperFeatureExtractor,
    )

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    logging.getLogger("audioclf").setLevel(logging.ERROR)

    speech, rate = soundfile.read(CLIP, dtype="float32")
    assert rate == RATE
    wave = np.resize(speech, int(args.seconds * RATE)).astype(np.float32)  # the clip, repeated if needed
    full_window = np.resize(speech, 30 * RATE).astype(np.float32)

    def relative_difference(ours: Any, theirs: Any) -> float:
        ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
        finite = np.isfinite(theirs)
        return float(np.abs(ours[finite] - theirs[finite]).max() / np.abs(theirs[finite]).max())

    ast, their_ast = ASTFeatureExtractor(), TheirAST()
    whisper, their_whisper = WhisperFeatureExtractor(), TheirWhisper()
    seamless, their_seamless = SeamlessM4TFeatureExtractor(), TheirSeamless()
    padded = np.pad(wave, (0, whisper.max_samples - wave.shape[0]))[np.newaxis]

    rows = []
    for name, ours, theirs in [
        ("AST", lambda: ast.featurize(wave), lambda: their_ast(wave, sampling_rate=RATE)["input_values"][0]),
        ("Whisper", lambda: whisper.featurize(wave),
         lambda: their_whisper._np_extract_fbank_features(padded, "cpu")[0]),
        ("Whisper (torch STFT)", lambda: whisper.featurize(wave),
         lambda: their_whisper(wave, sampling_rate=RATE)["input_features"][0]),
        ("SeamlessM4T", lambda: seamless.collate([seamless.featurize(wave)])["input_features"][0],
         lambda: their_seamless(wave, sampling_rate=RATE)["input_features"][0]),
    ]:
        times = median_ms({"ours": ours, "theirs": theirs}, args.repeats)
        rows.append((name, times["ours"], times["theirs"], relative_difference(ours(), theirs())))
    full = median_ms({"ours": lambda: whisper.featurize(full_window)}, args.repeats)["ours"]

    per_10s = 10.0 / args.seconds
    blas = args.blas_threads or "default"
    print(f"ms per 10 s of 16 kHz audio ({args.seconds:g} s clip; median of {args.repeats}, interleaved; "
          f"torch threads {args.threads}, BLAS threads {blas}; load average {os.getloadavg()[0]:.1f})")
    print(f"{'featurizer':<22}{'audioclf':>10}{'transformers':>14}{'speed-up':>10}{'max diff / scale':>18}")
    for name, ours_ms, theirs_ms, difference in rows:
        print(f"{name:<22}{ours_ms * per_10s:>10.1f}{theirs_ms * per_10s:>14.1f}{theirs_ms / ours_ms:>9.1f}x"
              f"{difference:>18.2e}")
    print(f"Whisper, one item of 30 s of speech: {full:.1f} ms (shorter clips are padded to 30 s; the frames of "
          f"padding alone are computed once)")


if __name__ == "__main__":
    main()
