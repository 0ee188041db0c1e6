"""ModelConfig against real config.json files and against transformers' own config classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import audioclf
from audioclf.config import ARCHITECTURES, SUPPORTED_MODEL_TYPES, ModelConfig
from audioclf.errors import ConfigError
from oracle import FRAME_INPUT_TYPES, reference_classes

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
    "num_buckets", "max_bucket_distance", "conv_pos_kernel_size", "position_embeddings_type", "rotary_embedding_base",
    "conv_depthwise_kernel_size", "feature_projection_input_dim", "left_max_position_embeddings",
    "right_max_position_embeddings", "use_intermediate_ffn_before_adapter",
    "patch_size", "frequency_stride", "time_stride", "max_length", "num_mel_bins", "qkv_bias", "d_model",
    "encoder_layers", "encoder_attention_heads", "encoder_ffn_dim", "activation_function", "max_source_positions",
)
#: reference config fields a model type's classifier never reads (WhisperForAudioClassification applies no SpecAugment;
#: the conformers' max_source_positions only sizes a precomputed table of relative-position sinusoids, which grows
#: with the input)
UNREAD = {"whisper": {"mask_time_prob", "mask_feature_prob"}, "wav2vec2-conformer": {"max_source_positions"},
          "wav2vec2-bert": {"max_source_positions"}}


def compared_fields(model_type: str, reference) -> list[str]:
    """The forward fields to compare with a reference config of ``model_type``."""
    return [f for f in FORWARD_FIELDS if hasattr(reference, f) and f not in UNREAD.get(model_type, ())]


def _normalise(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return value


#: declared fields the reference config classes do not declare (their models read them with a fallback)
READ_WITH_FALLBACK = {"tie_last_hidden_states", "adapter_attn_dim", "max_relative_positions", "apply_spec_augment"}
#: declared fields a reference config class lacks although its model reads them without a fallback (WavLM's
#: SpecAugment reads mask_feature_min_masks: transformers fails to train with mask_feature_prob > 0 unless the config
#: has the key); ours defaults it to 0 as the other architectures do
UNDECLARED_BY_REFERENCE = {("wavlm", "mask_feature_min_masks")}


@pytest.mark.parametrize("model_type", SUPPORTED_MODEL_TYPES)
def test_defaults_equal_transformers(model_type):
    reference = reference_classes(model_type)[0]()
    ours = ModelConfig(model_type=model_type)
    for field in compared_fields(model_type, reference):
        assert _normalise(getattr(ours, field)) == _normalise(getattr(reference, field)), field
    for field in ModelConfig.fields(model_type):  # every declared field, dropouts and SpecAugment included
        if hasattr(reference, field):
            assert _normalise(getattr(ours, field)) == _normalise(getattr(reference, field)), field
        else:
            assert field in READ_WITH_FALLBACK or (model_type, field) in UNDECLARED_BY_REFERENCE, field


@pytest.mark.parametrize("model_type", SUPPORTED_MODEL_TYPES)
def test_models_read_exactly_the_declared_fields(model_type):
    """Building, training and running a model reads every declared field and no undeclared one (besides the
    identity: model_type, labels and the derived properties)."""
    import torch

    from audioclf.models import model_class

    read: set[str] = set()

    class Recording(ModelConfig):
        def __getattribute__(self, name):
            if not name.startswith("_"):
                read.add(name)
            return super().__getattribute__(name)

    sizes = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=20, num_labels=3)
    if model_type == "audio-spectrogram-transformer":
        config = ModelConfig(model_type, **sizes, num_mel_bins=16, max_length=32, patch_size=8, frequency_stride=8,
                             time_stride=8)
        values, mask = torch.randn(2, 32, 16), None
    elif model_type == "whisper":
        config = ModelConfig(model_type, **sizes, num_mel_bins=8, max_source_positions=10)
        values, mask = torch.randn(2, 8, 20), None
    elif model_type in FRAME_INPUT_TYPES:  # feature frames [B, T, F] and a frame mask
        config = ModelConfig(model_type, **sizes, mask_time_prob=0.2, mask_time_length=2, mask_feature_prob=0.2,
                             mask_feature_length=2)
        values, mask = torch.randn(2, 30, config.feature_projection_input_dim), torch.ones(2, 30, dtype=torch.long)
        mask[1, 20:] = 0
    else:
        config = ModelConfig(model_type, **sizes, conv_dim=[16, 16], conv_kernel=[10, 3], conv_stride=[5, 2],
                             num_conv_pos_embeddings=6, num_conv_pos_embedding_groups=2, mask_time_prob=0.2,
                             mask_time_length=2, mask_feature_prob=0.2, mask_feature_length=2)
        values, mask = torch.randn(2, 3000), torch.ones(2, 3000, dtype=torch.long)
        mask[1, 2000:] = 0
    config.__class__ = Recording
    model = model_class(model_type)(config)
    model.train()
    model(values, mask, labels=torch.tensor([0, 2])).loss.backward()
    model.eval()
    model(values, output_hidden_states=True)
    identity = {"model_type", "architecture", "base_prefix", "num_labels", "id2label", "position_attention_types",
                "max_relative_distance"}
    aliases = set(ARCHITECTURES[model_type].aliases)  # reading an alias reads the field it names
    assert read - identity - aliases == set(ModelConfig.fields(model_type))


@pytest.mark.parametrize("model_type", SUPPORTED_MODEL_TYPES)
def test_every_field_is_documented_and_its_default_valid(model_type):
    for name, field in ModelConfig.fields(model_type).items():
        assert field.doc and "\n" not in field.doc, name
        field.check(name, field.default)


def test_sew_d_declares_only_the_regularisers_it_reads():
    fields = ModelConfig.fields("sew-d")
    assert "layerdrop" not in fields and "hidden_dropout" not in fields
    assert {"attention_dropout", "activation_dropout", "feat_proj_dropout", "mask_time_prob"} <= set(fields)
    config = ModelConfig("sew-d", layerdrop=0.3, hidden_dropout=0.2)  # kept as they are, and written back
    assert config.to_dict()["layerdrop"] == 0.3 and config.to_dict()["hidden_dropout"] == 0.2


@pytest.mark.parametrize("directory", CONFIG_DIRS, ids=[p.name for p in CONFIG_DIRS])
def test_real_configs_parse_like_transformers(directory, tmp_path):
    import transformers

    path = directory / "config.json"
    raw = json.loads(path.read_text())
    ours = audioclf.AutoConfig.from_pretrained(path)
    reference = transformers.AutoConfig.from_pretrained(directory)
    assert ours.model_type == reference.model_type
    for field in compared_fields(ours.model_type, reference):
        if field == "label2id":  # transformers keeps string ids as they are; ours are ints
            assert ours.label2id == {k: int(v) for k, v in reference.label2id.items()}
        else:
            assert _normalise(getattr(ours, field)) == _normalise(getattr(reference, field)), field
    assert all(isinstance(k, int) for k in ours.id2label)
    assert all(isinstance(v, int) for v in ours.label2id.values())
    assert ours.num_labels == len(ours.id2label)
    # unknown keys survive a round trip
    ours.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    aliases = ARCHITECTURES[ours.model_type].aliases
    for key, value in raw.items():
        if key in ("id2label", "label2id"):
            continue
        if key in aliases:  # folded into the field it names, as transformers writes it
            assert written[aliases[key]] == value, key
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


@pytest.mark.parametrize("change,needle", [
    (dict(hidden_dropout=1.5), "hidden_dropout must be a number in [0, 1]"),
    (dict(attention_dropout=-0.1), "attention_dropout"),
    (dict(layerdrop=float("nan")), "layerdrop"),
    (dict(activation_dropout="0.1"), "activation_dropout"),
    (dict(mask_time_prob=2), "mask_time_prob"),
    (dict(mask_time_length=0), "mask_time_length must be an integer >= 1"),
    (dict(mask_feature_min_masks=-1), "mask_feature_min_masks"),
    (dict(apply_spec_augment="yes"), "apply_spec_augment must be true or false"),
    (dict(layer_norm_eps=0.0), "layer_norm_eps"),
    (dict(layer_norm_eps=float("inf")), "layer_norm_eps"),
    (dict(initializer_range=-1.0), "initializer_range"),
    (dict(num_hidden_layers=100_000), "exceeds the limit 256"),
    (dict(hidden_size=1_000_000, num_attention_heads=1, num_conv_pos_embedding_groups=1), "hidden_size"),
    (dict(intermediate_size=10**9), "intermediate_size"),
    (dict(conv_dim=[10**9] * 7), "conv_dim holds 1000000000"),
    (dict(conv_dim=[8] * 100, conv_kernel=[2] * 100, conv_stride=[1] * 100), "100 entries"),
    (dict(num_labels=10**7), "num_labels"),
    (dict(hidden_size=8192, num_attention_heads=64, num_hidden_layers=256, intermediate_size=65536,
          num_conv_pos_embedding_groups=16), "transformer layers would hold"),
    (dict(num_hidden_layers=True), "num_hidden_layers"),
    (dict(problem_type="ranking"), "problem_type"),
    (dict(adapter_attn_dim=0), "adapter_attn_dim"),
])
def test_limits_and_types_are_checked(change, needle):
    with pytest.raises(ConfigError) as error:
        ModelConfig(model_type="wav2vec2", **change)
    assert needle in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("model_type,change,needle", [
    ("sew-d", dict(position_buckets=10**6), "position_buckets"),
    ("sew-d", dict(max_position_embeddings=0), "max_position_embeddings"),
    ("sew-d", dict(pos_att_type=7), "pos_att_type"),
    ("sew", dict(squeeze_factor=0), "squeeze_factor"),
    ("hubert", dict(conv_pos_batch_norm=1), "conv_pos_batch_norm"),
])
def test_architecture_fields_are_checked(model_type, change, needle):
    with pytest.raises(ConfigError, match=needle):
        ModelConfig(model_type=model_type, **change)


def test_size_limits_can_be_raised(monkeypatch):
    from audioclf import config as config_module

    with pytest.raises(ConfigError, match="num_hidden_layers"):
        ModelConfig("wav2vec2", num_hidden_layers=300, hidden_size=16, num_attention_heads=2,
                    num_conv_pos_embedding_groups=2)
    monkeypatch.setitem(config_module.SIZE_LIMITS, "num_hidden_layers", 512)
    assert ModelConfig("wav2vec2", num_hidden_layers=300, hidden_size=16, num_attention_heads=2,
                       num_conv_pos_embedding_groups=2).num_hidden_layers == 300


def test_hostile_config_file_fails_before_any_allocation(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "hubert", "hidden_size": 2**20,
                                                      "num_attention_heads": 1, "num_conv_pos_embedding_groups": 1}))
    with pytest.raises(ConfigError, match="hidden_size"):
        audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path)


@pytest.mark.parametrize("directory", CONFIG_DIRS, ids=[p.name for p in CONFIG_DIRS])
def test_real_configs_fit_well_inside_the_limits(directory, monkeypatch):
    from audioclf import config as config_module

    for key, value in config_module.SIZE_LIMITS.items():
        monkeypatch.setitem(config_module.SIZE_LIMITS, key, value // 4)
    audioclf.AutoConfig.from_pretrained(directory / "config.json")
