"""AST and Whisper classifiers against ``transformers`` on the same weights and inputs: logits, hidden states and
attention maps, every checkpoint style (safetensors, .bin, sharded, base-model and Whisper encoder-decoder
checkpoints), the inference fast path, and batch invariance."""

from __future__ import annotations

import json

import pytest
import torch

import audioclf
from audioclf.errors import ModelError
from oracle import build_reference, reference_classes, save_reference, scaled_max_diff, spectrogram_batch, tiny_params
from test_parity import TOLERANCE, compare

AST = "audio-spectrogram-transformer"
WHISPER = "whisper"

# Every switch that changes the forward pass: patch strides (10/10, 16/16, uneven), input lengths (max_length 128
# and 1024 frames), the attention biases, activations, eps, hidden-state tying; Whisper's mel bins (80, 128),
# weighted layer sum on and off (with and without the tied last state), and a whisper-tiny-sized encoder.
CASES = {
    AST: [
        {},
        dict(frequency_stride=16, time_stride=16),
        dict(max_length=128),
        dict(max_length=1024, frequency_stride=16, time_stride=16),
        dict(frequency_stride=12, time_stride=7, patch_size=12, qkv_bias=False, hidden_act="gelu_new",
             layer_norm_eps=1e-5),
        dict(tie_last_hidden_states=True),
    ],
    WHISPER: [
        {},
        dict(num_mel_bins=80, max_source_positions=1500),
        dict(num_mel_bins=128, use_weighted_layer_sum=True),
        dict(use_weighted_layer_sum=True, tie_last_hidden_states=False, activation_function="relu"),
        dict(d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536, num_mel_bins=80,
             max_source_positions=1500, init_std=0.05),
    ],
}
PARAMS = [pytest.param(mt, ov, id=f"{mt}-{i}") for mt, cases in CASES.items() for i, ov in enumerate(cases)]


def input_name(model_type: str) -> str:
    return "input_features" if model_type == WHISPER else "input_values"


def assert_close(ours, reference, inputs: dict, what: str) -> None:
    diffs = compare(ours, reference, inputs)
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= TOLERANCE, f"{what}: {worst} differs by {diffs[worst]:.2e}"


@pytest.mark.parametrize("model_type,overrides", PARAMS)
def test_parity(model_type, overrides, tmp_path):
    batch = 2 if overrides.get("d_model") else 4
    reference = build_reference(model_type, seed=len(overrides), **overrides)
    save_reference(reference, tmp_path)
    ours = audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path)
    assert type(ours).model_type == model_type
    values = spectrogram_batch(reference.config, batch=batch, seed=len(overrides))
    name = input_name(model_type)
    assert_close(ours, reference, {name: values}, "batch")
    assert_close(ours, reference, {name: values[1:2]}, "single")
    with torch.no_grad():  # each row of a batch is classified as it is alone
        together = ours(values).logits
        alone = torch.cat([ours(values[i:i + 1]).logits for i in range(batch)])
    assert scaled_max_diff(together, alone) <= 1e-5
    ours.optimize_for_inference()
    assert_close(ours, reference, {name: values}, "optimised")
    with torch.no_grad():  # without hidden states AST's last layer computes the two pooled tokens only
        assert scaled_max_diff(ours(values).logits, reference(values).logits) <= TOLERANCE


@pytest.mark.parametrize("model_type", list(CASES))
def test_optimised_model_shares_weights_and_survives_int8_quantization(model_type, tmp_path):
    """The fused attention projection views the projection weights (nothing held twice); after dynamic int8
    quantization replaces the projections, they run one by one."""
    reference = build_reference(model_type)
    ours = audioclf.AutoModelForAudioClassification.from_pretrained(save_reference(reference, tmp_path))
    before = sum(t.numel() for t in ours.state_dict().values())
    ours.optimize_for_inference()
    attention = ours.base_model.layers[0].attention if model_type == AST else ours.base_model.layers[0].self_attn
    assert attention.q_proj.weight.data_ptr() == attention.in_proj_weight.data_ptr()
    assert sum(t.numel() for t in ours.state_dict().values()) == before
    values = spectrogram_batch(reference.config)
    quantized = torch.ao.quantization.quantize_dynamic(ours, {torch.nn.Linear}, dtype=torch.qint8)
    assert type(quantized.base_model.layers[0].mlp.fc1 if model_type == AST else
                quantized.base_model.layers[0].fc1) is not torch.nn.Linear
    with torch.no_grad():
        assert scaled_max_diff(quantized(values).logits, reference(values).logits) <= 0.1


