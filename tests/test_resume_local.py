"""``audioclf classify --resume --output FILE`` with the local engine: records already in the file are kept as they
are and their inputs skipped; the file is still replaced atomically; an interrupted run keeps what it finished.
(The Ray engine's ``--resume`` is tested in test_ray_engine.py.)"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from interrupt import interrupt_classify
from oracle import build_reference, save_reference

AUDIO = Path(__file__).parent / "data" / "audio"
CONV = dict(conv_dim=(32,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2))
CLIPS = [str(AUDIO / name) for name in (
    "speechcommands_yes_1000ms_16k_mono.wav", "speechcommands_no_1000ms_16k_mono.wav",
    "speechcommands_noise_1000ms_16k_mono.wav", "speechcommands_silence_1000ms_16k_mono.wav")]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    model = build_reference("wav2vec2", seed=3, feat_extract_norm="layer", **CONV,
                            id2label={i: label for i, label in enumerate(["yes", "no", "up", "down", "go"])})
    directory = save_reference(model, tmp_path_factory.mktemp("resume-model") / "model")
    (directory / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": 16000,
        "padding_value": 0.0, "do_normalize": True, "return_attention_mask": True, "padding_side": "right"}))
    return str(directory)


def run(model: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audioclf", "classify", "--model", model, *args],
                          capture_output=True, env=ENV, timeout=120)


def test_jsonl_resume_keeps_records_and_classifies_only_the_rest(model_dir: str, tmp_path: Path) -> None:
    target = tmp_path / "results.jsonl"
    first = run(model_dir, *CLIPS[:2], "-o", str(target))
    assert first.returncode == 0, first.stderr.decode()
    lines = target.read_text().splitlines()
    assert [json.loads(line)["path"] for line in lines] == CLIPS[:2]
    # Mark a kept record: a resumed run must not classify its input again (it would overwrite the mark).
    marked = json.loads(lines[0])
    marked["labels"][0]["score"] = 0.125
    lines[0] = json.dumps(marked, ensure_ascii=False)
    target.write_text("\n".join(lines) + "\n")

    resumed = run(model_dir, *CLIPS, str(AUDIO / "missing.wav"), "-o", str(target), "--resume")
    assert resumed.returncode == 1, resumed.stderr.decode()  # missing.wav failed
    after = target.read_text().splitlines()
    assert after[:2] == lines  # kept verbatim, first
    records = [json.loads(line) for line in after]
    assert [r["path"] for r in records] == CLIPS + [str(AUDIO / "missing.wav")]
    fresh = run(model_dir, *CLIPS[2:], "--format", "jsonl")
    assert after[2:4] == fresh.stdout.decode().splitlines()  # the rest exactly as a plain run prints them
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]  # written atomically, no leftovers

    again = run(model_dir, *CLIPS, str(AUDIO / "missing.wav"), "-o", str(target), "--resume")
    assert again.returncode == 1  # nothing left to do; the kept error record still counts as a failure
    assert target.read_text().splitlines() == after
    assert again.stderr.decode().strip().splitlines()[-1].startswith("1 of 5 inputs failed")


def test_csv_resume_keeps_rows_exactly(model_dir: str, tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    first = run(model_dir, CLIPS[0], str(AUDIO / "missing.wav"), "-o", str(target), "--top-k", "3")
    assert first.returncode == 1
    before = target.read_text()
    resumed = run(model_dir, CLIPS[0], str(AUDIO / "missing.wav"), CLIPS[1], "-o", str(target), "--top-k", "3",
                  "--resume")
    assert resumed.returncode == 1
    after = target.read_text()
    assert after.startswith(before)
    rows = list(csv.DictReader(after.splitlines()))
    assert [r["path"] for r in rows] == [CLIPS[0]] * 3 + [str(AUDIO / "missing.wav")] + [CLIPS[1]] * 3
    assert [r["rank"] for r in rows] == ["1", "2", "3", "", "1", "2", "3"]


def test_csv_resume_reads_quoted_fields_with_newlines(model_dir: str, tmp_path: Path) -> None:
    """A path with a line break (or a delimiter, or quotes) is a quoted cell spanning lines: --resume reads the file
    with a real csv parser, keeps its rows as they are and skips that input. (Every format's reader:
    test_engine_records.py.)"""
    odd = tmp_path / 'two\nlines, "quoted"\ttab.wav'
    odd.write_bytes(Path(CLIPS[0]).read_bytes())
    target = tmp_path / "results.csv"
    first = run(model_dir, str(odd), "-o", str(target), "--top-k", "2")
    assert first.returncode == 0, first.stderr.decode()
    before = target.read_text()
    assert before.count("\n") > 3  # the line break inside the quoted path
    resumed = run(model_dir, str(odd), CLIPS[1], "-o", str(target), "--top-k", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr.decode()
    after = target.read_text()
    assert after.startswith(before)
    rows = list(csv.DictReader(after.splitlines(keepends=True)))
    assert [(r["path"], r["rank"]) for r in rows] == [(str(odd), "1"), (str(odd), "2"), (CLIPS[1], "1"), (CLIPS[1], "2")]


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_interrupted_resumable_run_keeps_finished_inputs(model_dir: str, tmp_path: Path, signum: int,
                                                         status: int) -> None:
    target = tmp_path / "results.jsonl"
    returncode, stderr = interrupt_classify(
        ["--model", model_dir, "-o", str(target), "--resume", "--channels", "each"], CLIPS[:1],
        ready=lambda: any(CLIPS[0] in p.read_text() for p in tmp_path.glob(".*") if p.is_file()), env=ENV,
        signum=signum)
    assert returncode == status, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"
    kept = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["path"] for r in kept] == [CLIPS[0]]  # the finished input is saved, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]

    resumed = run(model_dir, *CLIPS, "-o", str(target), "--resume", "--channels", "each")
    assert resumed.returncode == 0, resumed.stderr.decode()
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["path"] for r in records] == CLIPS
    assert records[0] == kept[0]


def test_resume_usage_errors(model_dir: str, tmp_path: Path) -> None:
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    cases = [
        (["--resume", CLIPS[0]], "--resume needs --output"),
        (["--resume", CLIPS[0], "-o", str(tmp_path / "table.txt")], "--resume cannot read table output"),
        (["--resume", CLIPS[0], "-o", str(tmp_path / "broken.jsonl")], "line 1 is not JSON"),
    ]
    for args, needle in cases:
        result = run(model_dir, *args)
        lines = result.stderr.decode().strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], (args, lines)
    assert (tmp_path / "broken.jsonl").read_text() == "{not json\n"
