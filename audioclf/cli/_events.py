"""What ``classify --events`` and ``classify --plot`` do with an input's window records before they are written.

:class:`WindowReport` is built from the command's options (and checks them); per input, :meth:`WindowReport.finish`
turns the window records into what is written — events (:func:`audioclf.engine.events.window_events`), or the
records themselves cut to ``--top-k`` / ``--min-score`` — and draws the input's timeline picture. While it is
active, the classifier keeps every label in its records (both need every label's score in every window).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import typer

from audioclf.cli.output import UniqueStems
from audioclf.errors import AudioclfError

#: the threshold of ``--events`` when ``--threshold`` is not given
DEFAULT_THRESHOLD = 0.5


@dataclass
class WindowReport:
    """Events and pictures of window records (see the module docstring).

    Attributes:
        events: make events of the window records.
        threshold, min_gap, min_duration: the event rules (:mod:`audioclf.engine.events`).
        labels: only these labels (events, lanes); ``None``: all.
        plot: the picture: a PNG file, or a directory for one ``<stem>.png`` per input; ``None``: no picture.
        top_k, min_score: what the written window records keep (without ``events``).
        title: what every picture's title ends with (model, window, hop).
    """

    events: bool = False
    threshold: float = DEFAULT_THRESHOLD
    min_gap: float = 0.0
    min_duration: float = 0.0
    labels: Optional[list[str]] = None
    plot: Optional[Path] = None
    top_k: int = 5
    min_score: Optional[float] = None
    title: str = ""
    names: UniqueStems = field(default_factory=UniqueStems)

    @classmethod
    def from_options(cls, *, events: bool, threshold: Optional[float], min_gap: float, min_duration: float,
                     plot: Optional[Path], window: Optional[float], aggregate: Optional[str], resume: bool,
                     engine: str, **fields: Any) -> "WindowReport":
        """Check the options (usage errors as :class:`AudioclfError`) and build the report."""
        if not events:
            for flag, value, default in (("--threshold", threshold, None), ("--min-gap", min_gap, 0.0),
                                         ("--min-duration", min_duration, 0.0)):
                if value != default:
                    raise AudioclfError(f"{flag} needs --events")
        if (events or plot is not None) and window is None:
            raise AudioclfError(f"{'--events' if events else '--plot'} needs --window (events and pictures are made "
                                "of window scores)")
        if (events or plot is not None) and engine != "local":
            raise AudioclfError("--events and --plot need --engine local")
        if events and aggregate is not None:
            raise AudioclfError("--aggregate does not apply with --events (events are made of the window records)")
        if events and resume:
            raise AudioclfError("--resume cannot continue an --events run; run it again")
        if plot is not None:
            from audioclf.plots import require_matplotlib

            require_matplotlib()
            if not plot.is_dir() and not (plot.parent if str(plot.parent) else Path(".")).is_dir():
                raise AudioclfError(f"--plot {plot}: the directory {plot.parent} does not exist")
        report = cls(events, DEFAULT_THRESHOLD if threshold is None else threshold, min_gap, min_duration, plot=plot,
                     **fields)
        if events:
            from audioclf.engine.events import validate_event_options

            validate_event_options(report.threshold, min_gap, min_duration)
        return report

    def check_inputs(self, count: int | None) -> None:
        """A picture file (not a directory) takes exactly one input (``count``; ``None``: unknown, a path list)."""
        if self.plot is not None and not self.plot.is_dir() and count != 1:
            raise AudioclfError(f"--plot {self.plot}: a file takes one input; give an existing directory for one "
                                "picture per input")

    @property
    def active(self) -> bool:
        return self.events or self.plot is not None

    def engine_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The classifier's options: every label of every window while the report is active."""
        return {**options, "top_k": 0, "min_score": None} if self.active else options

    def finish(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records to write for one input's window records (events, or the records cut to ``top_k`` /
        ``min_score``); draws the input's picture on the way."""
        events: list[dict[str, Any]] = []
        if self.events:
            from audioclf.engine.events import window_events

            events = window_events(records, self.threshold, min_gap=self.min_gap, min_duration=self.min_duration,
                                   labels=self.labels)
        if self.plot is not None and records and "error" not in records[0]:
            self._draw(records, events)
        return events if self.events else [self._cut(record) for record in records]

    def _cut(self, record: dict[str, Any]) -> dict[str, Any]:
        if "labels" not in record:
            return record
        labels = [item for item in record["labels"] if self.min_score is None or item["score"] >= self.min_score]
        return {**record, "labels": labels[: self.top_k] if self.top_k else labels}

    def _draw(self, records: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        from audioclf.plots import file_spectrogram, plot_timeline

        assert self.plot is not None
        identity = {key: records[0][key] for key in ("path", "index") if key in records[0]}
        windows = [record for record in records if "start" in record]
        target = self.plot / f"{self.names.stem(identity)}.png" if self.plot.is_dir() else self.plot
        try:
            spectrogram = file_spectrogram(str(identity["path"]))
        except AudioclfError as error:
            typer.echo(f"warning: no picture for {identity.get('path')}: {error}", err=True)
            return
        title = f"{os.path.basename(str(identity['path']))}    {self.title}".rstrip()
        plot_timeline(target, spectrogram, windows, self._lanes(windows, events),
                      events=events, threshold=self.threshold if self.events else None, title=title)

    def _lanes(self, windows: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[str]:
        """The labels the picture shows: ``labels`` if given; else those with events; else (or when no label has
        an event) the ``top_k`` labels with the highest window scores."""
        if self.labels:
            return list(self.labels)
        best: dict[str, float] = {}
        for window in windows:
            for item in window["labels"]:
                best[item["label"]] = max(best.get(item["label"], float("-inf")), float(item["score"]))
        ranked = sorted(best, key=lambda label: -best[label])
        with_events = [label for label in ranked if any(event["label"] == label for event in events)]
        return with_events or ranked[: self.top_k or len(ranked)]
