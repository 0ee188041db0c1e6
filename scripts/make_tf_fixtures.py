"""Generate the TensorFlow checkpoint fixtures under tests/data/tf/.

This script needs TensorFlow and transformers 4.x (the last line with TF model classes). Neither is a
dependency of audioclf or of its test suite: run it in a throw-away virtual environment outside the repo:

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu tf-keras transformers==4.46.3 h5py
    TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python scripts/make_tf_fixtures.py [OUT_DIR]

(verified with tensorflow-cpu 2.21.0, tf-keras 2.21.0, transformers 4.46.3, h5py 3.14, numpy 2.4, Python 3.11).
OUT_DIR defaults to tests/data/tf next to this script.

For every fixture it builds a tiny TF model with random weights (large initializer range, and random biases,
norm parameters, weight-norm gains and layer weights so the outputs depend on every tensor) and writes:

    <name>/h5/tf_model.h5              Keras HDF5 weights (save_pretrained)
    <name>/h5/config.json              the model config (save_pretrained; copied into every format folder)
    <name>/ckpt/ckpt-1.index|.data-*   tf.train.Checkpoint(model=..., optimizer=...) object-based bundle,
    <name>/ckpt/checkpoint             with Adam slots (legacy optimizer for the classifiers) and the save counter
    <name>/keras/weights.index|.data-* Keras Model.save_weights to a TF checkpoint prefix (object-based)
    <name>/keras/checkpoint
    <name>/v1/model.ckpt.index|.data-* name-based bundle keyed by Keras variable names (tf.compat.v1 Saver)
    <name>/outputs.npz                 inputs, attention mask and what TensorFlow computed

plus, for w2v2_cls_group, <name>/sharded/ with tf_model-0000X-of-0000N.h5 and tf_model.h5.index.json.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    HubertConfig,
    TFHubertForCTC,
    TFHubertModel,
    TFWav2Vec2ForSequenceClassification,
    TFWav2Vec2Model,
    Wav2Vec2Config,
)

TINY = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=24,
    conv_dim=(8, 8),
    conv_kernel=(10, 3),
    conv_stride=(5, 2),
    num_conv_pos_embeddings=8,
    num_conv_pos_embedding_groups=2,
    initializer_range=0.3,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    final_dropout=0.0,
    layerdrop=0.0,
    classifier_proj_size=8,
    num_labels=3,
    vocab_size=12,
)

FIXTURES = {
    # (a) group norm, post-LN encoder, masked_spec_embed present (mask_time_prob > 0)
    "w2v2_cls_group": (
        TFWav2Vec2ForSequenceClassification,
        Wav2Vec2Config,
        dict(feat_extract_norm="group", do_stable_layer_norm=False, mask_time_prob=0.05),
    ),
    # (b) layer norm conv stack, stable-LN encoder, weighted layer sum, conv bias
    "w2v2_cls_stable_wsum": (
        TFWav2Vec2ForSequenceClassification,
        Wav2Vec2Config,
        dict(
            feat_extract_norm="layer",
            do_stable_layer_norm=True,
            use_weighted_layer_sum=True,
            conv_bias=True,
            mask_time_prob=0.0,
        ),
    ),
    # (c) HuBERT base model
    "hubert_base": (TFHubertModel, HubertConfig, dict(mask_time_prob=0.0)),
    # (d) Wav2Vec2 base model, stable LN
    "w2v2_base_stable": (
        TFWav2Vec2Model,
        Wav2Vec2Config,
        dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, mask_time_prob=0.0),
    ),
    # (e) HuBERT CTC model: its lm_head must be ignored when loading a base/classifier model
    "hubert_ctc": (TFHubertForCTC, HubertConfig, dict(mask_time_prob=0.0)),
}

LENGTHS = (800, 613, 450)
SEED = 1234


def _inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    n = max(LENGTHS)
    values = np.zeros((len(LENGTHS), n), dtype=np.float32)
    mask = np.zeros((len(LENGTHS), n), dtype=np.int32)
    for i, length in enumerate(LENGTHS):
        values[i, :length] = rng.standard_normal(length).astype(np.float32)
        mask[i, :length] = 1
    return values, mask


def _randomise(model: tf_keras.Model, seed: int) -> None:
    """Give every variable a random value (kernels keep their N(0, 0.3) init)."""
    rng = np.random.default_rng(seed)
    for var in model.weights:
        name = var.name.split(":")[0]
        leaf = name.rsplit("/", 1)[-1]
        shape = tuple(var.shape)
        if leaf in ("gamma",):
            value = 1.0 + 0.3 * rng.standard_normal(shape)
        elif leaf in ("beta", "bias"):
            value = 0.2 * rng.standard_normal(shape)
        elif leaf == "weight_g":
            value = 0.5 + rng.random(shape)
        elif leaf == "layer_weights":
            value = rng.standard_normal(shape)
        elif leaf == "masked_spec_embed":
            value = rng.random(shape)
        else:
            continue
        var.assign(value.astype(var.dtype.as_numpy_dtype))


def _save_name_based(model: tf_keras.Model, prefix: str) -> None:
    """A TF1-style name-based bundle: keys are the Keras variable names without ':0'."""
    var_list = {v.name.split(":")[0]: v for v in model.weights}
    saver = tf.compat.v1.train.Saver(var_list=var_list)
    saver.save(sess=None, save_path=prefix, write_meta_graph=False)


def build(name: str, out: Path) -> None:
    tf_cls, cfg_cls, extra = FIXTURES[name]
    tf.random.set_seed(SEED)
    np.random.seed(SEED)
    config = cfg_cls(**TINY, **extra)
    model = tf_cls(config)
    values, mask = _inputs()
    model(values, attention_mask=mask, training=False)  # build
    _randomise(model, SEED + sum(map(ord, name)))

    root = out / name
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)

    # 1. save_pretrained -> tf_model.h5 + config.json
    model.save_pretrained(str(root / "h5"))

    # 2. tf.train.Checkpoint with an optimizer that has slots (a zero-gradient Adam step leaves weights unchanged)
    # classifiers: the legacy optimizer (slots saved under .OPTIMIZER_SLOT/); base models: the current one
    if tf_cls is TFWav2Vec2ForSequenceClassification:
        opt = tf_keras.optimizers.legacy.Adam(learning_rate=1e-3)
    else:
        opt = tf_keras.optimizers.Adam(learning_rate=1e-3)
    opt.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_weights])
    ckpt = tf.train.Checkpoint(model=model, optimizer=opt)
    ckpt.save(str(root / "ckpt" / "ckpt"))

    # 3. Keras save_weights to a TF-format checkpoint prefix
    model.save_weights(str(root / "keras" / "weights"), save_format="tf")

    # 4. name-based bundle
    _save_name_based(model, str(root / "v1" / "model.ckpt"))

    # 5. a sharded h5 for one fixture
    if name == "w2v2_cls_group":
        model.save_pretrained(str(root / "sharded"), max_shard_size="12KB")
        assert (root / "sharded" / "tf_model.h5.index.json").exists(), "sharding did not happen"

    for sub in ("ckpt", "keras", "v1"):
        shutil.copy(root / "h5" / "config.json", root / sub / "config.json")

    # outputs TensorFlow computes on a padded batch with an attention mask
    res = {"input_values": values, "attention_mask": mask}
    if tf_cls is TFWav2Vec2ForSequenceClassification:
        o = model(values, attention_mask=mask, training=False)
        res["logits"] = o.logits.numpy()
    else:
        base = model if tf_cls in (TFWav2Vec2Model, TFHubertModel) else model.hubert
        o = base(values, attention_mask=mask, output_hidden_states=True, training=False)
        res["last_hidden_state"] = o.last_hidden_state.numpy()
        res["hidden_states"] = np.stack([h.numpy() for h in o.hidden_states])
        if tf_cls is TFHubertForCTC:
            res["logits"] = model(values, attention_mask=mask, training=False).logits.numpy()
    np.savez(root / "outputs.npz", **res)
    print(f"{name}: {tf_cls.__name__}, {len(model.weights)} variables")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "tests" / "data" / "tf"
    out.mkdir(parents=True, exist_ok=True)
    for name in FIXTURES:
        build(name, out)
    (out / "VERSIONS.json").write_text(
        json.dumps(
            {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__, "transformers": transformers.__version__},
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
