"""Training against ``transformers`` on the same weights and padded batch: loss, every parameter's gradient, the
regularisers of ``train()`` under the same seeds, freezing, gradient checkpointing and the inference split.

``python tests/test_training_parity.py`` prints the per-architecture table of loss and gradient differences.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from audioclf.errors import ModelError
from audioclf.config import ModelConfig
from oracle import (FRAME_INPUT_TYPES, SPECTROGRAM_MODEL_TYPES, build_reference, model_batch, ours_like, padded_batch,
                    spectrogram_batch)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOLERANCE = 1e-4
LABELS = torch.tensor([0, 3, 1, 4])  # one class index per row of the padded batch (5 labels)

#: every regulariser off: train() must then compute what eval() computes, with batch statistics for BatchNorm
QUIET = dict(hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0,
             mask_time_prob=0.0, mask_feature_prob=0.0, conformer_conv_dropout=0.0)
#: every regulariser on, strongly enough that each one acts on the tiny models (WavLM's reference needs
#: mask_feature_min_masks spelled out to draw feature masks)
NOISY = dict(hidden_dropout=0.1, attention_dropout=0.15, activation_dropout=0.1, feat_proj_dropout=0.1, layerdrop=0.3,
             mask_time_prob=0.3, mask_time_length=2, mask_feature_prob=0.2, mask_feature_length=3,
             mask_feature_min_masks=0, conformer_conv_dropout=0.1)

# Post-LN and stable-LN, weighted layer sum, HuBERT's BatchNorm positional conv, SEW-D variants, group and layer conv
# norm, for all six architectures.
CASES = {
    "wav2vec2": [{}, dict(feat_extract_norm="layer", do_stable_layer_norm=True, use_weighted_layer_sum=True,
                          adapter_attn_dim=6, conv_bias=True)],
    "hubert": [dict(conv_pos_batch_norm=True),
               dict(feat_extract_norm="layer", do_stable_layer_norm=True, feat_proj_layer_norm=False,
                    use_weighted_layer_sum=True)],
    "unispeech": [{}, dict(feat_extract_norm="layer", do_stable_layer_norm=True)],
    "unispeech-sat": [dict(use_weighted_layer_sum=True), dict(do_stable_layer_norm=True, feat_extract_norm="layer")],
    "sew": [{}, dict(use_weighted_layer_sum=True, feat_extract_norm="layer", conv_bias=True)],
    "sew-d": [{}, dict(position_buckets=0, max_position_embeddings=24, share_att_key=False),
              dict(pos_att_type=("c2p",), norm_rel_ebd="none", use_weighted_layer_sum=True)],
    "wavlm": [dict(num_buckets=16, max_bucket_distance=40),
              dict(feat_extract_norm="layer", do_stable_layer_norm=True, use_weighted_layer_sum=True)],
    "data2vec-audio": [{}, dict(use_weighted_layer_sum=True, num_conv_pos_embeddings=3)],
    "wav2vec2-conformer": [{}, dict(position_embeddings_type="rotary", use_weighted_layer_sum=True),
                           dict(position_embeddings_type=None, feat_extract_norm="layer")],
    "wav2vec2-bert": [{}, dict(position_embeddings_type="relative", use_intermediate_ffn_before_adapter=True),
                      dict(position_embeddings_type="rotary", use_weighted_layer_sum=True)],
}
PARAMS = [pytest.param(mt, ov, id=f"{mt}-{i}") for mt, cases in CASES.items() for i, ov in enumerate(cases)]


def regularised(model_type: str, settings: dict) -> dict:
    """The ``settings`` ``model_type`` declares (SEW-D has no LayerDrop, only the conformers a conv-module
    dropout)."""
    declared = ModelConfig.fields(model_type)
    return {k: v for k, v in settings.items() if k in declared}


def gradient_differences(ours, reference) -> dict[str, float]:
    """Per parameter: max |ours - reference| over the reference gradient's scale, floored at 1e-3 of the largest
    gradient of the model (gradients that are 0 in exact arithmetic, such as key-projection biases, are noise)."""
    grads = {name: p.grad for name, p in reference.named_parameters() if p.grad is not None}
    largest = max(float(g.abs().max()) for g in grads.values())
    ours_grads = {name: p.grad for name, p in ours.named_parameters()}
    assert set(ours_grads) == {name for name, _ in reference.named_parameters()}
    assert {n for n, g in ours_grads.items() if g is not None} == set(grads), "different parameters got gradients"
    return {name: float((ours_grads[name] - g).abs().max()) / max(float(g.abs().max()), 1e-3 * largest)
            for name, g in grads.items()}


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max()) / max(float(b.abs().max()), 1e-12)


def model_inputs(model) -> dict:
    """The test batch of ``model`` (ours or the reference): the padded waveform or feature-frame batch and its mask,
    or a spectrogram model's random features (AST ``input_values``, Whisper ``input_features``)."""
    model_type = model.config.model_type
    if model_type in SPECTROGRAM_MODEL_TYPES:
        return {"input_features" if model_type == "whisper" else "input_values": spectrogram_batch(model.config)}
    name, values, mask = model_batch(model_type)
    return {name: values, "attention_mask": mask}


