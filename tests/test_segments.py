"""``audioclf segments`` and the excerpt cutter, on recordings whose every sample is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audioclf.audio.decode import ArraySource
from audioclf.audio.excerpts import Span, cut_excerpts
from audioclf.cli import app
from audioclf.engine.events import window_events

RATE = 8000


def stereo(seconds: float = 6.0) -> np.ndarray:
    """``[frames, 2]``: a distinct value in every sample of every channel (exactly representable in 16 bits)."""
    frames = int(seconds * RATE)
    ramp = (np.arange(frames) % 20000 - 10000) / 32768.0
    return np.stack([ramp, -ramp / 2], axis=1).astype(np.float32)


def test_cut_excerpts_in_one_pass_equals_slicing() -> None:
    audio = stereo()
    spans = [Span(2.0, 3.0), Span(0.0, 0.5, channel=1), Span(2.5, 4.0), Span(5.5, 9.0, channel=0),
             Span(7.0, 8.0), Span(1.0, 1.0)]
    source = ArraySource(audio, RATE)
    blocks_read = []
    original = source.blocks

    def counting_blocks(block_frames: int = 1000):
        for block in original(1000):  # small blocks: spans cross block boundaries
            blocks_read.append(block.shape[0])
            yield block

    source.blocks = counting_blocks  # type: ignore[method-assign]
    found = dict(cut_excerpts(source, spans))
    assert sorted(found) == list(range(len(spans)))
    assert sum(blocks_read) == audio.shape[0]  # read once
    for number, span in enumerate(spans):
        start, end = round(span.start * RATE), min(round(span.end * RATE), audio.shape[0])
        expected = audio[start:max(start, end)]
        if span.channel is not None:
            expected = expected[:, span.channel:span.channel + 1]
        np.testing.assert_array_equal(found[number], expected, err_msg=str(span))


def run(*args: str):
    return CliRunner().invoke(app, ["segments", *args])


@pytest.fixture()
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "rec.wav"
    sf.write(path, stereo(), RATE, subtype="PCM_16")
    return path


def test_events_are_cut_per_label_with_padding(tmp_path: Path, recording: Path) -> None:
    events = [
        {"path": str(recording), "label": "dog", "start": 1.0, "end": 2.0, "score": 0.9, "model": "m"},
        {"path": str(recording), "channel": 1, "label": "cat", "start": 0.2, "end": 0.8, "score": 0.7, "model": "m"},
        {"path": str(recording), "label": "dog", "start": 5.5, "end": 6.0, "score": 0.6, "model": "m"},
        {"path": str(tmp_path / "missing.wav"), "label": "dog", "start": 0, "end": 1, "score": 0.9, "model": "m"},
    ]
    results = tmp_path / "events.jsonl"
    results.write_text("".join(json.dumps(event) + "\n" for event in events))
    out = tmp_path / "clips"
    result = run(str(results), "--output", str(out), "--pad", "0.5")
    assert result.exit_code == 1, result.output  # the missing recording
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    written = {line["segment"]: line for line in lines if "segment" in line}
    assert [line for line in lines if "error" in line][0]["path"] == str(tmp_path / "missing.wav")
    audio = stereo()
    expected = {  # (label, name) -> (first sample, last sample + 1, channel)
        ("dog", "rec_1.000-2.000s.wav"): (int(0.5 * RATE), int(2.5 * RATE), None),
        ("cat", "rec_0.200-0.800s_ch1.wav"): (0, int(1.3 * RATE), 1),  # padding clipped at the start
        ("dog", "rec_5.500-6.000s.wav"): (int(5.0 * RATE), int(6.0 * RATE), None),  # and at the end
    }
    assert sorted(written) == sorted(str(out / label / name) for label, name in expected)
    for (label, name), (first, last, channel) in expected.items():
        samples, rate = sf.read(out / label / name, dtype="float32", always_2d=True)
        want = audio[first:last] if channel is None else audio[first:last, channel:channel + 1]
        assert rate == RATE
        np.testing.assert_allclose(samples, want, atol=1.5 / 32768, err_msg=name)
        line = written[str(out / label / name)]
        assert (line["clip_start"], line["clip_end"]) == (first / RATE, last / RATE)
        assert line["label"] == label and line["path"] == str(recording)


def test_window_records_become_events_with_the_same_rules(tmp_path: Path, recording: Path) -> None:
    windows = [{"path": str(recording), "start": k * 0.5, "end": k * 0.5 + 1.0,
                "labels": [{"label": "dog", "score": score}, {"label": "cat", "score": 1 - score}], "model": "m"}
               for k, score in enumerate([0.1, 0.8, 0.9, 0.2, 0.1, 0.1, 0.7, 0.1, 0.1, 0.1])]
    results = tmp_path / "windows.jsonl"
    results.write_text("".join(json.dumps(window) + "\n" for window in windows))
    out = tmp_path / "clips"
    result = run(str(results), "--output", str(out), "--pad", "0", "--threshold", "0.6", "--labels", "dog",
                 "--audio-format", "flac")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    events = window_events(windows, 0.6, labels={"dog"})
    assert [(line["label"], line["start"], line["end"], line["score"]) for line in lines] == [
        (event["label"], event["start"], event["end"], event["score"]) for event in events]
    assert all(Path(line["segment"]).suffix == ".flac" and Path(line["segment"]).exists() for line in lines)


def test_unreadable_results_are_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    result = run(str(bad), "--output", str(tmp_path / "out"))
    assert result.exit_code == 2 and "line 1 is not JSON" in result.output
    assert run(str(bad), "--output", str(tmp_path / "out"), "--pad", "-1").exit_code == 2
