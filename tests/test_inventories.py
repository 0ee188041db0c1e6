"""Our parameter names and shapes equal those of real Hub checkpoints (inventories in tests/data/inventories)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from audioclf.config import BASE_PREFIXES, ModelConfig
from audioclf.models import model_class

INVENTORIES = sorted((Path(__file__).parent / "data" / "inventories").glob("*.json"))
PREFIX_TO_TYPE = {prefix: model_type for model_type, prefix in BASE_PREFIXES.items()}


def config_from_shapes(shapes: dict[str, list[int]]) -> tuple[ModelConfig, str]:
    """Rebuild the shape-relevant config fields of a checkpoint from its tensor shapes."""
    prefix = next(key.split(".")[0] for key in shapes if key.split(".")[0] in PREFIX_TO_TYPE)
    model_type = PREFIX_TO_TYPE[prefix]
    conv = sorted({int(m.group(1)) for k in shapes if (m := re.match(rf"{prefix}\.feature_extractor\.conv_layers\.(\d+)\.conv\.weight", k))})
    conv_shapes = [shapes[f"{prefix}.feature_extractor.conv_layers.{i}.conv.weight"] for i in conv]
    g = shapes[f"{prefix}.encoder.pos_conv_embed.conv.parametrizations.weight.original0"]
    v = shapes[f"{prefix}.encoder.pos_conv_embed.conv.parametrizations.weight.original1"]
    hidden = v[0]
    layer_key = "encoder.encoder.layer" if model_type == "sew-d" else "encoder.layers"
    layers = 1 + max(int(m.group(1)) for k in shapes if (m := re.match(rf"{prefix}\.{layer_key}\.(\d+)\.", k)))
    ffn = (f"{prefix}.{layer_key}.0.intermediate.dense.weight" if model_type == "sew-d"
           else f"{prefix}.{layer_key}.0.feed_forward.intermediate_dense.weight")
    fields = dict(
        conv_dim=[s[0] for s in conv_shapes], conv_kernel=[s[2] for s in conv_shapes],
        conv_stride=[2] * len(conv_shapes),
        conv_bias=f"{prefix}.feature_extractor.conv_layers.0.conv.bias" in shapes,
        feat_extract_norm="layer" if f"{prefix}.feature_extractor.conv_layers.1.layer_norm.weight" in shapes else "group",
        hidden_size=hidden, num_hidden_layers=layers, intermediate_size=shapes[ffn][0], num_attention_heads=1,
        num_conv_pos_embeddings=g[2], num_conv_pos_embedding_groups=hidden // v[1],
        use_weighted_layer_sum="layer_weights" in shapes,
    )
    if "projector.weight" in shapes:
        fields.update(classifier_proj_size=shapes["projector.weight"][0], num_labels=shapes["classifier.weight"][0])
    if model_type == "hubert":
        fields["feat_proj_layer_norm"] = f"{prefix}.feature_projection.layer_norm.weight" in shapes
    if model_type == "sew-d":
        fields["position_buckets"] = shapes[f"{prefix}.encoder.encoder.rel_embeddings.weight"][0] // 2
        fields["share_att_key"] = not any("pos_key_proj" in k or "pos_query_proj" in k for k in shapes)
    return ModelConfig(model_type=model_type, **fields), prefix


@pytest.mark.parametrize("path", INVENTORIES, ids=[p.stem for p in INVENTORIES])
def test_state_dict_matches_real_checkpoint(path):
    inventory = json.loads(path.read_text())
    shapes = {key: shape for key, shape in inventory["tensors"]}
    base_only = "projector.weight" not in shapes
    if base_only:  # a bare base-model checkpoint: keys carry no prefix
        shapes = {f"wav2vec2.{k}": s for k, s in shapes.items()}
    config, prefix = config_from_shapes(shapes)
    with torch.device("meta"):
        model = model_class(config.model_type)(config)
    ours = {key: list(t.shape) for key, t in model.state_dict().items()}
    # the inventories hold what the forward pass touches: SpecAugment's vector (training only) is not among it
    spec_embed = ours.pop(f"{prefix}.masked_spec_embed", None)
    assert spec_embed in (None, [config.hidden_size])
    if base_only:
        ours = {k: s for k, s in ours.items() if k.startswith(prefix + ".")}
    assert ours == shapes


REAL_CONFIGS = sorted(p.parent for p in (Path(__file__).parent / "data" / "configs").glob("*/config.json"))


@pytest.mark.parametrize("directory", REAL_CONFIGS, ids=[p.name for p in REAL_CONFIGS])
def test_state_dict_matches_transformers_on_real_configs(directory):
    """Each real config.json (WavLM, w2v-BERT, AST and Whisper checkpoints among them) built with random weights by
    transformers and by us: the same state-dict keys and shapes (on the meta device: no weights, no download)."""
    import transformers

    from audioclf.auto import AutoConfig

    reference_config = transformers.AutoConfig.from_pretrained(directory)
    with torch.device("meta"):
        reference = transformers.AutoModelForAudioClassification.from_config(reference_config)
        config = AutoConfig.from_pretrained(directory)
        model = model_class(config.model_type)(config)
    theirs = {key: list(t.shape) for key, t in reference.state_dict().items()}
    assert {key: list(t.shape) for key, t in model.state_dict().items()} == theirs
    assert len(theirs) > 20


def test_audioset_ast_has_the_published_tensor_count():
    """MIT/ast-finetuned-audioset-10-10-0.4593 (the defaults, 527 labels) holds 199 backbone tensors and the four
    head tensors, as tools that verify that checkpoint count them."""
    config = ModelConfig("audio-spectrogram-transformer", num_labels=527)
    with torch.device("meta"):
        model = model_class(config.model_type)(config)
    keys = list(model.state_dict())
    assert sum(key.startswith("audio_spectrogram_transformer.") for key in keys) == 199
    assert {key for key in keys if key.startswith("classifier.")} == {
        "classifier.dense.bias", "classifier.dense.weight", "classifier.layernorm.bias", "classifier.layernorm.weight"}
    positions = model.state_dict()["audio_spectrogram_transformer.embeddings.position_embeddings"]
    assert list(positions.shape) == [1, 1214, 768]
