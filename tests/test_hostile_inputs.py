"""Bounded time and memory for tiny hostile inputs, files and paths that must not be trusted, checkpoints that do not
fit: each is a one-line error (or an error record), never gigabytes, minutes or a traceback."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

import audioclf
from audioclf.audio.decode import AudioSource
from audioclf.audio.features import load_featurizer
from audioclf.checkpoints.tf import load_tf_state_dict
from audioclf.data.sources import expand_inputs
from audioclf.errors import AudioError, CheckpointError, ConfigError, TFCheckpointError
from hostile import AUDIO, CLIP, cli, limited_run, model_copy, one_error_line

TF = Path(__file__).parent / "data" / "tf" / "w2v2_cls_group"


def _wav(path: Path, frames: int, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(np.zeros(frames, "<i2").tobytes())
    return path


# ---------------------------------------------------------------------------------------------------- audio
def test_declared_rates_channels_and_lengths_are_checked_before_decoding(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(AudioError, match="sample rate 1 Hz is below the limit"):
        AudioSource(_wav(tmp_path / "slow.wav", 8000, rate=1))  # 8000 s at 1 Hz: 8.5 GB once resampled
    wide = bytearray(_wav(tmp_path / "x.wav", 4).read_bytes()[:44]) + bytes(1000 * 2 * 8)
    struct.pack_into("<HIIH", wide, 22, 1000, 16000, 16000 * 2 * 1000, 2 * 1000)
    struct.pack_into("<I", wide, 40, 1000 * 2 * 8)
    struct.pack_into("<I", wide, 4, len(wide) - 8)
    (tmp_path / "wide.wav").write_bytes(bytes(wide))
    with pytest.raises(AudioError, match="1000 channels: the count exceeds the limit 256"):
        AudioSource(tmp_path / "wide.wav")
    monkeypatch.setenv("AUDIOCLF_LIMIT_AUDIO_SECONDS", "1")
    with pytest.raises(AudioError, match="2 s of audio: the length exceeds the limit 1 .*AUDIOCLF_LIMIT_AUDIO_SECONDS"):
        AudioSource(_wav(tmp_path / "long.wav", 32000))
    AudioSource(_wav(tmp_path / "short.wav", 16000))  # within the limit


def _encoded(fmt: str, subtype: str, seconds: float = 5.0) -> bytes:
    buffer = io.BytesIO()
    noise = (np.random.default_rng(0).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)
    sf.write(buffer, noise, 16000, format=fmt, subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["librispeech_5703-47212-0000_16k_mono.ogg", "freesound_456440_robin_44k_stereo.ogg",
                                  "opus", "mp3"])
def test_truncated_ogg_and_mp3_are_errors_not_shorter_recordings(tmp_path: Path, name: str) -> None:
    """Cut at 5 %, 10 %, ... 95 %. (The MP3 is one libsndfile writes: its Xing header counts the frames, so a cut
    that happens to fall between two frames is caught too.)"""
    suffix = {"opus": ".opus", "mp3": ".mp3"}.get(name, ".ogg")
    data = {"opus": lambda: _encoded("OGG", "OPUS"), "mp3": lambda: _encoded("MP3", "MPEG_LAYER_III")}.get(
        name, lambda: (AUDIO / name).read_bytes())()
    whole = tmp_path / ("whole" + suffix)
    whole.write_bytes(data)
    AudioSource(whole)
    cut = tmp_path / ("cut" + suffix)
    caught = 0
    for percent in range(5, 100, 5):
        cut.write_bytes(data[: len(data) * percent // 100])
        try:
            AudioSource(cut)
        except AudioError as error:
            assert "\n" not in str(error)
            caught += 1
    assert caught == 19  # every cut, also those that end on a page or frame boundary of the stream


def test_a_cut_at_an_ogg_page_boundary_lacks_the_end_of_stream_page(tmp_path: Path) -> None:
    data = _encoded("OGG", "VORBIS")
    last_page = data.rfind(b"OggS")
    (tmp_path / "cut.ogg").write_bytes(data[:last_page])
    with pytest.raises(AudioError, match="ends before the Ogg end-of-stream page"):
        AudioSource(tmp_path / "cut.ogg")


# ---------------------------------------------------------------------------------------------------- configs
def test_hostile_config_files_are_one_line_errors(tmp_path: Path, monkeypatch) -> None:
    model = model_copy(tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    cases = {
        "nested": '{"model_type": "wav2vec2", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "nan": json.dumps({**config, "layer_norm_eps": float("nan")}),
        "long number": json.dumps(config)[:-1] + ', "x": ' + "9" * 5000 + "}",
        "huge": json.dumps({**config, "padding": "x" * (17 << 20)}),
    }
    needles = {"nested": "nested too deeply", "nan": "NaN is not a finite number", "long number": "invalid JSON",
               "huge": "the file size exceeds the limit 16777216"}
    for case, text in cases.items():
        (model / "config.json").write_text(text)
        with pytest.raises(ConfigError, match=needles[case]) as error:
            audioclf.AutoConfig.from_pretrained(model)
        assert "\n" not in str(error.value)
        assert needles[case] in one_error_line(cli("classify", "--model", str(model), str(CLIP)))


def test_preprocessor_configs_are_bounded_too(tmp_path: Path) -> None:
    path = tmp_path / "preprocessor_config.json"
    for values, needle in [({"sampling_rate": 10**9}, "sampling_rate 1000000000 Hz exceeds the limit 192000"),
                           ({"sampling_rate": 1}, "is below the limit 1000")]:
        path.write_text(json.dumps({"feature_extractor_type": "Wav2Vec2FeatureExtractor", **values}))
        with pytest.raises(ConfigError, match=needle):
            load_featurizer(path)
    path.write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_featurizer(path)


# ---------------------------------------------------------------------------------------------------- checkpoints
def test_only_the_tensors_the_model_needs_are_read(tmp_path: Path) -> None:
    """A TF bundle whose index declares an unused 17 GB tensor (a sparse data file) and an .h5 file with a
    compressed dataset that was never written (14 GB when read) convert under a 3 GiB address-space limit."""
    import h5py

    from test_tf_bundle import entry_proto, table_entries, write_table

    bundle = tmp_path / "bundle"
    shutil.copytree(TF / "v1", bundle)
    data = bundle / "model.ckpt.data-00000-of-00001"
    offset, size = data.stat().st_size, 65536 * 65536 * 4
    entries = sorted([*table_entries(bundle / "model.ckpt.index"),
                      (b"unused/huge", entry_proto(1, (65536, 65536), 0, offset, size, None))])
    write_table(bundle / "model.ckpt.index", entries)
    os.truncate(data, offset + size)

    h5 = tmp_path / "h5"
    shutil.copytree(TF / "h5", h5)
    with h5py.File(h5 / "tf_model.h5", "a") as handle:
        group = handle[list(handle.keys())[0]]
        names = [name if isinstance(name, str) else name.decode() for name in group.attrs["weight_names"]]
        huge = names[0].rsplit("/", 1)[0] + "/huge:0"
        group.create_dataset(huge, shape=(60000, 60000), dtype="f4", compression="gzip", chunks=(1000, 1000))
        group.attrs["weight_names"] = np.array([name.encode() for name in names + [huge]])
    for source in (bundle, h5):
        result = limited_run(["-m", "audioclf", "convert", "--from-tf", str(source), "--output",
                              str(tmp_path / f"out-{source.name}")])
        assert result.returncode == 0 and "converted 50 tensors" in result.stderr, result.stderr[-2000:]


def test_h5_links_and_external_storage_outside_the_model_directory_are_refused(tmp_path: Path) -> None:
    import h5py

    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as handle:
        handle["data"] = np.zeros(3, np.float32)
    (tmp_path / "raw.bin").write_bytes(bytes(64))
    for case in ("external link", "external storage"):
        source = tmp_path / case.replace(" ", "-")
        shutil.copytree(TF / "h5", source)
        with h5py.File(source / "tf_model.h5", "a") as handle:
            group = handle[list(handle.keys())[0]]
            name = group.attrs["weight_names"][-1]
            name = name if isinstance(name, str) else name.decode()
            shape, dtype = group[name].shape, group[name].dtype
            del group[name]
            if case == "external link":
                group[name] = h5py.ExternalLink(str(secret), "/data")
            else:
                group.create_dataset(name, shape=shape, dtype=dtype,
                                     external=[(str(tmp_path / "raw.bin"), 0, h5py.h5f.UNLIMITED)])
        with pytest.raises(TFCheckpointError, match="refers to a file outside the model directory"):
            result = load_tf_state_dict(source)
            for key in result.state_dict:
                result.state_dict[key]


def test_a_checkpoint_without_the_model_s_weights_is_refused(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    model = model_copy(tmp_path / "model")
    state = load_file(str(model / "model.safetensors"))
    save_file({"unrelated.weight": np.zeros(3, np.float32)}, str(model / "model.safetensors"))
    with pytest.raises(CheckpointError, match="holds none of the model's 89 encoder weights"):
        audioclf.AutoModelForAudioClassification.from_pretrained(model)  # the library refuses it too
    assert "holds none of the model's" in one_error_line(cli("classify", "--model", str(model), str(CLIP)))
    headless = {key: value for key, value in state.items() if not key.startswith(("classifier", "projector"))}
    save_file(headless, str(model / "model.safetensors"))
    audioclf.AutoModelForAudioClassification.from_pretrained(model)  # the library warns (transformers does)
    assert "has no classification head" in one_error_line(cli("classify", "--model", str(model), str(CLIP)))
    save_file({k: v for k, v in state.items() if "layers.3." not in k}, str(model / "model.safetensors"))
    assert "lacks 18 model weight(s)" in one_error_line(cli("classify", "--model", str(model), str(CLIP)))


@pytest.mark.parametrize("command, poisoned", [
    ("classify", lambda key: key == "classifier.bias"),  # scores
    ("embed", lambda key: key.endswith("layer_norm.bias") and "encoder" in key),  # hidden states
])
def test_a_model_that_gives_nan_gives_an_error_record_not_nan(command: str, poisoned: Any, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    model = model_copy(tmp_path / "model")
    state = load_file(str(model / "model.safetensors"))
    keys = [key for key in state if poisoned(key)]
    assert keys
    state.update({key: np.full_like(state[key], np.nan) for key in keys})
    save_file(state, str(model / "model.safetensors"))
    result = cli(command, "--model", str(model), str(CLIP), "--format", "jsonl")
    assert result.exit_code == 1
    (record,) = [json.loads(line, parse_constant=lambda name: pytest.fail(name)) for line in result.stdout.splitlines()]
    assert "not finite numbers" in record["error"]


# ---------------------------------------------------------------------------------------------------- paths
def test_symlink_loops_and_cycles_give_one_error_and_every_other_file_once(tmp_path: Path) -> None:
    tree = tmp_path / "in"
    (tree / "sub").mkdir(parents=True)
    shutil.copy(CLIP, tree / "a.wav")
    shutil.copy(CLIP, tree / "sub" / "b.wav")
    (tree / "loop.wav").symlink_to("loop.wav")
    (tree / "sub" / "up").symlink_to(tree)  # a cycle
    (tree / "sub" / "again").symlink_to(tree / "sub")  # and another
    found = [(item.path, item.error) for item in expand_inputs([str(tree)], recursive=True)]
    assert found == [(str(tree / "a.wav"), None),
                     (str(tree / "loop.wav"), "cannot open (Too many levels of symbolic links)"),
                     (str(tree / "sub" / "b.wav"), None)]
    globbed = [item.path for item in expand_inputs([str(tree) + "/**/*.wav"], recursive=True)]
    assert sorted(map(os.path.realpath, globbed)) == sorted({os.path.realpath(p) for p in globbed})
    assert {os.path.realpath(p) for p in globbed} >= {str(tree / "a.wav"), str(tree / "sub" / "b.wav")}
    result = cli("classify", "--recursive", str(tree), "--format", "jsonl")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1 and [("labels" in r, r["path"]) for r in records] == [
        (True, str(tree / "a.wav")), (False, str(tree / "loop.wav")), (True, str(tree / "sub" / "b.wav"))]


def test_non_utf8_file_names_are_classified_and_written_losslessly(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/caf\xe9.wav"
    shutil.copy(CLIP, name)
    result = cli("classify", str(tmp_path), "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout_bytes.decode("utf-8").splitlines()]  # strict UTF-8
    assert os.fsencode(record["path"]) == name and record["labels"]
    assert "\\udce9" in result.stdout  # written as a surrogate escape
    target = tmp_path / "out.csv"
    assert cli("classify", str(tmp_path), "--output", str(target)).exit_code == 0
    assert name in target.read_bytes()  # csv: the original bytes
    assert cli("classify", str(tmp_path), "--output", str(target), "--resume").exit_code == 0
    assert target.read_bytes().count(name) == 5  # read back, not classified again (5 labels of one record)