def step(model, labels=LABELS, seed: int | None = None, loss_of=None, **inputs):
    """One forward and backward on the model's test batch; returns the output (and the loss that was
    differentiated)."""
    inputs = dict(model_inputs(model), **inputs)
    if seed is not None:
        torch.manual_seed(seed)
        np.random.seed(seed)
    model.zero_grad(set_to_none=True)
    output = model(**inputs, labels=labels if loss_of is None else None)
    loss = output.loss if loss_of is None else loss_of(output.logits)
    loss.backward()
    return output, loss


def compare_step(model_type, overrides, train: bool, seed: int | None = None, **inputs):
    reference = build_reference(model_type, seed=len(overrides), **overrides)
    ours = ours_like(reference)
    reference.train(train)
    ours.train(train)
    expected, expected_loss = step(reference, seed=seed, **inputs)
    got, loss = step(ours, seed=seed, **inputs)
    return reference, ours, expected, got, relative(loss, expected_loss), gradient_differences(ours, reference)


def assert_close_step(model_type, overrides, train, seed=None, **inputs):
    reference, ours, expected, got, loss_diff, grad_diffs = compare_step(model_type, overrides, train, seed, **inputs)
    assert relative(got.logits, expected.logits) <= TOLERANCE
    assert loss_diff <= TOLERANCE, loss_diff
    worst = max(grad_diffs, key=grad_diffs.get)
    assert grad_diffs[worst] <= TOLERANCE, f"gradient of {worst} differs by {grad_diffs[worst]:.2e}"
    return reference, ours, expected, got


# ---------------------------------------------------------------------------------------------------------------------
# eval mode: loss and every gradient
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_type,overrides", PARAMS)
def test_eval_loss_and_gradients_match(model_type, overrides):
    assert_close_step(model_type, overrides, train=False)


@pytest.mark.parametrize("model_type", list(CASES))
@pytest.mark.parametrize("problem_type,num_labels", [
    ("multi_label_classification", 5), ("regression", 5), ("regression", 1), (None, 1), (None, 5),
])
def test_other_losses_equal_torch_losses_on_reference_logits(model_type, problem_type, num_labels):
    """Multi-label -> BCE with logits, regression -> MSE (squeezed for one label), None -> inferred from num_labels
    and the label dtype (float labels: multi-label); the config is left as it was."""
    reference = build_reference(model_type, num_labels=num_labels, problem_type=problem_type)
    ours = ours_like(reference)
    generator = torch.Generator().manual_seed(1)
    if problem_type == "multi_label_classification" or (problem_type is None and num_labels > 1):
        labels = (torch.rand(4, num_labels, generator=generator) > 0.5).float()
        loss_of = lambda logits: F.binary_cross_entropy_with_logits(logits, labels)  # noqa: E731
    elif num_labels == 1:
        labels = torch.randn(4, generator=generator)
        loss_of = lambda logits: F.mse_loss(logits.squeeze(-1), labels)  # noqa: E731
    else:
        labels = torch.randn(4, num_labels, generator=generator)
        loss_of = lambda logits: F.mse_loss(logits, labels)  # noqa: E731
    _, expected_loss = step(reference, loss_of=loss_of)
    _, loss = step(ours, labels=labels)
    assert relative(loss, expected_loss) <= TOLERANCE
    worst = max(gradient_differences(ours, reference).values())
    assert worst <= TOLERANCE
    assert ours.config.problem_type == problem_type


