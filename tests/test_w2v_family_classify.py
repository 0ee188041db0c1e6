"""WavLM, data2vec-audio, wav2vec2-conformer and wav2vec2-BERT through the engine and the installed CLI: scores equal
``transformers`` (its model and its feature extractor, on each unpadded input) on real clips, windows and channels
included; batching never changes a score, and inputs of different lengths share a batch exactly where padding is
exact."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from oracle import build_reference, save_reference
from test_classify_cli import ENV
from test_engine_classify import AUDIO, CONV, batches_mix_lengths, decoded, vector

import audioclf

SEAMLESS_PREPROCESSOR = Path(__file__).parent / "data" / "configs" / "github__ggiggit__ReLMCodec__w2v-bert-2.0"
WAVEFORM_PREPROCESSOR = {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
                         "sampling_rate": 16000, "padding_value": 0.0, "do_normalize": True,
                         "return_attention_mask": True, "padding_side": "right"}
#: model type -> (model overrides, whether clips of different lengths may share a batch)
MODELS = {
    "wavlm": (dict(feat_extract_norm="layer", num_buckets=16, max_bucket_distance=40, **CONV), True),
    "data2vec-audio": (dict(num_conv_pos_embeddings=3, **CONV), False),  # the positional conv stack sees padding
    "wav2vec2-conformer": (dict(feat_extract_norm="layer", position_embeddings_type="rotary", **CONV), False),
    "wav2vec2-bert": (dict(feature_projection_input_dim=160), True),  # 80 mel bins, 2 frames stacked
}
CLIPS = ["speechcommands_yes_1000ms_16k_mono.wav", "speechcommands_noise_1000ms_16k_mono.wav",
         "speechcommands_yes_30ms_16k_mono.wav", "ljspeech_LJ050-0131_22k_mono.wav",
         "freesound_456440_robin_44k_stereo.ogg"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Reference:
    """A saved tiny model of one type with its ``transformers`` twin and feature extractor."""

    def __init__(self, directory: Path, model_type: str) -> None:
        from transformers import AutoFeatureExtractor

        self.model_type = model_type
        self.model = build_reference(model_type, seed=1, **MODELS[model_type][0])
        self.directory = save_reference(self.model, directory)
        if model_type == "wav2vec2-bert":
            shutil.copy(SEAMLESS_PREPROCESSOR / "preprocessor_config.json", directory)
        else:
            (directory / "preprocessor_config.json").write_text(json.dumps(WAVEFORM_PREPROCESSOR))
        self.extractor = AutoFeatureExtractor.from_pretrained(directory)

    def scores(self, wave: np.ndarray) -> np.ndarray:
        """Softmax scores of one unpadded input: the feature extractor, then the model."""
        features = self.extractor(wave, sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            return self.model(**features).logits[0].softmax(-1).numpy()


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Reference]:
    root = tmp_path_factory.mktemp("w2v-family")
    return {model_type: Reference(root / model_type, model_type) for model_type in MODELS}


def channel(path: Path, index: int, rate: int = 16000) -> np.ndarray:
    """One channel of a file at ``rate``, by soundfile and soxr directly."""
    data, source_rate = sf.read(path, dtype="float32", always_2d=True)
    wave = np.ascontiguousarray(data[:, index])
    return wave if source_rate == rate else soxr.resample(wave, source_rate, rate, quality="HQ")


@pytest.mark.parametrize("model_type", list(MODELS))
def test_cli_scores_equal_transformers(references: dict, model_type: str) -> None:
    reference = references[model_type]
    paths = [str(AUDIO / name) for name in CLIPS]
    result = subprocess.run([sys.executable, "-m", "audioclf", "classify", "--model", str(reference.directory),
                             "--top-k", "0", "--format", "jsonl", *paths], capture_output=True, env=ENV, timeout=300)
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [record["path"] for record in records] == paths
    for path, record in zip(paths, records):
        if model_type == "wav2vec2-bert" and "30ms" in path:
            # 480 samples are one filter-bank frame: its unbiased variance (and every feature) is undefined
            assert "at least 560" in record["error"]
            continue
        np.testing.assert_allclose(vector(record), reference.scores(decoded(path)), atol=1e-4, err_msg=path)
    assert result.returncode == (1 if model_type == "wav2vec2-bert" else 0), result.stderr.decode()


@pytest.mark.parametrize("model_type", list(MODELS))
def test_batch_composition_never_changes_scores(references: dict, model_type: str, tmp_path: Path) -> None:
    mixed = batches_mix_lengths(str(references[model_type].directory), tmp_path, seed=2)
    assert mixed == MODELS[model_type][1]  # padding only where it is exact


@pytest.mark.parametrize("model_type", ["wavlm", "wav2vec2-bert"])
def test_windows_and_channels_equal_transformers_on_each_piece(references: dict, model_type: str) -> None:
    reference = references[model_type]
    path = AUDIO / "freesound_456440_robin_44k_stereo.ogg"
    records = list(audioclf.classify([str(path)], model=str(reference.directory), top_k=0, window=0.5, hop=0.25,
                                     channels="each"))
    assert {record["channel"] for record in records} == {0, 1} and len(records) > 4
    for record in records:
        wave = channel(path, record["channel"])
        piece = wave[round(record["start"] * 16000):round(record["end"] * 16000)]
        np.testing.assert_allclose(vector(record), reference.scores(piece), atol=1e-4, err_msg=str(record))
