"""Audio layer: decoding, resampling, channel policy, windowing and featurizers (numpy in, numpy out).

Typical path for one file::

    source = AudioSource(path)                                  # probe; AudioError if unusable
    blocks = iter_model_blocks(source, 16000, "mix")            # float32 [frames, streams] at 16 kHz
    for start, samples in iter_window_frames(blocks, 32000, 16000):   # 2 s windows every 1 s
        features = featurizer.featurize(samples[:, 0])

In-memory audio takes the same path through :class:`ArraySource`. :mod:`audioclf.data` builds the streaming engine's
segments from these pieces.
"""

from audioclf.audio.channels import ChannelPolicy
from audioclf.audio.decode import (
    AUDIO_EXTENSIONS,
    DEFAULT_BLOCK_FRAMES,
    FFMPEG_EXTENSIONS,
    SOUNDFILE_EXTENSIONS,
    ArraySource,
    AudioSource,
    BlockSource,
    ffmpeg_available,
    has_audio_extension,
)
from audioclf.audio.features import (
    PREPROCESSOR_CONFIG_NAME,
    BatchFeatures,
    FeatureExtractor,
    FeatureExtractorConfig,
    Featurizer,
    featurizer_from_dict,
    load_featurizer,
    normalize,
)
from audioclf.audio.resample import Resampler
from audioclf.audio.stream import iter_model_blocks
from audioclf.audio.windows import iter_window_frames

__all__ = [
    "AUDIO_EXTENSIONS",
    "DEFAULT_BLOCK_FRAMES",
    "FFMPEG_EXTENSIONS",
    "PREPROCESSOR_CONFIG_NAME",
    "SOUNDFILE_EXTENSIONS",
    "ArraySource",
    "AudioSource",
    "BatchFeatures",
    "BlockSource",
    "ChannelPolicy",
    "FeatureExtractor",
    "FeatureExtractorConfig",
    "Featurizer",
    "Resampler",
    "featurizer_from_dict",
    "ffmpeg_available",
    "has_audio_extension",
    "iter_model_blocks",
    "iter_window_frames",
    "load_featurizer",
    "normalize",
]