def test_integer_labels_infer_single_label():
    reference = build_reference("wav2vec2")
    ours = ours_like(reference)
    values, mask = padded_batch()
    with torch.no_grad():
        logits = reference(values, attention_mask=mask).logits
        for dtype in (torch.long, torch.int32):
            loss = ours(values, attention_mask=mask, labels=LABELS.to(dtype)).loss
            assert relative(loss, F.cross_entropy(logits, LABELS)) <= TOLERANCE
        assert ours(values, attention_mask=mask).loss is None


# ---------------------------------------------------------------------------------------------------------------------
# train mode
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_type,overrides", PARAMS)
def test_train_mode_without_randomness_matches(model_type, overrides):
    """With every dropout, LayerDrop and mask probability at 0, train() equals transformers' train() (HuBERT's
    BatchNorm then uses batch statistics and updates its running ones)."""
    reference, ours, expected, got = assert_close_step(model_type, {**overrides, **regularised(model_type, QUIET)},
                                                       train=True, output_hidden_states=True)
    for a, b in zip(got.hidden_states, expected.hidden_states, strict=True):
        assert relative(a, b) <= TOLERANCE
    def persistent_buffers(model) -> dict[str, torch.Tensor]:  # BatchNorm statistics, rotary frequencies
        state = model.state_dict()
        return {name: state[name] for name, _ in model.named_buffers() if name in state}

    buffers = persistent_buffers(reference)
    assert set(persistent_buffers(ours)) == set(buffers)
    for name, value in persistent_buffers(ours).items():
        assert torch.allclose(value.float(), buffers[name].float(), atol=1e-6), name


@pytest.mark.parametrize("model_type,overrides", PARAMS)
def test_seeded_train_mode_with_regularisers_matches(model_type, overrides):
    """Same torch and numpy seeds, every regulariser on: the same dropout masks, LayerDrop draws and SpecAugment
    masks, so the same loss and gradients. transformers 5.x cannot run LayerDrop together with the weighted layer
    sum (see test_layerdrop_with_weighted_sum_reference_fails), so those cases run without LayerDrop."""
    noisy = regularised(model_type, NOISY)
    if overrides.get("use_weighted_layer_sum"):
        noisy.pop("layerdrop", None)
    reference, ours, expected, got = assert_close_step(model_type, {**overrides, **noisy}, train=True, seed=7)
    _, values, mask = model_batch(model_type)
    with torch.no_grad():
        reference.eval()
        assert relative(got.logits, reference(values, attention_mask=mask).logits) > 1e-3  # the noise did act


def test_layerdrop_with_weighted_sum_reference_fails():
    """transformers 5.x records hidden states with hooks on the layers, so a layer LayerDrop skips leaves no entry
    and the weighted sum of fewer than ``L + 1`` states fails. Ours treats a skipped layer as the identity (its
    state repeats the previous one, as transformers 4.x did) and trains."""
    overrides = dict(use_weighted_layer_sum=True, layerdrop=0.9, num_hidden_layers=3)
    reference = build_reference("wav2vec2", **overrides).train()
    ours = ours_like(reference).train()
    values, mask = padded_batch()
    torch.manual_seed(0)
    with pytest.raises(RuntimeError):
        reference(values, attention_mask=mask)
    torch.manual_seed(0)
    output = ours(values, attention_mask=mask, labels=LABELS, output_hidden_states=True)
    output.loss.backward()
    states = output.hidden_states
    assert len(states) == 4 and any(a is b for a, b in zip(states, states[1:]))  # a skipped layer repeats
    assert ours.layer_weights.grad is not None


@pytest.mark.parametrize("model_type", list(CASES))
def test_dropout_makes_train_stochastic_and_eval_deterministic(model_type):
    reference = build_reference(model_type, **regularised(model_type, dict(NOISY, mask_time_prob=0.0,
                                                                               mask_feature_prob=0.0)))
    ours = ours_like(reference)
    _, values, mask = model_batch(model_type)
    with torch.no_grad():
        first, second = (ours.train()(values, attention_mask=mask).logits for _ in range(2))
        assert relative(first, second) > 1e-3
        first, second = (ours.eval()(values, attention_mask=mask).logits for _ in range(2))
        assert torch.equal(first, second)


