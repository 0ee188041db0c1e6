"""The streaming engine (``audioclf.classify`` / ``Classifier``) against ``transformers`` computed on single inputs:
files and in-memory audio. Every record the engine yields here is checked against the record schema."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from oracle import build_reference, save_reference

import audioclf
from audioclf.engine.classify import Classifier
from audioclf.engine.records import validate_record
from audioclf.errors import AudioclfError, OptionError

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


def decoded(path: str, rate: int = 16000) -> np.ndarray:
    """A whole file as the model hears it, by soundfile and soxr directly: mono (the channel mean), at ``rate``."""
    data, source_rate = sf.read(path, dtype="float32", always_2d=True)
    wave = data.mean(axis=1, dtype=np.float32)
    return wave if source_rate == rate else soxr.resample(wave, source_rate, rate, quality="HQ")


def classified(inputs, **options) -> list[dict]:
    """``audioclf.classify`` run to the end; every record must match the schema."""
    records = list(audioclf.classify(inputs, **options))
    for record in records:
        validate_record(record)
    return records


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
    original = classifier.score_segments

    def score_segments(segments):
        seen.append([segment.features.shape[0] for segment in segments])
        return original(segments)

    classifier.score_segments = score_segments
    return seen


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_records_equal_the_unbatched_transformers_reference(references: dict, variant: str) -> None:
    reference = references[variant]
    names = FILES_16K_MONO + FILES_OTHER + (FILES_LONG if variant == "layer-mask" else [])
    paths = [str(AUDIO / name) for name in names]
    records = classified(paths, model=str(reference.directory), top_k=0, batch_size=8)
    assert [r["path"] for r in records] == paths  # input order
    for path, record in zip(paths, records):
        expected = reference.scores(decoded(path))
        np.testing.assert_allclose(vector(record), expected, atol=1e-5, err_msg=path)
        assert record["model"] == str(reference.directory) and "revision" not in record


def batches_mix_lengths(model: str, tmp_path: Path, seed: int) -> bool:
    """Classify six noise clips of four lengths one by one and in batches of 8: asserts equal scores and that some
    batch holds several clips; returns whether clips of different lengths shared a batch."""
    rng = np.random.default_rng(seed)
    paths = []
    for k, seconds in enumerate([1.0, 0.7, 1.0, 2.3, 0.7, 1.0]):
        path = tmp_path / f"clip{k}.wav"
        sf.write(path, (0.2 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000, subtype="FLOAT")
        paths.append(str(path))
    alone = [vector(r) for r in audioclf.classify(paths, model=model, top_k=0, batch_size=1)]
    classifier = Classifier(model, top_k=0, batch_size=8, workers=1)
    batches = spy_batches(classifier)
    together = [vector(r) for r in classifier.classify(paths)]
    np.testing.assert_allclose(np.array(together), np.array(alone), atol=1e-5)
    assert max(len(b) for b in batches) > 1
    return any(len(set(b)) > 1 for b in batches)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_batch_composition_never_changes_scores(references: dict, variant: str, tmp_path: Path) -> None:
    mixed = batches_mix_lengths(str(references[variant].directory), tmp_path, seed=1)
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
    [record] = classified(str(path), model=str(reference.directory), top_k=0, chunk=1.0)
    expected = (16000 * reference.scores(wave[:16000]) + 16320 * reference.scores(wave[16000:])) / 32320
    np.testing.assert_allclose(vector(record), expected, atol=1e-5)


def test_windows_give_a_timeline_and_aggregates(references: dict) -> None:
    reference = references["layer-mask"]
    path = str(AUDIO / "speechcommands_yes_1000ms_16k_mono.wav")
    wave = decoded(path)
    model = str(reference.directory)
    records = classified(path, model=model, top_k=0, window=0.4, hop=0.25, aggregate="mean")
    bounds = [(0.0, 0.4), (0.25, 0.65), (0.5, 0.9), (0.75, 1.0)]
    assert [(r.get("start"), r.get("end")) for r in records] == bounds + [(None, None)]
    expected = [reference.scores(wave[int(a * 16000) : int(b * 16000)]) for a, b in bounds]
    for record, scores in zip(records, expected):
        np.testing.assert_allclose(vector(record), scores, atol=1e-5)
    lengths = np.array([b - a for a, b in bounds])
    np.testing.assert_allclose(vector(records[-1]), (lengths[:, None] * expected).sum(0) / lengths.sum(), atol=1e-5)
    maximum = classified(path, model=model, top_k=0, window=0.4, hop=0.25, aggregate="max")[-1]
    np.testing.assert_allclose(vector(maximum), np.max(expected, axis=0), atol=1e-5)
    # a last window shorter than the receptive field (0.98 s .. 1.0 s = 320 samples) is dropped
    short = classified(path, model=model, window=0.5, hop=0.49)
    assert [(r["start"], r["end"]) for r in short] == [(0.0, 0.5), (0.49, 0.99)]


def test_channel_policies(references: dict) -> None:
    reference = references["layer-mask"]
    path = str(AUDIO / "speechbrain_multimic_speech_16k_4ch.flac")
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    model = str(reference.directory)
    each = classified(path, model=model, top_k=0, channels="each", window=4.0)
    assert [(r["channel"], r["start"]) for r in each] == [(c, s) for c in range(4) for s in (0.0, 4.0, 8.0)]
    for record in each:
        start = int(record["start"] * 16000)
        expected = reference.scores(data[start : start + 64000, record["channel"]])
        np.testing.assert_allclose(vector(record), expected, atol=1e-5)
    [second] = classified(path, model=model, top_k=0, channels="2")
    assert second["channel"] == 2
    np.testing.assert_allclose(vector(second), reference.scores(data[:, 2]), atol=1e-5)
    [mix] = classified(path, model=model, top_k=0)
    assert "channel" not in mix
    np.testing.assert_allclose(vector(mix), reference.scores(data.mean(axis=1, dtype=np.float32)), atol=1e-5)
    [missing] = classified(path, model=model, channels="7")
    assert missing == {"path": path, "error": "channel 7 does not exist, the file has 4 channels (valid: 0..3)"}


def test_score_options(references: dict, tmp_path: Path) -> None:
    reference = references["layer-mask"]
    path = str(AUDIO / "speechcommands_no_1000ms_16k_mono.wav")
    logits = reference.logits(decoded(path))
    softmax = torch.from_numpy(logits).softmax(-1).numpy()
    model = str(reference.directory)

    def labels(**options) -> list[tuple[str, float]]:
        [record] = classified(path, model=model, **options)
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

    # activation "auto" follows problem_type
    for problem_type, expected in [("multi_label_classification", 1 / (1 + np.exp(-logits))), ("regression", logits)]:
        directory = tmp_path / problem_type
        directory.mkdir()
        for file in reference.directory.iterdir():
            (directory / file.name).write_bytes(file.read_bytes())
        config = json.loads((directory / "config.json").read_text())
        (directory / "config.json").write_text(json.dumps({**config, "problem_type": problem_type}))
        [record] = classified(path, model=str(directory), top_k=0)
        got = {item["label"]: item["score"] for item in record["labels"]}
        np.testing.assert_allclose([got[f"LABEL_{i}"] for i in range(5)], expected, atol=1e-5)


@pytest.mark.parametrize("options, option, message", [
    (dict(hop=1.0), "hop", "hop needs window"),
    (dict(aggregate="mean"), "aggregate", "aggregate needs window"),
    (dict(window=1.0, aggregate="median"), "aggregate", "aggregate must be one of"),
    (dict(batch_size=0), "batch_size", "batch_size must be 1 or more, got 0"),
    (dict(activation="relu"), "activation", "activation must be one of"),
    (dict(channels="left"), None, "invalid channel policy"),
    (dict(chunk=0.01), "chunk", "chunk 0.01 s is shorter than the model's receptive field (400 samples"),
    (dict(window=0.02), "window", "window 0.02 s is shorter than the model's receptive field"),
    (dict(device="tpu"), "device", "device must be one of"),
    (dict(dtype="int8"), "dtype", "dtype must be one of"),
    (dict(labels=["nope"]), "labels", "labels has unknown label(s) 'nope'; the model's labels are: LABEL_0"),
    (dict(colour=True), "colour", "colour is an unknown option"),
    (dict(sampling_rate=0), "sampling_rate", "sampling_rate must be a positive integer"),
])
def test_bad_options_raise_before_anything_runs(references: dict, options: dict, option: str | None,
                                                message: str) -> None:
    """Library errors name the arguments (the CLI renders them as flags)."""
    with pytest.raises(AudioclfError) as error:
        audioclf.classify([], model=str(references["layer-mask"].directory), **options)
    assert str(error.value).startswith(message) and "--" not in str(error.value)
    assert isinstance(error.value, OptionError) == (option is not None)
    if option is not None:
        assert error.value.option == option


def test_failures_are_records_and_the_run_goes_on(references: dict, tmp_path: Path) -> None:
    good = str(AUDIO / "speechcommands_yes_1000ms_16k_mono.wav")
    tiny = str(AUDIO / "soundfile_tiny_stereo.wav")
    records = classified([str(tmp_path / "missing.wav"), tiny, good, str(tmp_path / "*.flac")],
                         model=str(references["layer-mask"].directory))
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


# ------------------------------------------------------------------------------------------------ in memory
def test_arrays_pairs_and_dicts_equal_transformers_on_the_same_arrays(references: dict) -> None:
    reference = references["layer-mask"]
    model = str(reference.directory)
    waves = [decoded(str(AUDIO / name)) for name in FILES_16K_MONO[:3]]
    inputs = [waves[0], (waves[1], 16000), {"array": waves[2], "sampling_rate": 16000, "path": "clip.wav"}]
    records = classified(inputs, model=model, top_k=0, sampling_rate=16000)
    assert [(r.get("path"), r["index"]) for r in records] == [(None, 0), (None, 1), ("clip.wav", 2)]
    for record, wave in zip(records, waves):
        np.testing.assert_allclose(vector(record), reference.scores(wave), atol=1e-5)
    # one array is one input; a list of dicts is many
    [single] = classified(waves[0], model=model, top_k=0, sampling_rate=16000)
    assert single["index"] == 0
    np.testing.assert_allclose(vector(single), vector(records[0]), atol=1e-6)
    many = classified([{"array": wave, "sampling_rate": 16000} for wave in waves], model=model, top_k=0)
    assert [r["index"] for r in many] == [0, 1, 2]
    np.testing.assert_allclose([vector(r) for r in many], [vector(r) for r in records], atol=1e-6)


def test_an_array_at_another_rate_is_resampled(references: dict) -> None:
    reference = references["layer-mask"]
    wave, rate = sf.read(AUDIO / "ljspeech_LJ050-0131_22k_mono.wav", dtype="float32")
    [record] = classified({"array": wave, "sampling_rate": rate}, model=str(reference.directory), top_k=0)
    expected = reference.scores(soxr.resample(wave, rate, 16000, quality="HQ"))
    np.testing.assert_allclose(vector(record), expected, atol=1e-5)
    [unconverted] = classified((wave, 16000), model=str(reference.directory), top_k=0)  # the rate matters
    assert np.abs(vector(unconverted) - expected).max() > 1e-3


def test_stereo_arrays_follow_the_channel_policy(references: dict) -> None:
    reference = references["layer-mask"]
    path = AUDIO / "speechbrain_multimic_speech_16k_4ch.flac"
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    model = str(reference.directory)
    [mix] = classified((data, 16000), model=model, top_k=0)
    assert "channel" not in mix
    np.testing.assert_allclose(vector(mix), reference.scores(data.mean(axis=1, dtype=np.float32)), atol=1e-5)
    each = classified((data, 16000), model=model, top_k=0, channels="each")
    assert [(r["index"], r["channel"]) for r in each] == [(0, c) for c in range(4)]
    for record in each:
        np.testing.assert_allclose(vector(record), reference.scores(data[:, record["channel"]]), atol=1e-5)
    [third] = classified((data, 16000), model=model, top_k=0, channels=3)
    assert third["channel"] == 3
    np.testing.assert_allclose(vector(third), vector(each[3]), atol=1e-6)


def test_bad_in_memory_inputs_are_error_records(references: dict) -> None:
    nan = np.zeros(8000, np.float32)
    nan[100] = np.nan
    good = decoded(str(AUDIO / FILES_16K_MONO[0]))
    records = classified([np.zeros(8000), (nan, 16000), (np.zeros((2, 8000)), 16000), (good, 16000)],
                         model=str(references["layer-mask"].directory))
    assert [r["index"] for r in records] == [0, 1, 2, 3]
    assert "no sampling rate" in records[0]["error"]
    assert records[1]["error"].startswith("contains NaN or infinite samples")  # no "input 1: " prefix
    assert "transpose" in records[2]["error"]
    assert "labels" in records[3]


def test_progress_reports_every_input(references: dict) -> None:
    done = []
    wave = decoded(str(AUDIO / FILES_16K_MONO[0]))
    classified([str(AUDIO / FILES_16K_MONO[0]), (wave, 16000), "missing.wav"],
               model=str(references["group-nomask"].directory), progress=done.append)
    assert [(d.path, d.item.index, d.error) for d in done] == [
        (str(AUDIO / FILES_16K_MONO[0]), None, None), (None, 1, None), ("missing.wav", None, "no such file")]
    assert done[0].duration == pytest.approx(1.0) and done[1].duration == pytest.approx(1.0)
