"""The streaming engine (``audioclf.classify`` / ``Classifier``) against ``transformers`` computed on single inputs."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from oracle import build_reference, save_reference

import audioclf
from audioclf.audio import load_audio
from audioclf.errors import AudioclfError
from audioclf.pipeline import Classifier

AUDIO = Path(__file__).parent / "data" / "audio"
#: the real conv stack (400-sample receptive field, 320× downsampling) with tiny channel counts
CONV = dict(conv_dim=(32,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2))

#: name → (model overrides, preprocessor config)
VARIANTS = {
    "layer-mask": (dict(feat_extract_norm="layer"), dict(return_attention_mask=True)),
    "group-nomask": (dict(feat_extract_norm="group"), dict(return_attention_mask=False)),
    "group-mask": (dict(feat_extract_norm="group"), dict(return_attention_mask=True)),
    "layer-raw": (dict(feat_extract_norm="layer", do_stable_layer_norm=True),
                  dict(return_attention_mask=False, do_normalize=False, padding_value=0.25)),
}
FILES_16K_MONO = [
    "speechcommands_yes_1000ms_16k_mono.wav", "speechcommands_no_1000ms_16k_mono.wav",
    "speechcommands_noise_1000ms_16k_mono.wav", "speechcommands_silence_1000ms_16k_mono.wav",
    "speechcommands_yes_30ms_16k_mono.wav",
]
FILES_OTHER = ["ljspeech_LJ050-0131_22k_mono.wav", "freesound_456440_robin_44k_stereo.ogg"]
FILES_LONG = ["librispeech_5703-47212-0000_16k_mono.ogg", "audioread_test-1_22k_mono.mp3"]  # ~15 s each


class Reference:
    """A saved tiny model with its ``transformers`` twin and feature extractor."""

    def __init__(self, directory: Path, model_overrides: dict, preprocessor: dict, seed: int = 0) -> None:
        from transformers import Wav2Vec2FeatureExtractor

        self.directory = directory
        self.model = build_reference("wav2vec2", seed=seed, **CONV, **model_overrides)
        save_reference(self.model, directory)
        config = {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": 16000,
                  "padding_value": 0.0, "do_normalize": True, "padding_side": "right", **preprocessor}
        (directory / "preprocessor_config.json").write_text(json.dumps(config))
        self.extractor = Wav2Vec2FeatureExtractor.from_pretrained(directory)

    def logits(self, wave: np.ndarray) -> np.ndarray:
        """Unbatched reference: feature extractor on the single unpadded input, then the model."""
        features = self.extractor(wave, sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            return self.model(**features).logits[0].numpy()

    def scores(self, wave: np.ndarray) -> np.ndarray:
        return torch.from_numpy(self.logits(wave)).softmax(-1).numpy()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Reference]:
    root = tmp_path_factory.mktemp("models")
    return {name: Reference(root / name, *VARIANTS[name]) for name in VARIANTS}


def vector(record: dict, num_labels: int = 5) -> np.ndarray:
    """The record's scores as ``[num_labels]`` in label-id order (needs every label, i.e. ``top_k=0``)."""
    scores = {item["label"]: item["score"] for item in record["labels"]}
    assert len(scores) == num_labels, record
    return np.array([scores[f"LABEL_{i}"] for i in range(num_labels)])


