"""``audioclf classify`` as a user runs it: the installed package in a subprocess, output parsed."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from interrupt import interrupt_classify
from oracle import build_reference, save_reference

AUDIO = Path(__file__).parent / "data" / "audio"
CONV = dict(conv_dim=(32,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2))
CLIPS_16K_MONO = [AUDIO / name for name in (
    "speechcommands_yes_1000ms_16k_mono.wav", "speechcommands_no_1000ms_16k_mono.wav",
    "speechcommands_noise_1000ms_16k_mono.wav", "speechcommands_silence_1000ms_16k_mono.wav",
    "speechcommands_yes_30ms_16k_mono.wav",
)]
GOOD = str(CLIPS_16K_MONO[0])
#: one torch thread: tiny models gain nothing from more, and OpenMP thread teams stall on a busy machine
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run the installed CLI; stdout/stderr are pipes (not terminals), as in a pipeline."""
    return subprocess.run([sys.executable, "-m", "audioclf", "classify", *args], input=stdin, capture_output=True,
                          env=ENV, timeout=120)


def jsonl(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, torch.nn.Module]]:
    root = tmp_path_factory.mktemp("cli-models")
    built = {}
    for name, norm, mask in [("layer", "layer", True), ("group", "group", False)]:
        model = build_reference("wav2vec2", seed=3, feat_extract_norm=norm, **CONV,
                                id2label={i: label for i, label in enumerate(["yes", "no", "up", "down", "go"])})
        directory = save_reference(model, root / name)
        (directory / "preprocessor_config.json").write_text(json.dumps({
            "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": 16000,
            "padding_value": 0.0, "do_normalize": True, "return_attention_mask": mask, "padding_side": "right"}))
        built[name] = (directory, model)
    return built


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated broken inputs, by failure kind."""
    root = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    files = {kind: root / name for kind, name in [
        ("missing", "missing.wav"), ("empty", "empty.wav"), ("corrupt", "corrupt.wav"), ("truncated", "cut.flac"),
        ("unsupported", "noise.xyz"), ("nan", "nan.wav"), ("directory", "folder")]}
    files["empty"].write_bytes(b"")
    files["corrupt"].write_bytes(rng.bytes(4000))
    files["unsupported"].write_bytes(rng.bytes(4000))
    wave = (0.1 * rng.standard_normal(48000)).astype(np.float32)
    sf.write(root / "whole.flac", wave, 16000)
    data = (root / "whole.flac").read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    wave[20000] = np.nan
    sf.write(files["nan"], wave, 16000, subtype="FLOAT")
    files["directory"].mkdir()
    files["too short"] = AUDIO / "soundfile_tiny_stereo.wav"  # 4 frames at 44.1 kHz
    return files


def reference_scores(model: torch.nn.Module, directory: Path, path: Path) -> dict[str, float]:
    """transformers: Wav2Vec2FeatureExtractor + model + softmax on the single file."""
    from transformers import Wav2Vec2FeatureExtractor

    wave, rate = sf.read(path, dtype="float32")
    features = Wav2Vec2FeatureExtractor.from_pretrained(directory)(wave, sampling_rate=rate, return_tensors="pt")
    with torch.no_grad():
        scores = model(**features).logits.softmax(-1)[0]
    return {model.config.id2label[i]: float(s) for i, s in enumerate(scores)}


def test_jsonl_scores_equal_transformers_on_16k_mono(models: dict) -> None:
    directory, model = models["group"]
    result = run("--model", str(directory), "--top-k", "0", *map(str, CLIPS_16K_MONO))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""  # no progress bar, no summary when stderr is not a terminal
    records = jsonl(result)
    assert [r["path"] for r in records] == [str(p) for p in CLIPS_16K_MONO]
    for path, record in zip(CLIPS_16K_MONO, records):
        assert set(record) == {"path", "labels", "model"} and record["model"] == str(directory)
        scores = [item["score"] for item in record["labels"]]
        assert scores == sorted(scores, reverse=True)
        expected = reference_scores(model, directory, path)
        got = {item["label"]: item["score"] for item in record["labels"]}
        assert got.keys() == expected.keys()
        np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), atol=1e-4)


def test_every_failure_kind_is_an_error_record_and_exit_1(models: dict, bad_files: dict) -> None:
    kinds = [kind for kind in bad_files if kind != "directory"]
    arguments = [GOOD, *(str(bad_files[kind]) for kind in kinds), "-"]
    stdin = f"{bad_files['directory']}\n{CLIPS_16K_MONO[1]}\n"  # - : paths on stdin, one per line
    result = run("--model", str(models["layer"][0]), *arguments, stdin=stdin.encode())
    assert result.returncode == 1
    records = jsonl(result)
    assert [r["path"] for r in records] == arguments[:-1] + [str(bad_files["directory"]), str(CLIPS_16K_MONO[1])]
    assert "labels" in records[0] and "labels" in records[-1]
    errors = {kind: record for kind, record in zip(kinds + ["directory"], records[1:-1])}
    expected = {
        "missing": "no such file", "empty": "empty file", "corrupt": "corrupt or not audio",
        "truncated": "truncated or corrupt", "unsupported": "not a recognised audio file", "nan": "NaN",
        "directory": "is a directory", "too short": "too short",
    }
    for kind, needle in expected.items():
        assert set(errors[kind]) == {"path", "error"}, kind
        assert needle in errors[kind]["error"] and "\n" not in errors[kind]["error"], (kind, errors[kind])
    assert result.stderr.decode().strip().splitlines()[-1].startswith(f"{len(expected)} of {len(records)} inputs failed")


def test_nul_separated_path_lists(models: dict, tmp_path: Path) -> None:
    model = str(models["group"][0])
    odd = tmp_path / "two\nlines.wav"
    odd.write_bytes(CLIPS_16K_MONO[0].read_bytes())
    listing = tmp_path / "list"
    listing.write_bytes(f"{CLIPS_16K_MONO[3]}\0".encode())
    nul = run("--model", model, "-0", "-", "--files-from", str(listing), stdin=f"{odd}\0".encode())
    assert nul.returncode == 0, nul.stderr.decode()
    records = jsonl(nul)
    assert [r["path"] for r in records] == [str(odd), str(CLIPS_16K_MONO[3])]
    assert all(len(r["labels"]) == 5 for r in records)


def test_output_formats_parse(models: dict) -> None:
    from audioclf.cli import app

    four_channels = str(AUDIO / "speechbrain_multimic_speech_16k_4ch.flac")
    common = ["classify", "--model", str(models["layer"][0]), GOOD, "missing.wav", "--top-k", "2"]
    runner = CliRunner()

    def invoke(*extra: str) -> str:
        result = runner.invoke(app, [*common, *extra])
        assert result.exit_code == 1, result.output
        return result.stdout

    records = [json.loads(line) for line in invoke().splitlines()]  # auto: not a terminal → JSON Lines
    assert records == [json.loads(line) for line in invoke("--format", "jsonl").splitlines()]
    assert json.loads(invoke("--format", "json")) == records
    for fmt, delimiter in [("csv", ","), ("tsv", "\t")]:
        rows = list(csv.DictReader(io.StringIO(invoke("--format", fmt)), delimiter=delimiter))
        assert list(rows[0]) == ["path", "channel", "start", "end", "rank", "label", "score", "error"]
        assert [(r["path"], r["rank"], r["label"], r["error"]) for r in rows] == [
            (GOOD, "1", records[0]["labels"][0]["label"], ""), (GOOD, "2", records[0]["labels"][1]["label"], ""),
            ("missing.wav", "", "", "no such file")]
        assert float(rows[0]["score"]) == records[0]["labels"][0]["score"]
    table = invoke("--format", "table")
    assert GOOD in table and records[0]["labels"][0]["label"] in table and "no such file" in table

    timeline = runner.invoke(app, [*common[:3], four_channels, "--channels", "each", "--window", "4", "--hop", "3",
                                   "--format", "csv", "--top-k", "1"])
    assert timeline.exit_code == 0, timeline.output
    rows = list(csv.DictReader(io.StringIO(timeline.stdout)))
    assert [(r["channel"], r["start"], r["end"]) for r in rows] == [
        (str(c), s, e) for c in range(4) for s, e in [("0.0", "4.0"), ("3.0", "7.0"), ("6.0", "10.0")]]


def test_output_file_is_written_atomically(models: dict, tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    target.write_text("old results\n")
    result = run("--model", str(models["group"][0]), GOOD, "--output", str(target), "--threads", "1", "--device", "cpu")
    assert result.returncode == 0 and result.stdout == b""
    rows = list(csv.DictReader(target.open()))  # format from the extension
    assert len(rows) == 5 and rows[0]["path"] == GOOD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_the_old_output_untouched(models: dict, tmp_path: Path, signum: int, status: int) -> None:
    target = tmp_path / "results.jsonl"
    target.write_text("old results\n")
    returncode, stderr = interrupt_classify(
        ["--model", str(models["group"][0]), "-o", str(target)], [GOOD],
        ready=lambda: any(p.name.endswith(".tmp") for p in tmp_path.iterdir()), env=ENV, settle=0.5, signum=signum)
    assert returncode == status, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"
    assert target.read_text() == "old results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]


def test_sigint_that_the_parent_ignores_stays_ignored(models: dict, tmp_path: Path) -> None:
    """A background job of a non-interactive shell inherits SIGINT ignored; like Python itself, the run keeps it
    ignored (it is not a Ctrl-C from the user) and finishes normally."""
    code = ("import signal, subprocess, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            "sys.exit(subprocess.call([sys.executable, '-m', 'audioclf', *sys.argv[1:]]))")
    target = tmp_path / "out.jsonl"
    process = subprocess.Popen([sys.executable, "-c", code, "classify", "--model", str(models["group"][0]), "-o",
                                str(target), "-"], env=ENV, stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        process.stdin.write(f"{GOOD}\n".encode())
        process.stdin.flush()
        deadline = time.monotonic() + 60
        while not any(GOOD in p.read_text() for p in tmp_path.glob(".*.tmp")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)  # the wrapper and the run, as a terminal's Ctrl-C would
        time.sleep(1.0)
        assert process.poll() is None  # still waiting for paths on stdin
        _, stderr = process.communicate(timeout=60)  # end of the path list: the run ends as usual
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()
    assert [json.loads(line)["path"] for line in target.read_text().splitlines()] == [GOOD]


def test_usage_errors_exit_2_with_one_line(models: dict, tmp_path: Path) -> None:
    model = str(models["layer"][0])
    (tmp_path / "config.json").write_text("{not json")
    cases = {
        "unknown label": (["--model", model, GOOD, "--labels", "yes,maybe"], "unknown label(s) 'maybe'"),
        "model cannot load": (["--model", str(tmp_path), GOOD], "cannot read"),
        "bad format": (["--model", model, GOOD, "--format", "xml"], "'xml' is not one of 'auto', 'table'"),
        "hop without window": (["--model", model, GOOD, "--hop", "1"], "--hop needs --window"),
        "no inputs": (["--model", model], "no inputs"),
    }
    processes = {name: subprocess.Popen([sys.executable, "-m", "audioclf", "classify", *args], env=ENV,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for name, (args, _) in cases.items()}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        lines = stderr.decode().strip().splitlines()
        assert process.returncode == 2, (name, stderr.decode())
        assert stdout == b"" and len(lines) == 1 and lines[0].startswith("error: "), (name, lines)
        assert cases[name][1] in lines[0], (name, lines)


def test_help_documents_exit_codes_without_importing_torch() -> None:
    code = ("import sys; from typer.testing import CliRunner; from audioclf.cli import app; "
            "r = CliRunner().invoke(app, ['classify', '--help']); print(r.output); print('torch' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "Exit status: 0 every input classified; 1 some input failed" in " ".join(output.split())
    assert "130 interrupted (Ctrl-C); 141 the reader of the output went away (| head -1); 143 terminated (SIGTERM)" in (
        " ".join(output.split()))
    assert output.strip().endswith("False")
