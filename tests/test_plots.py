"""The timeline picture (``audioclf.plots``): a real PNG of the expected size whose pixels show the recording and
the scores where they belong, and the missing-matplotlib path."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioclf.errors import AudioclfError
from audioclf.plots import INSTALL_HINT, file_spectrogram, require_matplotlib, save_figure, spectrogram_of, timeline_figure

RATE = 16000
#: tone bursts of the test recording: (start s, end s, frequency Hz)
BURSTS = [(2.0, 3.0, 1000.0), (6.0, 7.5, 4000.0)]


def recording(path: Path) -> Path:
    """10 s of faint noise with the :data:`BURSTS`."""
    rng = np.random.default_rng(0)
    wave = 0.001 * rng.standard_normal(10 * RATE)
    t = np.arange(10 * RATE) / RATE
    for start, end, hertz in BURSTS:
        inside = (t >= start) & (t < end)
        wave[inside] += 0.5 * np.sin(2 * np.pi * hertz * t[inside])
    sf.write(path, wave.astype(np.float32), RATE, subtype="FLOAT")
    return path


def window_records(hop: float = 0.5, length: float = 1.0) -> list[dict]:
    """Windows over 10 s: "low" scores 0.9 where the 1 kHz burst is, "high" where the 4 kHz one is, else 0.05."""
    records = []
    for k in range(int((10 - length) / hop) + 1):
        start, end = k * hop, k * hop + length
        scores = {"low": 0.05, "high": 0.05}
        for (burst_start, burst_end, hertz), name in zip(BURSTS, ("low", "high")):
            if start < burst_end and end > burst_start:
                scores[name] = 0.9
        records.append({"path": "r.wav", "start": start, "end": end,
                        "labels": [{"label": n, "score": s} for n, s in scores.items()], "model": "m"})
    return records


def pixel(image: np.ndarray, figure, axes, x: float, y: float) -> np.ndarray:
    """The RGB colour the PNG ``image`` has at data point ``(x, y)`` of ``axes``."""
    column, row = axes.transData.transform((x, y))
    return image[int(round(image.shape[0] - row)), int(round(column)), :3]


def test_timeline_is_a_picture_of_the_recording_and_its_scores(tmp_path: Path) -> None:
    import matplotlib.image

    spectrogram = file_spectrogram(recording(tmp_path / "r.wav"))
    events = [{"path": "r.wav", "label": "low", "start": 1.5, "end": 3.5, "score": 0.9, "model": "m"}]
    figure = timeline_figure(spectrogram, window_records(), ["low", "high"], events=events, threshold=0.5,
                             title="r.wav")
    target = save_figure(figure, tmp_path / "timeline.png")
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(target)
    width, height = figure.get_size_inches() * figure.dpi
    assert image.shape[:2] == (round(height), round(width)) and 900 <= width <= 1400 and 300 < height < 1400
    top, low, high = figure.axes[0], figure.axes[2], figure.axes[3]  # axes[1] is the colour bar
    assert (low.get_ylabel(), high.get_ylabel()) == ("low", "high")

    # the spectrogram: a burst is bright at its own frequency, dark elsewhere and between bursts
    from audioclf.audio.spectrogram import hertz_to_mel

    bands = spectrogram.decibels.shape[0]

    def band(hertz: float) -> float:
        return float(hertz_to_mel(hertz) / hertz_to_mel(spectrogram.top_hz)) * bands

    brightness = lambda x, hertz: float(pixel(image, figure, top, x, band(hertz)).sum())  # noqa: E731
    assert brightness(2.5, 1000) > brightness(4.5, 1000) + 0.5
    assert brightness(6.7, 4000) > brightness(2.5, 4000) + 0.5
    assert brightness(6.7, 4000) > brightness(6.7, 1000) + 0.5

    # the lanes: the event is shaded (green, not white) where it is, the lane is white elsewhere
    shade = pixel(image, figure, low, 1.7, 0.25)
    assert shade[1] > shade[0] + 0.05 and shade[1] > shade[2] + 0.05
    assert np.all(pixel(image, figure, low, 8.6, 0.3) > 0.97)  # (off the grid lines)
    assert np.all(pixel(image, figure, high, 1.7, 0.3) > 0.97)  # no event of "high" there
    # the score line runs high during the bursts and low elsewhere: the line's colour is found near its value
    line_colour = np.array(low.get_lines()[0].get_color() and matplotlib.colors.to_rgb(low.get_lines()[0].get_color()))
    near = lambda axes, x, y: min(np.abs(pixel(image, figure, axes, x, y + d) - line_colour).sum()  # noqa: E731
                                  for d in np.linspace(-0.04, 0.04, 9))
    assert near(low, 2.5, 0.9) < 0.3 and near(low, 8.0, 0.05) < 0.3 and near(high, 6.7, 0.9) < 0.3
    assert near(low, 8.0, 0.9) > 0.5


def test_long_recordings_are_analysed_with_a_longer_hop() -> None:
    blocks = (np.zeros(RATE, dtype=np.float32) for _ in range(600))  # 10 minutes, streamed
    spectrogram = spectrogram_of(blocks, RATE, total_samples=600 * RATE, max_columns=1000)
    assert spectrogram.decibels.shape == (80, 1000) or abs(spectrogram.decibels.shape[1] - 1000) <= 1
    assert abs(spectrogram.duration - 600) < 1.0


def test_without_matplotlib_the_message_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(AudioclfError, match=r"pip install 'audioclf\[plot\]'"):
        require_matplotlib()
    assert "audioclf[plot]" in INSTALL_HINT
