"""The training package's parts, each against an independent reference: the schedule against transformers', the
frozen-part cache against the model computing the part itself, the seeded sampling and augmentation draws, and a
resume from a mid-epoch checkpoint against an uninterrupted run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from audioclf.audio.features import FeatureExtractor
from audioclf.config import ModelConfig
from audioclf.models import build_model
from audioclf.train.augment import ClipTransform
from audioclf.train.frozen import FrozenPart
from audioclf.train.loop import TrainingEvents, linear_schedule, train
from audioclf.train.recipe import Recipe
from audioclf.train.sampling import clip_rng, epoch_batches, epoch_order

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=40,
            conv_dim=[16] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
            num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4, classifier_proj_size=16,
            initializer_range=0.2, id2label={0: "a", 1: "b", 2: "c"})
QUIET = dict(hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0,
             mask_time_prob=0.0, mask_feature_prob=0.0)


def test_schedule_equals_transformers() -> None:
    from transformers import get_linear_schedule_with_warmup

    for warmup, total in ((3, 20), (0, 7), (10, 10), (1, 1)):
        parameter = torch.nn.Parameter(torch.zeros(1))
        reference = get_linear_schedule_with_warmup(torch.optim.SGD([parameter], lr=1.0), warmup, total)
        ours = linear_schedule(warmup, total)
        for step in range(total + 2):
            assert ours(step) == pytest.approx(reference.lr_lambdas[0](step), abs=1e-12), (warmup, total, step)


def test_epoch_order_and_batches() -> None:
    labels = np.array([0] * 90 + [1] * 10)
    lengths = np.random.default_rng(0).integers(1000, 9000, 100)
    first = epoch_order(labels, seed=5, epoch=0, balanced=False)
    assert sorted(first.tolist()) == list(range(100))
    assert np.array_equal(first, epoch_order(labels, seed=5, epoch=0, balanced=False))
    assert not np.array_equal(first, epoch_order(labels, seed=5, epoch=1, balanced=False))
    batches = epoch_batches(first, lengths, 8, seed=5, epoch=0)
    assert len(batches) == math.ceil(100 / 8)
    assert sorted(np.concatenate(batches).tolist()) == list(range(100))
    # length bucketing: within a batch lengths are close (sorted groups of 16 batches)
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.5 * np.mean([np.ptp(lengths[first[k:k + 8]]) for k in range(0, 100, 8)])
    drawn = np.concatenate([epoch_order(labels, seed=1, epoch=e, balanced=True) for e in range(20)])
    assert abs(np.mean(labels[drawn]) - 0.5) < 0.05  # each label drawn equally often despite 9:1 counts


def test_clip_transform_draws() -> None:
    rng = np.random.default_rng(0)
    wave = rng.standard_normal(16000).astype(np.float32) * 0.1
    crop = ClipTransform(max_samples=4000, probability=0.0, gain_db=0.0, snr_db=(20.0, 20.0), shift=0)
    cropped, unchanged = crop.apply(wave, clip_rng(1, 2, 3))
    assert cropped.shape == (4000,) and not unchanged
    again, _ = crop.apply(wave, clip_rng(1, 2, 3))
    other, _ = crop.apply(wave, clip_rng(1, 3, 3))
    assert np.array_equal(cropped, again) and not np.array_equal(cropped, other)
    start = int(np.flatnonzero(wave == cropped[0])[0])
    assert np.array_equal(wave[start:start + 4000], cropped)
    short = wave[:3000]
    same, unchanged = crop.apply(short, clip_rng(0, 0, 0))
    assert unchanged and same is short
    noisy = ClipTransform(max_samples=16000, probability=1.0, gain_db=0.0, snr_db=(20.0, 20.0), shift=0)
    out, unchanged = noisy.apply(wave, clip_rng(0, 0, 0))
    assert not unchanged
    snr = 10 * np.log10(np.mean(wave.astype(np.float64) ** 2) / np.mean((out - wave).astype(np.float64) ** 2))
    assert snr == pytest.approx(20.0, abs=0.2)


def _loss_and_grads(model, inputs, labels, frozen=None, features=None):
    model.zero_grad(set_to_none=True)
    if frozen is None:
        logits = model(**inputs).logits
    else:
        output = frozen.batch(frozen.outputs(list(range(len(features))), features, [True] * len(features)))
        with frozen.supplying(output):
            logits = model(**inputs).logits
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("kind", ["features", "base"])
def test_frozen_part_gives_the_models_own_gradients(kind: str) -> None:
    """The cached frozen part (computed per clip, unpadded, by the optimised copy or the base in eval mode) gives
    the loss and gradients the model computes itself, on a padded batch of a mask-respecting model."""
    config = ModelConfig(model_type="wav2vec2", feat_extract_norm="layer", **TINY, **QUIET)
    torch.manual_seed(0)
    model = build_model(config).train()
    if kind == "features":
        model.freeze_feature_encoder()
    else:
        model.freeze_base_model()
    featurizer = FeatureExtractor(return_attention_mask=True)
    rng = np.random.default_rng(0)
    features = [featurizer.featurize(rng.standard_normal(n).astype(np.float32)) for n in (4000, 3200, 3200)]
    inputs = {k: torch.from_numpy(v) for k, v in featurizer.collate(features).items()}
    labels = torch.tensor([0, 2, 1])
    frozen = FrozenPart(model, kind, featurizer.collate, torch.device("cpu"), budget_bytes=1e9)
    if kind == "base":
        model.base_model.eval()  # the reference: the frozen base without dropout (none is configured anyway)
    reference_loss, reference = _loss_and_grads(model, inputs, labels)
    model.train()
    loss, grads = _loss_and_grads(model, inputs, labels, frozen, features)
    assert set(grads) == set(reference)
    assert loss == pytest.approx(reference_loss, rel=1e-5)
    largest = max(float(g.abs().max()) for g in reference.values())
    for name, grad in reference.items():  # relative to the gradient's scale, floored at 1e-3 of the largest one
        scale = max(float(grad.abs().max()), 1e-3 * largest)
        assert float((grads[name] - grad).abs().max()) / scale < 1e-4, name
    assert frozen.summary()["cached_clips"] == 3
    _, again = _loss_and_grads(model, inputs, labels, frozen, features)  # from the cache now
    assert frozen.hits == 3
    for name, grad in grads.items():
        assert torch.equal(again[name], grad), name


def _tone_data(root: Path, per_label: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for label, frequency in (("low", 300.0), ("mid", 800.0), ("high", 1800.0)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for k in range(per_label):
            n = int(16000 * rng.uniform(0.3, 0.6))
            t = np.arange(n) / 16000
            wave = 0.3 * np.sin(2 * np.pi * frequency * rng.uniform(0.9, 1.1) * t) + 0.05 * rng.standard_normal(n)
            sf.write(root / label / f"{k}.wav", wave.astype(np.float32), 16000)
    return root


class _StopAfterCheckpoint(TrainingEvents):
    """Interrupts a run right after its first mid-epoch checkpoint of the second epoch."""

    def __init__(self, checkpoints: Path) -> None:
        self.checkpoints = checkpoints

    def batch_finished(self, done: int, loss: float, accuracy: float) -> None:
        last = self.checkpoints / "last.pt"
        if last.is_file():
            state = torch.load(last, weights_only=True)["state"]
            if state["epochs_done"] == 1 and state["batches_done"] > 0:
                raise KeyboardInterrupt


def test_resume_from_a_mid_epoch_checkpoint_is_exact(tmp_path: Path) -> None:
    """Stopped right after a mid-epoch checkpoint, then resumed: the same weights as a run never stopped (dropout,
    LayerDrop, SpecAugment, augmentation, random crops and the frozen-encoder cache all in play)."""
    data = _tone_data(tmp_path / "data")
    config = tmp_path / "config.json"
    noisy = dict(hidden_dropout=0.1, attention_dropout=0.1, activation_dropout=0.1, layerdrop=0.3,
                 mask_time_prob=0.3, mask_time_length=2, mask_feature_prob=0.2, mask_feature_length=2)
    ModelConfig(model_type="wav2vec2", **TINY, **noisy).save_pretrained(tmp_path)
    recipe = dict(config=str(config), freeze_feature_encoder=True, epochs=3, batch_size=4, max_seconds=0.5,
                  augment=0.5, checkpoint_steps=2, seed=7, threads=1, workers=2, val_split=0.0)
    whole = train(data, tmp_path / "whole", Recipe(**recipe))
    with pytest.raises(KeyboardInterrupt):
        train(data, tmp_path / "stopped", Recipe(**recipe), events=_StopAfterCheckpoint(tmp_path / "stopped/checkpoints"))
    resumed = train(data, tmp_path / "stopped", Recipe(**recipe), resume=True)
    from safetensors.torch import load_file

    a, b = load_file(whole.output / "model.safetensors"), load_file(resumed.output / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert [row["train_loss"] for row in whole.report["epochs"]] == [row["train_loss"] for row in
                                                                      resumed.report["epochs"]]
    assert whole.report["start"]["frozen"]["hits"] > 0  # the cache served clips
