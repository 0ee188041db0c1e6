"""Embeddings (``audioclf.engine.embed``) against ``transformers``' hidden states of the same weights and inputs.

Every expected value is computed here by ``transformers``: its feature extractor on the single unpadded input (a
chunk or window is one input), its base model with ``output_hidden_states=True``, the mean over the frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from oracle import build_reference, save_reference, scaled_max_diff

from audioclf.engine.embed import Embedder, embed
from audioclf.engine.records import validate_record
from audioclf.errors import OptionError

AUDIO = Path(__file__).parent / "data" / "audio"
#: the real conv stack (400-sample receptive field, 320x downsampling) with tiny channel counts
CONV = dict(conv_dim=(32,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2))
#: name -> (architecture, model overrides, the feature extractor's return_attention_mask)
VARIANTS = {
    "wav2vec2-layer-mask": ("wav2vec2", dict(feat_extract_norm="layer"), True),
    "wav2vec2-stable": ("wav2vec2", dict(feat_extract_norm="layer", do_stable_layer_norm=True), True),
    "sew-group": ("sew", dict(feat_extract_norm="group"), False),
}
TOLERANCE = 1e-4
#: every scaled difference this module measured (printed at the end with ``pytest -s``)
FIGURES: list[float] = []

pytestmark = pytest.mark.usefixtures("one_torch_thread", "parity_summary")


@pytest.fixture(scope="module")
def parity_summary():
    yield
    if FIGURES:
        print(f"\nembedding parity: {len(FIGURES)} vectors or frame matrices, largest scaled difference "
              f"{max(FIGURES):.2e}, median {float(np.median(FIGURES)):.2e}")


class Reference:
    """A saved tiny model, its ``transformers`` twin and feature extractor."""

    def __init__(self, directory: Path, model_type: str, overrides: dict, mask: bool) -> None:
        from transformers import Wav2Vec2FeatureExtractor

        conv = CONV if model_type == "wav2vec2" else dict(CONV, conv_kernel=(10, 3, 3, 3, 3, 2, 1),
                                                          conv_stride=(5, 2, 2, 2, 2, 2, 1))
        self.model = build_reference(model_type, seed=4, **conv, **overrides)
        self.directory = save_reference(self.model, directory)
        (directory / "preprocessor_config.json").write_text(json.dumps({
            "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": 16000,
            "padding_value": 0.0, "do_normalize": True, "padding_side": "right", "return_attention_mask": mask}))
        self.extractor = Wav2Vec2FeatureExtractor.from_pretrained(directory)

    def states(self, wave: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(last_hidden_state [T, D], hidden_states: L + 1 arrays [T_l, D])`` of one unpadded input."""
        features = self.extractor(wave, sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            output = self.model.base_model(**features, output_hidden_states=True)
        return output.last_hidden_state[0].numpy(), [state[0].numpy() for state in output.hidden_states]


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Reference]:
    root = tmp_path_factory.mktemp("embed-models")
    return {name: Reference(root / name, *VARIANTS[name]) for name in VARIANTS}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Mono 16 kHz clips of different lengths (real speech and random noise)."""
    root = tmp_path_factory.mktemp("embed-clips")
    rng = np.random.default_rng(5)
    paths = [AUDIO / "speechcommands_yes_1000ms_16k_mono.wav", AUDIO / "speechcommands_no_1000ms_16k_mono.wav"]
    for k, seconds in enumerate([0.73, 1.41, 2.5]):
        path = root / f"noise{k}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000, subtype="FLOAT")
        paths.append(path)
    return paths


def wave_of(path: Path) -> np.ndarray:
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == 16000
    return data.mean(axis=1, dtype=np.float32)


def check(ours: np.ndarray, expected: np.ndarray, figures: list[float], what: str) -> None:
    assert ours.shape == expected.shape, what
    difference = scaled_max_diff(torch.from_numpy(np.asarray(ours)), torch.from_numpy(np.asarray(expected)))
    figures.append(difference)
    FIGURES.append(difference)
    assert difference <= TOLERANCE, f"{what}: scaled max |difference| {difference:.2e}"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_file_embeddings_equal_transformers_hidden_states(references: dict, clips: list[Path], variant: str) -> None:
    reference = references[variant]
    paths = [str(path) for path in clips]
    expected = {path: reference.states(wave_of(Path(path))) for path in paths}
    figures: list[float] = []
    for layer in ("last", 0, 1, -1, "all"):
        records = list(embed(paths, model=str(reference.directory), layer=layer, batch_size=4, chunk=30.0))
        assert [record["path"] for record in records] == paths
        for record in records:
            validate_record(record)
            last, states = expected[record["path"]]
            if layer == "last":
                want = last.mean(axis=0)
            elif layer == "all":
                want = np.stack([state.mean(axis=0) for state in states])
            else:
                want = states[layer].mean(axis=0)
            check(record["embedding"], want, figures, f"{variant} layer {layer} {record['path']}")
            assert record["layer"] == layer and record["model"] == str(reference.directory)
    print(f"{variant}: pooled embeddings, max scaled difference {max(figures):.2e} over {len(figures)} vectors")


@pytest.mark.parametrize("architecture", ["ast", "whisper"])
def test_spectrogram_models_embed_every_token(tmp_path: Path, clips: list[Path], architecture: str) -> None:
    """AST and Whisper (fixed-size spectrogram inputs, no frame mask): every token of the encoder output counts (AST's
    CLS and distillation tokens included, Whisper's frames of the 30 s padded input too), as ``transformers`` returns
    them; ``last`` is the whole ``last_hidden_state`` although the classifier's inference path computes only the
    pooled tokens of AST's last layer."""
    from transformers import ASTFeatureExtractor, WhisperFeatureExtractor

    if architecture == "ast":
        model = build_reference("audio-spectrogram-transformer", seed=6, max_length=128, num_mel_bins=128)
        extractor, encoder = ASTFeatureExtractor(max_length=128), model.base_model
    else:
        model = build_reference("whisper", seed=7, num_mel_bins=80, max_source_positions=1500)
        extractor, encoder = WhisperFeatureExtractor(feature_size=80), model.encoder
    directory = save_reference(model, tmp_path / architecture)
    extractor.save_pretrained(directory)
    paths = [str(path) for path in clips[:3]]
    figures: list[float] = []
    for layer in ("last", "all"):
        for record in embed(paths, model=str(directory), layer=layer, batch_size=2):
            features = extractor(wave_of(Path(record["path"])), sampling_rate=16000, return_tensors="pt")
            with torch.no_grad():
                output = encoder(next(iter(features.values())), output_hidden_states=True)
            states = [output.last_hidden_state] if layer == "last" else output.hidden_states
            want = np.stack([state[0].mean(dim=0).numpy() for state in states])
            check(record["embedding"], want[0] if layer == "last" else want, figures, f"{architecture} layer {layer}")
    print(f"{architecture}: pooled embeddings, max scaled difference {max(figures):.2e} over {len(figures)} vectors")


def test_last_differs_from_the_last_hidden_state_where_transformers_says_so(references: dict, clips: list[Path]) -> None:
    """Stable layer norm: ``last`` is after the final LayerNorm, ``hidden_states[-1]`` before it (transformers 5.x);
    SEW: ``last`` is upsampled to the frame rate, the hidden states stay squeezed."""
    path = str(clips[0])
    for variant in ("wav2vec2-stable", "sew-group"):
        embedder = Embedder(str(references[variant].directory), layer="last", pooling="none")
        last = next(embedder.embed(path))["embedding"]
        deepest = next(Embedder(str(references[variant].directory), layer=-1, pooling="none").embed(path))["embedding"]
        if variant == "sew-group":
            assert last.shape[0] > deepest.shape[0]
        else:
            assert last.shape == deepest.shape and not np.allclose(last, deepest, atol=1e-3)


@pytest.mark.parametrize("variant", ["wav2vec2-layer-mask", "sew-group"])
def test_frame_vectors_equal_transformers(references: dict, clips: list[Path], variant: str) -> None:
    reference = references[variant]
    figures: list[float] = []
    for layer in ("last", 1, "all"):
        for record in embed([str(path) for path in clips], model=str(reference.directory), layer=layer,
                            pooling="none", batch_size=4):
            last, states = reference.states(wave_of(Path(record["path"])))
            want = last if layer == "last" else np.stack(states) if layer == "all" else states[layer]
            check(record["embedding"], want, figures, f"{variant} frames layer {layer} {record['path']}")
    print(f"{variant}: frame vectors, max scaled difference {max(figures):.2e}")


def test_padded_batches_never_change_an_embedding(references: dict, clips: list[Path]) -> None:
    """The layer-norm model with an attention mask may share batches between lengths: padding is left out of the
    mean, so every embedding still equals the unbatched reference."""
    reference = references["wav2vec2-layer-mask"]
    embedder = Embedder(str(reference.directory), layer=1, batch_size=8)
    lengths: list[list[int]] = []
    original = embedder.embed_segments

    def spy(segments):
        lengths.append([segment.frames for segment in segments])
        return original(segments)

    embedder.pipeline.stream.compute = spy
    records = list(embedder.embed([str(path) for path in clips]))
    assert any(len(set(batch)) > 1 for batch in lengths), lengths  # a padded batch was run
    figures: list[float] = []
    for record in records:
        _, states = reference.states(wave_of(Path(record["path"])))
        check(record["embedding"], states[1].mean(axis=0), figures, record["path"])


def test_chunks_combine_as_the_frame_weighted_mean_of_chunk_means(references: dict, clips: list[Path]) -> None:
    reference = references["wav2vec2-layer-mask"]
    path = clips[-1]  # 2.5 s: chunks of 1 s, 1 s, 0.5 s
    wave = wave_of(path)
    chunks = [wave[0:16000], wave[16000:32000], wave[32000:]]
    means, counts, frames = [], [], []
    for chunk in chunks:
        last, _ = reference.states(chunk)
        means.append(last.mean(axis=0))
        counts.append(last.shape[0])
        frames.append(last)
    record = next(embed(str(path), model=str(reference.directory), chunk=1.0))
    figures: list[float] = []
    want = np.einsum("c,cd->d", np.array(counts, dtype=np.float64), np.stack(means)) / sum(counts)
    check(record["embedding"], want.astype(np.float32), figures, "chunked mean")
    whole, _ = reference.states(wave)
    assert not np.allclose(record["embedding"], whole.mean(axis=0), atol=1e-3)  # attention spans the whole file
    frames_record = next(embed(str(path), model=str(reference.directory), chunk=1.0, pooling="none"))
    check(frames_record["embedding"], np.concatenate(frames), figures, "chunked frames")


def test_windows_and_channels_give_one_record_each(references: dict, tmp_path: Path) -> None:
    reference = references["sew-group"]
    rng = np.random.default_rng(7)
    stereo = (0.1 * rng.standard_normal((40000, 2))).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 16000, subtype="FLOAT")
    records = list(embed(str(path), model=str(reference.directory), window=1.0, hop=0.5, channels="each"))
    spans = [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0), (1.5, 2.5)]
    assert [(r["channel"], r["start"], r["end"]) for r in records] == [(c, *s) for c in (0, 1) for s in spans]
    figures: list[float] = []
    for record in records:
        validate_record(record)
        start = int(record["start"] * 16000)
        last, _ = reference.states(stereo[start:start + 16000, record["channel"]])
        check(record["embedding"], last.mean(axis=0), figures, f"window {record['start']} channel {record['channel']}")


def test_in_memory_audio_and_errors(references: dict, tmp_path: Path) -> None:
    reference = references["wav2vec2-stable"]
    rng = np.random.default_rng(8)
    wave = (0.1 * rng.standard_normal(12345)).astype(np.float32)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEjunk")
    records = list(embed([(wave, 16000), str(broken)], model=str(reference.directory)))
    assert records[0]["index"] == 0 and "path" not in records[0]
    last, _ = reference.states(wave)
    check(records[0]["embedding"], last.mean(axis=0), [], "in-memory")
    assert records[1]["path"] == str(broken) and "error" in records[1]
    for record in records:
        validate_record(record)


@pytest.mark.parametrize("options, option", [
    (dict(layer=3), "layer"), (dict(layer=-4), "layer"), (dict(layer="middle"), "layer"),
    (dict(pooling="max"), "pooling"), (dict(hop=1.0), "hop"),
])
def test_bad_options(references: dict, options: dict, option: str) -> None:
    with pytest.raises(OptionError) as caught:
        Embedder(str(references["wav2vec2-stable"].directory), **options)
    assert caught.value.option == option
