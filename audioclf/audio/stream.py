"""The audio path from a source to model-rate samples: decode → channel policy → resample, block by block."""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from audioclf.audio.channels import ChannelPolicy
from audioclf.audio.decode import DEFAULT_BLOCK_FRAMES, AudioSource, BlockSource
from audioclf.audio.resample import Resampler

__all__ = ["iter_model_blocks"]


def iter_model_blocks(
    source: BlockSource | str | os.PathLike[str],
    sample_rate: int,
    channel: ChannelPolicy | str = "mix",
    block_frames: int = DEFAULT_BLOCK_FRAMES,
) -> Iterator[np.ndarray]:
    """Yield ``float32 [frames, streams]`` blocks of ``source`` (a file path, an opened :class:`AudioSource` or an
    :class:`~audioclf.audio.decode.ArraySource`) at ``sample_rate``.

    ``streams`` and their labels follow ``channel`` (see :meth:`ChannelPolicy.stream_channels`); the channel
    policy is applied before resampling, so ``mix`` resamples one stream instead of every channel. Blocks
    are non-empty and their sizes vary. The policy is validated against the source before anything is decoded.
    """
    if isinstance(source, (str, os.PathLike)):
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
