"""Input expansion: files, globs, directories, stdin and --files-from lists."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from audioclf.inputs import InputItem, expand_inputs, read_path_list


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
        InputItem(str(odd)), InputItem("missing.wav"), InputItem(str(tree / "notes.txt"))]


def test_stdin_and_files_from_lists_are_literal(tree: Path) -> None:
    stdin = io.StringIO(f"{tree}/b.wav\n\n{tree}/*.wav\r\n{tree}\n")
    assert paths(expand_inputs(["x.wav", "-"], stdin=stdin)) == ["x.wav", f"{tree}/b.wav", f"{tree}/*.wav", str(tree)]
    listing = tree / "list.txt"
    listing.write_bytes(b"one.wav\0two\nlines.wav\0")
    assert paths(expand_inputs([], files_from=listing, null_separated=True)) == ["one.wav", "two\nlines.wav"]


def test_null_separated_reading_across_buffer_boundaries() -> None:
    names = [f"{'x' * 5000}{k}.wav" for k in range(40)]
    assert list(read_path_list(io.StringIO("\0".join(names)), null_separated=True)) == names
