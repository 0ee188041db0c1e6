"""Spectral featurizers and their DSP against transformers' AST, Whisper and SeamlessM4T extractors."""

from __future__ import annotations

import json
import logging
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import transformers
from transformers import AutoFeatureExtractor
from transformers import ASTFeatureExtractor as TheirAST
from transformers import SeamlessM4TFeatureExtractor as TheirSeamless
from transformers import WhisperFeatureExtractor as TheirWhisper
from transformers import audio_utils

from audioclf.audio import spectrogram as dsp
from audioclf.audio.spectral_features import (
    FEATURE_EXTRACTOR_CLASSES,
    ASTFeatureExtractor,
    ASTFeatureExtractorConfig,
    SeamlessM4TFeatureExtractor,
    SeamlessM4TFeatureExtractorConfig,
    WhisperFeatureExtractor,
    WhisperFeatureExtractorConfig,
    spectral_feature_extractor_from_pretrained,
)
from audioclf.errors import AudioError, ConfigError

DATA = Path(__file__).parent / "data"
AUDIO = DATA / "audio"
REAL_CONFIGS = DATA / "configs"
RATE = 16000
RELATIVE_TOLERANCE = 1e-4  # of the feature scale (the largest finite |value| transformers returns)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")


@pytest.fixture(autouse=True, scope="module")
def _quiet_sampling_rate_warnings():
    transformers.logging.set_verbosity_error()
    logging.getLogger("audioclf.audio.spectral_features").setLevel(logging.ERROR)
    yield
    transformers.logging.set_verbosity_warning()
    logging.getLogger("audioclf.audio.spectral_features").setLevel(logging.NOTSET)


def noise(samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # coloured noise with a DC offset: pre-emphasis, DC removal and the log floors all matter
    white = rng.standard_normal(samples + 1)
    return (0.2 * (white[1:] + 0.9 * white[:-1]) + 0.05).astype(np.float32)


def clip(name: str, dtype: str = "float32") -> np.ndarray:
    samples, rate = soundfile.read(AUDIO / name, dtype=dtype)
    assert rate == RATE and samples.ndim == 1
    return samples


def as_array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, list):
        return np.stack([as_array(row) for row in value])
    return np.asarray(value)


def assert_close(ours, theirs, what: str = "") -> float:
    """Same shape, dtype and NaN positions; max |difference| within RELATIVE_TOLERANCE of the feature scale (masks
    exactly equal). Returns the difference relative to the scale."""
    ours, theirs = as_array(ours), as_array(theirs)
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    assert ours.dtype == theirs.dtype, (what, ours.dtype, theirs.dtype)
    if theirs.dtype.kind in "iub":
        np.testing.assert_array_equal(ours, theirs, err_msg=what)
        return 0.0
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=what)
    finite = np.isfinite(theirs)
    if not finite.any():
        return 0.0
    scale = max(float(np.abs(theirs[finite]).max()), 1e-6)
    worst = float(np.abs(ours[finite].astype(np.float64) - theirs[finite]).max()) / scale
    assert worst <= RELATIVE_TOLERANCE, f"{what}: max difference {worst:.3g} of the scale {scale:.3g}"
    return worst


def assert_same_output(ours, theirs) -> None:
    assert set(ours.keys()) == set(theirs.keys())
    for key in theirs:
        assert type(ours[key]) is type(theirs[key]) or isinstance(theirs[key], np.ndarray), key
        assert_close(ours[key], theirs[key], key)


# ---------------------------------------------------------------------------------------------------------- DSP
FILTER_BANKS = {
    "kaldi-128": dict(num_frequency_bins=257, num_mel_filters=128, min_frequency=20, max_frequency=8000,
                      sampling_rate=16000, mel_scale="kaldi", triangularize_in_mel_space=True),
    "kaldi-80-8k": dict(num_frequency_bins=257, num_mel_filters=80, min_frequency=20, max_frequency=4000,
                        sampling_rate=8000, mel_scale="kaldi", triangularize_in_mel_space=True),
    "slaney-80": dict(num_frequency_bins=201, num_mel_filters=80, min_frequency=0.0, max_frequency=8000.0,
                      sampling_rate=16000, norm="slaney", mel_scale="slaney"),
    "slaney-128": dict(num_frequency_bins=201, num_mel_filters=128, min_frequency=0.0, max_frequency=8000.0,
                       sampling_rate=16000, norm="slaney", mel_scale="slaney"),
    "htk-40": dict(num_frequency_bins=257, num_mel_filters=40, min_frequency=30.0, max_frequency=7000.0,
                   sampling_rate=16000, mel_scale="htk"),
    "htk-slaney-norm-22k": dict(num_frequency_bins=513, num_mel_filters=64, min_frequency=0.0, max_frequency=11025.0,
                                sampling_rate=22050, norm="slaney", mel_scale="htk"),
}


