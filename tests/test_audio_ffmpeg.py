"""The ffmpeg fallback for containers libsndfile does not read (m4a/aac, …).

ffmpeg is required for these tests: when it is missing they install it with apt-get, and fail (never skip)
when that is impossible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioclf.audio import AudioSource, ffmpeg_available, iter_model_blocks
from audioclf.errors import AudioError

DATA = Path(__file__).parent / "data" / "audio"


def _ensure_ffmpeg() -> None:
    if ffmpeg_available():
        return
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.fail("ffmpeg/ffprobe are not installed and apt-get is not available: install ffmpeg to run these tests")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q", "ffmpeg"]
    result = subprocess.run(install, env=env, capture_output=True, text=True)
    if result.returncode != 0:  # stale package lists
        subprocess.run([apt, "-o", "DPkg::Lock::Timeout=600", "update", "-q"], env=env, capture_output=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
    if result.returncode != 0 or not ffmpeg_available():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        pytest.fail(f"could not install ffmpeg with apt-get (exit {result.returncode}): {' | '.join(tail)}")


@pytest.fixture(scope="module")
def m4a(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A stereo 44.1 kHz AAC file made from the robin clip, and the clip's samples."""
    _ensure_ffmpeg()
    source = DATA / "freesound_456440_robin_44k_stereo.ogg"
    target = tmp_path_factory.mktemp("ffmpeg") / "robin.m4a"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-c:a", "aac", "-b:a", "160k", str(target)],
        check=True,
    )
    return target, sf.read(str(source), dtype="float32", always_2d=True)[0]


def test_m4a_decodes_through_ffmpeg(m4a: tuple[Path, np.ndarray]) -> None:
    path, original = m4a
    source = AudioSource(path)
    assert source.backend == "ffmpeg"
    assert (source.sample_rate, source.channels) == (44100, 2)
    assert source.frames is None
    assert source.format == "ffmpeg aac"
    assert source.duration == pytest.approx(original.shape[0] / 44100, abs=0.05)

    whole = source.read_all()
    assert whole.dtype == np.float32 and whole.shape[1] == 2
    assert abs(whole.shape[0] - original.shape[0]) <= 2048  # AAC frames are 1024 samples
    n = min(whole.shape[0], original.shape[0]) - 2048
    for channel in range(2):
        assert np.corrcoef(whole[:n, channel], original[:n, channel])[0, 1] > 0.99

    blocks = list(source.blocks(1000))
    assert all(1 <= b.shape[0] <= 1000 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


def test_m4a_through_the_model_path(m4a: tuple[Path, np.ndarray]) -> None:
    path, original = m4a
    mono = np.concatenate(list(iter_model_blocks(path, 16000, "mix")))
    assert mono.shape[1] == 1
    assert abs(mono.shape[0] - round(original.shape[0] * 16000 / 44100)) <= 1000


def test_stopping_early_ends_the_ffmpeg_process(m4a: tuple[Path, np.ndarray]) -> None:
    blocks = AudioSource(m4a[0]).blocks(256)
    assert next(blocks).shape == (256, 2)
    blocks.close()  # must not hang or leave a zombie; nothing to assert beyond returning


def test_corrupt_m4a(tmp_path: Path) -> None:
    _ensure_ffmpeg()
    path = tmp_path / "broken.m4a"
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(AudioError) as error:
        AudioSource(path).read_all()
    message = str(error.value)
    assert "broken.m4a" in message and "\n" not in message


def test_missing_ffmpeg_is_a_one_line_error(
    m4a: tuple[Path, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    assert not ffmpeg_available()
    with pytest.raises(AudioError) as error:
        AudioSource(m4a[0])
    message = str(error.value)
    assert "\n" not in message
    assert "robin.m4a" in message and ".m4a" in message and "install ffmpeg" in message

    # An unknown extension names the format and the same fix.
    odd = tmp_path / "clip.xyz"
    odd.write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(AudioError) as error:
        AudioSource(odd)
    assert ".xyz" in str(error.value) and "install ffmpeg" in str(error.value)

    # libsndfile formats keep working without ffmpeg.
    assert AudioSource(DATA / "speechcommands_yes_30ms_16k_mono.wav").read_all().shape == (480, 1)
