"""Decoding real clips and generated files with libsndfile, block reading, and the error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioclf.audio import AUDIO_EXTENSIONS, ArraySource, AudioSource, has_audio_extension
from audioclf.errors import AudioError

DATA = Path(__file__).parent / "data" / "audio"

# file -> (sample rate, channels, format prefix)
CLIPS = {
    "speechcommands_yes_1000ms_16k_mono.wav": (16000, 1, "WAV"),
    "speechcommands_no_1000ms_16k_mono.wav": (16000, 1, "WAV"),
    "speechcommands_silence_1000ms_16k_mono.wav": (16000, 1, "WAV"),
    "speechcommands_noise_1000ms_16k_mono.wav": (16000, 1, "WAV"),
    "speechcommands_yes_30ms_16k_mono.wav": (16000, 1, "WAV"),
    "ljspeech_LJ050-0131_22k_mono.wav": (22050, 1, "WAV"),
    "audioread_test-1_22k_mono.mp3": (22050, 1, "MP3"),
    "freesound_456440_robin_44k_stereo.ogg": (44100, 2, "OGG"),
    "speechbrain_multimic_speech_16k_4ch.flac": (16000, 4, "FLAC"),
    "soundfile_tiny_stereo.wav": (44100, 2, "WAV"),
    "librispeech_5703-47212-0000_16k_mono.ogg": (16000, 1, "OGG"),
}


def test_every_clip_is_present_with_its_licence_row() -> None:
    licences = (DATA / "LICENSES.md").read_text(encoding="utf-8")
    for name in CLIPS:
        assert (DATA / name).is_file(), name
        assert f"| {name} |" in licences, f"{name} has no licence row"


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_clip_decodes_like_soundfile(name: str) -> None:
    path = DATA / name
    rate, channels, kind = CLIPS[name]
    source = AudioSource(path)
    info = sf.info(str(path))
    assert (source.sample_rate, source.channels) == (rate, channels)
    assert source.frames == info.frames
    assert source.format.startswith(kind)
    assert source.backend == "soundfile"
    assert source.duration == pytest.approx(info.frames / rate)

    whole = source.read_all()
    assert whole.dtype == np.float32 and whole.ndim == 2 and whole.shape[1] == channels
    assert whole.flags.c_contiguous
    reference = sf.read(str(path), dtype="float32", always_2d=True)[0]
    np.testing.assert_array_equal(whole, reference)
    if kind != "MP3":  # the MP3 header states an estimate of the length
        assert whole.shape[0] == info.frames

    for block_frames in (1, 1000, 4096, 65536):
        if block_frames == 1 and whole.shape[0] > 20000:
            continue
        blocks = list(source.blocks(block_frames))
        assert all(b.shape[0] == block_frames for b in blocks[:-1])
        assert 1 <= blocks[-1].shape[0] <= block_frames
        assert all(b.dtype == np.float32 and b.shape[1] == channels for b in blocks)
        np.testing.assert_array_equal(np.concatenate(blocks), whole)


def test_arrays_read_like_files() -> None:
    stereo = np.arange(20, dtype=np.int16).reshape(10, 2)  # any real dtype, converted without scaling
    source = ArraySource(stereo, 8000, "input 3")
    assert (source.sample_rate, source.channels, source.frames) == (8000, 2, 10)
    blocks = list(source.blocks(4))
    assert [b.shape for b in blocks] == [(4, 2), (4, 2), (2, 2)]
    assert all(b.dtype == np.float32 and b.flags.c_contiguous for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), stereo.astype(np.float32))
    blocks[0][:] = -1  # blocks are copies
    assert stereo[0, 0] == 0
    mono = list(ArraySource(np.ones(5), 16000).blocks())
    assert [b.shape for b in mono] == [(5, 1)]


@pytest.mark.parametrize("samples, rate, needle", [
    (np.zeros(10), 0, "sampling rate"), (np.zeros(10), 16000.5, "sampling rate"), (np.zeros(10), True, "sampling rate"),
    (np.zeros(0), 16000, "no audio frames"), (np.zeros((2, 100)), 16000, "transpose"),
    (np.zeros((2, 2, 2)), 16000, "[frames, channels]"), (np.array(["a", "b"]), 16000, "real numbers"),
])
def test_bad_arrays_are_one_line_audio_errors(samples, rate, needle: str) -> None:
    with pytest.raises(AudioError) as error:
        ArraySource(samples, rate, "input 0")
    assert needle in str(error.value) and str(error.value).startswith("input 0: ") and "\n" not in str(error.value)


def test_nan_in_an_array_is_reported_when_read() -> None:
    wave = np.zeros(100, np.float32)
    wave[50] = np.nan
    with pytest.raises(AudioError, match="NaN or infinite samples"):
        list(ArraySource(wave, 100).blocks(10))


def test_tiny_file_has_four_frames() -> None:
    source = AudioSource(DATA / "soundfile_tiny_stereo.wav")
    assert source.frames == 4
    assert source.read_all().shape == (4, 2)


def _test_signal(rate: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    columns = [0.5 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)]
    return np.stack(columns, axis=1).astype(np.float32)


@pytest.mark.parametrize(
    "subtype, tolerance",
    [("ULAW", 0.02), ("ALAW", 0.02), ("PCM_U8", 0.01), ("PCM_16", 1e-4), ("PCM_24", 1e-6), ("PCM_32", 1e-8),
     ("FLOAT", 0.0), ("DOUBLE", 0.0)],
)
def test_generated_wav_subtypes(tmp_path: Path, subtype: str, tolerance: float) -> None:
    signal = _test_signal(8000, 0.5, 2)
    path = tmp_path / f"signal_{subtype}.wav"
    sf.write(str(path), signal, 8000, subtype=subtype)
    source = AudioSource(path)
    assert (source.sample_rate, source.channels, source.frames) == (8000, 2, signal.shape[0])
    assert subtype in source.format
    decoded = np.concatenate(list(source.blocks(777)))
    np.testing.assert_array_equal(decoded, sf.read(str(path), dtype="float32", always_2d=True)[0])
    assert np.abs(decoded - signal).max() <= tolerance


def test_generated_opus_and_flac_24bit(tmp_path: Path) -> None:
    signal = _test_signal(48000, 1.0, 2)
    opus = tmp_path / "signal.opus"
    sf.write(str(opus), signal, 48000, format="OGG", subtype="OPUS")
    source = AudioSource(opus)
    assert (source.sample_rate, source.channels) == (48000, 2)
    assert source.format == "OGG OPUS"
    decoded = np.concatenate(list(source.blocks(1000)))
    assert decoded.shape[0] == source.frames == sf.info(str(opus)).frames
    # Lossy, but the waveform must still be the same sine (skip the codec's start-up).
    assert np.corrcoef(decoded[2000:40000, 0], signal[2000:40000, 0])[0, 1] > 0.99

    flac = tmp_path / "signal.FLAC"  # upper-case extension
    sf.write(str(flac), signal, 48000, subtype="PCM_24")
    np.testing.assert_allclose(AudioSource(flac).read_all(), signal, atol=2e-7)


def test_generated_mp3_blocks_match_whole_read(tmp_path: Path) -> None:
    # libsndfile's MP3 decoder depends on how reads line up with MPEG frames; blocks must not.
    rng = np.random.default_rng(0)
    signal = (0.3 * np.sin(np.arange(80000) / 7) + 0.05 * rng.standard_normal(80000)).astype(np.float32)
    path = tmp_path / "signal.mp3"
    sf.write(str(path), signal, 16000, format="MP3")
    source = AudioSource(path)
    whole = sf.read(str(path), dtype="float32", always_2d=True)[0]
    for block_frames in (1000, 4096, 50000):
        decoded = np.concatenate(list(source.blocks(block_frames)))
        np.testing.assert_allclose(decoded, whole, atol=1e-6)


# --------------------------------------------------------------------------------------------- error cases
def _assert_one_line(error: pytest.ExceptionInfo[AudioError], *needles: str) -> str:
    message = str(error.value)
    assert "\n" not in message and message.strip() == message
    for needle in needles:
        assert needle in message, message
    return message


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(AudioError) as error:
        AudioSource(tmp_path / "nothing.wav")
    _assert_one_line(error, "nothing.wav", "no such file")


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    with pytest.raises(AudioError) as error:
        AudioSource(folder)
    _assert_one_line(error, "folder.wav", "directory")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError) as error:
        AudioSource(path)
    _assert_one_line(error, "empty.wav", "empty file")


def test_truncated_wav_header(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    path.write_bytes((DATA / "speechcommands_yes_1000ms_16k_mono.wav").read_bytes()[:20])
    with pytest.raises(AudioError) as error:
        AudioSource(path)
    _assert_one_line(error, "cut.wav", "corrupt")


def test_truncated_wav_data(tmp_path: Path) -> None:
    """A WAV cut inside its data chunk is an error, not a shorter recording."""
    data = (DATA / "speechcommands_yes_1000ms_16k_mono.wav").read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError) as error:
        AudioSource(path)
    _assert_one_line(error, "cut.wav", "truncated")
    whole = tmp_path / "whole.wav"
    whole.write_bytes(data)
    assert AudioSource(whole).frames == 16000


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes_with_wav_extension(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(seed).bytes(5000))
    with pytest.raises(AudioError) as error:
        AudioSource(path)
    assert "does not exist" not in str(error.value)
    _assert_one_line(error, "noise.wav", "cannot decode .wav file", "corrupt or not audio")


def test_truncated_flac_fails_while_decoding(tmp_path: Path) -> None:
    data = (DATA / "speechbrain_multimic_speech_16k_4ch.flac").read_bytes()
    path = tmp_path / "cut.flac"
    path.write_bytes(data[: len(data) // 2])
    source = AudioSource(path)  # the header is intact
    with pytest.raises(AudioError) as error:
        for _ in source.blocks(4096):
            pass
    _assert_one_line(error, "cut.flac", "truncated or corrupt")


def test_header_without_frames(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(str(path), np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(AudioError) as error:
        AudioSource(path)
    _assert_one_line(error, "zero.wav", "no audio frames")


def test_nan_wav(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    sf.write(str(path), np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError) as error:
        AudioSource(path).read_all()
    _assert_one_line(error, "nan.wav", "NaN or infinite", "0.000 s")


def test_inf_found_while_streaming(tmp_path: Path) -> None:
    signal = np.zeros(16000 * 3, np.float32)
    signal[16000 * 2 + 8000] = np.inf
    path = tmp_path / "inf.wav"
    sf.write(str(path), signal, 16000, subtype="FLOAT")
    seen = 0
    with pytest.raises(AudioError) as error:
        for block in AudioSource(path).blocks(16000):
            seen += block.shape[0]
    assert seen == 32000  # the two clean blocks were delivered before the bad one
    _assert_one_line(error, "inf.wav", "NaN or infinite", "2.500 s")


def test_block_frames_must_be_positive() -> None:
    with pytest.raises(ValueError):
        next(AudioSource(DATA / "speechcommands_yes_30ms_16k_mono.wav").blocks(0))


def test_audio_extensions_are_case_insensitive() -> None:
    for name in ("a.wav", "b.WAV", "c.Flac", "d.ogg", "e.opus", "f.MP3", "g.m4a", "h.aac", "i.wma", "j.webm"):
        assert has_audio_extension(name), name
    for name in ("notes.txt", "model.safetensors", "wav", "archive.wav.gz"):
        assert not has_audio_extension(name), name
    assert all(ext.startswith(".") and ext == ext.lower() for ext in AUDIO_EXTENSIONS)