# ---------------------------------------------------------------------------------------------------------------------
# SpecAugment
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,prob,length,min_masks,lengths", [
    ((4, 200), 0.05, 10, 2, None),
    ((4, 200), 0.3, 4, 0, (200, 150, 73, 12)),
    ((3, 50), 0.65, 5, 2, (50, 9, 30)),
    ((2, 768), 0.1, 64, 0, None),  # feature masks
    ((5, 20), 0.0, 10, 2, (20, 11, 3, 20, 15)),  # rows shorter than a span: filler indices
    ((2, 30), 0.2, 7, 1, (1, 30)),
])
def test_mask_sampler_equals_reference(shape, prob, length, min_masks, lengths):
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices

    from audioclf.models.spec_augment import compute_mask_indices

    mask = None
    if lengths is not None:
        mask = torch.arange(shape[1])[None, :] < torch.tensor(lengths)[:, None]
    for seed in range(5):
        np.random.seed(seed)
        expected = _compute_mask_indices(shape, prob, length, mask, min_masks)
        after_reference = np.random.rand()
        np.random.seed(seed)
        got = compute_mask_indices(shape, prob, length, mask, min_masks)
        assert np.array_equal(got, expected) and np.random.rand() == after_reference  # same draws, same count
        got = compute_mask_indices(shape, prob, length, mask, min_masks, random_state=np.random.RandomState(seed))
        assert np.array_equal(got, expected)


def test_mask_longer_than_input_is_a_one_line_error():
    from audioclf.models.spec_augment import compute_mask_indices

    with pytest.raises(ModelError, match="do not fit") as error:
        compute_mask_indices((2, 5), 0.5, 10)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("model_type", ["wav2vec2", "hubert"])
def test_masked_frames_take_masked_spec_embed(model_type):
    """Time spans become masked_spec_embed, channel spans 0; Wav2Vec2 draws the spans within the valid frames,
    HuBERT over the padded length."""
    from audioclf.models.spec_augment import compute_mask_indices

    reference = build_reference(model_type, mask_time_prob=0.5, mask_time_length=3, mask_feature_prob=0.25,
                                mask_feature_length=4)
    base = ours_like(reference).train().base_model
    config = base.config
    hidden = torch.randn(4, 40, config.hidden_size)
    frames = torch.arange(40)[None, :] < torch.tensor([40, 30, 17, 25])[:, None]
    np.random.seed(3)
    masked = base.augment(hidden, frames)
    np.random.seed(3)
    padding = frames if model_type == "wav2vec2" else None
    time = torch.from_numpy(compute_mask_indices((4, 40), 0.5, 3, padding, config.mask_time_min_masks))
    channels = torch.from_numpy(compute_mask_indices((4, config.hidden_size), 0.25, 4, None, 0))
    assert time.any() and channels.any() and not time.all()
    embed = base.masked_spec_embed.detach().masked_fill(channels[:, None, :], 0.0)  # [B, 1, D] per row
    assert torch.equal(masked[time], embed.expand(-1, 40, -1)[time])
    kept = hidden.masked_fill(channels[:, None, :], 0.0)
    assert torch.equal(masked[~time], kept[~time])
    if model_type == "wav2vec2":
        assert not (time & ~frames).any()


@pytest.mark.parametrize("model_type,overrides,present", [
    ("wav2vec2", dict(mask_time_prob=0.0, mask_feature_prob=0.0), False),
    ("wav2vec2", dict(mask_time_prob=0.0, mask_feature_prob=0.1), True),
    ("unispeech-sat", dict(mask_time_prob=0.0, mask_feature_prob=0.0), True),
    ("sew-d", dict(mask_time_prob=0.1), True),
    ("hubert", dict(mask_time_prob=0.0), False),
    ("wavlm", dict(mask_time_prob=0.0, mask_feature_prob=0.1), True),
    ("data2vec-audio", dict(mask_time_prob=0.0), False),
    ("wav2vec2-conformer", {}, True),
    ("wav2vec2-bert", dict(mask_time_prob=0.0), False),
])
def test_masked_spec_embed_exists_exactly_when_reference_has_it(model_type, overrides, present):
    reference = build_reference(model_type, **overrides)
    ours = ours_like(reference)
    key = f"{ours.base_prefix}.masked_spec_embed"
    assert (key in ours.state_dict()) is present is (key in reference.state_dict())


