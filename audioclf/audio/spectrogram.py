"""Short-time spectral analysis in numpy: the building blocks of the log-mel featurizers.

Every function works on float64 and states its shapes; ``T`` is the number of frames, ``L`` the frame length,
``K = fft_length // 2 + 1`` the number of one-sided frequency bins and ``M`` the number of mel filters.

Two framings are supported:

* **Kaldi** ("snip edges"): frame ``t`` covers samples ``[t * hop, t * hop + L)``; only whole frames are taken, so
  ``T = 1 + (N - L) // hop`` for ``N >= L`` and ``T = 0`` for shorter input.
* **centred**: the signal is first padded by ``L // 2`` reflected samples on each side, so frame ``t`` is centred on
  sample ``t * hop`` and ``T = 1 + N // hop`` (for an even ``L``).

The per-frame pipeline of a Kaldi filter bank is: dither → remove the DC offset → pre-emphasis → window →
zero-padded real FFT → power → mel filter bank → floor → log. The two composite functions at the bottom chain
these steps for the two families of models (:func:`kaldi_log_mel` and :func:`centered_log10_mel`).
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np

__all__ = [
    "KALDI_LOG_FLOOR",
    "WINDOW_NAMES",
    "add_dither",
    "centered_log10_mel",
    "frame_count",
    "frame_signal",
    "hertz_to_mel",
    "kaldi_log_mel",
    "log_mel_energies",
    "mel_filter_bank",
    "mel_to_hertz",
    "power_spectrum",
    "preemphasize",
    "remove_dc_offset",
    "window_function",
]

MelScale = Literal["htk", "kaldi", "slaney"]

# Kaldi floors filter-bank energies at the float32 machine epsilon before the log.
KALDI_LOG_FLOOR = float(np.finfo(np.float32).eps)

WINDOW_NAMES = ("boxcar", "hamming", "hann", "povey")

# Frames processed together by the composites: 128 frames of a 512-point FFT keep every temporary under 1 MiB.
FRAME_BLOCK = 128

# Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above (27 mels per factor 6.4).
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_BREAK_MEL = 15.0
_SLANEY_MELS_PER_LOG_HZ = 27.0 / np.log(6.4)


# ------------------------------------------------------------------------------------------------------ mel scale
def hertz_to_mel(frequency: float | np.ndarray, scale: MelScale = "htk") -> np.ndarray:
    """Frequencies in Hz → mels (float64, same shape).

    ``"htk"``: ``2595 log10(1 + f / 700)``; ``"kaldi"``: ``1127 ln(1 + f / 700)`` (the same curve, natural log);
    ``"slaney"``: linear below 1 kHz, logarithmic above (librosa's default).
    """
    f = np.asarray(frequency, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    if scale == "kaldi":
        return 1127.0 * np.log(1.0 + f / 700.0)
    if scale == "slaney":
        linear = 3.0 * f / 200.0
        with np.errstate(divide="ignore"):
            logarithmic = _SLANEY_BREAK_MEL + np.log(f / _SLANEY_BREAK_HZ) * _SLANEY_MELS_PER_LOG_HZ
        return np.where(f >= _SLANEY_BREAK_HZ, logarithmic, linear)
    raise ValueError(f"unknown mel scale {scale!r}")


def mel_to_hertz(mel: float | np.ndarray, scale: MelScale = "htk") -> np.ndarray:
    """Mels → frequencies in Hz (float64, same shape); the inverse of :func:`hertz_to_mel`."""
    m = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (np.power(10.0, m / 2595.0) - 1.0)
    if scale == "kaldi":
        return 700.0 * (np.exp(m / 1127.0) - 1.0)
    if scale == "slaney":
        linear = 200.0 * m / 3.0
        logarithmic = _SLANEY_BREAK_HZ * np.exp((m - _SLANEY_BREAK_MEL) / _SLANEY_MELS_PER_LOG_HZ)
        return np.where(m >= _SLANEY_BREAK_MEL, logarithmic, linear)
    raise ValueError(f"unknown mel scale {scale!r}")


def mel_filter_bank(
    num_frequency_bins: int,
    num_mel_filters: int,
    min_frequency: float,
    max_frequency: float,
    sampling_rate: int,
    *,
    scale: MelScale = "htk",
    slaney_norm: bool = False,
    triangles_in_mel_space: bool = False,
) -> np.ndarray:
    """Triangular mel filters, ``float64 [K, M]`` (``K = num_frequency_bins``, ``M = num_mel_filters``).

    The ``M + 2`` band edges are equally spaced in mels between ``min_frequency`` and ``max_frequency``; filter
    ``m`` rises from edge ``m`` to edge ``m + 1`` and falls to edge ``m + 2``. The variants:

    * ``triangles_in_mel_space=False``: the triangles are linear in Hz and the FFT bins sit at
      ``linspace(0, sampling_rate // 2, K)`` (HTK and Slaney/librosa filters, Whisper);
    * ``triangles_in_mel_space=True``: the triangles are linear in mels and bin ``k`` sits at
      ``k * sampling_rate / (2 (K - 1))`` converted to mels (Kaldi filters, as ``torchaudio.compliance.kaldi``);
    * ``slaney_norm``: each filter is divided by half its width in Hz (constant energy per channel).

    A filter that no FFT bin falls into is all zeros (possible with many filters and few bins); it is kept.
    """
    if num_frequency_bins < 2:
        raise ValueError(f"num_frequency_bins must be 2 or more, got {num_frequency_bins}")
    if min_frequency > max_frequency:
        raise ValueError(f"min_frequency {min_frequency} is above max_frequency {max_frequency}")
    edges_mel = np.linspace(hertz_to_mel(min_frequency, scale), hertz_to_mel(max_frequency, scale), num_mel_filters + 2)
    edges_hz = mel_to_hertz(edges_mel, scale)
    if triangles_in_mel_space:
        bin_width = sampling_rate / ((num_frequency_bins - 1) * 2)
        bins = hertz_to_mel(bin_width * np.arange(num_frequency_bins), scale)
        edges = edges_mel
    else:
        bins = np.linspace(0, sampling_rate // 2, num_frequency_bins)
        edges = edges_hz
    widths = np.diff(edges)  # [M + 1]
    offsets = edges[np.newaxis, :] - bins[:, np.newaxis]  # [K, M + 2]: edge minus bin position
    rising = -offsets[:, :-2] / widths[:-1]  # (bin - lower edge) / (centre - lower edge)
    falling = offsets[:, 2:] / widths[1:]  # (upper edge - bin) / (upper edge - centre)
    filters = np.maximum(0.0, np.minimum(rising, falling))
    if slaney_norm:
        filters *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[np.newaxis, :]
    return filters


# -------------------------------------------------------------------------------------------------------- windows
def window_function(name: str, length: int, *, periodic: bool) -> np.ndarray:
    """A window, ``float64 [length]``.

    ``"hann"``, ``"hamming"``, ``"boxcar"`` (rectangular) and ``"povey"`` (Kaldi's default: Hann to the power 0.85).
    ``periodic=True`` gives the DFT-even window (a symmetric window of ``length + 1`` without its last sample, as
    ``torch.hann_window``); ``periodic=False`` the symmetric one (Kaldi's windows).
    """
    size = length + 1 if periodic else length
    if name == "hann":
        window = np.hanning(size)
    elif name == "hamming":
        window = np.hamming(size)
    elif name == "povey":
        window = np.power(np.hanning(size), 0.85)
    elif name == "boxcar":
        window = np.ones(size)
    else:
        raise ValueError(f"unknown window {name!r}; known: {', '.join(WINDOW_NAMES)}")
    return window[:length] if periodic else window


# -------------------------------------------------------------------------------------------------------- framing
def frame_count(num_samples: int, frame_length: int, hop_length: int, *, center: bool = False) -> int:
    """Number of frames of ``num_samples`` samples: ``1 + (N - L) // hop`` (at least 0) with Kaldi framing; centred,
    the same count for ``N + 2 (L // 2)`` samples, i.e. ``1 + N // hop`` for an even ``L``."""
    if center:
        num_samples += 2 * (frame_length // 2)
    if num_samples < frame_length:
        return 0
    return 1 + (num_samples - frame_length) // hop_length


def frame_signal(waveform: np.ndarray, frame_length: int, hop_length: int, *, center: bool = False) -> np.ndarray:
    """Overlapping frames of ``waveform [N]`` as a read-only strided view, ``float64 [T, L]``.

    ``center=True`` pads ``L // 2`` reflected samples on each side first (needs ``N > L // 2``, as ``np.pad``).
    ``T`` is :func:`frame_count`; with Kaldi framing and ``N < L`` the result is ``[0, L]``.
    """
    signal = np.asarray(waveform, dtype=np.float64)
    if signal.ndim != 1:
        raise ValueError(f"a waveform must be 1-D, got shape {signal.shape}")
    if center:
        signal = np.pad(signal, frame_length // 2, mode="reflect")
    count = frame_count(signal.shape[0], frame_length, hop_length)
    if count == 0:
        return np.zeros((0, frame_length), dtype=np.float64)
    return np.lib.stride_tricks.as_strided(
        signal,
        shape=(count, frame_length),
        strides=(signal.strides[0] * hop_length, signal.strides[0]),
        writeable=False,
    )


# ---------------------------------------------------------------------------------------------- per-frame steps
def add_dither(frames: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """``frames + amount * N(0, 1)`` noise drawn per sample, ``float64 [T, L]`` (a new array)."""
    return frames + amount * rng.standard_normal(frames.shape)


def remove_dc_offset(frames: np.ndarray) -> np.ndarray:
    """Each frame minus its mean, ``float64 [T, L]`` (a new array)."""
    return frames - frames.mean(axis=1, keepdims=True)


def preemphasize(frames: np.ndarray, coefficient: float) -> np.ndarray:
    """Kaldi pre-emphasis within each frame, ``float64 [T, L]`` (a new array):
    ``y[0] = (1 - c) x[0]`` and ``y[i] = x[i] - c x[i - 1]``."""
    out = np.empty_like(frames)
    out[:, 0] = frames[:, 0] * (1.0 - coefficient)
    np.subtract(frames[:, 1:], coefficient * frames[:, :-1], out=out[:, 1:])
    return out


def power_spectrum(frames: np.ndarray, window: np.ndarray, fft_length: int) -> np.ndarray:
    """``|rfft(frame * window, fft_length)|^2`` per frame: ``frames [T, L]``, ``window [L]`` →
    ``float64 [T, fft_length // 2 + 1]`` (frames shorter than ``fft_length`` are zero-padded at the end)."""
    spectrum = np.fft.rfft(frames * window, n=fft_length, axis=1)
    return spectrum.real**2 + spectrum.imag**2


def log_mel_energies(
    power: np.ndarray, filters: np.ndarray, floor: float, *, base: Literal["e", "10"] = "e"
) -> np.ndarray:
    """``log(max(floor, power @ filters))``: ``power [T, K]``, ``filters [K, M]`` → ``float64 [T, M]``."""
    energies = np.maximum(floor, power @ filters)
    return np.log10(energies, out=energies) if base == "10" else np.log(energies, out=energies)


# ------------------------------------------------------------------------------------------------------ composites
def kaldi_log_mel(
    waveform: np.ndarray,
    window: np.ndarray,
    filters: np.ndarray,
    *,
    hop_length: int,
    fft_length: int,
    preemphasis: float = 0.97,
    dither: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Kaldi-style log mel filter-bank energies (``compute-fbank-feats`` with ``snip_edges``, no energy term).

    Args:
        waveform: ``[N]`` samples, any real dtype (used as float64, not rescaled).
        window: ``[L]``; its length is the frame length.
        filters: ``[fft_length // 2 + 1, M]`` mel filters.
        hop_length: frame shift in samples; ``fft_length``: FFT size (``>= L``).
        preemphasis: pre-emphasis coefficient; ``dither``: standard deviation of the Gaussian noise added to every
            frame before the DC removal (0: none; then ``rng`` is unused).

    Returns:
        ``float64 [T, M]`` with ``T = 1 + (N - L) // hop_length`` (0 when ``N < L``): the natural log of the mel
        energies floored at :data:`KALDI_LOG_FLOOR`.
    """
    rng = rng if rng is not None or not dither else np.random.default_rng()

    def block_energies(frames: np.ndarray) -> np.ndarray:
        if dither:
            frames = add_dither(frames, dither, rng)
        frames = preemphasize(remove_dc_offset(frames), preemphasis)
        return log_mel_energies(power_spectrum(frames, window, fft_length), filters, KALDI_LOG_FLOOR)

    return _per_frame_block(frame_signal(waveform, window.shape[0], hop_length), block_energies, filters.shape[1])


def centered_log10_mel(
    waveform: np.ndarray,
    window: np.ndarray,
    filters: np.ndarray,
    *,
    hop_length: int,
    floor: float = 1e-10,
    dither: float = 0.0,
    rng: np.random.Generator | None = None,
    constant_from: int | None = None,
) -> np.ndarray:
    """``log10`` mel power spectrogram of centred, reflect-padded frames (the Whisper / librosa framing).

    Args:
        waveform: ``[N]`` samples (``N > L // 2``), any real dtype (used as float64).
        window: ``[L]``; its length is both the frame length and the FFT size.
        filters: ``[L // 2 + 1, M]`` mel filters.
        hop_length: frame shift; ``floor``: lower bound of the mel energies before the log; ``dither``: per-frame
            Gaussian noise as in :func:`kaldi_log_mel`.
        constant_from: when given, ``waveform[constant_from:]`` is one repeated value (right padding): the frames
            that hold only such samples are all equal, so one of them is computed and copied (not with dither).

    Returns:
        ``float64 [T, M]`` with ``T = frame_count(N, L, hop_length, center=True)`` (``1 + N // hop_length`` for an
        even ``L``).
    """
    rng = rng if rng is not None or not dither else np.random.default_rng()

    def block_energies(frames: np.ndarray) -> np.ndarray:
        if dither:
            frames = add_dither(frames, dither, rng)
        return log_mel_energies(power_spectrum(frames, window, window.shape[0]), filters, floor, base="10")

    frames = frame_signal(waveform, window.shape[0], hop_length, center=True)
    computed = frames.shape[0]
    if constant_from is not None and not dither:
        computed = min(computed, _first_constant_frame(frames.shape[0] - 1, window.shape[0], hop_length,
                                                       waveform.shape[0], constant_from) + 1)
    energies = _per_frame_block(frames[:computed], block_energies, filters.shape[1])
    if computed == frames.shape[0]:
        return energies
    out = np.empty((frames.shape[0], filters.shape[1]), dtype=np.float64)
    out[:computed] = energies
    out[computed:] = energies[-1]
    return out


def _per_frame_block(frames: np.ndarray, step: Callable[[np.ndarray], np.ndarray], columns: int) -> np.ndarray:
    """``step`` applied to ``FRAME_BLOCK`` frames at a time: ``frames [T, L]`` → ``float64 [T, columns]``. The
    temporaries of one block stay in the CPU cache, which makes a long signal about twice as fast as one pass."""
    out = np.empty((frames.shape[0], columns), dtype=np.float64)
    for start in range(0, frames.shape[0], FRAME_BLOCK):
        out[start : start + FRAME_BLOCK] = step(frames[start : start + FRAME_BLOCK])
    return out


def _first_constant_frame(last_frame: int, frame_length: int, hop_length: int, num_samples: int, start: int) -> int:
    """Index of the first centred frame made only of samples ``>= start`` (reflections included), else
    ``last_frame``. Frame ``t`` covers samples ``[t * hop - L // 2, t * hop + L - L // 2)``; those past the end are
    mirrored back to ``2 (N - 1) - i >= N - 1 - L // 2``."""
    half = frame_length // 2
    if num_samples - 1 - (frame_length - half) < start:  # the mirrored tail reaches before ``start``
        return last_frame
    return min(last_frame, -(-(start + half) // hop_length))
