"""TensorFlow fixtures (made by TensorFlow itself) through our own models: from_pretrained(from_tf=True) and
``audioclf convert``, matched against the outputs TensorFlow computed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import audioclf
from audioclf.errors import AudioclfError, CheckpointError

TF = Path(__file__).parent / "data" / "tf"
FORMATS = {"h5": "tf_model.h5", "sharded": "tf_model.h5.index.json", "ckpt": "ckpt-1.index",
           "keras": "weights.index", "v1": "model.ckpt.index"}
FIXTURES = sorted(p.name for p in TF.iterdir() if p.is_dir())
CASES = [(name, fmt) for name in FIXTURES for fmt in FORMATS if (TF / name / fmt).is_dir()]


def tf_outputs(name):
    return np.load(TF / name / "outputs.npz")


def run_on_tf_inputs(model, name):
    out = tf_outputs(name)
    with torch.no_grad():
        return model(torch.from_numpy(out["input_values"]),
                     attention_mask=torch.from_numpy(out["attention_mask"]).long(), output_hidden_states=True)


def assert_matches_tensorflow(model, name):
    out = tf_outputs(name)
    got = run_on_tf_inputs(model, name)
    if "logits" in out and out["logits"].ndim == 2:  # a classifier (CTC fixtures carry per-frame logits)
        want = out["logits"]
        assert np.abs(got.logits.numpy() - want).max() / max(np.abs(want).max(), 1.0) <= 1e-4
    else:  # a base model: every hidden state (the head is initialised at load)
        want = out["hidden_states"]
        for index, state in enumerate(got.hidden_states):
            diff = np.abs(state.numpy() - want[index]).max() / max(np.abs(want[index]).max(), 1.0)
            assert diff <= 1e-4, f"hidden state {index}: {diff:.2e}"


@pytest.mark.parametrize("name,fmt", CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_from_pretrained_from_tf_matches_tensorflow(name, fmt):
    config = audioclf.AutoConfig.from_pretrained(TF / name / fmt / "config.json")
    model = audioclf.AutoModelForAudioClassification.from_pretrained(TF / name / fmt / FORMATS[fmt], from_tf=True,
                                                                     config=config)
    assert_matches_tensorflow(model, name)


@pytest.mark.parametrize("name,fmt", CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_convert_then_load_matches_tensorflow(name, fmt, tmp_path):
    from audioclf.convert import convert_tf_checkpoint

    source = TF / name / fmt if fmt != "v1" else TF / name / fmt / "model.ckpt"  # a directory, or a prefix
    summary = convert_tf_checkpoint(source, tmp_path / "converted")
    if "cls" not in name:
        assert {"projector.weight", "classifier.weight"} <= set(summary.absent)  # a base model has no head
    if fmt in ("ckpt", "keras"):
        assert summary.ignored  # optimizer slots and counters
    assert sorted(p.name for p in (tmp_path / "converted").iterdir()) == ["config.json", "model.safetensors"]
    model = audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path / "converted")
    assert_matches_tensorflow(model, name)


@pytest.mark.parametrize("name,fmt", [("hubert_base", "ckpt"), ("w2v2_cls_stable_wsum", "h5")])
def test_convert_cli_summary(name, fmt, tmp_path):
    output = tmp_path / "converted"
    result = subprocess.run([sys.executable, "-m", "audioclf", "convert", "--from-tf", str(TF / name / fmt),
                             "--output", str(output)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(output)
    assert "converted" in result.stderr
    if fmt == "ckpt":
        assert "ignored" in result.stderr and "projector.weight" in result.stderr
    else:
        assert "tie_last_hidden_states" in result.stderr
    assert_matches_tensorflow(audioclf.AutoModelForAudioClassification.from_pretrained(output), name)


def test_layer_weights_survive_h5(tmp_path):
    model = audioclf.AutoModelForAudioClassification.from_pretrained(
        TF / "w2v2_cls_stable_wsum" / "h5", from_tf=True)
    assert model.config.tie_last_hidden_states is True
    assert not torch.allclose(model.layer_weights, torch.ones_like(model.layer_weights) / 3)


def test_refuses_to_overwrite_and_force_replaces(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "keep.txt").write_text("x")
    source = TF / "w2v2_cls_group" / "h5"
    with pytest.raises(AudioclfError, match="already exists"):
        from audioclf.convert import convert_tf_checkpoint
        convert_tf_checkpoint(source, output)
    assert (output / "keep.txt").exists()
    result = subprocess.run([sys.executable, "-m", "audioclf", "convert", "--from-tf", str(source), "-o",
                             str(output), "--force"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not (output / "keep.txt").exists() and (output / "model.safetensors").exists()


def _no_output(tmp_path):
    return not any(p.name != "src" for p in tmp_path.iterdir())


def test_config_required_and_config_that_does_not_fit(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(TF / "w2v2_cls_group" / "h5", source)
    (source / "config.json").unlink()
    result = subprocess.run([sys.executable, "-m", "audioclf", "convert", "--from-tf", str(source), "-o",
                             str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2 and "--config" in result.stderr and "Traceback" not in result.stderr
    assert _no_output(tmp_path)
    wrong = json.loads((TF / "w2v2_cls_group" / "h5" / "config.json").read_text())
    wrong["num_hidden_layers"] = 3
    (tmp_path / "wrong.json").write_text(json.dumps(wrong))
    result = subprocess.run([sys.executable, "-m", "audioclf", "convert", "--from-tf", str(source), "-o",
                             str(tmp_path / "out"), "--config", str(tmp_path / "wrong.json")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "layers.2" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["truncate-index", "bad-magic", "missing-shard", "not-keras-h5"])
def test_bad_checkpoints_write_nothing(damage, tmp_path):
    import h5py

    source = tmp_path / "src"
    if damage == "not-keras-h5":
        shutil.copytree(TF / "w2v2_cls_group" / "h5", source)
        with h5py.File(source / "tf_model.h5", "w") as handle:
            handle["x"] = np.zeros(3)
    else:
        shutil.copytree(TF / "w2v2_cls_group" / "v1", source)
        index = source / "model.ckpt.index"
        data = index.read_bytes()
        if damage == "truncate-index":
            index.write_bytes(data[: len(data) // 2])
        elif damage == "bad-magic":
            index.write_bytes(data[:-8] + b"\x00" * 8)
        else:
            next(source.glob("*.data-*")).unlink()
    with pytest.raises(CheckpointError) as error:
        from audioclf.convert import convert_tf_checkpoint
        convert_tf_checkpoint(source if damage == "not-keras-h5" else source / "model.ckpt.index", tmp_path / "out")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_convert_needs_no_from_tf_flag(tmp_path):
    """TensorFlow is the only source format: the flag is optional (and still accepted, see above)."""
    output = tmp_path / "o"
    result = subprocess.run([sys.executable, "-m", "audioclf", "convert", str(TF / "w2v2_cls_group" / "h5"), "-o",
                             str(output)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(output)
    assert_matches_tensorflow(audioclf.AutoModelForAudioClassification.from_pretrained(output), "w2v2_cls_group")


@pytest.mark.parametrize("fmt", ["h5", "ckpt", "v1"])
def test_convert_keeps_the_trained_masked_spec_embed(fmt, tmp_path):
    """A TF checkpoint's SpecAugment vector survives conversion: the value TensorFlow stored in tf_model.h5."""
    import h5py
    from safetensors.torch import load_file

    from audioclf.convert import convert_tf_checkpoint

    with h5py.File(TF / "w2v2_cls_group" / "h5" / "tf_model.h5", "r") as handle:
        stored = []
        handle.visititems(lambda name, item: stored.append(np.asarray(item)) if name.endswith("/masked_spec_embed:0")
                          else None)
    assert len(stored) == 1
    summary = convert_tf_checkpoint(TF / "w2v2_cls_group" / fmt, tmp_path / "converted")
    assert "wav2vec2.masked_spec_embed" not in summary.absent
    converted = load_file(str(tmp_path / "converted" / "model.safetensors"))
    assert np.array_equal(converted["wav2vec2.masked_spec_embed"].numpy(), stored[0])
    model, info = audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path / "converted",
                                                                           output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert np.array_equal(model.wav2vec2.masked_spec_embed.detach().numpy(), stored[0])
    direct = audioclf.AutoModelForAudioClassification.from_pretrained(TF / "w2v2_cls_group" / fmt, from_tf=True)
    assert np.array_equal(direct.wav2vec2.masked_spec_embed.detach().numpy(), stored[0])