# ---------------------------------------------------------------------------------------------------------------------
# freezing and gradient checkpointing
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_type", list(CASES))
@pytest.mark.parametrize("freeze", ["freeze_feature_encoder", "freeze_base_model"])
def test_frozen_parts_get_no_gradient(model_type, freeze):
    quiet = dict(regularised(model_type, QUIET), mask_time_prob=0.3, mask_time_length=2)  # masked_spec_embed learns
    reference = build_reference(model_type, use_weighted_layer_sum=True, **quiet)
    ours = ours_like(reference)
    if model_type in FRAME_INPUT_TYPES and freeze == "freeze_feature_encoder":  # no conv feature encoder to freeze
        assert not hasattr(reference, freeze)
        with pytest.raises(ModelError, match="no conv feature encoder") as error:
            ours.freeze_feature_encoder()
        assert "\n" not in str(error.value)
        return
    getattr(reference, freeze)()
    getattr(ours, freeze)()
    trainable = {name for name, p in reference.named_parameters() if p.requires_grad}
    assert {name for name, p in ours.named_parameters() if p.requires_grad} == trainable
    step(reference.train(), seed=2)
    step(ours.train(), seed=2)
    learning = {name for name, p in ours.named_parameters() if p.grad is not None}
    assert learning == {name for name, p in reference.named_parameters() if p.grad is not None}
    assert learning and learning <= trainable
    if freeze == "freeze_base_model":
        assert trainable == {"projector.weight", "projector.bias", "classifier.weight", "classifier.bias",
                             "layer_weights"}


@pytest.mark.parametrize("model_type,overrides", [(mt, CASES[mt][i]) for mt, i in
                                                   (("wav2vec2", 1), ("hubert", 0), ("sew", 0), ("sew-d", 1),
                                                    ("wavlm", 0), ("wav2vec2-conformer", 1), ("wav2vec2-bert", 0))])
def test_gradient_checkpointing_keeps_outputs_and_gradients(model_type, overrides):
    reference = build_reference(model_type, **overrides, **regularised(model_type, dict(NOISY, layerdrop=0.2)))
    assert_checkpointing_keeps_outputs_and_gradients(ours_like(reference))


def assert_checkpointing_keeps_outputs_and_gradients(ours) -> None:
    """A seeded training step gives the same logits and gradients with gradient checkpointing as without."""
    ours.train()
    plain, _ = step(ours, seed=5)
    plain_grads = {name: p.grad.clone() for name, p in ours.named_parameters() if p.grad is not None}
    ours.gradient_checkpointing_enable()
    assert ours.is_gradient_checkpointing
    checkpointed, _ = step(ours, seed=5)
    assert torch.equal(checkpointed.logits, plain.logits)
    got = {name: p.grad for name, p in ours.named_parameters() if p.grad is not None}
    assert set(got) == set(plain_grads)
    for name, grad in plain_grads.items():
        assert torch.allclose(got[name], grad, rtol=1e-5, atol=1e-7), name
    ours.gradient_checkpointing_disable()
    assert not ours.is_gradient_checkpointing


# ---------------------------------------------------------------------------------------------------------------------
# the inference split
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_type", ["wav2vec2", "sew-d"])
def test_gradient_mode_never_selects_a_path(model_type):
    """An unoptimized model computes the same bits with and without gradient tracking: no inference shortcut is
    chosen by torch.is_grad_enabled()."""
    from audioclf.models import inference

    ours = ours_like(build_reference(model_type))
    fast = tuple(inference.FAST_PATHS.values())
    assert not any(isinstance(module, fast) for module in ours.modules())
    values, mask = padded_batch()
    with torch.no_grad():
        without = ours(values, attention_mask=mask).logits
    with torch.enable_grad():
        tracked = ours(values, attention_mask=mask).logits
    assert tracked.requires_grad and torch.equal(tracked.detach(), without)


@pytest.mark.parametrize("model_type", ["wav2vec2", "sew-d"])
def test_optimized_model_refuses_to_train(model_type, tmp_path):
    from audioclf.models import inference

    reference = build_reference(model_type)
    ours = ours_like(reference).optimize_for_inference()
    assert any(isinstance(module, tuple(inference.FAST_PATHS.values())) for module in ours.modules())
    # non-persistent caches: the state dict holds the same tensors as before (weight norm folded)
    assert not any("position_keys" in key or "position_embeddings" in key for key in ours.state_dict())
    values, mask = padded_batch()
    with torch.no_grad():
        assert relative(ours(values, attention_mask=mask).logits,
                        reference(values, attention_mask=mask).logits) <= TOLERANCE
    for attempt in (lambda: ours.train(), lambda: ours.train(True)):
        with pytest.raises(ModelError, match="optimized for inference") as error:
            attempt()
        assert "\n" not in str(error.value)
    assert not ours.training
    ours.eval()  # switching to eval stays allowed
    with pytest.raises(ModelError, match="cannot compute gradients"):
        ours(values.clone().requires_grad_(), attention_mask=mask)
    ours.classifier.weight.requires_grad_(True)
    with pytest.raises(ModelError, match="cannot compute gradients"):
        ours(values, attention_mask=mask, labels=LABELS)
    with pytest.raises(ModelError, match="save the model before"):
        ours.save_pretrained(tmp_path)


