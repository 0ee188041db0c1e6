"""``audioclf classify`` / ``inspect`` on AST and Whisper models, run as a user runs them, against the
``transformers`` audio-classification pipeline on real 16 kHz clips: files within the model's input length, long
files in chunks, windows, and the featurizer picked from the model's (pre)processor config."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from oracle import build_reference, save_reference

DATA = Path(__file__).parent / "data"
AUDIO = DATA / "audio"
CONFIGS = DATA / "configs"
LONG_SPEECH = AUDIO / "librispeech_5703-47212-0000_16k_mono.ogg"  # 14.8 s
CLIPS = [AUDIO / name for name in ("speechcommands_yes_1000ms_16k_mono.wav", "speechcommands_no_1000ms_16k_mono.wav",
                                   "speechcommands_noise_1000ms_16k_mono.wav", "speechcommands_yes_30ms_16k_mono.wav")]
LABELS = {i: label for i, label in enumerate(["speech", "music", "bird", "noise", "silence"])}
ENV_THREADS = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def copy_config(source: str, name: str, target: Path) -> None:
    shutil.copy(CONFIGS / source / name, target / name)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random AST and Whisper checkpoints with real feature-extractor configs: AudioSet AST (1024 frames,
    normalised), Speech Commands AST (128 frames, its statistics), AST without normalisation, Whisper with 80 mel bins
    (a 4.x ``preprocessor_config.json``) and with 128 (a 5.x nested ``processor_config.json`` and a config without
    ``num_hidden_layers``)."""
    from transformers import ASTFeatureExtractor

    root = tmp_path_factory.mktemp("spectrogram-models")
    ast = dict(num_mel_bins=128, id2label=LABELS)
    built = {
        "ast-audioset": build_reference("audio-spectrogram-transformer", seed=1, max_length=1024, **ast),
        "ast-commands": build_reference("audio-spectrogram-transformer", seed=2, max_length=128,
                                        frequency_stride=16, time_stride=16, **ast),
        "ast-raw": build_reference("audio-spectrogram-transformer", seed=3, max_length=128, **ast),
        "whisper-80": build_reference("whisper", seed=4, num_mel_bins=80, max_source_positions=1500,
                                      id2label=LABELS),
        "whisper-128": build_reference("whisper", seed=5, num_mel_bins=128, max_source_positions=1500,
                                       use_weighted_layer_sum=True, id2label=LABELS),
    }
    directories = {name: save_reference(model, root / name) for name, model in built.items()}
    ASTFeatureExtractor().save_pretrained(directories["ast-audioset"])
    copy_config("FSis__20240904-142325-ast-finetuned-speech-commands-v2-afvad_sentences10-bin-fold6__rev-7df2c2d",
                "preprocessor_config.json", directories["ast-commands"])
    ASTFeatureExtractor(max_length=128, do_normalize=False).save_pretrained(directories["ast-raw"])
    copy_config("github__ncaco__Python_Function__whisper-small", "preprocessor_config.json", directories["whisper-80"])
    copy_config("github__ngclara07__CM3070-Final-Project__whisper-large-v3", "processor_config.json",
                directories["whisper-128"])
    assert "num_hidden_layers" not in json.loads((directories["whisper-128"] / "config.json").read_text())
    return directories


@pytest.fixture(scope="module")
def pipelines(models: dict[str, Path]) -> dict:
    """transformers' audio-classification pipeline on each model directory (its own loader and extractor)."""
    from transformers import pipeline

    return {name: pipeline("audio-classification", model=str(directory), device="cpu")
            for name, directory in models.items()}


def run_cli(*args: str, separate_process: bool = False) -> tuple[int, str, str]:
    """Run ``audioclf`` (the installed module in a subprocess, as a user does, or in this process); exit code,
    stdout and stderr."""
    import os

    if separate_process:
        result = subprocess.run([sys.executable, "-m", "audioclf", *args], capture_output=True, text=True,
                                env={**os.environ, **ENV_THREADS}, timeout=300)
        return result.returncode, result.stdout, result.stderr
    from typer.testing import CliRunner

    from audioclf.cli import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})  # wide enough that tables do not wrap
    return result.exit_code, result.stdout, result.stderr


def classify(model: Path, *args: str, separate_process: bool = False) -> list[dict]:
    """``audioclf classify`` with every label (JSON Lines, as on a pipe), its records parsed."""
    code, stdout, stderr = run_cli("classify", "--model", str(model), "--top-k", "0", *args,
                                   separate_process=separate_process)
    assert code == 0, stderr
    return [json.loads(line) for line in stdout.splitlines()]


def reference(pipe, wave: np.ndarray) -> dict[str, float]:
    """The pipeline's softmax scores of one 16 kHz mono waveform."""
    with torch.no_grad():
        results = pipe({"raw": wave, "sampling_rate": 16000}, top_k=None)
    return {item["label"]: item["score"] for item in results}


def chunked_reference(pipe, wave: np.ndarray, chunk: int) -> dict[str, float]:
    """Length-weighted mean of the pipeline's scores on consecutive ``chunk``-sample pieces."""
    pieces = [wave[start:start + chunk] for start in range(0, len(wave), chunk)]
    scores = [reference(pipe, piece) for piece in pieces]
    return {label: sum(len(p) * s[label] for p, s in zip(pieces, scores)) / len(wave) for label in scores[0]}


def assert_scores(record: dict, expected: dict[str, float]) -> None:
    got = {item["label"]: item["score"] for item in record["labels"]}
    assert got.keys() == expected.keys()
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), atol=1e-4, rtol=0)


def read(path: Path) -> np.ndarray:
    wave, rate = sf.read(path, dtype="float32")
    assert rate == 16000 and wave.ndim == 1
    return wave


