"""Training data: both layouts, the stratified split, and the usage errors that stop a run before any training
(exit 2 with one line)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioclf.errors import DataError
from audioclf.train.dataset import Clip, read_labelled, stratified_split


def _clip(path: Path, seconds: float = 0.2, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate))).astype(np.float32), rate)
    return path


def test_folder_layout(tmp_path: Path) -> None:
    for relative in ("b/1.wav", "b/deeper/2.flac", "a/3.wav", "a/.hidden.wav", "a/notes.txt"):
        _clip(tmp_path / relative) if relative.endswith((".wav", ".flac")) else (tmp_path / relative).write_text("x")
    _clip(tmp_path / "loose.wav")
    (tmp_path / "empty-label").mkdir()
    data = read_labelled(tmp_path)
    assert data.labels == ["a", "b", "empty-label"]
    assert [(Path(c.path).relative_to(tmp_path).as_posix(), c.label) for c in data.clips] == [
        ("a/3.wav", "a"), ("b/1.wav", "b"), ("b/deeper/2.flac", "b")]
    assert data.ignored == [str(tmp_path / "loose.wav")]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_manifests_resolve_relative_paths(tmp_path: Path, suffix: str) -> None:
    rows = [("clips/x.wav", "dog"), (str(tmp_path / "abs.wav"), "cat"), ("clips/y.wav", "dog")]
    manifest = tmp_path / "lists" / f"set{suffix}"
    manifest.parent.mkdir()
    if suffix == ".jsonl":
        manifest.write_text("".join(json.dumps({"label": label, "path": path, "extra": 1}) + "\n"
                                    for path, label in rows) + "\n")
    else:
        separator = "\t" if suffix == ".tsv" else ","
        manifest.write_text(f"speaker{separator}Label{separator}PATH\n"
                            + "".join(f"s{separator}{label}{separator}{path}\n" for path, label in rows))
    data = read_labelled(manifest)
    assert data.labels == ["cat", "dog"]
    assert [(c.path, c.label) for c in data.clips] == [
        (str(tmp_path / "lists" / "clips/x.wav"), "dog"), (str(tmp_path / "abs.wav"), "cat"),
        (str(tmp_path / "lists" / "clips/y.wav"), "dog")]


def test_bad_manifests(tmp_path: Path) -> None:
    cases = {"no-header.csv": "a.wav,dog\n", "no-label.jsonl": '{"path": "a.wav"}\n', "broken.jsonl": "{\n",
             "empty-label.csv": "path,label\na.wav,\n", "set.txt": "path,label\n"}
    messages = {}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError) as caught:
            read_labelled(tmp_path / name)
        messages[name] = str(caught.value)
        assert "\n" not in messages[name]
    assert "first row must name the columns" in messages["no-header.csv"]
    assert "row 1 has no label" in messages["no-label.jsonl"]
    assert "line 1 is not JSON" in messages["broken.jsonl"]
    assert "row 2 has no label" in messages["empty-label.csv"]
    assert "not a .txt file" in messages["set.txt"]
    with pytest.raises(DataError, match="no such directory or manifest"):
        read_labelled(tmp_path / "missing")


def test_stratified_split() -> None:
    clips = [Clip(f"{label}{k}", label) for label, count in (("a", 20), ("b", 5), ("c", 1), ("d", 2))
             for k in range(count)]
    train, held = stratified_split(clips, 0.2, seed=3)
    counts = {label: sum(c.label == label for c in held) for label in "abcd"}
    assert counts == {"a": 4, "b": 1, "c": 0, "d": 1}  # at least one where possible, never a whole label
    assert sorted(train + held, key=clips.index) == clips and not set(train) & set(held)
    assert [c for c in train] == [c for c in clips if c in set(train)]  # input order kept
    assert stratified_split(clips, 0.2, seed=3) == (train, held)
    assert stratified_split(clips, 0.2, seed=4) != (train, held)
    assert stratified_split(clips, 0.0, seed=3) == (clips, [])


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audioclf", "train", *args], capture_output=True, text=True,
                          timeout=300)


def test_usage_errors_exit_2_before_training(tmp_path: Path) -> None:
    one_label = tmp_path / "one"
    _clip(one_label / "dog" / "1.wav")
    result = _train(str(one_label), "-o", str(tmp_path / "out1"))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: {one_label} has 1 label(s) (dog): training needs at least 2"]

    unusable = tmp_path / "unusable"
    _clip(unusable / "dog" / "1.wav")
    (unusable / "cat").mkdir(parents=True)
    (unusable / "cat" / "broken.wav").write_bytes(b"not audio")
    _clip(unusable / "cat" / "tiny.wav", seconds=0.001)
    result = _train(str(unusable), "-o", str(tmp_path / "out2"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "error: label(s) without usable clips: cat (see the skipped files above)"
    assert any(line.startswith(f"skipped {unusable / 'cat' / 'broken.wav'}: ") for line in lines)
    assert any(line.startswith(f"skipped {unusable / 'cat' / 'tiny.wav'}: too short") for line in lines)
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    result = _train(str(unusable), "-o", str(occupied))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: --output {occupied} exists and is not empty: pass --resume to continue its run or --force to "
        "start over"]
    result = _train(str(unusable), "-o", str(occupied), "--resume")
    assert result.returncode == 2 and "holds no run to resume" in result.stderr
    result = _train(str(unusable), "-o", str(tmp_path / "out3"), "--epochs", "0")
    assert result.returncode == 2 and result.stderr.strip() == "error: --epochs must be 1 or more, got 0"
    result = _train(str(unusable), "-o", str(tmp_path / "out3"), "--config", "wav2vec2", "--model", "x")
    assert result.returncode == 2 and "--config cannot be combined with --model" in result.stderr
    assert (occupied / "keep.txt").read_text() == "mine"