# ---------------------------------------------------------------------------------------------------------------------
# state dicts
# ---------------------------------------------------------------------------------------------------------------------
KEY_CASES = [
    ("wav2vec2", {}), ("wav2vec2", dict(mask_time_prob=0.0, feat_extract_norm="layer", do_stable_layer_norm=True,
                                        adapter_attn_dim=4, use_weighted_layer_sum=True, conv_bias=True)),
    ("hubert", dict(conv_pos_batch_norm=True)), ("hubert", dict(feat_proj_layer_norm=False, mask_time_prob=0.0)),
    ("unispeech", {}), ("unispeech", dict(mask_time_prob=0.0, do_stable_layer_norm=True)),
    ("unispeech-sat", dict(mask_time_prob=0.0)), ("unispeech-sat", dict(use_weighted_layer_sum=True)),
    ("sew", {}), ("sew", dict(mask_time_prob=0.0, conv_dim=(32, 32, 32, 48))),
    ("sew-d", {}), ("sew-d", dict(share_att_key=False, position_buckets=0, mask_time_prob=0.0)),
    ("sew-d", dict(pos_att_type=(), relative_attention=False, norm_rel_ebd="none", mask_feature_prob=0.1)),
    ("wavlm", {}), ("wavlm", dict(mask_time_prob=0.0, do_stable_layer_norm=True, use_weighted_layer_sum=True)),
    ("data2vec-audio", {}), ("data2vec-audio", dict(mask_time_prob=0.0, conv_bias=True)),
    ("wav2vec2-conformer", {}), ("wav2vec2-conformer", dict(position_embeddings_type="rotary", mask_time_prob=0.0)),
    ("wav2vec2-conformer", dict(position_embeddings_type=None)),
    ("wav2vec2-bert", {}), ("wav2vec2-bert", dict(position_embeddings_type="relative", mask_time_prob=0.0)),
    ("wav2vec2-bert", dict(position_embeddings_type="rotary", use_intermediate_ffn_before_adapter=True)),
]


@pytest.mark.parametrize("model_type,overrides", KEY_CASES)
def test_state_dict_keys_and_strict_round_trips(model_type, overrides):
    reference = build_reference(model_type, **overrides)
    ours = ours_like(reference)  # theirs -> ours, strict
    assert set(ours.state_dict()) == set(reference.state_dict())
    with torch.no_grad():  # ours -> theirs, strict: change every tensor, load back, compare
        for tensor in ours.state_dict().values():
            tensor.add_(1) if tensor.is_floating_point() else tensor.add_(3)
    other = build_reference(model_type, seed=99, **overrides)
    result = other.load_state_dict(ours.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in other.state_dict().items():
        assert torch.equal(value, ours.state_dict()[key]), key


def difference_table() -> str:
    """Per architecture, the largest relative difference (over its CASES) of the loss and of the parameter
    gradients: eval mode, and seeded train mode with every regulariser on."""
    lines = ["| architecture | eval loss | eval gradients | train loss (seeded, regularised) | train gradients |",
             "|---|---|---|---|---|"]
    for model_type, cases in CASES.items():
        worst = [0.0] * 4
        for overrides in cases:
            noisy = regularised(model_type, NOISY)
            if overrides.get("use_weighted_layer_sum"):
                noisy.pop("layerdrop", None)
            for column, (train, seed, extra) in enumerate(((False, None, {}), (True, 7, noisy))):
                *_, loss_diff, grad_diffs = compare_step(model_type, {**overrides, **extra}, train, seed)
                worst[2 * column] = max(worst[2 * column], loss_diff)
                worst[2 * column + 1] = max(worst[2 * column + 1], max(grad_diffs.values()))
        lines.append(f"| {model_type} | " + " | ".join(f"{value:.1e}" for value in worst) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(difference_table())