@pytest.mark.parametrize("name", FILTER_BANKS)
def test_mel_filter_bank_matches_transformers(name: str) -> None:
    kw = FILTER_BANKS[name]
    expected = audio_utils.mel_filter_bank(**kw)
    ours = dsp.mel_filter_bank(
        kw["num_frequency_bins"], kw["num_mel_filters"], kw["min_frequency"], kw["max_frequency"], kw["sampling_rate"],
        scale=kw["mel_scale"], slaney_norm=kw.get("norm") == "slaney",
        triangles_in_mel_space=kw.get("triangularize_in_mel_space", False),
    )
    assert ours.shape == expected.shape and ours.dtype == np.float64
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", ["htk", "kaldi", "slaney"])
def test_mel_scale_matches_transformers(scale: str) -> None:
    hertz = np.array([0.0, 20.0, 700.0, 999.999, 1000.0, 1000.001, 4000.0, 8000.0, 22050.0])
    expected = audio_utils.hertz_to_mel(hertz.copy(), scale)
    np.testing.assert_allclose(dsp.hertz_to_mel(hertz, scale), expected, rtol=1e-13)
    mels = audio_utils.hertz_to_mel(hertz.copy(), scale)
    np.testing.assert_allclose(dsp.mel_to_hertz(mels, scale), audio_utils.mel_to_hertz(mels.copy(), scale), rtol=1e-12)
    np.testing.assert_allclose(dsp.mel_to_hertz(dsp.hertz_to_mel(hertz, scale), scale), hertz, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("name", ["hann", "hamming", "povey", "boxcar"])
@pytest.mark.parametrize("periodic", [True, False])
def test_window_matches_transformers(name: str, periodic: bool) -> None:
    for length in (400, 401, 512):
        np.testing.assert_array_equal(dsp.window_function(name, length, periodic=periodic),
                                      audio_utils.window_function(length, name, periodic=periodic))


@pytest.mark.parametrize("window", ["povey", "hann", "hamming"])
@pytest.mark.parametrize("samples", [400, 401, 559, 560, 4000, 4321])
def test_kaldi_log_mel_matches_transformers_spectrogram(window: str, samples: int) -> None:
    wave = noise(samples) * 2**15
    filters = audio_utils.mel_filter_bank(**FILTER_BANKS["kaldi-128"])
    taper = audio_utils.window_function(400, window, periodic=False)
    expected = audio_utils.spectrogram(
        wave, taper, frame_length=400, hop_length=160, fft_length=512, power=2.0, center=False, preemphasis=0.97,
        mel_filters=filters, log_mel="log", mel_floor=1.192092955078125e-07, remove_dc_offset=True,
    ).T
    ours = dsp.kaldi_log_mel(wave, dsp.window_function(window, 400, periodic=False), filters, hop_length=160,
                             fft_length=512)
    assert ours.shape == expected.shape == (dsp.frame_count(samples, 400, 160), 128)
    assert_close(ours.astype(np.float32), expected)


def test_kaldi_framing_below_one_frame() -> None:
    filters = audio_utils.mel_filter_bank(**FILTER_BANKS["kaldi-80-8k"])
    taper = audio_utils.window_function(400, "povey", periodic=False)
    for samples in (240, 399):  # transformers gives zero frames here ...
        expected = audio_utils.spectrogram(noise(samples), taper, 400, 160, 512, power=2.0, center=False,
                                           mel_filters=filters, log_mel="log").T
        assert expected.shape == (0, 80)
        assert dsp.kaldi_log_mel(noise(samples), taper, filters, hop_length=160, fft_length=512).shape == (0, 80)
    with pytest.raises(ValueError):  # ... and fails below 240; we give zero frames too
        audio_utils.spectrogram(noise(239), taper, 400, 160, 512, power=2.0, center=False)
    assert dsp.kaldi_log_mel(noise(1), taper, filters, hop_length=160, fft_length=512).shape == (0, 80)


@pytest.mark.parametrize("n_fft, hop", [(400, 160), (512, 128), (401, 100)])
def test_centered_log10_mel_matches_transformers_spectrogram(n_fft: int, hop: int) -> None:
    wave = noise(8000)
    filters = audio_utils.mel_filter_bank(n_fft // 2 + 1, 80, 0.0, 8000.0, RATE, norm="slaney", mel_scale="slaney")
    taper = audio_utils.window_function(n_fft, "hann")
    expected = audio_utils.spectrogram(wave, taper, n_fft, hop, power=2.0, mel_filters=filters, log_mel="log10").T
    ours = dsp.centered_log10_mel(wave, dsp.window_function("hann", n_fft, periodic=True), filters, hop_length=hop)
    assert ours.shape == expected.shape == (dsp.frame_count(8000, n_fft, hop, center=True), 80)
    assert dsp.frame_count(8000, n_fft, hop, center=True) == (1 + 8000 // hop if n_fft % 2 == 0 else 80)
    assert_close(ours.astype(np.float32), expected)


def test_constant_tail_frames_are_computed_once_without_changing_them() -> None:
    rng = np.random.default_rng(3)
    for n_fft, hop in [(400, 160), (401, 160), (64, 64), (65, 100), (400, 7)]:
        taper = dsp.window_function("hann", n_fft, periodic=True)
        filters = dsp.mel_filter_bank(n_fft // 2 + 1, 8, 0.0, 8000.0, RATE, scale="slaney", slaney_norm=True)
        for samples in (700, 1000):
            for start in range(1, samples + 1, 3):
                wave = rng.standard_normal(samples)
                wave[start:] = 0.25
                full = dsp.centered_log10_mel(wave, taper, filters, hop_length=hop)
                shortcut = dsp.centered_log10_mel(wave, taper, filters, hop_length=hop, constant_from=start)
                np.testing.assert_allclose(shortcut, full, rtol=0, atol=1e-12, err_msg=f"{n_fft} {hop} {start}")


# ---------------------------------------------------------------------------------------------------------- AST
AST_INPUTS = {
    "noise-1s": lambda: noise(RATE),
    "noise-3.7s": lambda: noise(59_200, seed=1),
    "one-frame": lambda: noise(400),
    "one-frame-plus-1": lambda: noise(401),
    "two-frames": lambda: noise(560),
    "below-one-frame": lambda: noise(399),
    "yes": lambda: clip("speechcommands_yes_1000ms_16k_mono.wav"),
    "silence": lambda: clip("speechcommands_silence_1000ms_16k_mono.wav"),
    "yes-30ms": lambda: clip("speechcommands_yes_30ms_16k_mono.wav"),
    "librispeech-14.8s-truncated": lambda: clip("librispeech_5703-47212-0000_16k_mono.ogg"),
}


@pytest.mark.parametrize("name", AST_INPUTS)
def test_ast_matches_transformers(name: str) -> None:
    wave = AST_INPUTS[name]()
    expected = TheirAST()(wave, sampling_rate=RATE, return_tensors="np")
    ours = ASTFeatureExtractor()
    assert_same_output(ours(wave, sampling_rate=RATE, return_tensors="np"), expected)
    assert_same_output(ours.collate([ours.featurize(wave)]), expected)


def test_ast_max_length_boundary() -> None:
    # the real speech-commands config: 128 frames of 128 mel bins
    config = json.loads((REAL_CONFIGS / next(p.name for p in REAL_CONFIGS.iterdir() if p.name.startswith("FSis"))
                         / "preprocessor_config.json").read_text())
    theirs, ours = TheirAST(**config), ASTFeatureExtractor(ASTFeatureExtractorConfig.from_dict(config))
    assert ours.max_samples == 400 + 127 * 160
    for samples in (ours.max_samples - 1, ours.max_samples, ours.max_samples + 159, ours.max_samples + 160, 30_000):
        wave = noise(samples, seed=samples)
        expected = theirs(wave, sampling_rate=RATE, return_tensors="np")
        assert_same_output(ours(wave, sampling_rate=RATE, return_tensors="np"), expected)
    # the samples past max_samples do not change the features
    wave = noise(30_000)
    np.testing.assert_array_equal(ours.featurize(wave), ours.featurize(wave[: ours.max_samples]))


@pytest.mark.parametrize("settings", [
    dict(do_normalize=False),
    dict(mean=1.5, std=0.25, max_length=50),
    dict(num_mel_bins=64, max_length=200),
    dict(sampling_rate=8000, num_mel_bins=40, max_length=100),
])
def test_ast_config_switches_match_transformers(settings: dict) -> None:
    waves = [noise(12_345, seed=1), noise(RATE, seed=2)]
    rate = settings.get("sampling_rate", RATE)
    expected = TheirAST(**settings)(waves, sampling_rate=rate)
    ours = ASTFeatureExtractor(**settings)
    assert_same_output(ours(waves, sampling_rate=rate), expected)
    assert_same_output(ours.collate([ours.featurize(w) for w in waves]), TheirAST(**settings)(
        waves, sampling_rate=rate, return_tensors="np"))


def test_ast_input_types_match_transformers() -> None:
    theirs, ours = TheirAST(max_length=120), ASTFeatureExtractor(max_length=120)
    wave = noise(RATE)
    int16 = clip("speechcommands_no_1000ms_16k_mono.wav", dtype="int16")  # used as numbers, not rescaled
    for raw in (wave.astype(np.float64), int16, wave[:3000].tolist(), np.stack([wave, wave[::-1]]),
                [wave, wave[:5000], int16]):
        for tensors in (None, "np", "pt"):  # fixed-size items stack whatever their input lengths
            assert_same_output(ours(raw, sampling_rate=RATE, return_tensors=tensors),
                               theirs(raw, sampling_rate=RATE, return_tensors=tensors))
    assert isinstance(ours([wave], sampling_rate=RATE)["input_values"], list)
    assert isinstance(ours([wave], sampling_rate=RATE, return_tensors="pt")["input_values"], torch.Tensor)


def test_ast_input_shorter_than_transformers_accepts_is_all_padding() -> None:
    ours = ASTFeatureExtractor(max_length=20)
    empty = TheirAST(max_length=20)(noise(240), sampling_rate=RATE, return_tensors="np")["input_values"][0]
    with pytest.raises(ValueError):
        TheirAST(max_length=20)(noise(239), sampling_rate=RATE)
    for samples in (1, 100, 239, 240, 399):
        np.testing.assert_array_equal(ours.featurize(noise(samples)), empty)
    assert ours.exact_padding(None) and ours.min_samples == 400


# ------------------------------------------------------------------------------------------------------ Whisper
WHISPER_INPUTS = {
    "noise-1s": lambda: noise(RATE),
    "one-sample": lambda: noise(1),
    "200-samples": lambda: noise(200),
    "yes": lambda: clip("speechcommands_yes_1000ms_16k_mono.wav"),
    "silence": lambda: clip("speechcommands_silence_1000ms_16k_mono.wav"),
    "librispeech": lambda: clip("librispeech_5703-47212-0000_16k_mono.ogg"),
    "31s-truncated": lambda: noise(31 * RATE, seed=5),
}


@pytest.mark.parametrize("name", WHISPER_INPUTS)
def test_whisper_matches_transformers(name: str) -> None:
    wave = WHISPER_INPUTS[name]()
    expected = TheirWhisper()(wave, sampling_rate=RATE)  # torch's STFT, as transformers runs when torch is present
    ours = WhisperFeatureExtractor()
    assert_same_output(ours(wave, sampling_rate=RATE), expected)
    assert_same_output(ours.collate([ours.featurize(wave)]), expected)
    assert ours.featurize(wave).shape == (80, 3000)


@pytest.mark.parametrize("name", ["noise-1s", "librispeech"])
def test_whisper_matches_the_transformers_numpy_path(name: str) -> None:
    wave = WHISPER_INPUTS[name]()
    padded = np.pad(wave, (0, 480_000 - wave.shape[0]))[np.newaxis]
    expected = TheirWhisper(feature_size=128)._np_extract_fbank_features(padded, "cpu")
    assert_close(WhisperFeatureExtractor(feature_size=128).featurize(wave)[np.newaxis], expected.astype(np.float32))


WHISPER_SWITCHES = {
    "128-mels": (dict(feature_size=128), dict()),
    "do-normalize": (dict(), dict(do_normalize=True)),
    "frame-mask-longest": (dict(), dict(return_attention_mask=True, padding="longest", pad_to_multiple_of=320)),
    "frame-mask-uneven": (dict(), dict(return_attention_mask=True, padding="longest")),
    "config-mask-is-per-sample": (dict(return_attention_mask=True), dict()),
    "mask-off-overrides-config": (dict(return_attention_mask=True), dict(return_attention_mask=False)),
    "left-padding-value": (dict(padding_side="left", padding_value=0.1), dict(padding="longest", do_normalize=True)),
    "short-chunks": (dict(chunk_length=2, n_fft=512, hop_length=128), dict()),
    "max-length": (dict(), dict(max_length=24_000)),
    "no-truncation": (dict(chunk_length=1), dict(truncation=False, padding="longest")),
}


@pytest.mark.parametrize("name", WHISPER_SWITCHES)
def test_whisper_switches_match_transformers(name: str) -> None:
    settings, call = WHISPER_SWITCHES[name]
    waves = [noise(RATE + 77, seed=1), noise(9_999, seed=2), noise(21_000, seed=3)]
    expected = TheirWhisper(**settings)(waves, sampling_rate=RATE, **call)
    assert_same_output(WhisperFeatureExtractor(**settings)(waves, sampling_rate=RATE, **call), expected)


def test_whisper_input_types_and_batches() -> None:
    theirs, ours = TheirWhisper(), WhisperFeatureExtractor()
    int16 = clip("speechcommands_no_1000ms_16k_mono.wav", dtype="int16")  # used as numbers, not rescaled
    waves = [noise(RATE), noise(3000, seed=1), int16.astype(np.float32) / 2**15]
    for raw in (waves[0].astype(np.float64), int16, waves[1].tolist(), waves):
        for tensors in (None, "pt"):
            assert_same_output(ours(raw, sampling_rate=RATE, return_tensors=tensors),
                               theirs(raw, sampling_rate=RATE, return_tensors=tensors))
    batch = ours.collate([ours.featurize(w) for w in waves])
    assert_same_output(batch, theirs(waves, sampling_rate=RATE))
    assert ours.max_samples == 480_000 and ours.exact_padding(None)


def test_whisper_dither_adds_noise() -> None:
    silence = np.zeros(RATE, dtype=np.float32)
    plain = WhisperFeatureExtractor().featurize(silence)
    first, second = (WhisperFeatureExtractor(dither=1e-3).featurize(silence) for _ in range(2))
    assert np.all(plain == plain[0, 0])  # digital silence: one value everywhere
    assert np.isfinite(first).all() and not np.array_equal(first, second)
    assert first[:, :100].std() > 0.01  # the dithered second of audio varies


# ------------------------------------------------------------------------------------------------- SeamlessM4T
SEAMLESS_INPUTS = {
    "noise-batch": lambda: [noise(RATE, seed=1), noise(9_999, seed=2), noise(23_456, seed=3)],
    "yes": lambda: clip("speechcommands_yes_1000ms_16k_mono.wav"),
    "silence": lambda: clip("speechcommands_silence_1000ms_16k_mono.wav"),
    "librispeech": lambda: clip("librispeech_5703-47212-0000_16k_mono.ogg"),
    "one-frame-is-nan": lambda: clip("speechcommands_yes_30ms_16k_mono.wav"),
    "two-frames": lambda: noise(560),
    "three-frames": lambda: noise(720),
}


@pytest.mark.parametrize("name", SEAMLESS_INPUTS)
def test_seamless_matches_transformers(name: str) -> None:
    raw = SEAMLESS_INPUTS[name]()
    expected = TheirSeamless()(raw, sampling_rate=RATE)
    ours = SeamlessM4TFeatureExtractor()
    assert_same_output(ours(raw, sampling_rate=RATE), expected)
    items = [ours.featurize(w) for w in (raw if isinstance(raw, list) else [raw])]
    assert_same_output(ours.collate(items), expected)


SEAMLESS_SWITCHES = {
    "real-w2v-bert-padding-1": (dict(padding_value=1), dict()),
    "stride-3": (dict(stride=3), dict()),
    "stride-1": (dict(stride=1), dict()),
    "left-padding": (dict(padding_side="left"), dict()),
    "no-multiple": (dict(), dict(pad_to_multiple_of=None)),
    "multiple-of-4-stride-3": (dict(stride=3), dict(pad_to_multiple_of=4)),
    "max-length-truncation": (dict(), dict(padding="max_length", max_length=81, truncation=True)),
    "truncation-longest": (dict(), dict(max_length=70, truncation=True)),
    "config-without-mask": (dict(return_attention_mask=False), dict()),
    "call-without-mask": (dict(), dict(return_attention_mask=False)),
    "not-normalized": (dict(), dict(do_normalize_per_mel_bins=False)),
    "40-mels": (dict(num_mel_bins=40, feature_size=40), dict()),
    "tensors-pt": (dict(), dict(return_tensors="pt")),
}


@pytest.mark.parametrize("name", SEAMLESS_SWITCHES)
def test_seamless_switches_match_transformers(name: str) -> None:
    settings, call = SEAMLESS_SWITCHES[name]
    waves = [noise(RATE, seed=1), noise(9_999, seed=2), noise(13_000, seed=3)]
    expected = TheirSeamless(**settings)(waves, sampling_rate=RATE, **call)
    assert_same_output(SeamlessM4TFeatureExtractor(**settings)(waves, sampling_rate=RATE, **call), expected)


def test_seamless_input_types() -> None:
    theirs, ours = TheirSeamless(), SeamlessM4TFeatureExtractor()
    int16 = clip("speechcommands_no_1000ms_16k_mono.wav", dtype="int16")
    # transformers turns batch items into float32 (a single int16 array overflows its * 2**15 there)
    for raw in ([int16], noise(RATE).astype(np.float64), noise(4000).tolist(), np.stack([noise(900), noise(900, 1)])):
        assert_same_output(ours(raw, sampling_rate=RATE), theirs(raw, sampling_rate=RATE))
    assert ours.max_samples is None and ours.min_samples == 560
    assert np.isfinite(ours.featurize(noise(560))).all() and np.isnan(ours.featurize(noise(559))).all()


def _valid_stacked_frames(extractor: SeamlessM4TFeatureExtractor, items: list[np.ndarray]) -> list[np.ndarray]:
    batch = extractor.collate(items)
    return [features[mask == 1] for features, mask in zip(batch["input_features"], batch["attention_mask"])]


@pytest.mark.parametrize("stride", [1, 2, 3, 4])
def test_seamless_exact_padding_says_whether_batching_changes_a_clip(stride: int) -> None:
    extractor = SeamlessM4TFeatureExtractor(stride=stride)
    items = [extractor.featurize(noise(400 + 160 * (frames - 1), seed=frames)) for frames in range(2, 15)]
    longest = extractor.featurize(noise(400 + 160 * 20))
    unchanged = all(
        all(np.array_equal(alone, together) for alone, together in zip(
            _valid_stacked_frames(extractor, [item]), _valid_stacked_frames(extractor, [item, longest])[:1]))
        for item in items
    )
    assert extractor.exact_padding(None) == unchanged
    assert extractor.exact_padding(None) == (stride <= 2)
    assert not extractor.exact_padding(types.SimpleNamespace(add_adapter=True))
    assert not SeamlessM4TFeatureExtractor(stride=stride, padding_side="left").exact_padding(None)
    assert not SeamlessM4TFeatureExtractor(stride=stride, return_attention_mask=False).exact_padding(None)


# -------------------------------------------------------------------------------------------------------- configs
EXTRACTORS = {
    "ast": (ASTFeatureExtractor, TheirAST, dict(num_mel_bins=64, max_length=300, mean=-3.0, std=2.0)),
    "whisper": (WhisperFeatureExtractor, TheirWhisper, dict(feature_size=128, chunk_length=10, dither=0.0)),
    "seamless": (SeamlessM4TFeatureExtractor, TheirSeamless, dict(stride=3, padding_value=1.0, num_mel_bins=40)),
}


@pytest.mark.parametrize("name", EXTRACTORS)
def test_default_config_dict_matches_transformers(name: str) -> None:
    ours, theirs, _ = EXTRACTORS[name]
    assert ours().to_dict() == theirs().to_dict()
    for key, value in theirs().to_dict().items():  # the attributes transformers code reads
        if key != "feature_extractor_type":
            assert getattr(ours(), key) == value, key
    with pytest.raises(AttributeError):
        ours().extra_thing


@pytest.mark.parametrize("name", EXTRACTORS)
def test_config_round_trip_through_transformers(name: str, tmp_path: Path) -> None:
    ours_cls, theirs_cls, settings = EXTRACTORS[name]
    ours = ours_cls(**settings, processor_class="SomeProcessor", custom_key=[1, 2])
    ours.save_pretrained(tmp_path / "ours")
    loaded = AutoFeatureExtractor.from_pretrained(tmp_path / "ours")
    assert type(loaded) is theirs_cls
    expected = theirs_cls(**settings)
    for key, value in expected.to_dict().items():
        assert loaded.to_dict()[key] == value, key
    assert loaded.custom_key == [1, 2]
    wave = noise(9_000)
    assert_same_output(ours(wave, sampling_rate=RATE), loaded(wave, sampling_rate=RATE))
    # and back: what transformers writes, we read
    loaded.save_pretrained(tmp_path / "theirs")
    again = ours_cls.from_pretrained(tmp_path / "theirs")
    assert again.config.extra["custom_key"] == [1, 2]
    assert {k: v for k, v in again.to_dict().items() if k != "processor_class"} == {
        k: v for k, v in ours.to_dict().items() if k != "processor_class"}
    assert ours.config.to_json_string() == json.dumps(ours.to_dict(), indent=2, sort_keys=True) + "\n"


def _spectral_type(directory: Path) -> bool:
    """Whether a real-config folder's feature extractor is one of the spectral featurizers."""
    for name in ("processor_config.json", "preprocessor_config.json"):
        if (directory / name).is_file():
            data = json.loads((directory / name).read_text())
            data = data.get("feature_extractor", data)
            return data.get("feature_extractor_type") in FEATURE_EXTRACTOR_CLASSES
    return False


REAL = sorted(path.name for path in REAL_CONFIGS.iterdir() if path.is_dir() and _spectral_type(path))


@pytest.mark.parametrize("name", REAL)
def test_real_configs_parse_and_featurize(name: str) -> None:
    directory = REAL_CONFIGS / name
    ours = spectral_feature_extractor_from_pretrained(directory)
    theirs = AutoFeatureExtractor.from_pretrained(directory)
    assert type(ours).__name__ == type(theirs).__name__
    assert type(ours).from_pretrained(directory).to_dict() == ours.to_dict()
    wave = clip("speechcommands_yes_1000ms_16k_mono.wav")
    assert_same_output(ours(wave, sampling_rate=RATE), theirs(wave, sampling_rate=RATE))
    assert_same_output(ours.collate([ours.featurize(wave)]), theirs(wave, sampling_rate=RATE, return_tensors="np"))


def test_real_config_values() -> None:
    assert len(REAL) == 4
    large_v3 = WhisperFeatureExtractor.from_pretrained(
        REAL_CONFIGS / "github__ngclara07__CM3070-Final-Project__whisper-large-v3")
    assert large_v3.feature_size == 128 and large_v3.config.extra == {}
    w2v_bert = SeamlessM4TFeatureExtractor.from_pretrained(REAL_CONFIGS / "github__ggiggit__ReLMCodec__w2v-bert-2.0")
    assert w2v_bert.padding_value == 1.0 and w2v_bert.config.extra == {"processor_class": "Wav2Vec2BertProcessor"}


def test_processor_config_wins_over_preprocessor_config(tmp_path: Path) -> None:
    WhisperFeatureExtractor(feature_size=80).save_pretrained(tmp_path)
    nested = {"feature_extractor": WhisperFeatureExtractor(feature_size=128).to_dict(), "processor_class": "P"}
    (tmp_path / "processor_config.json").write_text(json.dumps(nested))
    assert WhisperFeatureExtractor.from_pretrained(tmp_path).feature_size == 128
    assert AutoFeatureExtractor.from_pretrained(tmp_path).feature_size == 128


def test_recomputed_keys_are_not_kept(tmp_path: Path) -> None:
    values = TheirWhisper().to_dict()
    values.update(mel_filters=[[0.0] * 80] * 201, n_samples=123, nb_max_frames=7)
    config = WhisperFeatureExtractorConfig.from_dict(values)
    assert config.extra == {} and config.to_dict()["n_samples"] == 480_000
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps(values))
    assert TheirWhisper.from_pretrained(tmp_path).n_samples == 480_000  # transformers ignores them too


BAD_CONFIGS = [
    (ASTFeatureExtractorConfig, "num_mel_bins", 0),
    (ASTFeatureExtractorConfig, "num_mel_bins", 100_000),
    (ASTFeatureExtractorConfig, "num_mel_bins", "128"),
    (ASTFeatureExtractorConfig, "num_mel_bins", True),
    (ASTFeatureExtractorConfig, "max_length", 10**9),
    (ASTFeatureExtractorConfig, "std", 0.0),
    (ASTFeatureExtractorConfig, "mean", float("nan")),
    (ASTFeatureExtractorConfig, "do_normalize", "yes"),
    (ASTFeatureExtractorConfig, "sampling_rate", 10**9),
    (ASTFeatureExtractorConfig, "padding_side", "up"),
    (ASTFeatureExtractorConfig, "feature_extractor_type", "WhisperFeatureExtractor"),
    (WhisperFeatureExtractorConfig, "n_fft", 10**6),
    (WhisperFeatureExtractorConfig, "hop_length", 0),
    (WhisperFeatureExtractorConfig, "hop_length", 1),
    (WhisperFeatureExtractorConfig, "chunk_length", 10**6),
    (WhisperFeatureExtractorConfig, "chunk_length", 2.5),
    (WhisperFeatureExtractorConfig, "feature_size", 4096),
    (WhisperFeatureExtractorConfig, "dither", -1.0),
    (WhisperFeatureExtractorConfig, "padding_value", float("inf")),
    (WhisperFeatureExtractorConfig, "return_attention_mask", 1),
    (SeamlessM4TFeatureExtractorConfig, "stride", 0),
    (SeamlessM4TFeatureExtractorConfig, "stride", 1000),
    (SeamlessM4TFeatureExtractorConfig, "num_mel_bins", -80),
    (SeamlessM4TFeatureExtractorConfig, "sampling_rate", 0),
]


@pytest.mark.parametrize("config_class, key, value", BAD_CONFIGS)
def test_bad_config_values_are_one_line_config_errors(config_class, key, value, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config_class.from_dict({key: value})
    message = str(caught.value)
    assert "\n" not in message and key.split("_")[0] in message
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps({key: value}))
    with pytest.raises(ConfigError, match="preprocessor_config.json"):
        config_class.from_pretrained(tmp_path)


@pytest.mark.parametrize("content, expected", [
    ("{not json", "invalid JSON at line 1"),
    ("[1, 2]", "must be a JSON object"),
    ("[" * 100_000 + "]" * 100_000, "invalid JSON"),
    ('{"feature_extractor_type": "Wav2Vec2FeatureExtractor"}', "not a spectral featurizer"),
    ("{}", "not a spectral featurizer"),
])
def test_bad_config_files_are_one_line_config_errors(content: str, expected: str, tmp_path: Path) -> None:
    (tmp_path / "preprocessor_config.json").write_text(content)
    with pytest.raises(ConfigError, match=expected) as caught:
        spectral_feature_extractor_from_pretrained(tmp_path)
    assert "\n" not in str(caught.value)


def test_missing_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no preprocessor_config.json"):
        ASTFeatureExtractor.from_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="no such file"):
        ASTFeatureExtractor.from_pretrained(tmp_path / "absent")
    (tmp_path / "processor_config.json").write_text('{"feature_extractor": 3}')
    with pytest.raises(ConfigError, match="must be a JSON object"):
        ASTFeatureExtractor.from_pretrained(tmp_path)


def test_dispatch_table_names_every_class() -> None:
    assert set(FEATURE_EXTRACTOR_CLASSES) == {"ASTFeatureExtractor", "WhisperFeatureExtractor",
                                              "SeamlessM4TFeatureExtractor"}
    for kind, cls in FEATURE_EXTRACTOR_CLASSES.items():
        assert cls().to_dict()["feature_extractor_type"] == kind


# ---------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [ASTFeatureExtractor, WhisperFeatureExtractor, SeamlessM4TFeatureExtractor])
def test_bad_audio_is_a_one_line_audio_error(cls) -> None:
    extractor = cls()
    for raw, expected in [
        (np.zeros((2, 3, 400), np.float32), "mono"),
        (np.zeros(0, np.float32), "at least one sample"),
        ([], "no audio"),
        ("a string", "array"),
    ]:
        with pytest.raises(AudioError, match=expected) as caught:
            extractor(raw, sampling_rate=RATE)
        assert "\n" not in str(caught.value)
    with pytest.raises(AudioError, match="16000 Hz"):
        extractor(noise(RATE), sampling_rate=8000)
    with pytest.raises(AudioError, match="1-D"):
        extractor.featurize(np.zeros((400, 2), np.float32))
