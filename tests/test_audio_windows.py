"""Chunks and overlapping windows over block streams (synthetic data)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from audioclf.audio import iter_window_frames
from audioclf.errors import AudioError


def _ramp(frames: int) -> np.ndarray:
    return np.arange(frames, dtype=np.float32)


def _blocks(signal: np.ndarray, size: int):
    return (signal[i : i + size] for i in range(0, signal.shape[0], size))


def window_bounds(total_frames: int, window_frames: int, hop_frames: int) -> list[tuple[int, int]]:
    """The placement rule of audioclf.audio.windows, written out on its own: windows at 0, hop, 2·hop, … until the
    first one that reaches the end, cut short there."""
    bounds, start = [], 0
    while start < total_frames:
        bounds.append((start, min(start + window_frames, total_frames)))
        if start + window_frames >= total_frames:
            break
        start += hop_frames
    return bounds


def test_window_bounds_examples() -> None:
    assert window_bounds(10, 4, 4) == [(0, 4), (4, 8), (8, 10)]  # chunks, last one shorter
    assert window_bounds(8, 4, 4) == [(0, 4), (4, 8)]  # exact multiple: no empty chunk
    assert window_bounds(10, 3, 1)[-1] == (7, 10)  # stops at the first window reaching the end
    assert window_bounds(10, 3, 1) == [(s, s + 3) for s in range(8)]
    assert window_bounds(11, 4, 2) == [(0, 4), (2, 6), (4, 8), (6, 10), (8, 11)]
    assert window_bounds(10, 1, 3) == [(0, 1), (3, 4), (6, 7), (9, 10)]  # hop > window skips audio
    assert window_bounds(3, 10, 5) == [(0, 3)]  # shorter than one window
    assert window_bounds(0, 10, 5) == []


@pytest.mark.parametrize("total", [0, 1, 7, 16, 17, 100, 257])
@pytest.mark.parametrize("window, hop", [(1, 1), (4, 4), (5, 2), (16, 3), (3, 7), (64, 64)])
@pytest.mark.parametrize("block", [1, 3, 16, 1000])
def test_streaming_windows_match_bounds_and_content(total: int, window: int, hop: int, block: int) -> None:
    signal = _ramp(total)
    got = list(iter_window_frames(_blocks(signal, block), window, hop))
    assert [(start, start + len(samples)) for start, samples in got] == window_bounds(total, window, hop)
    for start, samples in got:
        assert samples.dtype == np.float32
        np.testing.assert_array_equal(samples, signal[start : start + len(samples)])
    if got and hop <= window:
        assert got[-1][0] + len(got[-1][1]) == total  # the end of the audio is covered


def test_overlapping_windows_share_samples() -> None:
    signal = _ramp(1050)
    windows = list(iter_window_frames(_blocks(signal, 64), 300, 150))
    assert [(start, start + len(samples)) for start, samples in windows] == [(k * 150, k * 150 + 300) for k in range(6)]
    # overlap: the second half of one window is the first half of the next
    for (_, a), (_, b) in zip(windows, windows[1:]):
        np.testing.assert_array_equal(a[150:], b[:150])


def test_chunks_last_partial() -> None:
    rate = 16000
    chunks = list(iter_window_frames(_blocks(_ramp(rate * 5 + 400), 4096), 2 * rate, 2 * rate))
    assert [(start, start + len(samples)) for start, samples in chunks] == [(0, 32000), (32000, 64000), (64000, 80400)]
    np.testing.assert_array_equal(np.concatenate([samples for _, samples in chunks]), _ramp(rate * 5 + 400))


def test_multi_stream_blocks() -> None:
    signal = np.stack([_ramp(500), -_ramp(500)], axis=1)
    windows = list(iter_window_frames(_blocks(signal, 33), 200, 100))
    assert [samples.shape for _, samples in windows] == [(200, 2)] * 4
    np.testing.assert_array_equal(windows[-1][1], signal[300:500])


def test_windows_are_lazy_and_independent() -> None:
    def endless():
        for i in itertools.count():
            yield np.full(1000, i, np.float32)

    first = list(itertools.islice(iter_window_frames(endless(), 2500, 2500), 3))
    assert [start for start, _ in first] == [0, 2500, 5000]
    first[0][1][:] = -1  # modifying a window must not touch the next one
    stream = iter_window_frames(_blocks(_ramp(100), 10), 20, 10)
    a, b = next(stream), next(stream)
    a[1][:] = -5
    np.testing.assert_array_equal(b[1], _ramp(100)[10:30])


def test_bad_arguments_and_empty_input() -> None:
    for window, hop in [(0, 1), (1, 0), (-3, 2)]:
        with pytest.raises(AudioError):
            list(iter_window_frames([_ramp(10)], window, hop))
    assert list(iter_window_frames([], 16000, 16000)) == []
    assert list(iter_window_frames([np.zeros(0, np.float32)], 16000, 16000)) == []
