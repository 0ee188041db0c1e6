"""Pictures (PNG) for people: the timeline of a classified recording, training curves, confusion matrices.

matplotlib is an optional extra (``pip install 'audioclf[plot]'``): :func:`require_matplotlib` raises an
:class:`~audioclf.errors.AudioclfError` naming the install command when it is missing, and nothing in this module
imports matplotlib before a figure is made. Figures are drawn with the object API on an Agg canvas (no pyplot
state, no display), in one shared look (:func:`style`), and saved atomically as PNG (:func:`save_figure`).

**Timeline** (:func:`plot_timeline`, ``audioclf classify --window … --plot``): a log-mel spectrogram of the
recording on top (the project's own STFT and mel filters, :mod:`audioclf.audio.spectrogram`), under it one lane per
label: the label's score in each window, drawn as a step line over the window's span (centre-to-centre with
overlapping windows), the threshold as a dashed line and the events shaded, all on the spectrogram's time axis.

**Training** (:func:`training_curves_plot`, :func:`confusion_matrix_plot`, ``audioclf train`` / ``evaluate``):
loss and accuracy per epoch, and the confusion matrix shaded by each true label's shares.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from audioclf.errors import AudioclfError

__all__ = ["INSTALL_HINT", "Spectrogram", "confusion_matrix_plot", "figure", "plot_timeline", "plotting_available",
           "require_matplotlib", "save_figure", "spectrogram_of", "style", "timeline_figure", "training_curves_plot"]

INSTALL_HINT = "pictures need matplotlib: pip install 'audioclf[plot]'"

#: most spectrogram columns drawn (a longer recording is analysed with a longer hop)
MAX_COLUMNS = 2000
MEL_BANDS = 80
TOP_DB = 80.0


def require_matplotlib() -> None:
    """Raise :class:`AudioclfError` with the install command unless matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise AudioclfError(INSTALL_HINT) from None


def style() -> dict[str, Any]:
    """The look every audioclf figure shares: matplotlib rc parameters for ``matplotlib.rc_context``."""
    return {
        "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.25,
        "grid.linewidth": 0.6, "lines.linewidth": 1.3, "figure.dpi": 100, "savefig.dpi": 100,
        "axes.prop_cycle": _cycler(),
    }


def _cycler() -> Any:
    from cycler import cycler

    return cycler(color=["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"])


