"""Logits and hidden states of our models against ``transformers`` on the same weights and inputs."""

from __future__ import annotations

import pytest
import torch

import audioclf
from oracle import (PARITY_TOLERANCE, build_reference, device_inputs, input_cases, on_test_device, save_reference,
                    scaled_max_diff)

#: 1e-4 in float32 (AUDIOCLF_TEST_DEVICE / AUDIOCLF_TEST_DTYPE run our side elsewhere: see oracle.py)
TOLERANCE = PARITY_TOLERANCE

# Every switch that changes the forward pass, per architecture.
CASES = {
    "wav2vec2": [
        {},
        dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, use_weighted_layer_sum=True),
        dict(use_weighted_layer_sum=True),
        dict(feat_extract_norm="layer", do_stable_layer_norm=True, adapter_attn_dim=6),
        dict(do_stable_layer_norm=True, use_weighted_layer_sum=True, tie_last_hidden_states=True),
        dict(num_conv_pos_embeddings=7, hidden_act="relu", feat_extract_activation="gelu_new"),
    ],
    "hubert": [
        {},
        dict(feat_proj_layer_norm=False, do_stable_layer_norm=True, use_weighted_layer_sum=True, conv_bias=True),
        dict(conv_pos_batch_norm=True),
        dict(feat_extract_norm="layer", do_stable_layer_norm=True, adapter_attn_dim=5, conv_pos_batch_norm=True),
    ],
    "unispeech": [
        {},
        dict(feat_extract_norm="layer", do_stable_layer_norm=True, use_weighted_layer_sum=True, conv_bias=True),
    ],
    "unispeech-sat": [
        {},
        dict(feat_extract_norm="layer", do_stable_layer_norm=True, use_weighted_layer_sum=True),
        dict(use_weighted_layer_sum=True, num_conv_pos_embeddings=9),
    ],
    "sew": [
        {},
        dict(use_weighted_layer_sum=True),
        dict(feat_extract_norm="layer", conv_bias=True, num_conv_pos_embeddings=8),
        dict(conv_dim=(32, 32, 32, 48), squeeze_factor=3, hidden_act="gelu_new"),
    ],
    "sew-d": [
        {},
        dict(position_buckets=0, max_position_embeddings=24, share_att_key=False),
        dict(pos_att_type=("c2p",), share_att_key=False, norm_rel_ebd="none"),
        dict(pos_att_type=("p2c",), use_weighted_layer_sum=True),
        dict(pos_att_type=(), relative_attention=False),
        dict(conv_dim=(32, 32, 32, 48), squeeze_factor=3, feat_extract_norm="layer", max_relative_positions=40,
             position_buckets=0),
    ],
    # buckets small enough that the batch's distances reach the log-spaced buckets and the cap
    "wavlm": [
        {},
        dict(feat_extract_norm="layer", do_stable_layer_norm=True, use_weighted_layer_sum=True, conv_bias=True),
        dict(num_buckets=16, max_bucket_distance=40, hidden_act="gelu_new"),
        dict(do_stable_layer_norm=True, tie_last_hidden_states=True, num_buckets=12, max_bucket_distance=20),
    ],
    "data2vec-audio": [
        {},
        dict(use_weighted_layer_sum=True, conv_pos_kernel_size=8, num_conv_pos_embeddings=3),
        dict(conv_bias=True, hidden_act="relu", feat_extract_activation="gelu_new", num_conv_pos_embedding_groups=2),
    ],
    "wav2vec2-conformer": [
        {},  # relative
        dict(position_embeddings_type="rotary", use_weighted_layer_sum=True, hidden_act="swish"),
        dict(position_embeddings_type=None, feat_extract_norm="layer", conv_bias=True, conv_depthwise_kernel_size=3),
    ],
    "wav2vec2-bert": [
        {},  # relative_key
        dict(use_intermediate_ffn_before_adapter=True, use_weighted_layer_sum=True, hidden_act="gelu"),
        dict(position_embeddings_type="relative", conv_depthwise_kernel_size=3),
        dict(position_embeddings_type="rotary", use_intermediate_ffn_before_adapter=True),
        dict(position_embeddings_type=None, left_max_position_embeddings=64, right_max_position_embeddings=8),
    ],
}
PARAMS = [pytest.param(mt, ov, id=f"{mt}-{i}") for mt, cases in CASES.items() for i, ov in enumerate(cases)]


