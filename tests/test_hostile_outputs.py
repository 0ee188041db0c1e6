"""Never destroy what is not ours: the output-target policy of every ``--output``, its lock, the journal that keeps a
killed run's records, and ``convert --force``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from audioclf.errors import AudioclfError, OutputError
from audioclf.fileio import atomic_open
from hostile import AUDIO, CLIP, ENV, cli, model_copy, one_error_line, without_root_powers

TF_SOURCE = Path(__file__).parent / "data" / "tf" / "w2v2_cls_group" / "h5"


# ------------------------------------------------------------------------------------------------ the policy
def test_symbolic_links_are_followed_and_special_files_written_in_place(tmp_path: Path) -> None:
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    with atomic_open(link) as stream:
        stream.write("new\n")
    assert link.is_symlink() and target.read_text() == "new\n"

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    with atomic_open(fifo) as stream:
        stream.write("through the pipe\n")
    reader.join(timeout=30)
    assert received == [b"through the pipe\n"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.jsonl", "pipe", "real.jsonl"]


def test_a_directory_or_a_missing_directory_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "outdir").mkdir()
    for target, needle in [(tmp_path / "outdir", "is a directory"), (tmp_path / "nowhere" / "x.jsonl", "does not exist")]:
        with pytest.raises(OutputError, match=needle) as error:
            with atomic_open(target) as stream:
                stream.write("x")
        assert "\n" not in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outdir"] and not any((tmp_path / "outdir").iterdir())


_WRITE_MEGABYTE = textwrap.dedent("""
    import resource, sys
    from audioclf.errors import OutputError
    from audioclf.fileio import atomic_open
    if sys.argv[2] == "fsize":
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # writes beyond 4 KiB fail as on a full disk
    try:
        with atomic_open(sys.argv[1]) as stream:
            stream.write("x" * (1 << 20))
    except OutputError as error:
        print(error)
        sys.exit(2)
""")


@pytest.mark.parametrize("case", ["fsize", "read-only"])
def test_a_full_disk_or_a_read_only_directory_keeps_the_old_file(tmp_path: Path, case: str) -> None:
    directory = tmp_path / "out"
    directory.mkdir()
    old = directory / "results.jsonl"
    old.write_text("old\n")
    prefix = []
    if case == "read-only":
        directory.chmod(0o555)
        prefix = without_root_powers()
    try:
        result = subprocess.run([*prefix, sys.executable, "-c", _WRITE_MEGABYTE, str(old), case], capture_output=True,
                                text=True, env=ENV, timeout=120)
    finally:
        directory.chmod(0o755)
    assert result.returncode == 2, result.stderr
    assert result.stdout.startswith(f"cannot write {old}: ") and result.stdout.count("\n") == 1, result.stdout
    assert old.read_text() == "old\n" and sorted(p.name for p in directory.iterdir()) == ["results.jsonl"]


def test_dev_full_is_one_line() -> None:
    with pytest.raises(OutputError, match="No space left on device"):
        with atomic_open("/dev/full") as stream:
            stream.write("x" * 100_000)


_HOLD_LOCK = textwrap.dedent("""
    import sys
    from audioclf.fileio import locked_output
    with locked_output(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.read()
""")


def test_a_second_writer_is_refused_and_stale_temporaries_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "results.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(target)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(OutputError, match="another process is writing"):
            with atomic_open(target) as stream:
                stream.write("mine\n")
        result = cli("classify", str(CLIP), "--output", str(target))
        assert "another process is writing" in one_error_line(result)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert not target.exists()
    stale = tmp_path / ".results.jsonl.k2j4h5g6.tmp"  # what a killed writer leaves
    stale.write_text("half")
    with atomic_open(target) as stream:
        stream.write("mine\n")
    assert target.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]


def test_classify_output_onto_a_symlink_a_fifo_and_a_directory(tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text("")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    assert cli("classify", str(CLIP), "--output", str(link)).exit_code == 0
    assert link.is_symlink() and json.loads(real.read_text())["path"] == str(CLIP)
    (tmp_path / "outdir").mkdir()
    assert "is a directory" in one_error_line(cli("classify", str(CLIP), "--output", str(tmp_path / "outdir")))


# ------------------------------------------------------------------------------------------ killed runs resume
_LAUNCH = ("import os, sys; os.execv(sys.executable, [sys.executable, '-m', 'audioclf', *sys.argv[1:]])")


def test_records_of_a_killed_run_are_recovered_by_resume(tmp_path: Path) -> None:
    inputs = []
    for name in ("a.wav", "b.wav"):
        shutil.copy(CLIP, tmp_path / name)
        inputs.append(str(tmp_path / name))
    target = tmp_path / "results.jsonl"
    journal = tmp_path / ".results.jsonl.journal"
    process = subprocess.Popen([sys.executable, "-c", _LAUNCH, "classify", "--output", str(target), "--resume", "-"],
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    try:
        process.stdin.write("".join(path + "\n" for path in inputs).encode())
        process.stdin.flush()  # and left open: the run waits for more paths
        deadline = time.monotonic() + 120
        while not (journal.is_file() and journal.read_text().count("\n") == 2):
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.stdin.close()
    assert not target.exists()
    for path in inputs:  # a record that was not recovered would now be a "no such file" error
        os.rename(path, path + ".moved")
    result = cli("classify", "--output", str(target), "--resume", *inputs)
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [record["path"] for record in records] == inputs and all("labels" in record for record in records)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav.moved", "b.wav.moved", "results.jsonl"]


def test_an_interrupted_run_without_resume_leaves_no_journal(tmp_path: Path) -> None:
    target = tmp_path / "results.jsonl"
    target.write_text("old\n")
    (tmp_path / ".results.jsonl.journal").write_text('[{"path": "stale"}]\n')  # a killed run's, not resumed
    assert cli("classify", str(CLIP), "--output", str(target)).exit_code == 0
    assert [json.loads(line)["path"] for line in target.read_text().splitlines()] == [str(CLIP)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]


# ------------------------------------------------------------------------------------------------ convert --force
def _source(tmp_path: Path) -> Path:
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "notes.txt").write_text("mine")
    shutil.copytree(TF_SOURCE, parent / "src")
    return parent / "src"


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_convert_force_never_replaces_the_source_or_unrelated_files(tmp_path: Path) -> None:
    from audioclf.convert import convert_tf_checkpoint

    source = _source(tmp_path)
    unrelated = tmp_path / "work"
    unrelated.mkdir()
    (unrelated / "thesis.tex").write_text("years of work")
    before = _tree(tmp_path)
    for output, needle in [(source, "holds the source"), (source.parent, "holds the source"),
                           (unrelated, "not a conversion result"), (source / "tf_model.h5", "not a directory")]:
        with pytest.raises(AudioclfError, match=needle):
            convert_tf_checkpoint(source, output, force=True)
    assert "holds the source" in one_error_line(cli("convert", "--from-tf", str(source), "--output", str(source.parent),
                                                    "--force"))
    assert _tree(tmp_path) == before
