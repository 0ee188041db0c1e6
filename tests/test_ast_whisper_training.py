"""AST and Whisper training against ``transformers`` on the same weights and batch: loss, every parameter's gradient,
dropout and LayerDrop under the same seeds, freezing, gradient checkpointing and state-dict round trips."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from oracle import build_reference, ours_like, spectrogram_batch
from test_training_parity import (TOLERANCE, assert_checkpointing_keeps_outputs_and_gradients, assert_close_step,
                                  gradient_differences, relative, step)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AST = "audio-spectrogram-transformer"
WHISPER = "whisper"

#: every regulariser off, and every one on strongly enough to act on the tiny models
QUIET = {AST: dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
         WHISPER: dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, encoder_layerdrop=0.0)}
#: (with seed 7, LayerDrop skips the first of the two tiny layers and runs the second)
NOISY = {AST: dict(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.15),
         WHISPER: dict(dropout=0.1, attention_dropout=0.15, activation_dropout=0.1, encoder_layerdrop=0.2)}
CASES = {
    AST: [{}, dict(frequency_stride=16, time_stride=16, tie_last_hidden_states=True)],
    WHISPER: [{}, dict(use_weighted_layer_sum=True), dict(use_weighted_layer_sum=True, tie_last_hidden_states=False)],
}
PARAMS = [pytest.param(mt, ov, id=f"{mt}-{i}") for mt, cases in CASES.items() for i, ov in enumerate(cases)]


def regularisers(model_type: str, overrides: dict, noisy: bool) -> dict:
    """QUIET or NOISY for ``model_type``; transformers 5.x cannot combine LayerDrop with the weighted layer sum (see
    test_training_parity.test_layerdrop_with_weighted_sum_reference_fails), so those cases run without it."""
    settings = dict((NOISY if noisy else QUIET)[model_type])
    if overrides.get("use_weighted_layer_sum"):
        settings.pop("encoder_layerdrop", None)
    return settings


@pytest.mark.parametrize("model_type,overrides", PARAMS)
def test_eval_loss_and_gradients_match(model_type, overrides):
    assert_close_step(model_type, overrides, train=False)


@pytest.mark.parametrize("model_type,overrides", PARAMS)
def test_train_mode_without_randomness_matches(model_type, overrides):
    _, _, expected, got = assert_close_step(model_type, {**overrides, **regularisers(model_type, overrides, False)},
                                            train=True, output_hidden_states=True)
    for a, b in zip(got.hidden_states, expected.hidden_states, strict=True):
        assert relative(a, b) <= TOLERANCE


@pytest.mark.parametrize("model_type,overrides", PARAMS)
def test_seeded_train_mode_with_regularisers_matches(model_type, overrides):
    """Same torch seed, every dropout (and Whisper's LayerDrop) on: the same masks and draws, the same loss and
    gradients; and the noise did act."""
    reference, ours, _, got = assert_close_step(
        model_type, {**overrides, **regularisers(model_type, overrides, True)}, train=True, seed=7)
    with torch.no_grad():
        assert relative(got.logits, reference.eval()(spectrogram_batch(reference.config)).logits) > 1e-3


@pytest.mark.parametrize("model_type", list(CASES))
def test_dropout_makes_train_stochastic_and_eval_deterministic(model_type):
    ours = ours_like(build_reference(model_type, **regularisers(model_type, {}, True)))
    values = spectrogram_batch(ours.config)
    with torch.no_grad():
        first, second = (ours.train()(values).logits for _ in range(2))
        assert relative(first, second) > 1e-3
        first, second = (ours.eval()(values).logits for _ in range(2))
        assert torch.equal(first, second)


@pytest.mark.parametrize("model_type", list(CASES))
@pytest.mark.parametrize("problem_type,num_labels", [("multi_label_classification", 5), ("regression", 5),
                                                     ("regression", 1), (None, 5)])
def test_other_losses(model_type, problem_type, num_labels):
    """Multi-label -> BCE with logits, regression -> MSE, None with float labels -> multi-label. AST's reference
    computes these losses itself (it follows problem_type as we do); Whisper's reference always uses cross entropy,
    so its loss is computed from the reference logits."""
    reference = build_reference(model_type, num_labels=num_labels, problem_type=problem_type)
    ours = ours_like(reference)
    generator = torch.Generator().manual_seed(1)
    if problem_type == "regression":
        labels = torch.randn(4, num_labels, generator=generator).squeeze(-1)
        loss_of = lambda logits: F.mse_loss(logits.squeeze(-1), labels)  # noqa: E731
    else:
        labels = (torch.rand(4, num_labels, generator=generator) > 0.5).float()
        loss_of = lambda logits: F.binary_cross_entropy_with_logits(logits, labels)  # noqa: E731
    if model_type == AST:
        _, expected_loss = step(reference, labels=labels)
    else:
        _, expected_loss = step(reference, loss_of=loss_of)
    _, loss = step(ours, labels=labels)
    assert relative(loss, expected_loss) <= TOLERANCE
    assert max(gradient_differences(ours, reference).values()) <= TOLERANCE


@pytest.mark.parametrize("model_type,freeze", [(AST, "freeze_base_model"), (WHISPER, "freeze_base_model"),
                                               (WHISPER, "freeze_encoder")])
def test_frozen_base_trains_the_head_only(model_type, freeze):
    reference = build_reference(model_type, use_weighted_layer_sum=model_type == WHISPER)
    ours = ours_like(reference)
    getattr(ours, freeze)()
    head = ({"classifier.layernorm.weight", "classifier.layernorm.bias", "classifier.dense.weight",
             "classifier.dense.bias"} if model_type == AST else
            {"projector.weight", "projector.bias", "classifier.weight", "classifier.bias", "layer_weights"})
    assert {name for name, p in ours.named_parameters() if p.requires_grad} == head
    if model_type == WHISPER:  # transformers' own freeze_encoder leaves the same parameters trainable
        reference.freeze_encoder()
        assert {name for name, p in reference.named_parameters() if p.requires_grad} == head
    step(ours.train(), seed=2)
    assert {name for name, p in ours.named_parameters() if p.grad is not None} == head


@pytest.mark.parametrize("model_type", list(CASES))
def test_gradient_checkpointing_keeps_outputs_and_gradients(model_type):
    reference = build_reference(model_type, **regularisers(model_type, {}, True))
    assert_checkpointing_keeps_outputs_and_gradients(ours_like(reference))


@pytest.mark.parametrize("model_type,overrides", [(AST, {}), (AST, dict(qkv_bias=False)), (WHISPER, {}),
                                                  (WHISPER, dict(use_weighted_layer_sum=True))])
def test_state_dict_keys_and_strict_round_trips(model_type, overrides):
    reference = build_reference(model_type, **overrides)
    ours = ours_like(reference)  # theirs -> ours, strict
    assert set(ours.state_dict()) == set(reference.state_dict())
    with torch.no_grad():
        for tensor in ours.state_dict().values():
            tensor.add_(1)
    other = build_reference(model_type, seed=99, **overrides)
    result = other.load_state_dict(ours.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in other.state_dict().items():
        assert torch.equal(value, ours.state_dict()[key]), key
