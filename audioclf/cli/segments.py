"""``audioclf segments``: cut detections out of the recordings into audio files per label, for review.

Reads what ``classify`` wrote — events (``--events``) or window records (``--window``, made into events here by
:func:`audioclf.engine.events.window_events`, the same rules as ``--events``) — and cuts each event, with ``--pad``
seconds around it, from its recording: ``DIR/<label>/<stem>_<start>-<end>s.wav`` (the recording's own sample rate;
the event's channel, or every channel). Each recording is read once, whatever its number of events.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from audioclf.cli._errors import EXIT_OK, EXIT_SOME_FAILED, handles_errors
from audioclf.cli._options import examples
from audioclf.errors import AudioclfError

AudioFormat = Literal["wav", "flac"]

EXAMPLES = examples(
    ("audioclf classify long.wav --window 1 --hop 0.25 --events -o events.jsonl", "find the events first"),
    ("audioclf segments events.jsonl -o clips/ --pad 0.5", "then cut them out: clips/LABEL/NAME_START-ENDs.wav"),
)


@handles_errors()
def segments(
    results: Annotated[list[Path], typer.Argument(help="Files written by classify: --events output, or --window "
                                                  "records (jsonl, json, csv or tsv).", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for the audio files (created if "
                                         "missing); one subdirectory per label.", show_default=False)],
    pad: Annotated[float, typer.Option(help="Seconds of audio kept before and after each event.")] = 0.5,
    threshold: Annotated[Optional[float], typer.Option(help="Window records: the score that makes events (default "
                                                       "0.5). Events: drop those scoring below it.",
                                                       show_default=False)] = None,
    min_gap: Annotated[float, typer.Option(help="Window records: join events of a label less than this many "
                                           "seconds apart.")] = 0.0,
    min_duration: Annotated[float, typer.Option(help="Drop events shorter than this many seconds.")] = 0.0,
    labels: Annotated[Optional[str], typer.Option(help="Only these labels (comma-separated).",
                                                  show_default=False)] = None,
    audio_format: Annotated[AudioFormat, typer.Option("--audio-format", help="Format of the audio files written.")] = "wav",
) -> None:
    """Cut detected events out of their recordings into audio files per label, for manual review.

    RESULTS are files written by audioclf classify: events (--events; jsonl, json, csv or tsv) or window records
    (--window, with every label they list), which are made into events here exactly as --events makes them
    (--threshold, default 0.5; --min-gap; --min-duration). Each event is cut from its recording (the "path" in the
    results) with --pad seconds on both sides (clipped to the recording), at the recording's own sample rate, from
    the event's channel (or every channel), and written to OUTPUT/LABEL/NAME_START-ENDs.wav (START and END: the
    event's, in seconds with 3 decimals).

    stdout: one JSON line per file written, {"segment", "path", "channel"?, "label", "start", "end", "score",
    "clip_start", "clip_end"}; a recording that cannot be read gives {"path", "error"}.

    Exit status: 0 every event cut; 1 some recording could not be read; 2 usage error (results that cannot be
    read, bad option).
    """
    from audioclf.engine.events import read_results, validate_event_options, window_events

    if audio_format not in ("wav", "flac"):
        raise AudioclfError(f"--format must be wav or flac, got {audio_format!r}")
    if not (pad >= 0):
        raise AudioclfError(f"--pad must be 0 or more seconds, got {pad}")
    validate_event_options(0.5 if threshold is None else threshold, min_gap, min_duration)
    wanted = None if labels is None else {name.strip() for name in labels.split(",") if name.strip()}
    events: list[dict[str, Any]] = []
    failed = 0
    for result in results:
        kind, records = read_results(result)
        if kind == "windows":
            records = window_events(records, 0.5 if threshold is None else threshold, min_gap=min_gap,
                                    min_duration=min_duration, labels=wanted)
        for record in records:
            if "error" in record:
                continue  # the input failed in classify; nothing to cut
            keep = ((wanted is None or record["label"] in wanted)
                    and (kind == "windows" or threshold is None or float(record["score"]) >= threshold)
                    and float(record["end"]) - float(record["start"]) + 1e-9 >= min_duration)
            if keep:
                events.append(record)
    output.mkdir(parents=True, exist_ok=True)
    by_path: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_path.setdefault(str(event["path"]), []).append(event)
    names: set[Path] = set()
    for path, found in by_path.items():
        try:
            for line in _cut(path, found, pad, output, audio_format, names):
                sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        except (AudioclfError, ValueError) as error:
            failed += 1
            sys.stdout.write(json.dumps({"path": path, "error": " ".join(str(error).split())}, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _cut(path: str, events: list[dict[str, Any]], pad: float, output: Path, audio_format: str,
         names: set[Path]) -> list[dict[str, Any]]:
    """Write the excerpts of one recording; their stdout lines."""
    import soundfile as sf

    from audioclf.audio.decode import AudioSource
    from audioclf.audio.excerpts import Span, cut_excerpts
    from audioclf.cli.output import file_stem
    from audioclf.fileio import atomic_path

    source = AudioSource(path)
    duration = source.duration or float("inf")
    spans = [Span(max(0.0, float(e["start"]) - pad), min(duration, float(e["end"]) + pad),
                  None if e.get("channel") in (None, "") else int(e["channel"])) for e in events]
    stem = file_stem(path)
    lines = []
    for number, samples in cut_excerpts(source, spans):
        event, span = events[number], spans[number]
        directory = output / (re.sub(r"[\x00-\x1f/\\:*?\"<>|]", "_", str(event["label"])).strip(". ") or "label")
        directory.mkdir(exist_ok=True)
        channel = "" if span.channel is None else f"_ch{span.channel}"
        base = f"{stem}_{float(event['start']):.3f}-{float(event['end']):.3f}s{channel}"
        target, copy = directory / f"{base}.{audio_format}", 1
        while target in names:
            copy += 1
            target = directory / f"{base}-{copy}.{audio_format}"
        names.add(target)
        with atomic_path(target) as temporary:
            sf.write(str(temporary), samples, source.sample_rate, format=audio_format.upper())
        line: dict[str, Any] = {"segment": str(target), "path": path}
        if span.channel is not None:
            line["channel"] = span.channel
        line.update(label=event["label"], start=float(event["start"]), end=float(event["end"]),
                    score=float(event["score"]), clip_start=round(span.start, 6),
                    clip_end=round(span.start + samples.shape[0] / source.sample_rate, 6))
        lines.append(line)
    return lines


# Typer keeps single line breaks of the help text; the docstring's paragraphs are written as wrapped source lines.
segments.__doc__ = "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(segments.__doc__ or "").split("\n\n"))
