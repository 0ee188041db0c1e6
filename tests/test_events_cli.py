"""``classify --events`` / ``--plot`` options: what they write besides events, and the usage errors."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import audioclf
from audioclf.cli import app
from audioclf.engine.events import EVENT_COLUMNS, window_events

AUDIO = Path(__file__).parent / "data" / "audio"
CLIP = str(AUDIO / "librispeech_5703-47212-0000_16k_mono.ogg")  # ~15 s of speech

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def classify(*args: str):
    return CliRunner().invoke(app, ["classify", *args])


def test_events_as_csv_equal_the_events_of_the_window_records(tmp_path: Path) -> None:
    windows = list(audioclf.classify(CLIP, window=2.0, hop=1.0, top_k=0))
    expected = window_events(windows, 0.3, min_gap=1.0)
    assert expected  # the clip has events at this threshold
    result = classify(CLIP, "--window", "2", "--hop", "1", "--events", "--threshold", "0.3", "--min-gap", "1",
                      "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == EVENT_COLUMNS
    assert [(r[0], r[2], float(r[3]), float(r[4]), float(r[5])) for r in rows[1:]] == [
        (e["path"], e["label"], e["start"], e["end"], e["score"]) for e in expected]


def test_a_picture_without_events_keeps_the_records_as_asked(tmp_path: Path) -> None:
    import matplotlib.image

    picture = tmp_path / "clip.png"
    result = classify(CLIP, "--window", "2", "--hop", "1", "--top-k", "2", "--min-score", "0.01", "--plot",
                      str(picture), "--format", "jsonl")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    expected = list(audioclf.classify(CLIP, window=2.0, hop=1.0, top_k=2, min_score=0.01))
    assert records == expected
    image = matplotlib.image.imread(picture)
    assert image.shape[:2] == (round(100 * (2.6 + 0.85 * 2)), 1100)  # --top-k lanes


@pytest.mark.parametrize("args, message", [
    (["--threshold", "0.5"], "--threshold needs --events"),
    (["--min-gap", "1"], "--min-gap needs --events"),
    (["--events"], "--events needs --window"),
    (["--plot", "x.png"], "--plot needs --window"),
    (["--format", "raven"], "--format raven needs --events"),
    (["--window", "1", "--events", "--aggregate", "mean"], "--aggregate does not apply with --events"),
    (["--window", "1", "--events", "--engine", "ray", "--output", "d"], "--events and --plot need --engine local"),
    (["--window", "1", "--events", "--threshold", "nan"], "--threshold must be a number"),
    (["--window", "1", "--events", "--min-duration", "-1"], "--min-duration must be 0 or more seconds"),
])
def test_usage_errors(args: list[str], message: str) -> None:
    result = classify(CLIP, *args)
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_output_and_plot_targets(tmp_path: Path) -> None:
    result = classify(CLIP, CLIP, "--window", "1", "--plot", str(tmp_path / "one.png"))
    assert result.exit_code == 2 and "a file takes one input" in result.stderr
    result = classify(CLIP, "--window", "1", "--events", "--format", "jsonl", "--output", str(tmp_path))
    assert result.exit_code == 2 and "is a directory" in result.stderr
    result = classify(CLIP, "--window", "1", "--plot", str(tmp_path / "missing" / "x.png"))
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_plot_without_matplotlib_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = classify(CLIP, "--window", "1", "--plot", str(tmp_path / "x.png"))
    assert result.exit_code == 2 and "pip install 'audioclf[plot]'" in result.stderr
