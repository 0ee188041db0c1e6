"""Loading local checkpoints in every format, key conventions and failure modes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

import audioclf
from audioclf.errors import AudioclfError, CheckpointError
from oracle import FRAME_INPUT_TYPES, build_reference, padded_batch, save_reference, scaled_max_diff, model_batch

Auto = audioclf.AutoModelForAudioClassification
TYPES = ["wav2vec2", "hubert", "unispeech", "unispeech-sat", "sew", "sew-d", "wavlm", "data2vec-audio",
         "wav2vec2-conformer", "wav2vec2-bert"]


def logits_of(model, inputs):
    with torch.no_grad():
        return model(*inputs).logits


@pytest.mark.parametrize("fmt", ["safetensors", "bin", "sharded", "sharded-bin", "legacy"])
@pytest.mark.parametrize("model_type", TYPES)
def test_every_weight_format_gives_reference_logits(model_type, fmt, tmp_path):
    reference = build_reference(model_type, use_weighted_layer_sum=True)
    save_reference(reference, tmp_path, fmt)
    if fmt.startswith("sharded"):
        assert any(p.name.endswith(".index.json") for p in tmp_path.iterdir())
    model, info = Auto.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"]
    _, *inputs = model_batch(model_type)
    assert scaled_max_diff(logits_of(model, inputs), logits_of(reference, inputs)) <= 1e-4


def test_legacy_gamma_beta_of_sew_d_layer_norms(tmp_path):
    reference = build_reference("sew-d")
    reference.config.save_pretrained(tmp_path)
    state = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
             for k, v in reference.state_dict().items()}
    assert any(k.endswith("LayerNorm.gamma") for k in state)
    torch.save(state, tmp_path / "pytorch_model.bin")
    model, info = Auto.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"]
    inputs = padded_batch()
    assert scaled_max_diff(logits_of(model, inputs), logits_of(reference, inputs)) <= 1e-4


@pytest.mark.parametrize("model_type", TYPES)
def test_bare_base_model_loads_into_classifier(model_type, tmp_path, capfd):
    base = build_reference(model_type, base_only=True)
    save_reference(base, tmp_path)
    model, info = Auto.from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight", "projector.bias", "projector.weight"]
    err = capfd.readouterr().err
    assert "projector.weight" in err and "initialised" in err
    ours = model.base_model.state_dict()
    for key, value in base.state_dict().items():
        if key in ours:
            assert torch.equal(ours[key], value), key


@pytest.mark.parametrize("model_type,overrides", [("wav2vec2", {}), ("unispeech-sat", dict(mask_time_prob=0.0)),
                                                  ("sew-d", dict(mask_feature_prob=0.2))])
def test_masked_spec_embed_is_loaded_not_dropped(model_type, overrides, tmp_path):
    reference = build_reference(model_type, **overrides)
    key = f"{reference.base_model_prefix}.masked_spec_embed"
    save_reference(reference, tmp_path)
    model, info = Auto.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert torch.equal(model.state_dict()[key], reference.state_dict()[key])
    # a checkpoint without it (saved from a config that masks nothing) leaves it initialised in [0, 1)
    state = {k: v.contiguous() for k, v in reference.state_dict().items() if k != key}
    save_file(state, str(tmp_path / "model.safetensors"))
    model, info = Auto.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [key]
    loaded = model.state_dict()[key]
    assert ((loaded >= 0) & (loaded < 1)).all() and not torch.equal(loaded, reference.state_dict()[key])


def test_prefixed_keys_and_pretraining_extras(tmp_path):
    reference = build_reference("wav2vec2")
    reference.config.save_pretrained(tmp_path)
    state = dict(reference.state_dict())
    state["quantizer.codevectors"] = torch.zeros(1, 4, 8)
    state["project_q.weight"] = torch.zeros(4, 4)
    state["lm_head.weight"] = torch.zeros(3, 32)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    model, info = Auto.from_pretrained(tmp_path, output_loading_info=True)
    assert {"quantizer.codevectors", "project_q.weight", "lm_head.weight"} <= set(info["unexpected_keys"])
    assert not info["missing_keys"]
    inputs = padded_batch()
    assert scaled_max_diff(logits_of(model, inputs), logits_of(reference, inputs)) <= 1e-4


def test_safetensors_preferred_and_use_safetensors_false(tmp_path):
    reference = build_reference("hubert")
    save_reference(reference, tmp_path, "safetensors")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a pickle")
    Auto.from_pretrained(tmp_path)  # the corrupt .bin is never read
    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        Auto.from_pretrained(tmp_path, use_safetensors=False)


def test_weights_file_path_and_dtypes(tmp_path):
    reference = build_reference("unispeech")
    save_reference(reference, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.pop("dtype", None)
    config["torch_dtype"] = "float16"  # the key older checkpoints carry
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = Auto.from_pretrained(tmp_path / "model.safetensors")
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert next(Auto.from_pretrained(tmp_path, dtype="auto").parameters()).dtype == torch.float16
    assert next(Auto.from_pretrained(tmp_path, torch_dtype=torch.bfloat16).parameters()).dtype == torch.bfloat16


def test_missing_weights_names_files(tmp_path):
    build_reference("wav2vec2").config.save_pretrained(tmp_path)
    with pytest.raises(CheckpointError) as error:
        Auto.from_pretrained(tmp_path)
    message = str(error.value)
    assert "model.safetensors" in message and "pytorch_model.bin" in message and "\n" not in message


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    reference = build_reference("wav2vec2")
    save_reference(reference, tmp_path)
    with pytest.raises(CheckpointError, match=r"classifier\.(weight|bias) has shape \[5(, 24)?\] but the model expects \[7(, 24)?\]"):
        Auto.from_pretrained(tmp_path, num_labels=7)
    model, info = Auto.from_pretrained(tmp_path, num_labels=7, ignore_mismatched_sizes=True,
                                       output_loading_info=True)
    assert model.config.num_labels == 7
    assert sorted(m[0] for m in info["mismatched_keys"]) == ["classifier.bias", "classifier.weight"]


def test_corrupt_and_hostile_weights(tmp_path):
    reference = build_reference("wav2vec2")
    reference.config.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(CheckpointError, match="cannot read"):
        Auto.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"x": Payload()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="cannot read .*pytorch_model.bin"):
        Auto.from_pretrained(tmp_path)


def test_config_kwargs_and_unknown_kwargs(tmp_path):
    save_reference(build_reference("sew"), tmp_path)
    model = Auto.from_pretrained(tmp_path, output_attentions=True)
    assert model.config.output_attentions is True
    values, _ = padded_batch()
    assert len(model(values).attentions) == model.config.num_hidden_layers
    with pytest.raises(AudioclfError, match="unexpected keyword argument 'no_such_option'"):
        Auto.from_pretrained(tmp_path, no_such_option=1)


def test_direct_construction_points_to_factories():
    with pytest.raises(EnvironmentError, match="from_pretrained.*from_config"):
        Auto()


@pytest.mark.parametrize("model_type", TYPES)
def test_from_config_and_save_round_trip(model_type, tmp_path):
    config = audioclf.AutoConfig.for_model(model_type, hidden_size=16, num_attention_heads=2, intermediate_size=20,
                                           num_hidden_layers=1, conv_dim=[16, 16], conv_kernel=[10, 3],
                                           conv_stride=[5, 2], num_conv_pos_embeddings=5,
                                           num_conv_pos_embedding_groups=2)
    model = Auto.from_config(config)
    assert type(model).model_type == model_type and not model.training
    model.save_pretrained(tmp_path)
    again = Auto.from_pretrained(tmp_path)
    values = (torch.randn(2, 20, config.feature_projection_input_dim) if model_type in FRAME_INPUT_TYPES
              else torch.randn(2, 2000))
    assert torch.equal(logits_of(model, (values,)), logits_of(again, (values,)))


def test_training_backward_works():
    config = audioclf.AutoConfig.for_model("wav2vec2", hidden_size=16, num_attention_heads=2, intermediate_size=20,
                                           num_hidden_layers=1, conv_dim=[16, 16], conv_kernel=[10, 3],
                                           conv_stride=[5, 2], num_conv_pos_embeddings=5,
                                           num_conv_pos_embedding_groups=2, feat_extract_norm="layer", layerdrop=0.0)
    model = Auto.from_config(config).train()
    loss = model(torch.randn(2, 2000)).logits.logsumexp(-1).sum()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_cli_help_does_not_import_torch():
    code = "import sys, audioclf.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    result = subprocess.run([sys.executable, "-m", "audioclf", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "Usage" in result.stdout


def test_loading_and_inference_do_not_import_the_compiler_stack(tmp_path):
    """Building on the meta device must not run ops that import torch._dynamo (most of a second at start-up)."""
    for model_type in TYPES:
        config = audioclf.AutoConfig.for_model(model_type, hidden_size=32, num_attention_heads=2,
                                               intermediate_size=32, num_hidden_layers=1, num_conv_pos_embeddings=8,
                                               num_conv_pos_embedding_groups=2)
        Auto.from_config(config).save_pretrained(tmp_path / model_type)
    # one second of waveform, or 50 filter-bank frames of the default width (160) for feature-frame models
    shapes = [(1, 50, 160) if t in FRAME_INPUT_TYPES else (1, 16000) for t in TYPES]
    code = (
        "import sys, torch, audioclf\n"
        f"for path, shape in {list(zip([str(tmp_path / t) for t in TYPES], shapes))!r}:\n"
        "    model = audioclf.AutoModelForAudioClassification.from_pretrained(path).optimize_for_inference()\n"
        "    with torch.no_grad():\n"
        "        model(torch.randn(*shape))\n"
        "    assert 'torch._dynamo' not in sys.modules, f'torch._dynamo imported by {path}'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_parameters_are_initialised_and_loaded_ones_kept(tmp_path):
    reference = build_reference("hubert", conv_pos_batch_norm=True)
    reference.config.save_pretrained(tmp_path)
    state = {k: v for k, v in reference.state_dict().items()
             if k not in ("classifier.bias", "hubert.encoder.pos_conv_embed.batch_norm.running_var")}
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    model, info = Auto.from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "hubert.encoder.pos_conv_embed.batch_norm.running_var"]
    assert torch.equal(model.classifier.weight, reference.classifier.weight)  # kept as loaded
    assert torch.equal(model.classifier.bias, torch.zeros(5))  # initialised
    batch_norm = model.hubert.encoder.pos_conv_embed.batch_norm
    assert torch.equal(batch_norm.running_var, torch.ones_like(batch_norm.running_var))
    assert torch.equal(batch_norm.running_mean, reference.hubert.encoder.pos_conv_embed.batch_norm.running_mean)
    assert torch.isfinite(logits_of(model, padded_batch())).all()


def test_loading_holds_one_copy_of_the_weights(tmp_path):
    """Peak memory of from_pretrained stays close to one copy of the weights (no random model built first)."""
    config = audioclf.AutoConfig.for_model("wav2vec2", num_hidden_layers=6)
    Auto.from_config(config).save_pretrained(tmp_path)
    size = (tmp_path / "model.safetensors").stat().st_size
    code = (
        "import resource, sys, torch, audioclf\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"audioclf.AutoModelForAudioClassification.from_pretrained({str(tmp_path)!r})\n"
        "print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    before, after = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                            check=True).stdout.split())
    grown = (after - before) * 1024
    assert grown < 1.5 * size, f"loading {size / 2**20:.0f} MiB of weights grew the peak by {grown / 2**20:.0f} MiB"


def test_saved_files_get_ordinary_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        save = tmp_path / "saved"
        config = audioclf.AutoConfig.for_model("wav2vec2", hidden_size=16, num_attention_heads=2, intermediate_size=20,
                                               num_hidden_layers=1, conv_dim=[16], conv_kernel=[10], conv_stride=[5],
                                               num_conv_pos_embeddings=5, num_conv_pos_embedding_groups=2)
        Auto.from_config(config).save_pretrained(save)
        for name in ("model.safetensors", "config.json"):
            assert (save / name).stat().st_mode & 0o777 == 0o644, name
        assert not [p for p in save.iterdir() if p.name.startswith(".")]  # no temporary files left
    finally:
        os.umask(umask)
