"""TensorFlow checkpoints written by TensorFlow (tests/data/tf, see scripts/make_tf_fixtures.py) -> PyTorch.

Every fixture in every format is read by our readers, mapped to PyTorch keys, loaded into the ``transformers``
PyTorch class and run; the outputs must match what TensorFlow computed on the same padded batch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from transformers import (
    AutoConfig,
    HubertForSequenceClassification,
    HubertModel,
    Wav2Vec2ForSequenceClassification,
    Wav2Vec2Model,
)

from audioclf.checkpoints.tf.bundle import read_bundle_variables
from audioclf.checkpoints.tf.keras_h5 import read_keras_h5, read_sharded_keras_h5
from audioclf.checkpoints.tf.mapping import (
    check_expected_keys,
    load_tf_state_dict,
    map_tf_variables,
    tf_config_overrides,
)
from audioclf.errors import TFCheckpointError

DATA = Path(__file__).parent / "data" / "tf"

FIXTURES = {
    "w2v2_cls_group": Wav2Vec2ForSequenceClassification,
    "w2v2_cls_stable_wsum": Wav2Vec2ForSequenceClassification,
    "hubert_base": HubertModel,
    "w2v2_base_stable": Wav2Vec2Model,
    "hubert_ctc": HubertModel,
}
FORMATS = ("h5", "sharded", "ckpt", "keras", "v1")
CASES = [(name, fmt) for name in FIXTURES for fmt in FORMATS if (DATA / name / fmt).is_dir()]
TOL = 1e-4

# SOURCE spellings per format folder: the folder itself, plus explicit file/prefix forms
SOURCE_FORMS = {
    "h5": ["", "tf_model.h5"],
    "sharded": ["", "tf_model.h5.index.json"],
    "ckpt": ["", "ckpt-1.index", "ckpt-1", "ckpt-1.data-00000-of-00001"],
    "keras": ["", "weights.index", "weights"],
    "v1": ["", "model.ckpt.index", "model.ckpt"],
}
EXPECTED_FORMAT = {"h5": "h5", "sharded": "sharded_h5", "ckpt": "bundle", "keras": "bundle", "v1": "bundle_names"}


def _config(name: str, fmt: str = "h5"):
    cfg = AutoConfig.from_pretrained(DATA / name / fmt)
    cfg_dict = json.loads((DATA / name / fmt / "config.json").read_text())
    for key, value in tf_config_overrides(cfg_dict).items():
        setattr(cfg, key, value)
    return cfg


def _build(name: str, fmt: str = "h5", cls=None, **overrides):
    cfg = _config(name, fmt)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    torch.manual_seed(0)
    return (cls or FIXTURES[name])(cfg).eval()


def _rel_err(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


def _run(model, name: str):
    out = np.load(DATA / name / "outputs.npz")
    with torch.no_grad():
        o = model(
            torch.from_numpy(out["input_values"]),
            attention_mask=torch.from_numpy(out["attention_mask"]).long(),
            output_hidden_states=True,
        )
    return o, out


@pytest.fixture(scope="module")
def loaded():
    cache: dict[tuple[str, str], object] = {}

    def get(name: str, fmt: str):
        if (name, fmt) not in cache:
            cache[name, fmt] = load_tf_state_dict(DATA / name / fmt)
        return cache[name, fmt]

    return get


@pytest.mark.parametrize("name,fmt", CASES)
def test_outputs_match_tensorflow(loaded, name, fmt):
    result = loaded(name, fmt)
    assert result.source_format == EXPECTED_FORMAT[fmt]
    assert result.base_prefix == ("hubert" if name.startswith("hubert") else "wav2vec2")
    model = _build(name, fmt)  # tf_config_overrides selects the 4.x rule for stable models
    report = check_expected_keys(result, model.state_dict())
    assert report.missing == []
    load = model.load_state_dict(report.state_dict, strict=True)
    assert not load.missing_keys and not load.unexpected_keys
    o, want = _run(model, name)
    if isinstance(model, Wav2Vec2ForSequenceClassification):
        err = _rel_err(o.logits.numpy(), want["logits"])
        assert err < TOL, err
    else:
        err = _rel_err(o.last_hidden_state.numpy(), want["last_hidden_state"])
        assert err < TOL, err
        hs = np.stack([h.numpy() for h in o.hidden_states])
        err = _rel_err(hs, want["hidden_states"])
        assert err < TOL, err


@pytest.mark.parametrize("name", list(FIXTURES))
def test_all_formats_give_identical_tensors(loaded, name):
    results = {fmt: loaded(name, fmt) for n, fmt in CASES if n == name}
    ref = results["h5"].state_dict
    for fmt, result in results.items():
        assert set(result.state_dict) == set(ref), fmt
        for key, value in ref.items():
            assert result.state_dict[key].dtype == torch.float32
            assert torch.equal(result.state_dict[key], value), (fmt, key)


@pytest.mark.parametrize("name,fmt", [(n, f) for n, f in CASES if f in ("h5", "ckpt", "v1")])
def test_source_forms(name, fmt):
    for rel in SOURCE_FORMS[fmt]:
        result = load_tf_state_dict(DATA / name / fmt / rel if rel else DATA / name / fmt)
        assert result.source_format == EXPECTED_FORMAT[fmt]
        assert len(result.state_dict) > 40


def test_object_paths_without_object_graph_map_identically(loaded):
    for name in FIXTURES:
        for fmt in ("ckpt", "keras"):
            bv = read_bundle_variables(DATA / name / fmt, use_object_graph=False)
            assert bv.kind == "object_path"
            result = map_tf_variables(bv.variables, object_path=True, ignored=bv.ignored)
            ref = loaded(name, "h5").state_dict
            assert set(result.state_dict) == set(ref)
            assert all(torch.equal(result.state_dict[k], v) for k, v in ref.items())


def test_ignored_variables(loaded):
    ckpt = loaded("w2v2_cls_group", "ckpt")
    assert "save_counter/.ATTRIBUTES/VARIABLE_VALUE" in ckpt.ignored
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" in ckpt.ignored
    assert sum("/.OPTIMIZER_SLOT/" in k for k in ckpt.ignored) == 2 * len(ckpt.state_dict)  # legacy Adam m, v
    assert "optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE" in ckpt.ignored
    assert not ckpt.unexpected
    base = loaded("hubert_base", "ckpt")  # current Keras optimizer: slots tracked as optimizer/_variables/N
    assert sum(k.startswith("optimizer/_variables/") for k in base.ignored) >= 2 * len(base.state_dict)
    assert not base.unexpected
    for fmt in ("h5", "ckpt", "keras", "v1"):
        ctc = loaded("hubert_ctc", fmt)
        assert sorted(k.rsplit("/", 1)[-1] for k in ctc.ignored if "lm_head" in k) == ["bias", "kernel"], fmt
        assert not any(k.startswith("lm_head") for k in ctc.state_dict)
        assert any(n.startswith("ignored lm_head") for n in ctc.notes)


def test_layer_weights_are_read_from_top_level_group(loaded):
    result = loaded("w2v2_cls_stable_wsum", "h5")
    assert result.state_dict["layer_weights"].shape == (3,)
    assert not torch.allclose(result.state_dict["layer_weights"], torch.ones(3))


def test_stable_weighted_sum_needs_the_4x_rule(loaded):
    """Without tie_last_hidden_states the 5.x rule sums the pre-LayerNorm output: a clearly different result."""
    assert tf_config_overrides({"do_stable_layer_norm": True, "use_weighted_layer_sum": True}) == {
        "tie_last_hidden_states": True
    }
    assert tf_config_overrides({"do_stable_layer_norm": False, "use_weighted_layer_sum": True}) == {}
    # the last hidden state of every stable model follows the 4.x rule too (it changes the logits only with the sum)
    assert tf_config_overrides({"do_stable_layer_norm": True, "use_weighted_layer_sum": False}) == {
        "tie_last_hidden_states": True
    }
    result = loaded("w2v2_cls_stable_wsum", "h5")
    assert result.config_overrides == {"tie_last_hidden_states": True}
    model = _build("w2v2_cls_stable_wsum", tie_last_hidden_states=False)
    model.load_state_dict(check_expected_keys(result, model.state_dict()).state_dict)
    o, want = _run(model, "w2v2_cls_stable_wsum")
    assert _rel_err(o.logits.numpy(), want["logits"]) > 100 * TOL


def test_missing_head_is_initialised_at_load(loaded):
    result = loaded("hubert_base", "h5")
    model = _build("hubert_base", cls=HubertForSequenceClassification, use_weighted_layer_sum=True)
    report = check_expected_keys(result, model.state_dict())
    assert report.missing == sorted(
        ["classifier.bias", "classifier.weight", "layer_weights", "projector.bias", "projector.weight"]
    )
    assert all("initialised at load" in note for note in report.notes) and len(report.notes) == 5
    load = model.load_state_dict(report.state_dict, strict=False)
    assert sorted(load.missing_keys) == report.missing and not load.unexpected_keys
    # a base-model load of a classifier checkpoint leaves the head weights unexpected
    result = loaded("w2v2_cls_group", "h5")
    base = _build("w2v2_cls_group", cls=Wav2Vec2Model)
    report = check_expected_keys(result, base.state_dict())
    assert report.missing == [] and set(report.unexpected) == {
        "projector.weight", "projector.bias", "classifier.weight", "classifier.bias"
    }  # fmt: skip


def test_missing_encoder_weight_is_an_error(loaded):
    result = loaded("w2v2_cls_group", "keras")
    key = "wav2vec2.encoder.layers.1.feed_forward.output_dense.weight"
    state = {k: v for k, v in result.state_dict.items() if k != key}
    trimmed = type(result)(state_dict=state, ignored=[], unexpected=[], base_prefix="wav2vec2")
    with pytest.raises(TFCheckpointError, match=r"no weight for wav2vec2\.encoder\.layers\.1\.feed_forward"):
        check_expected_keys(trimmed, _build("w2v2_cls_group").state_dict())


def test_masked_spec_embed_may_be_absent(loaded):
    result = loaded("w2v2_cls_group", "h5")
    state = {k: v for k, v in result.state_dict.items() if k != "wav2vec2.masked_spec_embed"}
    trimmed = type(result)(state_dict=state, ignored=[], unexpected=[], base_prefix="wav2vec2")
    report = check_expected_keys(trimmed, _build("w2v2_cls_group").state_dict())
    assert report.missing == ["wav2vec2.masked_spec_embed"]
    assert "unused at inference" in report.notes[0]


def test_wrong_architecture_or_shape(loaded):
    hubert = loaded("hubert_base", "h5")
    with pytest.raises(TFCheckpointError, match="'hubert' model but the model expects 'wav2vec2'"):
        check_expected_keys(hubert, _build("w2v2_cls_group").state_dict())
    result = loaded("w2v2_cls_group", "h5")
    model = _build("w2v2_cls_group", num_labels=5)
    with pytest.raises(TFCheckpointError, match=r"classifier\.weight has shape \[3, 8\], the model expects \[5, 8\]"):
        check_expected_keys(result, model.state_dict())


# ---------------------------------------------------------------------------------------------------------------
# HDF5 specifics and errors


def test_sharded_h5_matches_single_file():
    single = read_keras_h5(DATA / "w2v2_cls_group" / "h5" / "tf_model.h5")
    sharded = read_sharded_keras_h5(DATA / "w2v2_cls_group" / "sharded" / "tf_model.h5.index.json")
    assert len(list((DATA / "w2v2_cls_group" / "sharded").glob("tf_model-*.h5"))) >= 2
    strip = {k.split("/", 1)[1]: v for k, v in single.items()}
    assert {k.split("/", 1)[1]: v.shape for k, v in sharded.items()} == {k: v.shape for k, v in strip.items()}
    for key, value in sharded.items():
        np.testing.assert_array_equal(value, strip[key.split("/", 1)[1]])


def test_chunked_keras_attributes(tmp_path):
    src = DATA / "w2v2_cls_group" / "h5" / "tf_model.h5"
    dst = tmp_path / "tf_model.h5"
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        names = f.attrs["layer_names"]
        del f.attrs["layer_names"]
        f.attrs["layer_names0"] = names[:1]
        f.attrs["layer_names1"] = names[1:]
        weights = f["wav2vec2"].attrs["weight_names"]
        del f["wav2vec2"].attrs["weight_names"]
        f["wav2vec2"].attrs["weight_names0"] = weights[:10]
        f["wav2vec2"].attrs["weight_names1"] = weights[10:]
    got = read_keras_h5(dst)
    ref = read_keras_h5(src)
    assert set(got) == set(ref)


def test_non_keras_h5_is_rejected(tmp_path):
    path = tmp_path / "tf_model.h5"
    with h5py.File(path, "w") as f:
        f["data"] = np.arange(3)
    with pytest.raises(TFCheckpointError, match="HDF5 file but not Keras weights"):
        load_tf_state_dict(path)
    with pytest.raises(TFCheckpointError, match="HDF5 file but not Keras weights"):
        load_tf_state_dict(tmp_path)


def test_broken_h5_files(tmp_path):
    fake = tmp_path / "model.h5"
    fake.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(TFCheckpointError, match="not an HDF5 file"):
        load_tf_state_dict(fake)
    raw = (DATA / "w2v2_cls_group" / "h5" / "tf_model.h5").read_bytes()
    cut = tmp_path / "cut" / "tf_model.h5"
    cut.parent.mkdir()
    cut.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(TFCheckpointError):
        load_tf_state_dict(cut)
    listed = tmp_path / "listed.h5"
    with h5py.File(listed, "w") as f:
        f.attrs["layer_names"] = [b"wav2vec2"]
        g = f.create_group("wav2vec2")
        g.attrs["weight_names"] = [b"m/wav2vec2/encoder/layer_norm/gamma:0"]
    with pytest.raises(TFCheckpointError, match="listed but not stored"):
        load_tf_state_dict(listed)


def test_broken_sharded_index(tmp_path):
    src = DATA / "w2v2_cls_group" / "sharded"
    dst = tmp_path / "sharded"
    shutil.copytree(src, dst)
    shard = sorted(dst.glob("tf_model-*.h5"))[0]
    shard.unlink()
    with pytest.raises(TFCheckpointError, match=f"{shard.name} does not exist"):
        load_tf_state_dict(dst)
    (dst / "tf_model.h5.index.json").write_text("{not json")
    with pytest.raises(TFCheckpointError, match="invalid JSON"):
        load_tf_state_dict(dst)
    (dst / "tf_model.h5.index.json").write_text('{"weight_map": {"a": "../x.h5"}}')
    with pytest.raises(TFCheckpointError, match="not a plain file name"):
        load_tf_state_dict(dst)


def test_unrecognised_sources(tmp_path):
    with pytest.raises(TFCheckpointError, match="no TensorFlow weights"):
        load_tf_state_dict(tmp_path)
    with pytest.raises(TFCheckpointError, match="no TensorFlow checkpoint"):
        load_tf_state_dict(tmp_path / "missing")
    with pytest.raises(TFCheckpointError, match="tf_model.h5 does not exist"):
        load_tf_state_dict(tmp_path / "tf_model.h5")
    # a Keras file of some other model: no wav2vec2/hubert layer
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        g = f.create_group("dense")
        g.attrs["weight_names"] = [b"sequential/dense/kernel:0"]
        g["sequential/dense/kernel:0"] = np.ones((2, 2), np.float32)
    with pytest.raises(TFCheckpointError, match="no Wav2Vec2 or HuBERT weights"):
        load_tf_state_dict(other)