@pytest.mark.parametrize("model_type", list(CASES))
def test_parity_detects_a_perturbed_weight(model_type, tmp_path):
    reference = build_reference(model_type)
    save_reference(reference, tmp_path)
    ours = audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path)
    head = ours.classifier.dense if model_type == AST else ours.projector
    with torch.no_grad():
        head.weight[0, 0] += 0.5
    values = spectrogram_batch(reference.config)
    assert compare(ours, reference, {input_name(model_type): values})["logits"] > TOLERANCE


@pytest.mark.parametrize("model_type", list(CASES))
def test_attentions_match(model_type, tmp_path):
    reference = build_reference(model_type, attn_implementation="eager")
    save_reference(reference, tmp_path)
    ours = audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path)
    values = spectrogram_batch(reference.config)
    with torch.no_grad():
        expected = reference(values, output_attentions=True)
        got = ours(values, output_attentions=True)
    assert len(got.attentions) == len(expected.attentions) == 2
    for a, b in zip(got.attentions, expected.attentions):
        assert a.shape == b.shape
        assert float((a - b).abs().max()) <= 1e-5


def test_ast_token_mask_matches(tmp_path):
    """AST's optional token mask ``[B, P + 2]`` (no feature extractor produces one) masks keys as transformers'."""
    reference = build_reference(AST)
    ours = audioclf.AutoModelForAudioClassification.from_pretrained(save_reference(reference, tmp_path))
    values = spectrogram_batch(reference.config)
    tokens = ours.base_model.embeddings.position_embeddings.shape[1]
    mask = torch.ones(4, tokens, dtype=torch.long)
    mask[1, tokens // 2:] = 0
    mask[3, 5:] = 0
    assert_close(ours, reference, dict(input_values=values, attention_mask=mask), "token mask")


@pytest.mark.parametrize("model_type", list(CASES))
@pytest.mark.parametrize("fmt", ["safetensors", "bin", "sharded", "sharded-bin"])
def test_checkpoint_formats_load(model_type, fmt, tmp_path):
    reference = build_reference(model_type, seed=3, use_weighted_layer_sum=model_type == WHISPER)
    save_reference(reference, tmp_path, fmt)
    ours, info = audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values()), info
    assert_close(ours, reference, {input_name(model_type): spectrogram_batch(reference.config)}, fmt)


def test_ast_checkpoints_have_vit_key_names_and_ours_load_back(tmp_path):
    """transformers writes AST with the 4.x (ViT) key names; both those and ours (its in-memory names) load, into
    ours and back into transformers."""
    reference = build_reference(AST, seed=4)
    from safetensors import safe_open

    save_reference(reference, tmp_path / "theirs")
    with safe_open(tmp_path / "theirs" / "model.safetensors", "pt") as weights:
        assert any(".encoder.layer.0.attention.attention.query." in key for key in weights.keys())
    ours = audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path / "theirs")
    assert any(".layers.0.attention.q_proj." in key for key in ours.state_dict())
    ours.save_pretrained(tmp_path / "ours")
    _, model_class, _ = reference_classes(AST)
    back = model_class.from_pretrained(tmp_path / "ours").eval()
    assert_close(ours, back, {"input_values": spectrogram_batch(reference.config)}, "ours -> transformers")


@pytest.mark.parametrize("model_type,base", [(AST, "ASTModel"), (WHISPER, "WhisperModel"),
                                             (WHISPER, "WhisperForConditionalGeneration"),
                                             (WHISPER, "WhisperEncoder")])
