"""ModelConfig against real config.json files and against transformers' own config classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import audioclf
from audioclf.config import SUPPORTED_MODEL_TYPES, ModelConfig
from audioclf.errors import ConfigError
from oracle import reference_classes

CONFIG_DIRS = sorted(p for p in (Path(__file__).parent / "data" / "configs").iterdir() if (p / "config.json").is_file())

# Fields that change the forward pass or the state dict.
FORWARD_FIELDS = (
    "conv_dim", "conv_kernel", "conv_stride", "conv_bias", "feat_extract_norm", "feat_extract_activation",
    "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "hidden_size", "num_hidden_layers",
    "num_attention_heads", "intermediate_size", "hidden_act", "layer_norm_eps", "use_weighted_layer_sum",
    "classifier_proj_size", "num_labels", "id2label", "label2id", "do_stable_layer_norm", "adapter_attn_dim",
    "feat_proj_layer_norm", "conv_pos_batch_norm", "squeeze_factor", "feature_layer_norm_eps",
    "max_position_embeddings", "position_buckets", "relative_attention", "pos_att_type", "share_att_key",
    "norm_rel_ebd", "mask_time_prob", "mask_feature_prob", "problem_type",
)


def _normalise(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return value


@pytest.mark.parametrize("model_type", SUPPORTED_MODEL_TYPES)
def test_defaults_equal_transformers(model_type):
    reference = reference_classes(model_type)[0]()
    ours = ModelConfig(model_type=model_type)
    for field in FORWARD_FIELDS:
        if hasattr(reference, field):
            assert _normalise(getattr(ours, field)) == _normalise(getattr(reference, field)), field


@pytest.mark.parametrize("directory", CONFIG_DIRS, ids=[p.name for p in CONFIG_DIRS])
def test_real_configs_parse_like_transformers(directory, tmp_path):
    import transformers

    path = directory / "config.json"
    raw = json.loads(path.read_text())
    ours = audioclf.AutoConfig.from_pretrained(path)
    reference = transformers.AutoConfig.from_pretrained(directory)
    assert ours.model_type == reference.model_type
    for field in FORWARD_FIELDS:
        if field == "label2id":  # transformers keeps string ids as they are; ours are ints
            assert ours.label2id == {k: int(v) for k, v in reference.label2id.items()}
        elif hasattr(reference, field):
            assert _normalise(getattr(ours, field)) == _normalise(getattr(reference, field)), field
    assert all(isinstance(k, int) for k in ours.id2label)
    assert all(isinstance(v, int) for v in ours.label2id.values())
    assert ours.num_labels == len(ours.id2label)
    # unknown keys survive a round trip
    ours.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    for key, value in raw.items():
        if key in ("id2label", "label2id"):
            continue
        assert key in written, key
        if key not in FORWARD_FIELDS:
            assert written[key] == value, key
    assert ModelConfig.from_pretrained(tmp_path) == ours


def test_string_label_ids_and_custom_architecture():
    configs = Path(__file__).parent / "data" / "configs"
    accent = ModelConfig.from_pretrained(configs / "github__lxthames__accent-detector-app__model")
    assert accent.num_labels == 13 and accent.label2id["American"] == 0 and accent.id2label[10]
    custom = ModelConfig.from_pretrained(configs / "github__david188888__Audio-Emotion__model")
    assert custom.architectures == ["HubertForSpeechClassification"]
    assert custom.id2label == {0: "LABEL_0", 1: "LABEL_1"} and custom.num_class == 6


def test_legacy_config_falls_back_to_defaults():
    config = ModelConfig.from_pretrained(
        Path(__file__).parent / "data" / "configs" / "facebook__wav2vec2-large-960h-lv60__rev-3ae3bf9")
    assert config.do_stable_layer_norm is True and config.classifier_proj_size == 256
    assert config.hidden_dropout_prob == 0.1  # an old key name, kept as is


@pytest.mark.parametrize("change,needle", [
    (dict(conv_kernel=[10, 3]), "same length"),
    (dict(num_attention_heads=5), "divisible by num_attention_heads"),
    (dict(feat_extract_norm="batch"), "feat_extract_norm"),
    (dict(hidden_act="swishy"), "hidden_act"),
    (dict(add_adapter=True), "add_adapter"),
    (dict(conv_dim="512"), "conv_dim"),
])
def test_validation_errors_are_one_line(change, needle):
    with pytest.raises(ConfigError) as error:
        ModelConfig(model_type="wav2vec2", **change)
    message = str(error.value)
    assert needle in message and "\n" not in message


def test_other_family_names_supported_types(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 768}))
    with pytest.raises(ConfigError, match="supported types: wav2vec2, hubert, sew, sew-d, unispeech, unispeech-sat"):
        audioclf.AutoConfig.from_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="supported types"):
        audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path)


def test_sew_d_pos_att_type_string_and_validation():
    assert ModelConfig(model_type="sew-d", pos_att_type="p2c|C2P").position_attention_types == ("p2c", "c2p")
    with pytest.raises(ConfigError, match="pos_att_type"):
        ModelConfig(model_type="sew-d", pos_att_type=["c2c"])


def test_num_labels_override_regenerates_labels(tmp_path):
    config = audioclf.AutoConfig.from_pretrained(
        Path(__file__).parent / "data" / "configs" / "superb__hubert-large-superb-er", num_labels=3)
    assert config.num_labels == 3 and config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
