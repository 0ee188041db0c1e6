"""Featurizer parity with transformers.Wav2Vec2FeatureExtractor (the batch call and the streaming interface), the
featurizer factory, and preprocessor_config.json handling."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, Wav2Vec2FeatureExtractor

from audioclf.audio import FeatureExtractor, FeatureExtractorConfig, featurizer_from_dict, load_featurizer, normalize
from audioclf.errors import AudioError, ConfigError

CONFIGS = Path(__file__).parent / "data" / "configs"
TOLERANCE = 1e-6

SWITCHES = list(itertools.product([True, False], [True, False], [0.0, 0.5]))  # normalize × mask × padding value


def _waves(lengths=(1600, 977, 3000, 2999, 400)) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    # A non-zero mean and a large amplitude make the statistics and the padding region matter.
    return [(0.3 * rng.standard_normal(n) + 0.1).astype(np.float32) for n in lengths]


def _rows(value) -> list[np.ndarray]:
    return [np.asarray(row) for row in value]


def _assert_same(expected, actual) -> None:
    assert set(expected.keys()) == set(actual.keys())
    for key in expected:
        left, right = _rows(expected[key]), _rows(actual[key])
        assert len(left) == len(right)
        for a, b in zip(left, right):
            assert a.shape == b.shape and a.dtype == b.dtype, key
            assert np.abs(a.astype(np.float64) - b.astype(np.float64)).max() <= TOLERANCE, key


@pytest.mark.parametrize("do_normalize, return_attention_mask, padding_value", SWITCHES)
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_featurize_then_collate_matches_transformers(do_normalize: bool, return_attention_mask: bool,
                                                     padding_value: float, padding_side: str) -> None:
    """Per item: featurize equals transformers on the single input. Per batch: collate equals transformers' padded
    call wherever transformers normalises each item over its own samples (a mask and right padding), and equal
    lengths always."""
    settings = dict(do_normalize=do_normalize, return_attention_mask=return_attention_mask, padding_value=padding_value,
                    padding_side=padding_side)
    theirs, ours = Wav2Vec2FeatureExtractor(**settings), FeatureExtractor(**settings)
    waves = _waves()
    features = [ours.featurize(wave) for wave in waves]
    for wave, item in zip(waves, features):
        assert item.dtype == np.float32 and item.flags.c_contiguous
        assert np.abs(item - theirs(wave, sampling_rate=16000, return_tensors="np")["input_values"][0]).max() <= TOLERANCE
    batch = ours.collate(features)
    assert set(batch) == ({"input_values", "attention_mask"} if return_attention_mask else {"input_values"})
    assert batch["input_values"].dtype == np.float32 and batch["input_values"].shape == (5, 3000)
    expected = theirs(waves, sampling_rate=16000, padding=True, return_tensors="np")
    if return_attention_mask:
        assert batch["attention_mask"].dtype == np.int32
        np.testing.assert_array_equal(batch["attention_mask"], expected["attention_mask"])
    if (return_attention_mask and padding_side == "right") or not do_normalize:
        assert np.abs(batch["input_values"] - expected["input_values"]).max() <= TOLERANCE
    same_length = _waves((1200, 1200, 1200))
    _assert_same(theirs(same_length, sampling_rate=16000, padding=True, return_tensors="np"),
                 ours.collate([ours.featurize(wave) for wave in same_length]))


def test_exact_padding_needs_a_mask_right_padding_and_layer_norm() -> None:
    layer, group = type("Config", (), {"feat_extract_norm": "layer"}), type("Config", (), {"feat_extract_norm": "group"})
    assert FeatureExtractor(return_attention_mask=True).exact_padding(layer)
    assert not FeatureExtractor(return_attention_mask=True).exact_padding(group)
    assert not FeatureExtractor(return_attention_mask=False).exact_padding(layer)
    assert not FeatureExtractor(return_attention_mask=True, padding_side="left").exact_padding(layer)
    featurizer = FeatureExtractor()
    assert (featurizer.model_input_name, featurizer.max_samples, featurizer.sampling_rate) == ("input_values", None, 16000)


def test_padding_without_mask_normalises_over_the_padding() -> None:
    # The trap documented for transformers: with padding and no mask, padded samples become -mean/std.
    waves = _waves((100, 50))
    values = FeatureExtractor(return_attention_mask=False)(waves, sampling_rate=16000, padding=True)["input_values"]
    assert np.all(values[1][50:] == values[1][50]) and values[1][50] != 0.0
    values = FeatureExtractor(return_attention_mask=True, padding_value=0.5)(waves, sampling_rate=16000,
                                                                           padding=True)["input_values"]
    assert np.all(values[1][50:] == 0.5)
    np.testing.assert_allclose(values[1][:50], normalize(waves[1]), atol=1e-6)


def test_factory_picks_the_featurizer_from_the_config(tmp_path: Path) -> None:
    chosen = featurizer_from_dict({"feature_extractor_type": "Wav2Vec2FeatureExtractor", "sampling_rate": 8000})
    assert isinstance(chosen, FeatureExtractor) and chosen.sampling_rate == 8000
    assert isinstance(featurizer_from_dict({}), FeatureExtractor)  # no type: the waveform featurizer
    assert load_featurizer(None).config == FeatureExtractorConfig()
    assert load_featurizer(tmp_path).config == FeatureExtractorConfig()  # a directory without the file: defaults
    (tmp_path / "preprocessor_config.json").write_text('{"return_attention_mask": true}')
    assert load_featurizer(tmp_path).return_attention_mask is True
    for kind in ("SpeechT5FeatureExtractor", 3):
        (tmp_path / "preprocessor_config.json").write_text(json.dumps({"feature_extractor_type": kind}))
        with pytest.raises(ConfigError) as error:
            load_featurizer(tmp_path)
        message = str(error.value)
        assert "\n" not in message and "preprocessor_config.json" in message and "not supported" in message
        assert "Wav2Vec2FeatureExtractor" in message
    (tmp_path / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_featurizer(tmp_path)


@pytest.mark.parametrize("do_normalize, return_attention_mask, padding_value", SWITCHES)
@pytest.mark.parametrize("padding", [True, "longest", False, "max_length"])
@pytest.mark.parametrize("return_tensors", [None, "np", "pt"])
def test_call_matches_transformers(
    do_normalize: bool, return_attention_mask: bool, padding_value: float, padding, return_tensors
) -> None:
    settings = dict(do_normalize=do_normalize, return_attention_mask=return_attention_mask, padding_value=padding_value)
    theirs, ours = Wav2Vec2FeatureExtractor(**settings), FeatureExtractor(FeatureExtractorConfig(**settings))
    extra = {"max_length": 3500} if padding == "max_length" else {}
    waves = _waves()
    inputs = [
        waves[1],  # one 1-D array
        [float(x) for x in waves[4]],  # one list of floats
        np.stack([waves[0], waves[0][::-1]]),  # a 2-D batch
        [w.astype(np.float64) for w in waves[:3]],  # float64 rows are cast to float32
        waves,
    ]
    for raw in inputs:
        ragged = isinstance(raw, list) and isinstance(raw[0], np.ndarray) and len({len(r) for r in raw}) > 1
        if ragged and padding is False and return_tensors is not None:
            # Rows of different lengths cannot form one array (transformers fails or makes an object array).
            with pytest.raises(AudioError, match="padding=True"):
                ours(raw, sampling_rate=16000, padding=padding, return_tensors=return_tensors)
            continue
        expected = theirs(raw, sampling_rate=16000, padding=padding, return_tensors=return_tensors, **extra)
        actual = ours(raw, sampling_rate=16000, padding=padding, return_tensors=return_tensors, **extra)
        _assert_same(expected, actual)
        for key in actual:
            if return_tensors == "pt":
                assert isinstance(actual[key], torch.Tensor)
            elif return_tensors == "np":
                assert isinstance(actual[key], np.ndarray) and actual[key].ndim == 2


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_padding_side_truncation_and_multiple(padding_side: str) -> None:
    settings = dict(return_attention_mask=True, padding_side=padding_side, padding_value=0.25)
    theirs, ours = Wav2Vec2FeatureExtractor(**settings), FeatureExtractor(**settings)
    waves = _waves()
    for kwargs in (
        dict(padding=True),
        dict(padding=True, pad_to_multiple_of=512),
        dict(padding="max_length", max_length=2000, truncation=True),
        dict(padding=False, max_length=1000, truncation=True),
    ):
        for mask in (True, False):
            expected = theirs(waves, sampling_rate=16000, return_attention_mask=mask, **kwargs)
            actual = ours(waves, sampling_rate=16000, return_attention_mask=mask, **kwargs)
            _assert_same(expected, actual)


def test_single_input_normalize_matches_transformers() -> None:
    wave = _waves((12345,))[0]
    expected = Wav2Vec2FeatureExtractor()(wave, sampling_rate=16000)["input_values"][0]
    actual = normalize(wave)
    assert actual.dtype == np.float32
    assert np.abs(actual - expected).max() <= TOLERANCE
    assert abs(float(actual.mean())) < 1e-5 and abs(float(actual.std()) - 1) < 1e-4
    # a torch tensor is accepted as input too
    assert np.abs(normalize(torch.from_numpy(wave)) - expected).max() <= TOLERANCE


def test_wrong_sampling_rate_is_a_one_line_error(caplog: pytest.LogCaptureFixture) -> None:
    extractor = FeatureExtractor()
    with pytest.raises(AudioError) as error:
        extractor(np.zeros(100, np.float32), sampling_rate=8000)
    message = str(error.value)
    assert "\n" not in message and "16000" in message and "8000" in message
    with caplog.at_level(logging.WARNING, logger="audioclf.audio.features"):
        extractor(np.zeros(100, np.float32))
    assert "sampling_rate" in caplog.text


def test_bad_inputs() -> None:
    extractor = FeatureExtractor()
    for raw in (np.zeros((2, 2, 10), np.float32), [], "audio.wav", np.zeros(0, np.float32)):
        with pytest.raises(AudioError):
            extractor(raw, sampling_rate=16000)
    with pytest.raises(AudioError):
        extractor(np.zeros(10, np.float32), sampling_rate=16000, padding="sideways")
    with pytest.raises(AudioError):
        extractor(np.zeros(10, np.float32), sampling_rate=16000, return_tensors="tf")


def test_output_keys_as_attributes() -> None:
    extractor = FeatureExtractor(return_attention_mask=True)
    out = extractor(_waves()[:2], sampling_rate=16000, padding=True, return_tensors="pt")
    assert out.input_values is out["input_values"] and out.attention_mask.dtype == torch.int32
    moved = out.to("cpu")
    assert torch.equal(moved["input_values"], out["input_values"])


# ------------------------------------------------------------------------------------------------- config
REAL_CONFIGS = sorted(p.parent.name for p in CONFIGS.glob("*/preprocessor_config.json")
                      if json.loads(p.read_text()).get("feature_extractor_type") == "Wav2Vec2FeatureExtractor")


def test_real_configs_are_present() -> None:
    assert REAL_CONFIGS == [
        "github__david188888__Audio-Emotion__model",
        "github__fishaudio__Bert-VITS2__wavlm-base-plus",
        "github__lxthames__accent-detector-app__model",
        "github__ngclara07__CM3070-Final-Project__wavlm-base-plus",
        "superb__hubert-large-superb-er",
    ]


@pytest.mark.parametrize("name", REAL_CONFIGS)
def test_real_preprocessor_configs_parse(name: str, tmp_path: Path) -> None:
    directory = CONFIGS / name
    config = FeatureExtractorConfig.from_pretrained(directory)
    raw = json.loads((directory / "preprocessor_config.json").read_text())
    assert config.feature_size == 1 and config.sampling_rate == 16000
    assert config.padding_value == 0.0 and isinstance(config.padding_value, float)
    assert config.do_normalize is ("wavlm" not in name)  # microsoft/wavlm-base-plus does not normalise
    assert config.return_attention_mask is True and config.padding_side == "right"
    assert config.to_dict()["feature_extractor_type"] == raw["feature_extractor_type"] == "Wav2Vec2FeatureExtractor"
    if name == "superb__hubert-large-superb-er":
        assert raw["padding_value"] == 0 and isinstance(raw["padding_value"], int)
    if name == "github__david188888__Audio-Emotion__model":
        assert config.extra["processor_class"] == "Wav2Vec2Processor"
        assert config.to_dict()["processor_class"] == "Wav2Vec2Processor"
    # same fields as transformers reads, and the same featurizer numbers
    reference = AutoFeatureExtractor.from_pretrained(directory)
    keys = ("feature_size", "sampling_rate", "padding_value", "do_normalize", "return_attention_mask", "padding_side")
    for key in keys:
        assert getattr(reference, key) == getattr(config, key), key
    _assert_same(
        reference(_waves(), sampling_rate=16000, padding=True),
        FeatureExtractor.from_pretrained(directory)(_waves(), sampling_rate=16000, padding=True),
    )
    # a file path works as well as the directory
    assert FeatureExtractorConfig.from_pretrained(directory / "preprocessor_config.json") == config


def test_save_round_trip_is_atomic_and_readable_by_transformers(tmp_path: Path) -> None:
    config = FeatureExtractorConfig(
        sampling_rate=8000,
        padding_value=0.5,
        return_attention_mask=True,
        extra={"processor_class": "Wav2Vec2Processor"},
    )
    target = config.save_pretrained(tmp_path / "model")
    assert target.name == "preprocessor_config.json"
    assert sorted(p.name for p in target.parent.iterdir()) == ["preprocessor_config.json"]  # no temporary left
    text = target.read_text()
    assert text.endswith("\n") and list(json.loads(text)) == sorted(json.loads(text))
    assert FeatureExtractorConfig.from_pretrained(target.parent) == config
    loaded = AutoFeatureExtractor.from_pretrained(target.parent)
    assert isinstance(loaded, Wav2Vec2FeatureExtractor)
    assert (loaded.sampling_rate, loaded.padding_value, loaded.return_attention_mask) == (8000, 0.5, True)
    # and the other way round
    Wav2Vec2FeatureExtractor(do_normalize=False, padding_side="left").save_pretrained(tmp_path / "theirs")
    theirs = FeatureExtractorConfig.from_pretrained(tmp_path / "theirs")
    assert theirs.do_normalize is False and theirs.padding_side == "left"
    # overwriting keeps a single file
    config.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in target.parent.iterdir()) == ["preprocessor_config.json"]


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = FeatureExtractorConfig.from_pretrained(tmp_path)
    assert config == FeatureExtractorConfig()
    assert (config.feature_size, config.sampling_rate, config.padding_value) == (1, 16000, 0.0)
    assert (config.do_normalize, config.return_attention_mask, config.padding_side) == (True, False, "right")
    assert config.to_dict()["feature_extractor_type"] == "Wav2Vec2FeatureExtractor"


@pytest.mark.parametrize(
    "content, needle",
    [
        ("{not json", "invalid JSON at line 1"),
        ("[1, 2]", "JSON object"),
        ('{"sampling_rate": "16k"}', "sampling_rate"),
        ('{"sampling_rate": 0}', "sampling_rate"),
        ('{"padding_side": "middle"}', "padding_side"),
        ('{"do_normalize": "yes"}', "do_normalize"),
        ('{"padding_value": null}', "padding_value"),
        ('{"feature_size": 80}', "feature_size"),
        ('{"feature_extractor_type": "WhisperFeatureExtractor"}', "WhisperFeatureExtractor"),
    ],
)
def test_bad_configs(tmp_path: Path, content: str, needle: str) -> None:
    (tmp_path / "preprocessor_config.json").write_text(content)
    with pytest.raises(ConfigError) as error:
        FeatureExtractorConfig.from_pretrained(tmp_path)
    message = str(error.value)
    assert needle in message and "preprocessor_config.json" in message and "\n" not in message


def test_missing_config_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        FeatureExtractorConfig.from_pretrained(tmp_path / "absent")