def test_base_model_checkpoints_load_their_encoder(model_type, base, tmp_path):
    """ASTModel, WhisperModel, WhisperForConditionalGeneration and bare Whisper encoder checkpoints: the encoder
    loads into the classifier (the same tensors transformers loads), the head is initialised and named, decoder and
    LM-head keys are reported as unexpected."""
    import transformers

    from audioclf.checkpoints.files import save_safetensors

    config_cls, classifier_cls, _ = reference_classes(model_type)
    config = config_cls(**tiny_params(model_type))
    torch.manual_seed(5)
    if base == "WhisperEncoder":  # the encoder's own keys (conv1.weight, layers.0...), no prefix
        encoder = transformers.WhisperModel(config).encoder
        config.save_pretrained(tmp_path)
        save_safetensors({k: v.contiguous() for k, v in encoder.state_dict().items()}, tmp_path / "model.safetensors")
        # transformers' classifier cannot load these keys; the expected tensors are the encoder's own
        expected = {f"encoder.{key}": value for key, value in encoder.state_dict().items()}
    else:
        getattr(transformers, base)(config).save_pretrained(tmp_path)
        expected = classifier_cls.from_pretrained(tmp_path).state_dict()
    ours, info = audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path, output_loading_info=True)
    head = {"classifier.layernorm.weight", "classifier.layernorm.bias", "classifier.dense.weight",
            "classifier.dense.bias"} if model_type == AST else {"projector.weight", "projector.bias",
                                                                 "classifier.weight", "classifier.bias"}
    assert set(info["missing_keys"]) == head
    with_decoder = base in ("WhisperModel", "WhisperForConditionalGeneration")
    assert bool(info["unexpected_keys"]) is with_decoder
    assert all("decoder." in key or key.startswith("proj_out.") for key in info["unexpected_keys"])
    prefix = ours.base_prefix + "."
    encoder_keys = [key for key in expected if key.startswith(prefix)]
    assert encoder_keys and all(torch.equal(ours.state_dict()[key], expected[key]) for key in encoder_keys)
    assert torch.isfinite(ours(spectrogram_batch(config)).logits).all()


def test_whisper_config_aliases_and_v5_configs(tmp_path):
    """A v5 config has no num_hidden_layers (encoder_layers counts); a 4.x one repeats it, and the alias wins over
    encoder_layers as in transformers; hidden_size and num_attention_heads read d_model and the heads."""
    reference = build_reference(WHISPER, use_weighted_layer_sum=True)
    save_reference(reference, tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert "num_hidden_layers" not in written
    config = audioclf.AutoConfig.from_pretrained(tmp_path)
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (2, 32, 4)
    ours = audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path)
    assert ours.layer_weights.shape == (3,)
    written.update(num_hidden_layers=1, encoder_layers=2)
    (tmp_path / "config.json").write_text(json.dumps(written))
    _, info = audioclf.AutoModelForAudioClassification.from_pretrained(tmp_path, output_loading_info=True,
                                                                       ignore_mismatched_sizes=True)
    import transformers

    assert transformers.AutoConfig.from_pretrained(tmp_path).encoder_layers == 1
    assert audioclf.AutoConfig.from_pretrained(tmp_path).encoder_layers == 1
    assert any(key.startswith("encoder.layers.1.") for key in info["unexpected_keys"])


def tiny_model(model_type: str):
    """Our randomly initialised classifier of the tiny reference config."""
    from audioclf.config import ModelConfig

    params = {k: v for k, v in tiny_params(model_type).items() if k in ModelConfig.fields(model_type)}
    return audioclf.AutoModelForAudioClassification.from_config(ModelConfig(model_type, **params))


@pytest.mark.parametrize("model_type", list(CASES))
def test_wrong_input_shapes_are_one_line_errors(model_type):
    model = tiny_model(model_type)
    config = model.config
    values = spectrogram_batch(config)
    for wrong in (values[:, :-1], values[..., :-1]):
        with pytest.raises(ModelError, match="expects input") as error:
            model(wrong)
        assert "\n" not in str(error.value)


def test_ast_has_no_feature_encoder_to_freeze():
    model = tiny_model(AST)
    with pytest.raises(ModelError, match="freeze_base_model"):
        model.freeze_feature_encoder()
