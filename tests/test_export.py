"""``audioclf export --graph-format onnx`` and the export cache (keys, atomic entries, corrupt entries rebuilt)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from oracle import build_reference, save_reference, scaled_max_diff

from audioclf.engine.onnx_runner import OnnxRunner
from audioclf.export import cache


@pytest.fixture()
def assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_ASSETS_CACHE", str(tmp_path / "assets"))
    return tmp_path / "assets" / "audioclf" / "onnx"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory):
    """A tiny wav2vec2 classifier with a layer-norm conv stack whose preprocessor returns a mask."""
    directory = tmp_path_factory.mktemp("model")
    model = build_reference("wav2vec2", seed=2, feat_extract_norm="layer")
    save_reference(model, directory)
    (directory / "preprocessor_config.json").write_text(json.dumps(
        {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": 16000,
         "padding_value": 0.0, "do_normalize": True, "return_attention_mask": True}))
    return directory, model


def test_exported_graph_runs_in_onnxruntime_like_transformers(reference, tmp_path: Path) -> None:
    """What a user deploys: the written graph in a plain onnxruntime session (default options) gives
    ``transformers``' logits on a padded batch with its mask, at any batch size and length."""
    import onnxruntime
    from transformers import Wav2Vec2FeatureExtractor

    directory, model = reference
    target = tmp_path / "out" / "kws.onnx"
    done = subprocess.run([sys.executable, "-m", "audioclf", "export", "--model", str(directory), "--output",
                           str(target)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["kws.onnx", "kws.onnx.data"]  # no temporary left

    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_values", "attention_mask"]
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(directory)
    rng = np.random.default_rng(5)
    for lengths in ([4001, 3000, 2501], [9000]):
        waves = [rng.standard_normal(n).astype(np.float32) for n in lengths]
        features = extractor(waves, sampling_rate=16000, padding=True, return_tensors="np")
        (logits,) = session.run(["logits"], {"input_values": features["input_values"].astype(np.float32),
                                             "attention_mask": features["attention_mask"].astype(np.int32)})
        with torch.no_grad():
            expected = model(**extractor(waves, sampling_rate=16000, padding=True, return_tensors="pt")).logits
        assert scaled_max_diff(torch.from_numpy(logits), expected) <= 1e-4


def test_export_refuses_unknown_formats(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "audioclf", "export", "--graph-format", "tflite", "-o",
                           str(tmp_path / "m.tflite")], capture_output=True, text=True, timeout=60)
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "--graph-format" in lines[0] and "'tflite' is not one of 'onnx'" in lines[0], lines[0]
    assert not any(tmp_path.iterdir())


def test_cache_entry_reused_then_rebuilt_when_corrupt(reference, assets: Path) -> None:
    directory, _ = reference
    first = OnnxRunner(directory, threads=1)
    entry = first.graph.parent
    assert entry.parent == assets and (entry / "manifest.json").is_file()
    manifest = json.loads((entry / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.onnx", "model.onnx.data"}
    built = (entry / "model.onnx").stat().st_mtime_ns

    assert OnnxRunner(directory, threads=1).graph == first.graph  # reused, not rebuilt
    assert (entry / "model.onnx").stat().st_mtime_ns == built

    data = entry / "model.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte in the weights: same size, loads fine, wrong numbers
    data.write_bytes(bytes(raw))
    rebuilt = OnnxRunner(directory, threads=1)
    assert rebuilt.graph == first.graph
    assert cache.sha256_file(data) == manifest["files"]["model.onnx.data"]["sha256"]  # the export again

    (entry / "model.onnx").write_bytes(b"not a graph")  # unreadable: rebuilt too
    assert OnnxRunner(directory, threads=1).graph.read_bytes()[:2] != b"no"


def test_key_follows_the_weights_and_partial_entries_are_ignored(reference, assets: Path, tmp_path: Path) -> None:
    import shutil

    directory, _ = reference
    key = OnnxRunner(directory, threads=1).graph.parent.name
    (assets / f".{key}.x.partial").mkdir()  # a build that died: never read, never in the way
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    assert OnnxRunner(copy, threads=1).graph.parent.name == key  # same content, same key, wherever it lives

    from safetensors.torch import load_file, save_file

    weights = load_file(copy / "model.safetensors")
    weights["classifier.bias"] = weights["classifier.bias"] + 1.0
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    changed = OnnxRunner(copy, threads=1)
    assert changed.graph.parent.name != key
    featurizer = changed.featurizer()
    batch = featurizer.collate([featurizer.featurize(np.ones(4000, dtype=np.float32))])
    difference = changed.forward(batch).logits - OnnxRunner(directory, threads=1).forward(batch).logits
    assert np.allclose(difference, 1.0, atol=1e-5)  # the new bias, not a stale graph


def test_file_digest_of_hub_blobs_is_their_name(tmp_path: Path) -> None:
    blob = tmp_path / "blobs" / ("a" * 64)
    blob.parent.mkdir()
    blob.write_bytes(b"weights")
    link = tmp_path / "snapshots" / "c0ffee" / "model.safetensors"
    link.parent.mkdir(parents=True)
    os.symlink(blob, link)
    assert cache.file_digest(link, tmp_path / "cache") == "hub:" + "a" * 64
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"weights")
    assert cache.file_digest(plain, tmp_path / "cache") == cache.sha256_file(plain)