def compare(ours, reference, inputs: dict) -> dict[str, float]:
    with torch.no_grad():
        expected = reference(**inputs, output_hidden_states=True)
        got = ours(**device_inputs(inputs), output_hidden_states=True)
    assert got.logits.shape == expected.logits.shape
    assert len(got.hidden_states) == len(expected.hidden_states)
    diffs = {"logits": scaled_max_diff(got.logits, expected.logits)}
    for index, (a, b) in enumerate(zip(got.hidden_states, expected.hidden_states)):
        assert a.shape == b.shape, f"hidden state {index}: {a.shape} vs {b.shape}"
        diffs[f"hidden_{index}"] = scaled_max_diff(a, b)
    return diffs


@pytest.mark.parametrize("model_type,overrides", PARAMS)
def test_parity(model_type, overrides, tmp_path):
    reference = build_reference(model_type, seed=len(overrides), **overrides)
    save_reference(reference, tmp_path)
    ours = on_test_device(audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path))
    assert type(ours).model_type == model_type
    cases = input_cases(model_type)
    for name, inputs in cases.items():
        diffs = compare(ours, reference, inputs)
        worst = max(diffs, key=diffs.get)
        assert diffs[worst] <= TOLERANCE, f"{name}: {worst} differs by {diffs[worst]:.2e}"
    # the inference fast path (weight norm folded, SEW-D position projections cached) computes the same
    ours.optimize_for_inference()
    for name in ("padded+mask", "single odd"):
        diffs = compare(ours, reference, cases[name])
        worst = max(diffs, key=diffs.get)
        assert diffs[worst] <= TOLERANCE, f"optimised, {name}: {worst} differs by {diffs[worst]:.2e}"


@pytest.mark.parametrize("model_type", list(CASES))
def test_parity_detects_a_perturbed_weight(model_type, tmp_path):
    """The comparison is sensitive: one changed projector weight moves the logits past the tolerance (the logits
    move linearly with it: by 2.5e-2 to 7e-2 for 0.5, so the looser half-precision tolerances get a larger change)."""
    reference = build_reference(model_type)
    save_reference(reference, tmp_path)
    ours = on_test_device(audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path))
    with torch.no_grad():
        ours.projector.weight[0, 0] += 0.5 * max(1.0, TOLERANCE / 1e-2)
    assert compare(ours, reference, input_cases(model_type)["padded+mask"])["logits"] > TOLERANCE


@pytest.mark.parametrize("model_type", list(CASES))
def test_attentions_match(model_type, tmp_path):
    reference = build_reference(model_type, attn_implementation="eager")
    save_reference(reference, tmp_path)
    ours = audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path)
    inputs = input_cases(model_type)["padded+mask"]
    with torch.no_grad():
        expected = reference(**inputs, output_attentions=True)
        got = ours(**inputs, output_attentions=True)
    assert len(got.attentions) == len(expected.attentions) == reference.config.num_hidden_layers
    for a, b in zip(got.attentions, expected.attentions):
        assert a.shape == b.shape
        assert float((a - b).abs().max()) <= 1e-5


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_tiled_conv_stack_is_exact(norm):
    """An optimized model runs the conv stack in time tiles (group norm statistics from the window moments); the
    result equals the readable stack's."""
    from audioclf.config import ModelConfig
    from audioclf.models.inference import InferenceConvFeatureEncoder

    model = audioclf.AutoModelForAudioClassification.from_config(ModelConfig(
        "wav2vec2", feat_extract_norm=norm, num_hidden_layers=1, hidden_size=64, num_attention_heads=4,
        intermediate_size=64, num_conv_pos_embedding_groups=4, conv_dim=[64] * 7))
    encoder = model.base_model.feature_extractor
    values = torch.randn(2, 16000 * 12 + 123)
    values[1] = 3 * values[1] + 0.5  # rows with different statistics
    with torch.no_grad():
        whole = encoder(values)
    model.optimize_for_inference()
    assert isinstance(encoder, InferenceConvFeatureEncoder)
    with torch.no_grad():
        tiled = encoder(values)
    assert tiled.shape == whole.shape and whole.shape[-1] > 2 * encoder.TILE_FRAMES
    assert float((tiled - whole).abs().max()) <= 1e-5 * max(1.0, float(whole.abs().max()))