def new_figure(width: float, height: float) -> Any:
    """A matplotlib ``Figure`` of ``width`` × ``height`` inches on an Agg canvas (no pyplot)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Any, target: str | os.PathLike[str]) -> Path:
    """Write ``figure`` as a PNG to ``target``, atomically; returns the path."""
    from audioclf.fileio import atomic_open

    target = Path(target)
    with atomic_open(target, "wb") as stream:
        figure.savefig(stream, format="png")
    return target


def plotting_available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        require_matplotlib()
    except AudioclfError:
        return False
    return True


@contextlib.contextmanager
def figure(path: str | os.PathLike[str], *, columns: int = 1, size: tuple[float, float] = (6.4, 4.8),
           title: str | None = None) -> Iterator[Any]:
    """Yield ``columns`` axes side by side (one ``Axes``, or a list) of a figure of ``size`` inches per column in
    the shared look; on leaving, the figure is written to ``path`` as PNG (atomically)."""
    from matplotlib import rc_context

    with rc_context(style()):
        fig = new_figure(size[0] * columns, size[1])
        axes = fig.subplots(1, columns, squeeze=False)
        yield list(axes[0]) if columns > 1 else axes[0][0]
        if title:
            fig.suptitle(title)
        save_figure(fig, path)


# ---------------------------------------------------------------------------------------------- spectrogram
@dataclass
class Spectrogram:
    """A log-mel spectrogram for display: ``decibels`` ``float32 [M, C]`` (mel bands × columns, at most
    :data:`TOP_DB` below the loudest cell), ``hop_seconds`` between columns, ``top_hz`` the highest frequency."""

    decibels: np.ndarray
    hop_seconds: float
    top_hz: float

    @property
    def duration(self) -> float:
        return self.decibels.shape[1] * self.hop_seconds


def spectrogram_of(blocks: Iterable[np.ndarray], sampling_rate: int, total_samples: int | None = None,
                   max_columns: int = MAX_COLUMNS, mel_bands: int = MEL_BANDS) -> Spectrogram:
    """The display spectrogram of mono blocks ``float32 [frames]`` (or ``[frames, 1]``) at ``sampling_rate``.

    Frames of about 32 ms (a power of two), Hann window, hop a quarter frame or, for a recording of
    ``total_samples`` that would give more than ``max_columns`` columns, as long as needed (frames are then taken
    sparsely: the blocks are streamed, never held whole); power → HTK mel filters up to the Nyquist frequency →
    decibels."""
    from audioclf.audio.spectrogram import mel_filter_bank, power_spectrum, window_function
    from audioclf.audio.windows import iter_window_frames

    frame = 1 << max(6, round(math.log2(0.032 * sampling_rate)))
    hop = max(frame // 4, math.ceil((total_samples or 0) / max_columns))
    window = window_function("hann", frame, periodic=True)
    filters = mel_filter_bank(frame // 2 + 1, mel_bands, 0.0, sampling_rate / 2, sampling_rate)
    columns = []
    for _, samples in iter_window_frames((np.reshape(block, (-1,)) for block in blocks), frame, hop):
        padded = np.zeros(frame, dtype=np.float64)
        padded[: samples.shape[0]] = samples
        columns.append(power_spectrum(padded[None, :], window, frame)[0] @ filters)
    power = np.array(columns, dtype=np.float64).T if columns else np.zeros((mel_bands, 0))
    decibels = 10.0 * np.log10(np.maximum(power, 1e-12))
    if decibels.size:
        decibels = np.maximum(decibels, decibels.max() - TOP_DB)
    return Spectrogram(decibels.astype(np.float32), hop / sampling_rate, sampling_rate / 2)


def file_spectrogram(path: str | os.PathLike[str], max_columns: int = MAX_COLUMNS) -> Spectrogram:
    """:func:`spectrogram_of` a file at its own sample rate, channels mixed (raises
    :class:`~audioclf.errors.AudioError` for a file that cannot be decoded)."""
    from audioclf.audio.decode import AudioSource

    source = AudioSource(path)
    blocks = (block.mean(axis=1) for block in source.blocks())
    return spectrogram_of(blocks, source.sample_rate, source.frames, max_columns)


# -------------------------------------------------------------------------------------------------- timeline
def timeline_figure(spectrogram: Spectrogram, windows: Sequence[dict[str, Any]], labels: Sequence[str], *,
                    events: Sequence[dict[str, Any]] = (), threshold: float | None = None, title: str = "") -> Any:
    """The timeline figure (see the module docstring). ``windows``: window records (``start``, ``end``,
    ``labels`` with scores, optional ``channel``); ``labels``: the lanes, top to bottom; ``events``: event records
    to shade; ``threshold``: drawn in each lane."""
    lanes = list(labels) or ["(no label)"]
    figure = new_figure(11.0, 2.6 + 0.85 * len(lanes))
    import matplotlib

    with matplotlib.rc_context(style()):
        grid = figure.add_gridspec(1 + len(lanes), 1, height_ratios=[3.2] + [1.0] * len(lanes))
        top = figure.add_subplot(grid[0])
        duration = max([spectrogram.duration] + [float(w["end"]) for w in windows])
        bands = spectrogram.decibels.shape[0]
        if spectrogram.decibels.size:
            image = top.imshow(spectrogram.decibels, origin="lower", aspect="auto", cmap="magma",
                               extent=(0.0, spectrogram.duration, 0.0, bands), interpolation="nearest")
            figure.colorbar(image, ax=top, pad=0.01, fraction=0.02, label="dB")
        top.set_yticks(*_mel_ticks(spectrogram.top_hz, bands))
        top.grid(False)
        top.set_ylabel("frequency (Hz, mel scale)")
        top.set_title(title, loc="left")
        top.set_xlim(0.0, duration)
        axes = [top]
        channels = sorted({w.get("channel") for w in windows}, key=lambda c: -1 if c is None else c)
        for number, label in enumerate(lanes):
            lane = figure.add_subplot(grid[1 + number], sharex=top)
            for event in events:
                if event["label"] == label:
                    lane.axvspan(float(event["start"]), float(event["end"]), color="#2ca02c", alpha=0.22, lw=0)
            for channel in channels:
                times, scores = _score_steps([w for w in windows if w.get("channel") == channel], label)
                name = None if channel is None else f"channel {channel}"
                lane.plot(times, scores, drawstyle="steps-post", label=name)
            if threshold is not None:
                lane.axhline(threshold, color="0.35", lw=0.9, ls="--")
            lane.set_ylim(-0.03, 1.05 if _unit_scores(windows) else None)
            lane.set_ylabel(label, rotation=0, ha="right", va="center", fontweight="bold")
            lane.tick_params(labelbottom=False)
            if len(channels) > 1 and number == 0:
                lane.legend(loc="upper right", fontsize=7, frameon=False, ncols=len(channels))
            axes.append(lane)
        axes[-1].tick_params(labelbottom=True)
        axes[-1].set_xlabel("time (s)")
        top.tick_params(labelbottom=False)
    return figure


def plot_timeline(target: str | os.PathLike[str], spectrogram: Spectrogram, windows: Sequence[dict[str, Any]],
                  labels: Sequence[str], **options: Any) -> Path:
    """:func:`timeline_figure` saved as a PNG at ``target`` (atomically); returns the path."""
    return save_figure(timeline_figure(spectrogram, windows, labels, **options), target)


def _score_steps(windows: Sequence[dict[str, Any]], label: str) -> tuple[np.ndarray, np.ndarray]:
    """``(times, scores)`` for a step plot of ``label``'s window scores: each window holds from its start (its
    centre minus half the hop, with overlapping windows) until the next one; a window without the label scores 0."""
    ordered = sorted(windows, key=lambda w: float(w["start"]))
    if not ordered:
        return np.zeros(0), np.zeros(0)
    starts = np.array([float(w["start"]) for w in ordered])
    ends = np.array([float(w["end"]) for w in ordered])
    scores = np.array([next((float(item["score"]) for item in w["labels"] if item["label"] == label), 0.0)
                       for w in ordered])
    if len(ordered) > 1 and starts[1] - starts[0] < ends[0] - starts[0]:  # overlapping: centre-to-centre steps
        hop = starts[1] - starts[0]
        edges = (starts + ends) / 2 - hop / 2
        edges[0] = starts[0]
        last_end = ends[-1]
    else:
        edges, last_end = starts, ends[-1]
    return np.append(edges, last_end), np.append(scores, scores[-1])


def _mel_ticks(top_hz: float, bands: int) -> tuple[list[float], list[str]]:
    """Positions (in mel bands) and names of round frequencies up to ``top_hz`` on an HTK mel axis."""
    from audioclf.audio.spectrogram import hertz_to_mel

    top = float(hertz_to_mel(top_hz))
    found = [(0.0, "0")]
    for hertz in (250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000):
        if hertz < top_hz * 0.97:
            found.append((float(hertz_to_mel(hertz)) / top * bands, f"{hertz // 1000}k" if hertz >= 1000 else str(hertz)))
    return [position for position, _ in found], [name for _, name in found]


def _unit_scores(windows: Sequence[dict[str, Any]]) -> bool:
    """Whether every score lies in [0, 1] (probabilities), so lanes share a fixed scale."""
    return all(0.0 <= float(item["score"]) <= 1.0 for w in windows for item in w["labels"])


# ---------------------------------------------------------------------------------------------- training
def confusion_matrix_plot(labels: Sequence[str], matrix: Any, path: str | os.PathLike[str],
                          title: str = "Confusion matrix") -> None:
    """Rows true labels, columns predicted labels; each cell shaded by its share of the row and printed as a
    count."""
    matrix = np.asarray(matrix, dtype=np.int64)
    count = len(labels)
    side = min(max(4.0, 0.45 * count + 2.5), 24.0)
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    with figure(path, size=(side + 1.0, side), title=title) as ax:
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.grid(False)
        ax.set_xticks(range(count), labels, rotation=45 if count > 4 else 0, ha="right" if count > 4 else "center")
        ax.set_yticks(range(count), labels)
        ax.set_xlabel("predicted label")
        ax.set_ylabel("true label")
        if count <= 30:
            for row in range(count):
                for column in range(count):
                    ax.text(column, row, str(matrix[row, column]), ha="center", va="center", fontsize=8,
                            color="white" if shares[row, column] > 0.5 else "black")
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true label")


def training_curves_plot(epochs: Sequence[dict[str, Any]], path: str | os.PathLike[str],
                         best_epoch: int | None = None) -> None:
    """Loss (left) and accuracy (right) per epoch: training, and validation where it was measured; the best epoch
    marked."""
    numbers = [row["epoch"] for row in epochs]
    with figure(path, columns=2, size=(5.0, 3.8), title="Training") as (loss_axes, accuracy_axes):
        loss_axes.plot(numbers, [row["train_loss"] for row in epochs], marker="o", color="#1f77b4", label="training")
        validated = [row for row in epochs if "val_loss" in row]
        if validated:
            loss_axes.plot([row["epoch"] for row in validated], [row["val_loss"] for row in validated], marker="o",
                           color="#d62728", label="validation")
        loss_axes.set_xlabel("epoch")
        loss_axes.set_ylabel("cross-entropy loss")
        loss_axes.legend()
        accuracy_axes.plot(numbers, [row["train_accuracy"] for row in epochs], marker="o", color="#1f77b4",
                           label="training")
        validated = [row for row in epochs if "val_accuracy" in row]
        if validated:
            accuracy_axes.plot([row["epoch"] for row in validated], [row["val_accuracy"] for row in validated],
                               marker="o", color="#d62728", label="validation")
            accuracy_axes.plot([row["epoch"] for row in validated], [row["val_macro_f1"] for row in validated],
                               marker=".", linestyle="--", color="#2ca02c", label="validation macro-F1")
        if best_epoch is not None:
            accuracy_axes.axvline(best_epoch, color="grey", linestyle=":", label=f"kept (epoch {best_epoch})")
        accuracy_axes.set_xlabel("epoch")
        accuracy_axes.set_ylabel("accuracy")
        accuracy_axes.set_ylim(0.0, 1.02)
        accuracy_axes.legend(loc="lower right")
        for axes in (loss_axes, accuracy_axes):
            axes.xaxis.get_major_locator().set_params(integer=True)
