"""Events on a constructed recording: keywords of the bundled model spoken by espeak-ng at known times in noise.

The voices are ones the bundled model never heard in training (its held-out accent and variants). One run per
output format through the command line (in process); the Raven and Audacity files are parsed back, the picture is
checked for its size and that it is a picture."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from audioclf.cli import app

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
RATE = 16000
SECONDS = 24
#: (time s, keyword, espeak-ng accent, variant): held-out voices of the bundled model
PLAN = [(2.0, "yes", "en-gb", "f2"), (6.5, "stop", "en-029", ""), (11.0, "left", "en-us", "m3"),
        (15.5, "go", "en-gb-x-rp", "john"), (20.0, "no", "en-us-nyc", "belinda")]
KEYWORDS = "yes,no,up,down,left,right,on,off,stop,go"
#: window 1 s every 0.25 s; events of a single window (1 s) are dropped
COMMON = ["--window", "1", "--hop", "0.25", "--events", "--labels", KEYWORDS, "--min-duration", "1.25"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def espeak() -> str:
    """The espeak-ng executable, installed with apt-get when missing (fails loudly when that is impossible)."""
    found = shutil.which("espeak-ng")
    if found is None:
        install = "apt-get install -y -qq espeak-ng"
        done = subprocess.run(f"{install} || (apt-get update -qq && {install})", shell=True, capture_output=True,
                              text=True)
        found = shutil.which("espeak-ng")
        if found is None:
            pytest.fail(f"espeak-ng is needed and could not be installed: {done.stderr.strip()[-500:]}")
    return found


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, float, float]]]:
    """The recording (``scripts/keyword_recording.py``) and its keywords as ``(label, start s, end s)``."""
    espeak()
    sys.path.insert(0, str(SCRIPTS))
    try:
        import keyword_recording
    finally:
        sys.path.remove(str(SCRIPTS))
    wave, truth = keyword_recording.build([(*entry, -20.0) for entry in PLAN], SECONDS, noise_db=-55.0, seed=0)
    path = tmp_path_factory.mktemp("keywords") / "meeting.wav"
    sf.write(path, wave, RATE, subtype="PCM_16")
    return path, [(item["label"], item["start"], item["end"]) for item in truth]


def classify(*args: str):
    result = CliRunner().invoke(app, ["classify", *args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def events(recording) -> list[dict]:
    path, _ = recording
    return [json.loads(line) for line in classify(str(path), *COMMON, "--format", "jsonl").stdout.splitlines()]


def test_every_keyword_is_an_event_where_it_was_spoken(recording, events: list[dict]) -> None:
    path, truth = recording
    assert all(event["path"] == str(path) and event["model"] == "audioclf/default" for event in events)
    for label, start, end in truth:
        found = [e for e in events if e["label"] == label and e["start"] < end and e["end"] > start]
        assert len(found) == 1, (label, start, end, events)
        assert found[0]["score"] >= 0.5 and found[0]["end"] - found[0]["start"] <= 3.0
    false = [e for e in events if not any(e["label"] == label and e["start"] < end and e["end"] > start
                                          for label, start, end in truth)]
    assert len(false) <= 1, false
    assert [e["start"] for e in events] == sorted(e["start"] for e in events)


def test_raven_tables_and_pictures_one_per_input(recording, events: list[dict], tmp_path: Path) -> None:
    import matplotlib.image

    path, _ = recording
    tables, pictures = tmp_path / "tables", tmp_path / "pictures"
    tables.mkdir()
    pictures.mkdir()
    classify(str(path), *COMMON, "--format", "raven", "--output", str(tables), "--plot", str(pictures))
    assert sorted(p.name for p in tables.iterdir()) == ["meeting.selections.txt"]
    with open(tables / "meeting.selections.txt", newline="") as stream:
        rows = list(csv.DictReader(stream, delimiter="\t"))
    assert list(rows[0]) == ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                             "High Freq (Hz)", "Label", "Score"]
    assert [(int(r["Selection"]), r["View"], r["Channel"], r["Label"]) for r in rows] == [
        (k, "Spectrogram 1", "1", e["label"]) for k, e in enumerate(events, start=1)]
    for row, event in zip(rows, events):
        assert abs(float(row["Begin Time (s)"]) - event["start"]) < 1e-6
        assert abs(float(row["End Time (s)"]) - event["end"]) < 1e-6
        assert abs(float(row["Score"]) - event["score"]) < 1e-6
        assert (float(row["Low Freq (Hz)"]), float(row["High Freq (Hz)"])) == (0.0, RATE / 2)

    image = matplotlib.image.imread(pictures / "meeting.png")
    lanes = len(KEYWORDS.split(","))  # --labels: one lane each
    assert image.shape[1] == 1100 and image.shape[0] == round(100 * (2.6 + 0.85 * lanes))
    assert image[..., :3].std() > 0.1  # a picture, not a blank canvas


def test_audacity_label_track(recording, events: list[dict], tmp_path: Path) -> None:
    path, _ = recording
    tracks = tmp_path / "tracks"
    tracks.mkdir()
    classify(str(path), *COMMON, "--format", "audacity", "--output", str(tracks))
    lines = (tracks / "meeting.labels.txt").read_text().splitlines()
    parsed = [(float(start), float(end), label) for start, end, label in (line.split("\t") for line in lines)]
    assert len(parsed) == len(events)
    for (start, end, label), event in zip(parsed, events):
        assert label == event["label"] and abs(start - event["start"]) < 1e-6 and abs(end - event["end"]) < 1e-6
