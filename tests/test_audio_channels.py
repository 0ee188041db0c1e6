"""Channel policies mix | first | N | each, on the real 4-channel recording."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr

from audioclf.audio import ArraySource, AudioSource, ChannelPolicy, iter_model_blocks
from audioclf.errors import AudioError

DATA = Path(__file__).parent / "data" / "audio"
FOUR = DATA / "speechbrain_multimic_speech_16k_4ch.flac"


@pytest.fixture(scope="module")
def four() -> np.ndarray:
    return AudioSource(FOUR).read_all()


@pytest.mark.parametrize(
    "text, mode, index",
    [("mix", "mix", None), ("MIX", "mix", None), ("first", "first", None), (" each ", "each", None),
     ("0", "index", 0), ("3", "index", 3), (2, "index", 2)],
)
def test_parse(text, mode: str, index) -> None:
    policy = ChannelPolicy.parse(text)
    assert (policy.mode, policy.index) == (mode, index)
    assert ChannelPolicy.parse(str(policy)) == policy
    assert ChannelPolicy.parse(policy) is policy


@pytest.mark.parametrize("text", ["", "-1", "1.5", "left", "all", "mix,first", -1, True])
def test_parse_rejects(text) -> None:
    with pytest.raises(AudioError) as error:
        ChannelPolicy.parse(text)
    assert "mix, first, each or a 0-based channel number" in str(error.value)


def test_policies_on_four_channels(four: np.ndarray) -> None:
    assert four.shape == (160000, 4)
    np.testing.assert_array_equal(ChannelPolicy.parse("mix").apply(four), four.mean(axis=1, keepdims=True))
    np.testing.assert_array_equal(ChannelPolicy.parse("first").apply(four), four[:, :1])
    np.testing.assert_array_equal(ChannelPolicy.parse("2").apply(four), four[:, 2:3])
    np.testing.assert_array_equal(ChannelPolicy.parse("each").apply(four), four)
    assert ChannelPolicy.parse("mix").stream_channels(4) == [None]
    assert ChannelPolicy.parse("first").stream_channels(4) == [0]
    assert ChannelPolicy.parse("3").stream_channels(4) == [3]
    assert ChannelPolicy.parse("each").stream_channels(4) == [0, 1, 2, 3]
    for policy in ("mix", "first", "1", "each"):
        out = ChannelPolicy.parse(policy).apply(four[:100])
        assert out.dtype == np.float32 and out.flags.c_contiguous


def test_index_out_of_range_names_the_channel_count(four: np.ndarray) -> None:
    with pytest.raises(AudioError) as error:
        list(iter_model_blocks(FOUR, 16000, "4"))
    message = str(error.value)
    assert "\n" not in message
    assert "channel 4 does not exist" in message and "4 channels" in message and "0..3" in message
    assert str(FOUR) in message
    with pytest.raises(AudioError, match="1 channel "):
        ChannelPolicy.parse("1").validate(1)
    with pytest.raises(AudioError):
        ChannelPolicy.parse("5").apply(four[:10])


def test_mono_file_passes_through_every_policy() -> None:
    mono = AudioSource(DATA / "speechcommands_yes_1000ms_16k_mono.wav").read_all()
    for policy in ("mix", "first", "0", "each"):
        np.testing.assert_array_equal(ChannelPolicy.parse(policy).apply(mono), mono)


def test_model_blocks_follow_the_policy(four: np.ndarray) -> None:
    each = np.concatenate(list(iter_model_blocks(FOUR, 8000, "each", block_frames=5000)))
    assert each.shape == (80000, 4)
    expected = soxr.resample(four, 16000, 8000, quality="HQ")
    assert np.abs(each - expected).max() <= 1e-6
    for channel in range(4):
        single = np.concatenate(list(iter_model_blocks(FOUR, 8000, str(channel))))
        np.testing.assert_array_equal(single[:, 0], each[:, channel])
    mixed = np.concatenate(list(iter_model_blocks(FOUR, 16000, "mix")))
    assert mixed.shape == (160000, 1)
    np.testing.assert_allclose(mixed[:, 0], four.mean(axis=1), atol=1e-7)


def test_arrays_take_the_same_path(four: np.ndarray) -> None:
    for policy in ("mix", "2", "each"):
        from_file = np.concatenate(list(iter_model_blocks(FOUR, 8000, policy, block_frames=5000)))
        from_array = np.concatenate(list(iter_model_blocks(ArraySource(four, 16000), 8000, policy, block_frames=7000)))
        np.testing.assert_allclose(from_array, from_file, atol=1e-6)
