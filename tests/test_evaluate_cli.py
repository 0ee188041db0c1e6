"""``audioclf evaluate`` as a user runs it: the bundled model on held-out keyword clips, its metrics against
scikit-learn's on the predictions ``audioclf classify`` makes for the same files, and its usage errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from sklearn import metrics as sk

HELDOUT = Path(__file__).parent / "data" / "heldout"


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audioclf", *args], capture_output=True, text=True, timeout=300,
                          env=env)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A CSV manifest of 4 held-out clips per label (relative paths), plus one clip that cannot be decoded."""
    clips = json.loads((HELDOUT / "manifest.json").read_text())["clips"]
    chosen: dict[str, list[dict]] = {}
    for clip in clips:
        if len(chosen.setdefault(clip["label"], [])) < 4:
            chosen[clip["label"]].append(clip)
    picked = [clip for group in chosen.values() for clip in group]
    root = tmp_path_factory.mktemp("evaluate")
    (root / "clips").mkdir()
    for clip in picked:
        shutil.copy(HELDOUT / clip["file"], root / "clips" / clip["file"])
    (root / "clips" / "broken.wav").write_bytes(b"RIFF....WAVEfmt nothing")
    lines = ["path,label"] + [f"clips/{clip['file']},{clip['label']}" for clip in picked] + ["clips/broken.wav,yes"]
    (root / "set.csv").write_text("\n".join(lines) + "\n")
    return root / "set.csv", picked


def test_metrics_equal_scikit_learn_on_classify_predictions(manifest, tmp_path: Path) -> None:
    path, picked = manifest
    result = run("evaluate", str(path), "--format", "json", "--output", str(tmp_path / "report.json"), "--errors",
                 str(tmp_path / "errors.jsonl"), "--plot", str(tmp_path / "confusion.png"), "--threads", "1")
    assert result.returncode == 1, result.stderr  # one clip failed to decode
    assert f"failed {path.parent / 'clips' / 'broken.wav'}: " in result.stderr
    report = json.loads(result.stdout)
    assert report == json.loads((tmp_path / "report.json").read_text())
    assert {"accuracy", "balanced_accuracy", "macro_f1", "per_label", "confusion", "loss", "failed"} <= set(report)
    assert [Path(entry["path"]).name for entry in report["failed"]] == ["broken.wav"]
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    files = [str(path.parent / "clips" / clip["file"]) for clip in picked]
    classified = run("classify", "--format", "jsonl", "--top-k", "1", "--threads", "1", *files)
    assert classified.returncode == 0, classified.stderr
    predicted = [json.loads(line)["labels"][0]["label"] for line in classified.stdout.splitlines()]
    true = [clip["label"] for clip in picked]
    labels = sorted(set(true) | set(predicted))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert report["accuracy"] == pytest.approx(sk.accuracy_score(true, predicted), abs=1e-12)
        assert report["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(true, predicted), abs=1e-12)
        assert report["macro_f1"] == pytest.approx(sk.f1_score(true, predicted, average="macro", zero_division=0),
                                                   abs=1e-12)
        precision, recall, f1, support = sk.precision_recall_fscore_support(true, predicted, labels=labels,
                                                                             zero_division=0)
    assert report["confusion"] == {"labels": labels,
                                   "matrix": sk.confusion_matrix(true, predicted, labels=labels).tolist()}
    for k, label in enumerate(labels):
        assert report["per_label"][label] == pytest.approx(
            {"precision": precision[k], "recall": recall[k], "f1": f1[k], "support": support[k]}, abs=1e-12)
    assert report["count"] == len(picked)
    wrong = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text().splitlines()]
    expected = [(f, t, p) for f, t, p in zip(files, true, predicted) if t != p]
    assert [(w["path"], w["label"], w["predicted"]) for w in wrong] == expected


def test_table_on_a_terminal_format(manifest) -> None:
    path, picked = manifest
    result = run("evaluate", str(path), "--format", "table", "--threads", "1")
    assert result.returncode == 1
    assert f"{len(picked)} clips: accuracy" in result.stdout and "Confusion matrix" in result.stdout


def test_unknown_labels_and_the_label_map(tmp_path: Path) -> None:
    clips = json.loads((HELDOUT / "manifest.json").read_text())["clips"]
    for clip in [c for c in clips if c["label"] == "no"][:3]:
        (tmp_path / "data" / "nope").mkdir(parents=True, exist_ok=True)
        shutil.copy(HELDOUT / clip["file"], tmp_path / "data" / "nope" / clip["file"])
    for clip in [c for c in clips if c["label"] == "yes"][:3]:
        (tmp_path / "data" / "yes").mkdir(parents=True, exist_ok=True)
        shutil.copy(HELDOUT / clip["file"], tmp_path / "data" / "yes" / clip["file"])
    refused = run("evaluate", str(tmp_path / "data"))
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: the model does not know the data label(s) nope (its labels are: yes, no")
    assert refused.stderr.count("\n") == 1
    bad_target = run("evaluate", str(tmp_path / "data"), "--label-map", "nope=nah")
    assert bad_target.returncode == 2 and "--label-map names label(s) the model does not have: nah" in bad_target.stderr
    mapped = run("evaluate", str(tmp_path / "data"), "--label-map", "nope=no", "--format", "json", "--threads", "1")
    assert mapped.returncode == 0, mapped.stderr
    report = json.loads(mapped.stdout)
    assert report["per_label"]["no"]["support"] == 3 and report["per_label"]["yes"]["support"] == 3
    malformed = run("evaluate", str(tmp_path / "data"), "--label-map", "nope")
    assert malformed.returncode == 2 and "--label-map must be DATA_LABEL=MODEL_LABEL" in malformed.stderr


def test_plot_without_matplotlib_exits_2_with_the_install_command(manifest, tmp_path: Path) -> None:
    path, _ = manifest
    blocker = tmp_path / "blocker" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib is not installed here')\n")
    env = dict(os.environ, PYTHONPATH=str(blocker.parent))
    result = run("evaluate", str(path), "--plot", str(tmp_path / "c.png"), env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: pictures need matplotlib: pip install 'audioclf[plot]'"
    assert not (tmp_path / "c.png").exists()
