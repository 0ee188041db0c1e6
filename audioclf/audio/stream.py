"""The audio path from a file to model-rate samples: decode → channel policy → resample, block by block."""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from audioclf.audio.channels import ChannelPolicy
from audioclf.audio.decode import DEFAULT_BLOCK_FRAMES, AudioSource
from audioclf.audio.resample import Resampler
from audioclf.errors import AudioError

__all__ = ["iter_model_blocks", "load_audio"]


def iter_model_blocks(
    source: AudioSource | str | os.PathLike[str],
    sample_rate: int,
    channel: ChannelPolicy | str = "mix",
    block_frames: int = DEFAULT_BLOCK_FRAMES,
) -> Iterator[np.ndarray]:
    """Yield ``float32 [frames, streams]`` blocks of ``source`` at ``sample_rate``.

    ``streams`` and their labels follow ``channel`` (see :meth:`ChannelPolicy.stream_channels`); the channel
    policy is applied before resampling, so ``mix`` resamples one stream instead of every channel. Blocks
    are non-empty and their sizes vary. The policy is validated against the file before anything is decoded.
    """
    if not isinstance(source, AudioSource):
        source = AudioSource(source)
    policy = ChannelPolicy.parse(channel)
    policy.validate(source.channels, source.path)
    streams = len(policy.stream_channels(source.channels))
    resampler = Resampler(source.sample_rate, sample_rate, streams)
    for block in source.blocks(block_frames):
        out = resampler.process(policy.apply(block))
        if out.shape[0]:
            yield out
    tail = resampler.flush()
    if tail.shape[0]:
        yield tail.reshape(-1, streams)


def load_audio(
    path: AudioSource | str | os.PathLike[str], sample_rate: int = 16000, channel: ChannelPolicy | str = "mix"
) -> np.ndarray:
    """A whole (short) file as one mono ``float32 [samples]`` array at ``sample_rate``.

    ``channel`` must select a single stream (``mix``, ``first`` or ``N``); use :func:`iter_model_blocks` for
    ``each``.
    """
    policy = ChannelPolicy.parse(channel)
    if policy.mode == "each":
        raise AudioError("load_audio returns one stream; use iter_model_blocks for channel policy 'each'")
    parts = [block[:, 0] for block in iter_model_blocks(path, sample_rate, policy)]
    return np.ascontiguousarray(np.concatenate(parts)) if len(parts) > 1 else parts[0].copy()
