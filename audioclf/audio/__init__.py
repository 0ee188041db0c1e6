"""Audio layer: decoding, resampling, channel policy, featurizing and windowing (numpy in, numpy out).

Typical path for one file::

    source = AudioSource(path)                                  # probe; AudioError if unusable
    blocks = iter_model_blocks(source, 16000, "mix")            # float32 [frames, streams] at 16 kHz
    for window in iter_windows(blocks, 16000, window=2.0, hop=1.0):
        input_values, attention_mask = pad_batch([window.samples[:, 0]], config)
"""

from audioclf.audio.channels import ChannelPolicy, parse_channel_policy, split_streams
from audioclf.audio.decode import (
    AUDIO_EXTENSIONS,
    DEFAULT_BLOCK_FRAMES,
    FFMPEG_EXTENSIONS,
    SOUNDFILE_EXTENSIONS,
    AudioSource,
    ffmpeg_available,
    has_audio_extension,
    read_audio,
)
from audioclf.audio.features import (
    PREPROCESSOR_CONFIG_NAME,
    BatchFeatures,
    FeatureExtractor,
    FeatureExtractorConfig,
    normalize,
    pad_batch,
)
from audioclf.audio.resample import Resampler, resample, resample_blocks
from audioclf.audio.stream import iter_model_blocks, load_audio
from audioclf.audio.windows import (
    Window,
    iter_chunks,
    iter_window_frames,
    iter_windows,
    rebuffer,
    seconds_to_frames,
    window_bounds,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "DEFAULT_BLOCK_FRAMES",
    "FFMPEG_EXTENSIONS",
    "PREPROCESSOR_CONFIG_NAME",
    "SOUNDFILE_EXTENSIONS",
    "AudioSource",
    "BatchFeatures",
    "ChannelPolicy",
    "FeatureExtractor",
    "FeatureExtractorConfig",
    "Resampler",
    "Window",
    "ffmpeg_available",
    "has_audio_extension",
    "iter_chunks",
    "iter_model_blocks",
    "iter_window_frames",
    "iter_windows",
    "load_audio",
    "normalize",
    "pad_batch",
    "parse_channel_policy",
    "read_audio",
    "rebuffer",
    "resample",
    "resample_blocks",
    "seconds_to_frames",
    "split_streams",
]