@pytest.mark.parametrize("name", ["ast-audioset", "ast-commands", "ast-raw", "whisper-80", "whisper-128"])
def test_scores_equal_the_transformers_pipeline(name, models, pipelines):
    """Clips within the input length are classified whole, exactly as the pipeline does; a batch of them changes
    nothing; a 14.8 s file is chunked at the model's input length (AST: 1024 or 128 frames, Whisper: 30 s)."""
    files = [*CLIPS, LONG_SPEECH]
    records = classify(models[name], "--batch-size", "3", *map(str, files),
                       separate_process=name in ("ast-audioset", "whisper-128"))
    assert [r["path"] for r in records] == [str(p) for p in files]
    pipe = pipelines[name]
    limit = pipe.feature_extractor.n_samples if name.startswith("whisper") else (
        400 + (pipe.feature_extractor.max_length - 1) * 160)
    for path, record in zip(files, records):
        wave = read(path)
        expected = reference(pipe, wave) if len(wave) <= limit else chunked_reference(pipe, wave, limit)
        assert_scores(record, expected)


def test_whisper_files_longer_than_30_s_are_chunked(models, pipelines, tmp_path):
    wave = np.concatenate([read(LONG_SPEECH)] * 3)  # 44.5 s
    path = tmp_path / "long.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    (record,) = classify(models["whisper-80"], str(path))
    assert_scores(record, chunked_reference(pipelines["whisper-80"], wave, 480000))


@pytest.mark.parametrize("name,window,hop", [("ast-commands", 1.2, 3.0), ("whisper-80", 5.0, 4.0)])
def test_windows_equal_the_pipeline_on_each_window(name, window, hop, models, pipelines):
    records = classify(models[name], "--window", str(window), "--hop", str(hop), str(LONG_SPEECH))
    wave = read(LONG_SPEECH)
    starts = np.arange(0, len(wave), round(hop * 16000))
    assert [round(r["start"] * 16000) for r in records] == list(starts)
    for start, record in zip(starts, records):
        assert_scores(record, reference(pipelines[name], wave[start:start + round(window * 16000)]))


def test_ast_window_longer_than_the_input_is_a_usage_error(models):
    code, _, stderr = run_cli("classify", "--model", str(models["ast-commands"]), "--window", "2", str(LONG_SPEECH))
    assert code == 2 and "longer than the model takes" in stderr


@pytest.mark.parametrize("name,kind,front", [("ast-audioset", "ASTFeatureExtractor", "1212 patches"),
                                             ("whisper-128", "WhisperFeatureExtractor", "128 mel bins x 3000")])
def test_inspect_describes_spectrogram_models(name, kind, front, models, pipelines):
    code, stdout, stderr = run_cli("inspect", str(models[name]), "--json")
    assert code == 0, stderr
    facts = json.loads(stdout)
    assert facts["feature_extractor"]["feature_extractor_type"] == kind and front in facts["front_end"]
    assert facts["conv_layers"] is None and facts["labels"] == list(LABELS.values())
    assert facts["parameters"] == sum(p.numel() for p in pipelines[name].model.parameters())
    code, table, _ = run_cli("inspect", str(models[name]))
    assert code == 0 and front in table and kind in table


def test_auto_feature_extractor_picks_the_spectral_featurizers(models):
    import audioclf
    from audioclf.audio.spectral_features import ASTFeatureExtractor, WhisperFeatureExtractor

    ast = audioclf.AutoFeatureExtractor.from_pretrained(models["ast-commands"])
    assert isinstance(ast, ASTFeatureExtractor) and ast.max_length == 128 and ast.mean == pytest.approx(-6.845978)
    whisper = audioclf.AutoFeatureExtractor.from_pretrained(models["whisper-128"], chunk_length=10)
    assert isinstance(whisper, WhisperFeatureExtractor) and whisper.feature_size == 128
    assert whisper.n_samples == 160000


def test_model_type_defaults_without_a_preprocessor_config(models, tmp_path):
    """A checkpoint without feature-extractor config gets its model type's featurizer (Whisper: the config's mel
    bins), not the waveform one."""
    from audioclf.audio.features import load_featurizer

    for name in ("ast-raw", "whisper-128"):
        shutil.copy(models[name] / "config.json", tmp_path / "config.json")
        featurizer = load_featurizer(tmp_path)
        assert featurizer.model_input_name == ("input_features" if name.startswith("whisper") else "input_values")
        assert featurizer.fixed_size
    assert featurizer.feature_size == 128


try:
    from tests.hubserver import hub, hub_env  # noqa: F401  (fixtures)
except ImportError:  # tests/ is not a package
    from hubserver import hub, hub_env  # noqa: F401


def test_download_takes_the_processor_config_and_the_model_runs_offline(models, hub, hub_env, monkeypatch):
    """A 5.x Whisper checkpoint keeps its feature-extractor settings in processor_config.json: download fetches it
    (and nothing else besides config and weights), and the downloaded model classifies from the cache."""
    source = models["whisper-128"]
    files = {path.name: path.read_bytes() for path in source.iterdir()}
    files["README.md"] = b"# whisper\n"
    files["generation_config.json"] = b"{}"
    hub.add_repo("org/whisper").commit(files)
    code, stdout, stderr = run_cli("download", "org/whisper")  # hub_env points this process at the loopback Hub
    assert code == 0, stderr
    assert sorted(hub.downloaded()) == ["config.json", "model.safetensors", "processor_config.json"]
    hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (record,) = classify("org/whisper", str(CLIPS[0]))
    (expected,) = classify(source, str(CLIPS[0]))
    assert record["labels"] == expected["labels"]
