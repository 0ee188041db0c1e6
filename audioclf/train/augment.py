"""Training-time changes to a clip's waveform: a random crop of the longest allowed length, and augmentation.

:meth:`ClipTransform.apply` draws, from one clip's generator (:func:`audioclf.train.sampling.clip_rng`), in this
order: the crop offset (only for a clip longer than ``max_samples``), whether to augment (probability
``probability``), then for an augmented clip a gain (uniform in ±``gain_db``), a background noise (white, pink or
brown, at an SNR uniform in ``snr_db`` relative to the clip's RMS) and a time shift (uniform in ±``shift``
samples, the vacated samples set to 0). Its result tells whether the waveform came through unchanged, which is
when a frozen part's output for the clip can be reused (:mod:`audioclf.train.frozen`).

A gain change is undone by a featurizer that normalises each clip (``do_normalize``); it still matters for those
that do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ClipTransform", "coloured_noise"]

_NOISE_COLOURS = (0.0, 1.0, 2.0)  # white, pink, brown: power falls as 1 / f^alpha


@dataclass(frozen=True)
class ClipTransform:
    """Crop and augmentation settings in samples (see the module docstring)."""

    max_samples: int
    probability: float
    gain_db: float
    snr_db: tuple[float, float]
    shift: int

    def apply(self, wave: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
        """``(float32 [M], unchanged)`` for one clip ``float32 [N]`` (``M = min(N, max_samples)``); ``unchanged``
        is True when the result is the clip itself (not cropped, not augmented)."""
        unchanged = True
        if wave.shape[0] > self.max_samples:
            start = int(rng.integers(0, wave.shape[0] - self.max_samples + 1))
            wave = wave[start:start + self.max_samples]
            unchanged = False
        if self.probability > 0 and rng.random() < self.probability:
            wave = self._augment(wave, rng)
            unchanged = False
        return wave, unchanged

    def _augment(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        gain = 10 ** (rng.uniform(-self.gain_db, self.gain_db) / 20)
        out = wave.astype(np.float32) * np.float32(gain)
        level = float(np.sqrt(np.mean(np.square(out, dtype=np.float64)))) + 1e-8
        snr = rng.uniform(*self.snr_db)
        noise = coloured_noise(rng, out.shape[0], _NOISE_COLOURS[int(rng.integers(len(_NOISE_COLOURS)))])
        out += noise * np.float32(level * 10 ** (-snr / 20))
        shift = int(rng.integers(-self.shift, self.shift + 1)) if self.shift else 0
        if shift > 0:
            out[shift:] = out[:-shift].copy()
            out[:shift] = 0.0
        elif shift < 0:
            out[:shift] = out[-shift:].copy()
            out[shift:] = 0.0
        return out


def coloured_noise(rng: np.random.Generator, length: int, alpha: float) -> np.ndarray:
    """Unit-RMS noise ``float32 [length]`` whose power falls as ``1 / f^alpha`` (0 white, 1 pink, 2 brown)."""
    bins = length // 2 + 1
    spectrum = rng.standard_normal(bins) + 1j * rng.standard_normal(bins)
    frequency = np.arange(bins, dtype=np.float64)
    frequency[0] = 1.0
    spectrum *= frequency ** (-alpha / 2)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, length)
    return (noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)).astype(np.float32)
