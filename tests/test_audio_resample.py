"""Streaming resampling equals one-shot soxr resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr

from audioclf.audio import AudioSource, Resampler
from audioclf.errors import AudioError

DATA = Path(__file__).parent / "data" / "audio"


def _blocks(signal: np.ndarray, size: int):
    return (signal[i : i + size] for i in range(0, signal.shape[0], size))


def streamed(blocks, in_rate: int, out_rate: int, channels: int = 1) -> np.ndarray:
    """Every output of a Resampler fed ``blocks``, flush included, joined."""
    resampler = Resampler(in_rate, out_rate, channels)
    parts = [resampler.process(block) for block in blocks] + [resampler.flush()]
    return np.concatenate(parts)


RATES = [(44100, 16000), (22050, 16000), (8000, 16000), (192000, 16000), (48000, 44100)]


@pytest.mark.parametrize("in_rate, out_rate", RATES)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("block", [1000, 4096, 65536])
def test_streaming_equals_one_shot(in_rate: int, out_rate: int, channels: int, block: int) -> None:
    rng = np.random.default_rng(in_rate + channels)
    shape = (in_rate * 2 + 123,) if channels == 1 else (in_rate * 2 + 123, channels)
    signal = (0.3 * rng.standard_normal(shape)).astype(np.float32)
    output = streamed(_blocks(signal, block), in_rate, out_rate, channels)
    expected = soxr.resample(signal, in_rate, out_rate, quality="HQ")
    assert output.dtype == np.float32 and output.shape == expected.shape
    assert np.abs(output - expected).max() <= 1e-6


def test_real_clip_streamed_in_blocks() -> None:
    source = AudioSource(DATA / "freesound_456440_robin_44k_stereo.ogg")
    whole = source.read_all()
    output = streamed(source.blocks(3000), 44100, 16000, channels=2)
    expected = soxr.resample(whole, 44100, 16000, quality="HQ")
    assert output.shape == expected.shape == (round(whole.shape[0] * 16000 / 44100), 2)
    assert np.abs(output - expected).max() <= 1e-6


def test_identity_when_rates_match() -> None:
    signal = np.arange(10, dtype=np.float32)
    resampler = Resampler(16000, 16000)
    assert resampler.identity
    out = resampler.process(signal)
    np.testing.assert_array_equal(out, signal)
    assert resampler.flush().shape == (0,)
    np.testing.assert_array_equal(streamed([signal[:4], signal[4:]], 8000, 8000), signal)


def test_output_layout_and_misuse() -> None:
    resampler = Resampler(44100, 16000, channels=2)
    out = resampler.process(np.zeros((4410, 2), np.float32))
    assert out.ndim == 2 and out.shape[1] == 2 and out.dtype == np.float32
    with pytest.raises(AudioError):
        resampler.process(np.zeros((10, 3), np.float32))
    with pytest.raises(AudioError):
        resampler.process(np.zeros(10, np.float32))
    tail = resampler.flush()
    assert tail.ndim == 2 and tail.shape[1] == 2
    assert out.shape[0] + tail.shape[0] == 1600
    with pytest.raises(RuntimeError):
        resampler.process(np.zeros((10, 2), np.float32))
    with pytest.raises(AudioError):
        Resampler(0, 16000)
    assert streamed([], 44100, 16000).shape == (0,)
