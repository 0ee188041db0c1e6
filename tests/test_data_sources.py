"""Source items: files, globs, directories, stdin and --files-from lists, and in-memory audio for the Python API."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from audioclf.audio import ArraySource
from audioclf.data.sources import SourceItem, expand_inputs, read_path_list, source_items
from audioclf.errors import AudioError


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    for name in ["b.wav", "a.FLAC", "notes.txt", ".hidden.wav", "sub/c.mp3", "sub/deeper/d.Ogg", "empty/readme.md"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return tmp_path


def paths(items) -> list[str]:
    return [item.path if item.error is None else f"{item.path}!" for item in items]


def test_directory_gives_its_audio_files_sorted(tree: Path) -> None:
    assert paths(expand_inputs([tree])) == [str(tree / "a.FLAC"), str(tree / "b.wav")]
    assert paths(expand_inputs([tree], recursive=True)) == [
        str(tree / "a.FLAC"), str(tree / "b.wav"), str(tree / "sub/c.mp3"), str(tree / "sub/deeper/d.Ogg")]


def test_directory_without_audio_is_an_error_item(tree: Path) -> None:
    [item] = expand_inputs([tree / "empty"])
    assert item.path == str(tree / "empty") and "no audio files" in item.error


def test_globs_are_expanded_when_quoted(tree: Path) -> None:
    assert paths(expand_inputs([f"{tree}/*.wav"])) == [str(tree / "b.wav")]
    assert paths(expand_inputs([f"{tree}/**/*.mp3"], recursive=True)) == [str(tree / "sub/c.mp3")]
    assert paths(expand_inputs([f"{tree}/su?"])) == [str(tree / "sub/c.mp3")]  # a matched directory
    [item] = expand_inputs([f"{tree}/*.aiff"])
    assert item.error == "no files match this pattern"


def test_plain_paths_pass_through_even_when_missing(tree: Path) -> None:
    odd = tree / "[odd].wav"
    odd.write_bytes(b"x")
    assert list(expand_inputs([str(odd), "missing.wav", str(tree / "notes.txt")])) == [
        SourceItem(str(odd)), SourceItem("missing.wav"), SourceItem(str(tree / "notes.txt"))]


def test_stdin_and_files_from_lists_are_literal(tree: Path) -> None:
    stdin = io.StringIO(f"{tree}/b.wav\n\n{tree}/*.wav\r\n{tree}\n")
    assert paths(expand_inputs(["x.wav", "-"], stdin=stdin)) == ["x.wav", f"{tree}/b.wav", f"{tree}/*.wav", str(tree)]
    listing = tree / "list.txt"
    listing.write_bytes(b"one.wav\0two\nlines.wav\0")
    assert paths(expand_inputs([], files_from=listing, null_separated=True)) == ["one.wav", "two\nlines.wav"]


def test_null_separated_reading_across_buffer_boundaries() -> None:
    names = [f"{'x' * 5000}{k}.wav" for k in range(40)]
    assert list(read_path_list(io.StringIO("\0".join(names)), null_separated=True)) == names


# ------------------------------------------------------------------------------------------------ in memory
def test_in_memory_inputs_are_numbered_by_position(tree: Path) -> None:
    mono, stereo = np.zeros(800, np.float32), np.zeros((800, 2), np.float32)
    inputs = [mono, (stereo, 8000), {"array": mono, "sampling_rate": 22050, "path": "clip.wav"},
              {"array": mono, "sampling_rate": 8000, "path": None}, str(tree / "b.wav"), torch.zeros(100)]
    items = list(source_items(inputs, sampling_rate=16000))
    assert [(item.path, item.index, item.sampling_rate, item.error) for item in items] == [
        (None, 0, 16000, None), (None, 1, 8000, None), ("clip.wav", 2, 22050, None), (None, 3, 8000, None),
        (str(tree / "b.wav"), None, None, None), (None, 5, 16000, None)]
    assert [item.identity() for item in items] == [
        {"index": 0}, {"index": 1}, {"path": "clip.wav", "index": 2}, {"index": 3}, {"path": str(tree / "b.wav")},
        {"index": 5}]
    assert items[1].samples is inputs[1][0] and items[0].label == "input 0"
    opened = items[1].open()
    assert isinstance(opened, ArraySource) and (opened.channels, opened.sample_rate) == (2, 8000)
    with pytest.raises(AudioError, match="corrupt or not audio"):  # b.wav holds one byte: an AudioSource probes it
        items[4].open()


def test_one_array_pair_or_dict_is_one_item() -> None:
    stereo = np.zeros((1600, 2), np.float32)
    for single in (np.zeros(1600), stereo, (np.zeros(1600), 16000), {"array": np.zeros(1600), "sampling_rate": 16000},
                   torch.zeros(1600)):
        [item] = source_items(single, sampling_rate=16000)
        assert item.index == 0 and item.error is None
    [item] = source_items(stereo, sampling_rate=16000)
    assert item.open().channels == 2  # a 2-D array is [frames, channels], not a list of rows
    # a dict is one item even with several keys; a list of dicts is many; a tuple of paths is a list of paths
    assert len(list(source_items([{"array": np.zeros(9), "sampling_rate": 8000}] * 3))) == 3
    assert [item.path for item in source_items(("a.wav", "b.wav"))] == ["a.wav", "b.wav"]


def test_in_memory_errors_are_error_items() -> None:
    items = list(source_items([np.zeros(100), {"sampling_rate": 16000}, 42, [0.0, 1.0]]))
    assert [item.index for item in items] == [0, 1, 2, 3]
    assert "no sampling rate" in items[0].error
    assert "needs an \"array\"" in items[1].error
    assert "not an input: a int" in items[2].error and "not an input: a list" in items[3].error