def spy_batches(classifier: Classifier) -> list[list[int]]:
    """Record the lengths of every batch the classifier runs."""
    seen: list[list[int]] = []
    original = classifier.run_batch

    def run_batch(waves):
        seen.append([len(w) for w in waves])
        return original(waves)

    classifier.run_batch = run_batch
    return seen


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_records_equal_the_unbatched_transformers_reference(references: dict, variant: str) -> None:
    reference = references[variant]
    names = FILES_16K_MONO + FILES_OTHER + (FILES_LONG if variant == "layer-mask" else [])
    paths = [str(AUDIO / name) for name in names]
    records = list(audioclf.classify(paths, model=str(reference.directory), top_k=0, batch_size=8))
    assert [r["path"] for r in records] == paths  # input order
    for path, record in zip(paths, records):
        expected = reference.scores(load_audio(path, 16000, "mix"))
        np.testing.assert_allclose(vector(record), expected, atol=1e-5, err_msg=path)
        assert record["model"] == str(reference.directory) and "revision" not in record


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_batch_composition_never_changes_scores(references: dict, variant: str, tmp_path: Path) -> None:
    reference = references[variant]
    rng = np.random.default_rng(1)
    paths = []
    for k, seconds in enumerate([1.0, 0.7, 1.0, 2.3, 0.7, 1.0]):
        path = tmp_path / f"clip{k}.wav"
        sf.write(path, (0.2 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000, subtype="FLOAT")
        paths.append(str(path))
    model = str(reference.directory)
    alone = [vector(r) for r in audioclf.classify(paths, model=model, top_k=0, batch_size=1)]
    classifier = Classifier(model, top_k=0, batch_size=8, workers=1)
    batches = spy_batches(classifier)
    together = [vector(r) for r in classifier.classify(paths)]
    np.testing.assert_allclose(np.array(together), np.array(alone), atol=1e-5)
    assert max(len(b) for b in batches) > 1
    mixed = any(len(set(b)) > 1 for b in batches)
    assert mixed == (variant == "layer-mask")  # padding only where it is exact


def test_long_file_averages_chunks_weighted_by_length(references: dict, tmp_path: Path) -> None:
    reference = references["layer-mask"]
    rate = 16000
    wave = (0.1 * np.random.default_rng(2).standard_normal(75 * rate)).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(path, wave, rate, subtype="FLOAT")
    classifier = Classifier(str(reference.directory), top_k=0)
    batches = spy_batches(classifier)
    [record] = list(classifier.classify(str(path)))
    assert sorted(n for b in batches for n in b) == [15 * rate, 30 * rate, 30 * rate]
    parts = [wave[: 30 * rate], wave[30 * rate : 60 * rate], wave[60 * rate :]]
    expected = sum(len(p) * reference.scores(p) for p in parts) / len(wave)
    np.testing.assert_allclose(vector(record), expected, atol=1e-5)


def test_short_last_chunk_joins_the_previous_one(references: dict, tmp_path: Path) -> None:
    reference = references["group-nomask"]
    wave = (0.1 * np.random.default_rng(3).standard_normal(32320)).astype(np.float32)  # 2 s + 320 samples
    path = tmp_path / "tail.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    [record] = list(audioclf.classify(str(path), model=str(reference.directory), top_k=0, chunk=1.0))
    expected = (16000 * reference.scores(wave[:16000]) + 16320 * reference.scores(wave[16000:])) / 32320
    np.testing.assert_allclose(vector(record), expected, atol=1e-5)


def test_windows_give_a_timeline_and_aggregates(references: dict) -> None:
    reference = references["layer-mask"]
    path = str(AUDIO / "speechcommands_yes_1000ms_16k_mono.wav")
    wave = load_audio(path)
    model = str(reference.directory)
    records = list(audioclf.classify(path, model=model, top_k=0, window=0.4, hop=0.25, aggregate="mean"))
    bounds = [(0.0, 0.4), (0.25, 0.65), (0.5, 0.9), (0.75, 1.0)]
    assert [(r.get("start"), r.get("end")) for r in records] == bounds + [(None, None)]
    expected = [reference.scores(wave[int(a * 16000) : int(b * 16000)]) for a, b in bounds]
    for record, scores in zip(records, expected):
        np.testing.assert_allclose(vector(record), scores, atol=1e-5)
    lengths = np.array([b - a for a, b in bounds])
    np.testing.assert_allclose(vector(records[-1]), (lengths[:, None] * expected).sum(0) / lengths.sum(), atol=1e-5)
    maximum = list(audioclf.classify(path, model=model, top_k=0, window=0.4, hop=0.25, aggregate="max"))[-1]
    np.testing.assert_allclose(vector(maximum), np.max(expected, axis=0), atol=1e-5)
    # a last window shorter than the receptive field (0.98 s .. 1.0 s = 320 samples) is dropped
    short = list(audioclf.classify(path, model=model, window=0.5, hop=0.49))
    assert [(r["start"], r["end"]) for r in short] == [(0.0, 0.5), (0.49, 0.99)]


def test_channel_policies(references: dict) -> None:
    reference = references["layer-mask"]
    path = str(AUDIO / "speechbrain_multimic_speech_16k_4ch.flac")
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    model = str(reference.directory)
    each = list(audioclf.classify(path, model=model, top_k=0, channels="each", window=4.0))
    assert [(r["channel"], r["start"]) for r in each] == [(c, s) for c in range(4) for s in (0.0, 4.0, 8.0)]
    for record in each:
        start = int(record["start"] * 16000)
        expected = reference.scores(data[start : start + 64000, record["channel"]])
        np.testing.assert_allclose(vector(record), expected, atol=1e-5)
    [second] = list(audioclf.classify(path, model=model, top_k=0, channels="2"))
    assert second["channel"] == 2
    np.testing.assert_allclose(vector(second), reference.scores(data[:, 2]), atol=1e-5)
    [mix] = list(audioclf.classify(path, model=model, top_k=0))
    assert "channel" not in mix
    np.testing.assert_allclose(vector(mix), reference.scores(data.mean(axis=1, dtype=np.float32)), atol=1e-5)
    [missing] = list(audioclf.classify(path, model=model, channels="7"))
    assert missing == {"path": path, "error": "channel 7 does not exist, the file has 4 channels (valid: 0..3)"}


def test_score_options(references: dict, tmp_path: Path) -> None:
    reference = references["layer-mask"]
    path = str(AUDIO / "speechcommands_no_1000ms_16k_mono.wav")
    logits = reference.logits(load_audio(path))
    softmax = torch.from_numpy(logits).softmax(-1).numpy()
    model = str(reference.directory)

    def labels(**options) -> list[tuple[str, float]]:
        [record] = list(audioclf.classify(path, model=model, **options))
        return [(item["label"], item["score"]) for item in record["labels"]]

    ranked = [(f"LABEL_{i}", float(softmax[i])) for i in np.argsort(-softmax)]
    assert [name for name, _ in labels()] == [name for name, _ in ranked]  # default top 5 of 5
    assert [name for name, _ in labels(top_k=2)] == [name for name, _ in ranked[:2]]
    threshold = ranked[2][1]
    assert [name for name, _ in labels(top_k=0, min_score=threshold)] == [name for name, _ in ranked[:3]]
    assert [name for name, _ in labels(labels=["LABEL_4", "LABEL_0"], top_k=0)] == [
        name for name, _ in ranked if name in ("LABEL_4", "LABEL_0")]
    for activation, expected in [("none", logits), ("sigmoid", 1 / (1 + np.exp(-logits))), ("softmax", softmax)]:
        got = dict(labels(activation=activation, top_k=0))
        np.testing.assert_allclose([got[f"LABEL_{i}"] for i in range(5)], expected, atol=1e-5)
    with pytest.raises(AudioclfError, match="unknown label"):
        audioclf.classify(path, model=model, labels=["nope"])

    # activation "auto" follows problem_type
    for problem_type, expected in [("multi_label_classification", 1 / (1 + np.exp(-logits))), ("regression", logits)]:
        directory = tmp_path / problem_type
        directory.mkdir()
        for file in reference.directory.iterdir():
            (directory / file.name).write_bytes(file.read_bytes())
        config = json.loads((directory / "config.json").read_text())
        (directory / "config.json").write_text(json.dumps({**config, "problem_type": problem_type}))
        [record] = list(audioclf.classify(path, model=str(directory), top_k=0))
        got = {item["label"]: item["score"] for item in record["labels"]}
        np.testing.assert_allclose([got[f"LABEL_{i}"] for i in range(5)], expected, atol=1e-5)


@pytest.mark.parametrize("options, message", [
    (dict(hop=1.0), "--hop needs --window"),
    (dict(aggregate="mean"), "--aggregate needs --window"),
    (dict(window=1.0, aggregate="median"), "--aggregate must be one of"),
    (dict(batch_size=0), "--batch-size"),
    (dict(activation="relu"), "--activation"),
    (dict(channels="left"), "invalid channel policy"),
    (dict(chunk=0.01), "receptive field"),
    (dict(device="tpu"), "--device"),
    (dict(dtype="int8"), "--dtype"),
    (dict(colour=True), "unknown option"),
])
def test_bad_options_raise_before_anything_runs(references: dict, options: dict, message: str) -> None:
    with pytest.raises(AudioclfError, match=message):
        audioclf.classify([], model=str(references["layer-mask"].directory), **options)


def test_failures_are_records_and_the_run_goes_on(references: dict, tmp_path: Path) -> None:
    good = str(AUDIO / "speechcommands_yes_1000ms_16k_mono.wav")
    tiny = str(AUDIO / "soundfile_tiny_stereo.wav")
    records = list(audioclf.classify([str(tmp_path / "missing.wav"), tiny, good, str(tmp_path / "*.flac")],
                                     model=str(references["layer-mask"].directory)))
    assert records[0] == {"path": str(tmp_path / "missing.wav"), "error": "no such file"}
    assert records[1]["path"] == tiny and records[1]["error"].startswith("too short: 1 samples at 16000 Hz")
    assert records[2]["path"] == good and len(records[2]["labels"]) == 5
    assert records[3] == {"path": str(tmp_path / "*.flac"), "error": "no files match this pattern"}


def test_closing_the_stream_early_stops_the_workers(references: dict) -> None:
    before = threading.active_count()
    paths = [str(AUDIO / name) for name in FILES_16K_MONO[:4]] * 5
    stream = audioclf.classify(paths, model=str(references["group-nomask"].directory), workers=2)
    first = next(stream)
    assert first["path"] == paths[0]
    stream.close()
    assert threading.active_count() == before
