"""``audioclf embed`` as a user runs it (the bundled model): every output format holds the numbers the Python API
gives (those are checked against ``transformers`` in ``test_embed.py``), errors and usage mistakes exit as
documented."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from audioclf.cli import app
from audioclf.engine.embed import embed

AUDIO = Path(__file__).parent / "data" / "audio"
CLIPS = [str(AUDIO / "speechcommands_yes_1000ms_16k_mono.wav"), str(AUDIO / "speechcommands_no_1000ms_16k_mono.wav"),
         str(AUDIO / "freesound_456440_robin_44k_stereo.ogg")]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(*args: str):
    return CliRunner().invoke(app, ["embed", *args])


@pytest.fixture(scope="module")
def expected() -> dict:
    """The Python API's records: pooled (layer 2) and frame vectors of 0.5 s windows."""
    return {"pooled": list(embed(CLIPS, layer=2)),
            "frames": list(embed(CLIPS[:2], layer="last", pooling="none", window=0.5, hop=0.25))}


def test_jsonl_on_stdout_by_the_installed_command(expected: dict, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.wav")
    result = subprocess.run([sys.executable, "-m", "audioclf", "embed", "--layer", "2", *CLIPS, missing],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 1, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["path"] for record in records] == CLIPS + [missing]
    assert records[-1]["error"] == "no such file"
    for record, want in zip(records, expected["pooled"]):
        assert record["layer"] == 2 and record["model"] == want["model"]
        np.testing.assert_array_equal(np.array(record["embedding"], dtype=np.float32), want["embedding"])
    assert "1 of 4 inputs failed" in result.stderr


def test_npz_and_npy_hold_the_same_vectors(expected: dict, tmp_path: Path) -> None:
    pooled = np.stack([record["embedding"] for record in expected["pooled"]])
    result = run(*CLIPS, "--layer", "2", "--output", str(tmp_path / "e.npz"))
    assert result.exit_code == 0, result.output
    arrays = np.load(tmp_path / "e.npz")
    np.testing.assert_array_equal(arrays["embeddings"], pooled)
    assert list(arrays["paths"]) == CLIPS and list(arrays["frames"]) == [1, 1, 1]
    assert np.all(arrays["channels"] == -1) and np.all(np.isnan(arrays["starts"]))

    frames = expected["frames"]
    result = run(*CLIPS[:2], "--pooling", "none", "--window", "0.5", "--hop", "0.25", "--format", "npy",
                 "--output", str(tmp_path / "f.npy"))
    assert result.exit_code == 0, result.output
    matrix = np.load(tmp_path / "f.npy")
    np.testing.assert_array_equal(matrix, np.concatenate([record["embedding"] for record in frames]))
    with open(tmp_path / "f.rows.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(row["path"], float(row["start"]), float(row["end"]), int(row["frames"])) for row in rows] == [
        (record["path"], record["start"], record["end"], record["embedding"].shape[0]) for record in frames]


def test_parquet_rows(expected: dict, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    result = run(*CLIPS, "--layer", "2", "--output", str(tmp_path / "e.parquet"))
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "e.parquet").to_pylist()
    assert [row["path"] for row in table] == CLIPS and {row["layer"] for row in table} == {"2"}
    for row, want in zip(table, expected["pooled"]):
        np.testing.assert_array_equal(np.array(row["embedding"], dtype=np.float32), want["embedding"])


def test_array_formats_tell_failures_on_stderr(tmp_path: Path) -> None:
    result = run(CLIPS[0], str(tmp_path / "missing.wav"), "--output", str(tmp_path / "e.npz"), "--quiet")
    assert result.exit_code == 1
    assert f"error: {tmp_path / 'missing.wav'}: no such file" in result.stderr
    assert list(np.load(tmp_path / "e.npz")["paths"]) == [CLIPS[0]]


def test_parquet_without_pyarrow_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    result = run(CLIPS[0], "--output", str(tmp_path / "e.parquet"))
    assert result.exit_code == 2
    assert "pip install 'audioclf[parquet]'" in result.stderr and not (tmp_path / "e.parquet").exists()


@pytest.mark.parametrize("args, message", [
    (["--format", "npz"], "--format npz needs --output FILE"),
    (["--layer", "9"], "--layer 9 is not a hidden state of this model"),
    (["--layer", "top"], "--layer must be last, all or a hidden-state number"),
    (["--pooling", "max"], "--pooling must be one of mean, none"),
    (["--hop", "1"], "--hop needs --window"),
    (["--format", "csv"], "'csv' is not one of 'auto', 'jsonl', 'npy', 'npz', 'parquet'"),
])
def test_usage_errors(args: list[str], message: str) -> None:
    result = run(CLIPS[0], *args)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
