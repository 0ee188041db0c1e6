"""Pictures (PNG) for people: training curves, confusion matrices, and whatever later commands draw.

Needs matplotlib, the optional extra ``audioclf[plot]``; :func:`require_matplotlib` says how to install it in one
line. Every picture goes through :func:`figure`, which gives them one look (size, fonts, grid, colours) and writes the
file atomically, so a new kind of picture is a few lines of drawing on the axes it yields.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from audioclf.errors import AudioclfError

__all__ = ["INSTALL_HINT", "confusion_matrix_plot", "figure", "plotting_available", "require_matplotlib",
           "training_curves_plot"]

INSTALL_HINT = "pictures need matplotlib: pip install 'audioclf[plot]'"

#: the house style, applied inside :func:`figure` only
STYLE = {"figure.dpi": 100, "savefig.dpi": 120, "font.size": 10, "axes.titlesize": 11, "axes.grid": True,
         "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False}
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def plotting_available() -> bool:
    try:
        require_matplotlib()
    except AudioclfError:
        return False
    return True


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or :class:`AudioclfError` naming the extra."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        raise AudioclfError(INSTALL_HINT) from None
    return plt


@contextlib.contextmanager
def figure(path: str | os.PathLike[str], *, columns: int = 1, size: tuple[float, float] = (6.4, 4.8),
           title: str | None = None) -> Iterator[Any]:
    """Yield ``columns`` axes side by side (one ``Axes``, or a list) of a figure of ``size`` inches per column in
    the house style; on leaving, the figure is written to ``path`` as PNG (atomically) and closed."""
    from audioclf.fileio import atomic_path

    plt = require_matplotlib()
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, columns, figsize=(size[0] * columns, size[1]), squeeze=False)
        try:
            yield list(axes[0]) if columns > 1 else axes[0][0]
            if title:
                fig.suptitle(title)
            fig.tight_layout()
            with atomic_path(Path(path)) as temporary:
                fig.savefig(temporary, format="png")
        finally:
            plt.close(fig)


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
        loss_axes.plot(numbers, [row["train_loss"] for row in epochs], marker="o", color=COLOURS[0], label="training")
        validated = [row for row in epochs if "val_loss" in row]
        if validated:
            loss_axes.plot([row["epoch"] for row in validated], [row["val_loss"] for row in validated], marker="o",
                           color=COLOURS[1], label="validation")
        loss_axes.set_xlabel("epoch")
        loss_axes.set_ylabel("cross-entropy loss")
        loss_axes.legend()
        accuracy_axes.plot(numbers, [row["train_accuracy"] for row in epochs], marker="o", color=COLOURS[0],
                           label="training")
        validated = [row for row in epochs if "val_accuracy" in row]
        if validated:
            accuracy_axes.plot([row["epoch"] for row in validated], [row["val_accuracy"] for row in validated],
                               marker="o", color=COLOURS[1], label="validation")
            accuracy_axes.plot([row["epoch"] for row in validated], [row["val_macro_f1"] for row in validated],
                               marker=".", linestyle="--", color=COLOURS[2], label="validation macro-F1")
        if best_epoch is not None:
            accuracy_axes.axvline(best_epoch, color="grey", linestyle=":", label=f"kept (epoch {best_epoch})")
        accuracy_axes.set_xlabel("epoch")
        accuracy_axes.set_ylabel("accuracy")
        accuracy_axes.set_ylim(0.0, 1.02)
        accuracy_axes.legend(loc="lower right")
        for axes in (loss_axes, accuracy_axes):
            axes.xaxis.get_major_locator().set_params(integer=True)
