"""``audioclf train`` end to end, as a user runs it: words the bundled model does not know, synthesized with
espeak-ng (``scripts/synth_keywords.py --words``), training voices apart from held-out voices.

One session-scoped data set serves every test: a fine-tuning run through the CLI (bad files among the data), its
evaluation on the held-out voices, its checkpoint loaded by transformers with the same logits and used by
``classify``; and a run killed with SIGKILL after an epoch's checkpoint, resumed, ending with the weights of an
uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
WORDS = ["bird", "cat", "dog", "fish"]
#: a tiny wav2vec2 trained from scratch with every regulariser on (dropouts, LayerDrop, SpecAugment)
TINY_NOISY = {"model_type": "wav2vec2", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 48, "conv_dim": [16] * 7, "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
              "conv_stride": [5, 2, 2, 2, 2, 2, 2], "num_conv_pos_embeddings": 8,
              "num_conv_pos_embedding_groups": 4, "classifier_proj_size": 16, "hidden_dropout": 0.1,
              "attention_dropout": 0.1, "activation_dropout": 0.1, "feat_proj_dropout": 0.1, "layerdrop": 0.2,
              "mask_time_prob": 0.2, "mask_time_length": 2, "mask_feature_prob": 0.1, "mask_feature_length": 2}


def ensure_espeak() -> None:
    """espeak-ng on PATH, installed with apt-get when missing; the test fails (never skips) if that fails."""
    if shutil.which("espeak-ng"):
        return
    install = "apt-get install -y -qq espeak-ng"
    done = subprocess.run(f"{install} || (apt-get update -qq && {install})", shell=True, capture_output=True,
                          text=True)
    assert shutil.which("espeak-ng"), f"espeak-ng is needed and could not be installed: {done.stderr[-2000:]}"


@pytest.fixture(scope="session")
def words(tmp_path_factory) -> Path:
    """``train/<word>/*.wav`` (30 clips per word, training voices) and ``heldout/<word>/*.wav`` (8 per word,
    held-out voices)."""
    ensure_espeak()
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from synth_keywords import write_folders
    finally:
        sys.path.remove(str(REPO / "scripts"))
    root = tmp_path_factory.mktemp("words")
    write_folders(str(root), WORDS, per_class_train=30, per_class_test=8, seed=0, jobs=2)
    return root


def audioclf(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audioclf", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def trained(words: Path, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The bundled model fine-tuned on the words through the CLI, with three bad files among the data."""
    data = tmp_path_factory.mktemp("data")
    shutil.copytree(words / "train", data / "train")
    (data / "train" / "cat" / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    import soundfile as sf

    sf.write(data / "train" / "dog" / "short.wav", np.zeros(80, np.float32), 16000)  # 5 ms: shorter than one frame
    sf.write(data / "train" / "fish" / "silent.flac", np.zeros((0, 1), np.float32), 16000)
    output = tmp_path_factory.mktemp("runs") / "words"
    result = audioclf("train", str(data / "train"), "--output", str(output), "--epochs", "6", "--batch-size", "16",
                      "--threads", "1", "--seed", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    return output, result


def test_training_output_and_bad_files(trained) -> None:
    output, result = trained
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "training_report.json",
            "training_curves.png", "confusion_matrix.png"} <= {p.name for p in output.iterdir()}
    assert not (output / "checkpoints").exists()  # removed after success
    for name in ("corrupt.wav", "short.wav", "silent.flac"):
        assert f"{name}: " in result.stderr, name  # named on stderr
    assert "new head: classifier 128 → 4 labels" in result.stderr
    report = json.loads((output / "training_report.json").read_text())
    assert sorted(Path(entry["path"]).name for entry in report["data"]["skipped"]) == [
        "corrupt.wav", "short.wav", "silent.flac"]
    reasons = {Path(entry["path"]).name: entry["reason"] for entry in report["data"]["skipped"]}
    assert reasons["short.wav"].startswith("too short") and reasons["silent.flac"].startswith("empty")
    assert report["labels"] == WORDS
    assert report["data"]["train"]["clips"] + report["data"]["validation"]["clips"] == 4 * 30
    assert all(count >= 2 for count in report["data"]["validation"]["per_label"].values())  # stratified
    assert len(report["epochs"]) == 6 and report["kept_epoch"] in range(1, 7)
    assert report["start"]["frozen"]["hits"] > 0  # the frozen conv encoder's outputs came from the cache
    assert report["validation"]["accuracy"] == max(row["val_accuracy"] for row in report["epochs"])
    config = json.loads((output / "config.json").read_text())
    assert config["architectures"] == ["Wav2Vec2ForSequenceClassification"]
    assert config["problem_type"] == "single_label_classification"
    assert config["id2label"] == {str(k): word for k, word in enumerate(WORDS)}
    assert config["label2id"] == {word: k for k, word in enumerate(WORDS)}
    bundled = REPO / "audioclf" / "assets" / "default-model" / "preprocessor_config.json"
    assert (output / "preprocessor_config.json").read_text() == bundled.read_text()


def test_heldout_voices_and_classify(trained, words: Path) -> None:
    output, _ = trained
    report_path = output.parent / "heldout.json"
    result = audioclf("evaluate", str(words / "heldout"), "--model", str(output), "--format", "json", "--output",
                      str(report_path), "--threads", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report == json.loads(report_path.read_text())
    assert report["count"] == 4 * 8
    assert report["accuracy"] >= 0.6, report  # chance is 0.25; voices never heard in training
    clip = sorted((words / "heldout" / "dog").iterdir())[0]
    classified = audioclf("classify", "--model", str(output), "--format", "jsonl", "--top-k", "0", str(clip))
    assert classified.returncode == 0, classified.stderr
    record = json.loads(classified.stdout)
    assert sorted(entry["label"] for entry in record["labels"]) == WORDS


def test_transformers_loads_the_checkpoint_with_the_same_logits(trained, words: Path) -> None:
    from transformers import AutoFeatureExtractor as ReferenceExtractor
    from transformers import AutoModelForAudioClassification as Reference

    import audioclf

    output, _ = trained
    reference, info = Reference.from_pretrained(output, output_loading_info=True)
    assert not info["missing_keys"], info
    assert not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert type(reference).__name__ == "Wav2Vec2ForSequenceClassification"
    assert reference.config.id2label == dict(enumerate(WORDS))
    ours = audioclf.AutoModelForAudioClassification.from_pretrained(output)
    import soundfile as sf

    clips = [sf.read(path, dtype="float32")[0] for path in sorted((words / "heldout" / "cat").iterdir())[:3]]
    inputs = ReferenceExtractor.from_pretrained(output)(clips, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        expected = reference.eval()(**inputs).logits
        got = ours(**inputs).logits
    assert float((got - expected).abs().max()) <= 1e-4 * max(1.0, float(expected.abs().max()))


def test_resume_after_kill_9_gives_the_same_weights(words: Path, tmp_path: Path) -> None:
    """A tiny model from scratch with every regulariser on, frozen conv encoder (cached), augmentation and random
    crops: killed with SIGKILL once epoch 2's checkpoint is written, resumed with --resume, it ends with the
    weights of an uninterrupted run of the same seed and threads."""
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_NOISY))
    arguments = [str(words / "train"), "--config", str(config), "--freeze-feature-encoder", "--epochs", "4",
                 "--batch-size", "16", "--max-seconds", "0.7", "--threads", "1", "--seed", "11", "--quiet"]
    whole = audioclf("train", *arguments, "--output", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr[-3000:]

    killed_output = tmp_path / "killed"
    last = killed_output / "checkpoints" / "last.pt"
    process = subprocess.Popen([sys.executable, "-m", "audioclf", "train", *arguments, "--output",
                                str(killed_output)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    epochs_done = 0
    try:
        while epochs_done < 2:
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint of epoch 2 in time"
            if last.is_file():
                epochs_done = torch.load(last, weights_only=True)["state"]["epochs_done"]
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (killed_output / "model.safetensors").exists()

    refused = audioclf("train", *arguments, "--output", str(killed_output))
    assert refused.returncode == 2 and "--resume" in refused.stderr  # never overwritten by accident
    changed = audioclf("train", *arguments, "--output", str(killed_output), "--resume", "--seed", "12")
    assert changed.returncode == 2 and "seed 11 (now 12)" in changed.stderr, changed.stderr
    resumed = audioclf("train", *arguments, "--output", str(killed_output), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    from safetensors.torch import load_file

    expected = load_file(tmp_path / "whole" / "model.safetensors")
    got = load_file(killed_output / "model.safetensors")
    assert expected.keys() == got.keys()
    worst = max(float((expected[key] - got[key]).abs().max()) for key in expected)
    assert worst <= 1e-6, worst
    reports = [json.loads((d / "training_report.json").read_text()) for d in (tmp_path / "whole", killed_output)]
    assert [r["val_accuracy"] for r in reports[0]["epochs"]] == [r["val_accuracy"] for r in reports[1]["epochs"]]
