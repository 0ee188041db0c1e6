"""WavLM, data2vec-audio, wav2vec2-conformer and wav2vec2-BERT pieces and rules not covered by the shared parity
suites: WavLM's distance buckets, config checks, initialisation of what a checkpoint lacks, the w2v-BERT featurizer
through the Auto API, name patterns, and a Hub download used offline."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import audioclf
from audioclf.config import ModelConfig
from audioclf.errors import ConfigError
from oracle import build_reference, save_reference

try:
    from tests.hubserver import hub, hub_env  # noqa: F401
except ImportError:  # tests/ is not a package
    from hubserver import hub, hub_env  # noqa: F401

from test_w2v_family_classify import SEAMLESS_PREPROCESSOR

AUDIO_CLIP = SEAMLESS_PREPROCESSOR.parents[1] / "audio" / "speechcommands_yes_1000ms_16k_mono.wav"


@pytest.mark.parametrize("num_buckets,max_distance", [(320, 800), (16, 40), (12, 20), (4, 2)])
def test_wavlm_buckets_equal_transformers(num_buckets, max_distance):
    from transformers.models.wavlm.modeling_wavlm import WavLMAttention

    from audioclf.models.wavlm import relative_position_buckets

    reference = WavLMAttention(8, 2, num_buckets=num_buckets, max_distance=max_distance)
    length = 1200
    positions = torch.arange(length)
    expected = reference._relative_positions_bucket(positions[None, :] - positions[:, None])
    got = relative_position_buckets(length, num_buckets, max_distance)
    assert torch.equal(got, expected)
    assert got.min() == 0 and got.max() == num_buckets - 1  # every bucket range is reached, the caps included


@pytest.mark.parametrize("model_type,fields,needle", [
    ("wav2vec2-bert", dict(add_adapter=True), "add_adapter"),
    ("wav2vec2-conformer", dict(conv_depthwise_kernel_size=30), "must be odd"),
    ("wav2vec2-bert", dict(conv_depthwise_kernel_size=4), "must be odd"),
    ("wav2vec2-conformer", dict(position_embeddings_type="relative_key"), "position_embeddings_type"),
    ("wav2vec2-bert", dict(position_embeddings_type="absolute"), "position_embeddings_type"),
    ("wavlm", dict(num_buckets=320, max_bucket_distance=80), "max_bucket_distance"),
    ("wavlm", dict(num_buckets=2), "num_buckets"),
    ("data2vec-audio", dict(num_conv_pos_embeddings=0), "num_conv_pos_embeddings"),
    ("wav2vec2-bert", dict(feature_projection_input_dim=10**6), "feature_projection_input_dim"),
])
def test_unusable_configs_are_one_line_errors(model_type, fields, needle):
    with pytest.raises(ConfigError, match=needle) as error:
        ModelConfig(model_type, **fields)
    assert "\n" not in str(error.value)


def test_conv_fields_are_not_part_of_wav2vec2_bert():
    config = ModelConfig("wav2vec2-bert")
    assert "conv_dim" not in ModelConfig.fields("wav2vec2-bert") and not hasattr(config, "num_feat_extract_layers")
    assert config.classifier_proj_size == 768 and config.position_embeddings_type == "relative_key"


@pytest.mark.parametrize("model_type", ["data2vec-audio", "wavlm"])
def test_description_names_the_conv_stack_the_reference_builds(model_type, tmp_path):
    """data2vec-audio has no feat_extract_norm field (LayerNorm after every conv): the description takes the conv
    count and norm from the built model, equal to where the reference puts its conv LayerNorms / GroupNorm."""
    from audioclf.describe import describe_model

    reference = build_reference(model_type)
    reference.config.save_pretrained(tmp_path)
    keys = list(reference.state_dict())
    layers = {key.split(".")[3] for key in keys if ".feature_extractor.conv_layers." in key}
    normed = {key.split(".")[3] for key in keys if ".feature_extractor.conv_layers." in key and ".layer_norm." in key}
    norm = "layer" if normed == layers else "group"
    facts = describe_model(tmp_path)
    assert (facts.conv_layers, facts.feat_extract_norm) == (len(layers), norm)
    assert facts.front_end == f"{len(layers)} conv layers ({norm} norm)"


@pytest.mark.parametrize("model_type,overrides,dropped", [
    ("wavlm", {}, "wavlm.encoder.layers.1.attention.gru_rel_pos_const"),
    ("wav2vec2-conformer", dict(position_embeddings_type="rotary"), "wav2vec2_conformer.encoder.embed_positions.inv_freq"),
    ("wav2vec2-conformer", {}, "wav2vec2_conformer.encoder.layers.0.self_attn.pos_bias_u"),
])
def test_tensors_a_checkpoint_lacks_get_their_initialisation(model_type, overrides, dropped, tmp_path):
    """Built on the meta device, the model initialises what the checkpoint lacks as the reference initialises it:
    gates at 1, rotary frequencies from the config, position biases at random (Xavier)."""
    reference = build_reference(model_type, **overrides)
    reference.config.save_pretrained(tmp_path)
    state = {key: value for key, value in reference.state_dict().items() if key != dropped}
    torch.save(state, tmp_path / "pytorch_model.bin")
    model, info = audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [dropped]
    value = model.state_dict()[dropped]
    if dropped.endswith("gru_rel_pos_const"):
        assert torch.equal(value, torch.ones_like(value))
    elif dropped.endswith("inv_freq"):
        head_dim = reference.config.hidden_size // reference.config.num_attention_heads
        assert torch.equal(value, 1.0 / 10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    else:
        assert torch.isfinite(value).all() and value.abs().max() > 0 and value.abs().max() <= 1.0


def test_auto_feature_extractor_is_the_seamless_featurizer(tmp_path):
    import soundfile as sf
    from transformers import SeamlessM4TFeatureExtractor as Reference

    from audioclf.audio.spectral_features import SeamlessM4TFeatureExtractor

    ours = audioclf.AutoFeatureExtractor.from_pretrained(SEAMLESS_PREPROCESSOR)
    assert isinstance(ours, SeamlessM4TFeatureExtractor) and ours.model_input_name == "input_features"
    reference = Reference.from_pretrained(SEAMLESS_PREPROCESSOR)
    wave, rate = sf.read(AUDIO_CLIP, dtype="float32")
    waves = [wave, wave[:9001]]
    expected = reference(waves, sampling_rate=rate, padding=True, return_tensors="np")
    got = ours(waves, sampling_rate=rate, padding=True, return_tensors="np")
    np.testing.assert_allclose(got["input_features"], expected["input_features"], atol=1e-4)
    assert np.array_equal(got["attention_mask"], expected["attention_mask"])
    overridden = audioclf.AutoFeatureExtractor.from_pretrained(SEAMLESS_PREPROCESSOR, stride=1)
    assert overridden.config.stride == 1 and overridden.config.num_mel_bins == 80


@pytest.mark.parametrize("name,model_type", [
    ("facebook/w2v-bert-2.0", "wav2vec2-bert"), ("microsoft/wavlm-base-plus-sv", "wavlm"),
    ("facebook/data2vec-audio-base-960h", "data2vec-audio"),
    ("facebook/wav2vec2-conformer-rope-large-960h-ft", "wav2vec2-conformer"), ("facebook/wav2vec2-base", "wav2vec2"),
])
def test_names_without_model_type_are_recognised(name, model_type, tmp_path):
    reference = build_reference(model_type)
    directory = save_reference(reference, tmp_path / name.replace("/", "__"))
    config = json.loads((directory / "config.json").read_text())
    del config["model_type"]
    (directory / "config.json").write_text(json.dumps(config))
    assert audioclf.AutoConfig.from_pretrained(directory).model_type == model_type


def test_wav2vec2_bert_from_the_hub_downloads_inspects_and_classifies_offline(hub, hub_env, tmp_path):
    reference = build_reference("wav2vec2-bert", feature_projection_input_dim=160)
    directory = save_reference(reference, tmp_path / "w2v-bert")
    shutil.copy(SEAMLESS_PREPROCESSOR / "preprocessor_config.json", directory)
    hub.add_repo("org/w2v-bert-tiny").commit(directory)
    env = hub_env["env"]

    def cli(*args: str, offline: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "audioclf", *args], capture_output=True, text=True, timeout=300,
                              env={**env, "HF_HUB_OFFLINE": "1"} if offline else env)

    downloaded = cli("download", "org/w2v-bert-tiny")
    assert downloaded.returncode == 0, downloaded.stderr
    hub.stop()
    facts = json.loads(cli("inspect", "org/w2v-bert-tiny", "--json", offline=True).stdout)
    assert facts["model_type"] == "wav2vec2-bert" and facts["conv_layers"] is None
    assert facts["front_end"] == "feature projection of 160-wide filter-bank frames, no conv layers"
    assert facts["feature_extractor"]["feature_extractor_type"] == "SeamlessM4TFeatureExtractor"
    classified = cli("classify", "--model", "org/w2v-bert-tiny", "--top-k", "0", "--format", "jsonl", str(AUDIO_CLIP),
                     offline=True)
    assert classified.returncode == 0, classified.stderr
    record = json.loads(classified.stdout)
    assert record["model"] == "org/w2v-bert-tiny" and len(record["labels"]) == reference.config.num_labels
