"""The Segmenter: built from a model's config files alone, it cuts and featurizes exactly as the engine with the loaded
model does; its receptive field equals the model's; chunks respect a featurizer's longest segment; prepared inputs
travel between processes as flat rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioclf.audio import FeatureExtractor, FeatureExtractorConfig
from audioclf.auto import AutoModelForAudioClassification
from audioclf.config import ModelConfig
from audioclf.data.segments import PreparedFile, Segment, Segmenter, receptive_field
from audioclf.data.sources import SourceItem
from audioclf.errors import OptionError

AUDIO = Path(__file__).parent / "data" / "audio"
CONV = dict(conv_dim=(32,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2))
SMALL = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=40,
             num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, classifier_proj_size=8)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A saved model, and a copy of its config files only (no weights)."""
    root = tmp_path_factory.mktemp("segments")
    full = root / "full"
    config = ModelConfig(model_type="wav2vec2", feat_extract_norm="layer", **SMALL, **CONV)
    AutoModelForAudioClassification.from_config(config).save_pretrained(full)
    FeatureExtractorConfig(return_attention_mask=True, sampling_rate=16000).save_pretrained(full)
    configs = root / "configs"
    configs.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (configs / name).write_bytes((full / name).read_bytes())
    return full, configs


@pytest.mark.parametrize("model_type, conv", [("wav2vec2", {}), ("sew", {}), ("hubert", CONV),
                                              ("wav2vec2", dict(conv_dim=(8, 8), conv_kernel=(7, 4), conv_stride=(3, 2)))])
def test_receptive_field_equals_the_models(model_type: str, conv: dict) -> None:
    config = ModelConfig(model_type=model_type, **SMALL, **conv)
    if not conv:  # the architecture's own conv stack, with narrow channels
        config.conv_dim = [8] * len(config.conv_kernel)
    model = AutoModelForAudioClassification.from_config(config)
    assert receptive_field(config) == model.base_model.feature_extractor.min_samples()
    assert receptive_field(object()) == 1  # a model without a conv stack takes any length


def test_segmenter_from_config_files_equals_the_engines(model_dirs: tuple[Path, Path]) -> None:
    from audioclf.engine.classify import Classifier

    full, configs = model_dirs
    cuts = dict(channels="each", window=0.5, hop=0.3)
    alone = Segmenter.from_pretrained(configs, **cuts)
    engine = Classifier(str(full), **cuts).segmenter
    assert alone.min_samples == engine.min_samples == 400
    item = SourceItem(str(AUDIO / "freesound_456440_robin_44k_stereo.ogg"))
    mine, theirs = alone.prepare(item), engine.prepare(item)
    assert mine.error is None and mine.streams == theirs.streams == [0, 1]
    assert [(s.stream, s.start_frame, s.frames) for s in mine.segments] == [
        (s.stream, s.start_frame, s.frames) for s in theirs.segments]
    for a, b in zip(mine.segments, theirs.segments):
        np.testing.assert_array_equal(a.features, b.features)


def test_building_a_segmenter_reads_no_weights_and_imports_no_torch(model_dirs: tuple[Path, Path]) -> None:
    _, configs = model_dirs
    code = ("import sys; from audioclf.data.segments import Segmenter; from audioclf.data.sources import SourceItem; "
            f"s = Segmenter.from_pretrained({str(configs)!r}, chunk=0.5); "
            f"p = s.prepare(SourceItem({str(AUDIO / 'speechcommands_yes_1000ms_16k_mono.wav')!r})); "
            "print(len(p.segments), p.error, 'torch' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert output.stdout.split() == ["2", "None", "False"], output.stderr


def test_chunks_never_exceed_the_featurizers_longest_segment() -> None:
    class Limited(FeatureExtractor):
        max_samples = 7000

    config = ModelConfig(model_type="wav2vec2", **CONV)
    segmenter = Segmenter.for_model(config, Limited(), chunk=30.0)
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    prepared = segmenter.prepare(SourceItem(index=0, samples=wave, sampling_rate=16000))
    assert [(s.start_frame, s.frames) for s in prepared.segments] == [(0, 7000), (7000, 7000), (14000, 2000)]
    with pytest.raises(OptionError) as error:
        Segmenter.for_model(config, Limited(), window=1.0)
    assert error.value.option == "window" and "longer than the model takes (7000 samples" in str(error.value)
    with pytest.raises(OptionError, match="hop 1e-05 s is shorter than one sample"):
        Segmenter.for_model(config, Limited(), window=0.2, hop=0.00001)


def test_last_short_chunk_joins_and_last_short_window_is_dropped(tmp_path: Path) -> None:
    config = ModelConfig(model_type="wav2vec2", **CONV)
    wave = np.random.default_rng(1).standard_normal(16000 + 300).astype(np.float32)
    path = tmp_path / "clip.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    chunks = Segmenter.for_model(config, FeatureExtractor(), chunk=0.5).prepare(SourceItem(str(path)))
    assert [(s.start_frame, s.frames) for s in chunks.segments] == [(0, 8000), (8000, 8300)]
    np.testing.assert_allclose(chunks.segments[1].features, FeatureExtractor().featurize(wave[8000:]), atol=1e-6)
    windows = Segmenter.for_model(config, FeatureExtractor(), window=0.5).prepare(SourceItem(str(path)))
    assert [(s.start_frame, s.frames) for s in windows.segments] == [(0, 8000), (8000, 8000)]
    assert chunks.duration == pytest.approx(16300 / 16000)
    tiny = Segmenter.for_model(config, FeatureExtractor()).prepare(SourceItem(index=0, samples=wave[:399],
                                                                              sampling_rate=16000))
    assert tiny.error.startswith("too short: 399 samples at 16000 Hz") and tiny.duration == pytest.approx(399 / 16000)


def test_prepared_files_survive_the_row_format() -> None:
    rng = np.random.default_rng(2)
    segments = [Segment(0, 0, 400, rng.standard_normal(400).astype(np.float32)),
                Segment(1, 160, 480, rng.standard_normal((3, 128)).astype(np.float32))]  # spectral features are 2-D
    prepared = PreparedFile(SourceItem("s3://bucket/a.flac"), [0, 1], segments, 1.25)
    back = PreparedFile.from_row(prepared.to_row())
    assert (back.item, back.streams, back.duration, back.error) == (prepared.item, [0, 1], 1.25, None)
    for a, b in zip(back.segments, segments):
        assert (a.stream, a.start_frame, a.frames) == (b.stream, b.start_frame, b.frames)
        np.testing.assert_array_equal(a.features, b.features)
    failed = PreparedFile.from_row(PreparedFile(SourceItem("x.wav"), duration=0.5, error="no such file").to_row())
    assert (failed.error, failed.duration, failed.segments) == ("no such file", 0.5, [])
