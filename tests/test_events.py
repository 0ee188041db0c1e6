"""Detection events from window records (``audioclf.engine.events``) and the event writers, without a model.

The window records are built here with known scores, so every expected event follows from the rules by hand."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from audioclf.cli.output import RAVEN_COLUMNS, EventFilesWriter, open_writer
from audioclf.engine.events import EVENT_COLUMNS, read_results, window_events
from audioclf.engine.records import validate_record
from audioclf.errors import AudioclfError, OptionError


def windows(scores: dict[str, list[float]], *, hop: float = 0.5, length: float = 1.0, path: str = "a.wav",
            channel: int | None = None) -> list[dict]:
    """Window records: window ``k`` spans ``[k·hop, k·hop + length)`` with ``scores[label][k]`` per label (a label
    missing from a window when its score is None)."""
    count = len(next(iter(scores.values())))
    records = []
    for k in range(count):
        record: dict = {"path": path}
        if channel is not None:
            record["channel"] = channel
        record.update(start=k * hop, end=k * hop + length)
        labels = [{"label": name, "score": values[k]} for name, values in scores.items() if values[k] is not None]
        record["labels"] = sorted(labels, key=lambda item: -item["score"])
        record["model"] = "m"
        records.append(record)
    return records


def spans(events: list[dict]) -> list[tuple]:
    return [(event["label"], event["start"], event["end"], event["score"]) for event in events]


def test_consecutive_windows_merge_and_keep_the_highest_score() -> None:
    records = windows({"dog": [0.1, 0.6, 0.9, 0.7, 0.2, 0.2, 0.55, 0.1]}, hop=1.0, length=1.0)
    events = window_events(records, 0.5)
    assert spans(events) == [("dog", 1.0, 4.0, 0.9), ("dog", 6.0, 7.0, 0.55)]
    for event in events:
        validate_record(event)
        assert list(event) == ["path", "label", "start", "end", "score", "model"]


def test_threshold_is_inclusive_and_a_missing_label_is_below_it() -> None:
    records = windows({"cat": [0.5, None, 0.5], "dog": [0.2, 0.9, 0.2]}, hop=1.0)
    assert spans(window_events(records, 0.5)) == [("cat", 0.0, 1.0, 0.5), ("dog", 1.0, 2.0, 0.9),
                                                  ("cat", 2.0, 3.0, 0.5)]


def test_overlapping_and_touching_events_join_and_min_gap_joins_more() -> None:
    # window 1 s, hop 0.5 s: a single window below the threshold leaves events that overlap -> one event
    overlapping = windows({"x": [0.9, 0.1, 0.8]}, hop=0.5, length=1.0)
    assert spans(window_events(overlapping, 0.5)) == [("x", 0.0, 2.0, 0.9)]
    # hop = window: one low window leaves a 1 s gap, joined only with min_gap above 1 s
    gapped = windows({"x": [0.9, 0.1, 0.8, 0.1, 0.1, 0.1, 0.7]}, hop=1.0, length=1.0)
    assert spans(window_events(gapped, 0.5)) == [("x", 0.0, 1.0, 0.9), ("x", 2.0, 3.0, 0.8), ("x", 6.0, 7.0, 0.7)]
    assert spans(window_events(gapped, 0.5, min_gap=1.0)) == spans(window_events(gapped, 0.5))  # "less than"
    assert spans(window_events(gapped, 0.5, min_gap=1.5)) == [("x", 0.0, 3.0, 0.9), ("x", 6.0, 7.0, 0.7)]
    assert spans(window_events(gapped, 0.5, min_gap=3.5)) == [("x", 0.0, 7.0, 0.9)]


def test_min_duration_and_labels_filter() -> None:
    records = windows({"a": [0.9, 0.9, 0.1, 0.9], "b": [0.1, 0.1, 0.8, 0.1]}, hop=1.0)
    assert spans(window_events(records, 0.5, min_duration=1.5)) == [("a", 0.0, 2.0, 0.9)]
    assert spans(window_events(records, 0.5, labels={"b"})) == [("b", 2.0, 3.0, 0.8)]


def test_inputs_and_channels_stay_apart_errors_pass_through_aggregates_are_ignored() -> None:
    left = windows({"a": [0.9, 0.9]}, hop=1.0, path="r.wav", channel=0)
    right = windows({"a": [0.1, 0.9]}, hop=1.0, path="r.wav", channel=1)
    aggregate = {"path": "r.wav", "labels": [{"label": "a", "score": 0.99}], "model": "m"}
    other = windows({"a": [0.9, 0.1]}, hop=1.0, path="s.wav")
    records = left + right + [aggregate, {"path": "bad.wav", "error": "no such file"}] + other
    events = window_events(records, 0.5)
    assert [(e.get("path"), e.get("channel"), e.get("start"), e.get("end"), e.get("error")) for e in events] == [
        ("r.wav", 0, 0.0, 2.0, None), ("r.wav", 1, 1.0, 2.0, None), ("bad.wav", None, None, None, "no such file"),
        ("s.wav", None, 0.0, 1.0, None)]


@pytest.mark.parametrize("options, option", [(dict(threshold=float("nan")), "threshold"),
                                             (dict(threshold=0.5, min_gap=-1.0), "min_gap"),
                                             (dict(threshold=0.5, min_duration=-0.1), "min_duration")])
def test_bad_event_options(options: dict, option: str) -> None:
    threshold = options.pop("threshold")
    with pytest.raises(OptionError) as caught:
        window_events([], threshold, **options)
    assert caught.value.option == option


EVENTS = [
    {"path": "dir/rec.wav", "label": "yes", "start": 1.25, "end": 2.5, "score": 0.875, "model": "m"},
    {"path": "dir/rec.wav", "channel": 1, "label": "tab\there", "start": 3.0, "end": 4.0, "score": 0.5, "model": "m"},
]


def test_audacity_track_parses_back_and_errors_go_to_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    writer = open_writer("audacity", out, events=True, errors=err)
    for record in EVENTS + [{"path": "broken.wav", "error": "truncated"}]:
        writer.write(record)
    writer.close()
    rows = [line.split("\t") for line in out.getvalue().splitlines()]
    assert [(float(a), float(b), label) for a, b, label in rows] == [(1.25, 2.5, "yes"), (3.0, 4.0, "tab\\there")]
    assert err.getvalue() == "error: broken.wav: truncated\n"


def test_raven_table_parses_back() -> None:
    out = io.StringIO()
    writer = open_writer("raven", out, events=True, sampling_rate=16000, errors=io.StringIO())
    for record in EVENTS:
        writer.write(record)
    writer.close()
    table = list(csv.DictReader(io.StringIO(out.getvalue()), delimiter="\t"))
    assert list(table[0])[: len(RAVEN_COLUMNS)] == list(RAVEN_COLUMNS)
    assert list(table[0])[len(RAVEN_COLUMNS):] == ["Begin Path", "Label", "Score"]
    assert [(r["Selection"], r["View"], r["Channel"], float(r["Begin Time (s)"]), float(r["End Time (s)"]),
             float(r["Low Freq (Hz)"]), float(r["High Freq (Hz)"]), r["Begin Path"], r["Label"], float(r["Score"]))
            for r in table] == [("1", "Spectrogram 1", "1", 1.25, 2.5, 0.0, 8000.0, "dir/rec.wav", "yes", 0.875),
                                ("2", "Spectrogram 1", "2", 3.0, 4.0, 0.0, 8000.0, "dir/rec.wav", "tab\\there", 0.5)]


def test_one_file_per_input_with_unique_names(tmp_path: Path) -> None:
    err = io.StringIO()
    writer = EventFilesWriter(tmp_path, "raven", 16000, errors=err)
    first = writer.write_input({"path": "a/rec.wav"}, EVENTS[:1])
    second = writer.write_input({"path": "b/rec.flac"}, [])
    failed = writer.write_input({"path": "c/bad.wav"}, [{"path": "c/bad.wav", "error": "no such file"}])
    assert (first.name, second.name, failed) == ("rec.selections.txt", "rec-2.selections.txt", None)
    assert len(first.read_text().splitlines()) == 2 and len(second.read_text().splitlines()) == 1  # header only
    assert "Begin Path" not in first.read_text()
    assert err.getvalue() == "error: c/bad.wav: no such file\n"
    audacity = EventFilesWriter(tmp_path, "audacity", 16000).write_input({"path": "rec.wav"}, EVENTS[:1])
    assert audacity.name == "rec.labels.txt" and audacity.read_text() == "1.250000\t2.500000\tyes\n"


def test_event_csv_and_jsonl_read_back(tmp_path: Path) -> None:
    for fmt in ("csv", "tsv", "jsonl"):
        target = tmp_path / f"events.{fmt}"
        with open(target, "w", newline="") as stream:
            writer = open_writer(fmt, stream, events=True)
            for record in EVENTS:
                writer.write(record)
            writer.close()
        kind, records = read_results(target)
        assert kind == "events"
        assert [(r["path"], r.get("channel"), r["label"], r["start"], r["end"], r["score"]) for r in records] == [
            (e["path"], e.get("channel"), e["label"], e["start"], e["end"], e["score"]) for e in EVENTS], fmt
    header = (tmp_path / "events.csv").read_text().splitlines()[0]
    assert tuple(header.split(",")) == EVENT_COLUMNS
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(AudioclfError):
        read_results(tmp_path / "other.csv")
    (tmp_path / "files.jsonl").write_text(json.dumps({"path": "x.wav", "labels": [], "model": "m"}) + "\n")
    with pytest.raises(AudioclfError, match="neither events nor window records"):
        read_results(tmp_path / "files.jsonl")
