"""Spectral featurizers with the numbers of ``transformers``' AST, Whisper and SeamlessM4T feature extractors.

What each computes from one mono waveform ``x [N]`` (the class names are the ``feature_extractor_type`` values):

* :class:`ASTFeatureExtractor`: Kaldi log-mel filter bank of ``x`` as it is (400-sample frames every 160 samples,
  symmetric Hann window), cut or zero-padded to ``max_length`` frames, then ``(f - mean) / (2 std)``:
  ``input_values float32 [max_length, num_mel_bins]``.
* :class:`WhisperFeatureExtractor`: ``x`` cut or padded to ``n_samples`` (30 s), centred STFT (``n_fft``,
  ``hop_length``, periodic Hann window), Slaney mel filters up to 8 kHz, ``log10`` floored at 1e-10 and at
  ``max - 8``, ``(f + 4) / 4``, last frame dropped: ``input_features float32 [feature_size, nb_max_frames]``.
* :class:`SeamlessM4TFeatureExtractor` (wav2vec2-BERT): Kaldi log-mel filter bank of ``x * 2**15`` (povey window),
  each mel bin standardised over the clip's frames (unbiased variance); a batch is padded to a multiple of 2 frames
  and every ``stride`` frames are stacked: ``input_features float32 [T / stride, num_mel_bins * stride]`` and
  ``attention_mask int32 [T / stride]``.

Each featurizer offers two interfaces:

* the streaming one the engine uses: :meth:`featurize` (one ``float32 [N]`` segment → the features of one item) and
  :meth:`collate` (items → the model's keyword arrays, padded as ``transformers`` pads a batch), plus
  ``sampling_rate``, ``model_input_name``, ``max_samples`` and :meth:`exact_padding`;
* ``__call__(raw_speech, ...)``, which returns the keys and values of the ``transformers`` extractor of the same name.

Numbers follow the numpy code paths of ``transformers`` 5.24 (the ones it takes without torchaudio): the spectra are
computed in float64 and rounded to float32, and the normalisations after them run in float32 in the same order.
Where ``transformers`` has a second path the numbers differ slightly (float32 arithmetic, about 1e-5 of the feature
scale): AST with torchaudio installed uses ``torchaudio.compliance.kaldi.fbank`` (which also counts frames in
milliseconds, so it differs more at sampling rates other than 16 kHz), and Whisper, whenever torch is importable,
computes its STFT with ``torch.stft``.

Inputs shorter than one frame: AST and SeamlessM4T get zero frames (AST: all padding; SeamlessM4T: an empty item)
where ``transformers`` fails below 240 samples. A SeamlessM4T clip of exactly one frame (400–559 samples) has an
undefined unbiased variance and gives NaN features, as in ``transformers``;
:attr:`SeamlessM4TFeatureExtractor.min_samples` is the shortest clip with finite features. Integer samples are used
as numbers, never rescaled, as ``transformers`` does (its SeamlessM4T extractor fails on a single int16 array).

Configs are read from ``preprocessor_config.json`` (or the ``feature_extractor`` entry of ``processor_config.json``,
which takes precedence, as in ``transformers``); unknown keys are kept in ``extra`` and written back. Sizes are
bounded (see the ``MAX_*`` constants) so that a hostile config cannot make a featurizer allocate gigabytes.
"""

from __future__ import annotations

import json
import logging
import math
import os

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from audioclf.audio.features import BatchFeatures, featurizer_settings
from audioclf.audio.spectrogram import (
    centered_log10_mel,
    kaldi_log_mel,
    mel_filter_bank,
    window_function,
)
from audioclf.checkpoints.files import PREPROCESSOR_CONFIG_NAME, PROCESSOR_CONFIG_NAME
from audioclf.errors import AudioError, ConfigError
from audioclf.fileio import write_text_atomic

__all__ = [
    "FEATURE_EXTRACTOR_CLASSES",
    "MAX_FEATURE_VALUES",
    "MAX_MEL_BINS",
    "MAX_SAMPLING_RATE",
    "MAX_SPECTRUM_CELLS",
    "MAX_WAVEFORM_SAMPLES",
    "ASTFeatureExtractor",
    "ASTFeatureExtractorConfig",
    "SeamlessM4TFeatureExtractor",
    "SeamlessM4TFeatureExtractorConfig",
    "WhisperFeatureExtractor",
    "WhisperFeatureExtractorConfig",
    "spectral_feature_extractor_from_pretrained",
]

logger = logging.getLogger(__name__)


# Limits on config values: generous for every real checkpoint, small enough that one item stays in the megabytes.
MIN_SAMPLING_RATE = 1_000
MAX_SAMPLING_RATE = 384_000
MAX_MEL_BINS = 512
MAX_FEATURE_VALUES = 1 << 24  # values in one item's feature matrix (64 MiB as float32)
MAX_WAVEFORM_SAMPLES = 1 << 24  # Whisper's n_samples (about 17 min at 16 kHz, 64 MiB as float32)
MAX_SPECTRUM_CELLS = 1 << 25  # frames x frequency bins of one Whisper STFT
MAX_FFT_LENGTH = 8192
MAX_STRIDE = 16

# Kaldi framing shared by AST and SeamlessM4T: 25 ms frames every 10 ms at 16 kHz, FFT rounded up to a power of two.
KALDI_FRAME_LENGTH = 400
KALDI_HOP_LENGTH = 160
KALDI_FFT_LENGTH = 512
KALDI_LOW_FREQUENCY = 20.0
KALDI_PREEMPHASIS = 0.97
# SeamlessM4T feeds Kaldi 16-bit sample values; it pads a batch to a multiple of this many frames by default.
SEAMLESS_INPUT_SCALE = 2**15
SEAMLESS_PAD_MULTIPLE = 2
VARIANCE_EPSILON = 1e-7
# Whisper: Slaney mel filters up to 8 kHz whatever the sampling rate; log10 energies floored at 1e-10 and at max - 8.
WHISPER_MAX_FREQUENCY = 8000.0
WHISPER_MEL_FLOOR = 1e-10
WHISPER_DYNAMIC_RANGE = 8.0

# Keys transformers derives or recomputes on load (and never writes): dropped when reading a config.
_RECOMPUTED_KEYS = frozenset({"mel_filters", "window"})


# ----------------------------------------------------------------------------------------------------- validation
def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return int(value)


def _number(name: str, value: Any, *, minimum: float | None = None, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be finite, got {number}")
    if positive and number <= 0:
        raise ConfigError(f"{name} must be positive, got {number}")
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be {minimum} or more, got {number}")
    return number


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def _read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file holding one object; every failure is a one-line ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read ({error})") from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: invalid JSON at line {error.lineno} column {error.colno} ({error.msg})") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid JSON (nested too deeply)") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a preprocessor config must be a JSON object, got {type(values).__name__}")
    return values


def _config_dict_at(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """The feature-extractor dict of a model directory (see :func:`~audioclf.audio.features.featurizer_settings`) or
    of a JSON file, and the file it came from; a directory with neither config file is a :class:`ConfigError`."""
    path = Path(path)
    if path.is_file():
        return path, _read_json_object(path)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such file or directory")
    source, values = featurizer_settings(path)
    if source is None:
        raise ConfigError(f"{path}: no {PREPROCESSOR_CONFIG_NAME} (nor a feature extractor in {PROCESSOR_CONFIG_NAME})")
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: a preprocessor config must be a JSON object, got {type(values).__name__}")
    return source, values


# --------------------------------------------------------------------------------------------------------- configs
@dataclass
class _SpectralConfig:
    """Fields every ``SequenceFeatureExtractor`` config has, reading and writing; subclasses add their own fields
    and checks (``_validate``) and name their ``feature_extractor_type``.

    Unknown keys are kept in ``extra`` and written back by :meth:`to_dict`; ``feature_extractor_type`` is checked on
    reading and always written, so it is not stored."""

    TYPE: ClassVar[str] = ""
    DERIVED_KEYS: ClassVar[frozenset[str]] = frozenset()  # keys written from computed values, ignored on reading

    feature_size: int = 1
    sampling_rate: int = 16000
    padding_value: float = 0.0
    padding_side: str = "right"
    return_attention_mask: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.feature_size = _integer("feature_size", self.feature_size, 1, MAX_MEL_BINS)
        self.sampling_rate = _integer("sampling_rate", self.sampling_rate, MIN_SAMPLING_RATE, MAX_SAMPLING_RATE)
        self.padding_value = _number("padding_value", self.padding_value)
        if self.padding_side not in ("right", "left"):
            raise ConfigError(f"padding_side must be 'right' or 'left', got {self.padding_side!r}")
        self.return_attention_mask = _boolean("return_attention_mask", self.return_attention_mask)
        if not isinstance(self.extra, dict):
            raise ConfigError(f"extra must be a dict, got {type(self.extra).__name__}")
        self.extra = {key: value for key, value in self.extra.items() if key not in _RECOMPUTED_KEYS}
        kind = self.extra.pop("feature_extractor_type", self.TYPE)
        if kind != self.TYPE:
            raise ConfigError(f"feature_extractor_type is {kind!r}, expected {self.TYPE!r}")
        self._validate()

    def _validate(self) -> None:
        """Check and normalise the subclass's own fields (raise ConfigError)."""

    def _derived(self) -> dict[str, Any]:
        """Values ``transformers`` computes from the fields and writes to the file too."""
        return {}

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """From a parsed ``preprocessor_config.json``: missing keys take the defaults, unknown keys go to ``extra``."""
        if not isinstance(values, dict):
            raise ConfigError(f"a preprocessor config must be a JSON object, got {type(values).__name__}")
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {key: value for key, value in values.items() if key in known}
        extra = {key: value for key, value in values.items() if key not in known and key not in cls.DERIVED_KEYS}
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]):
        """From a model directory or a JSON file (see :func:`_config_dict_at`); ConfigError names the file."""
        source, values = _config_dict_at(path)
        try:
            return cls.from_dict(values)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: every field, the derived values, every extra key and ``feature_extractor_type``."""
        values: dict[str, Any] = dict(self.extra)
        values.update({f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"})
        values.update(self._derived())
        values["feature_extractor_type"] = self.TYPE
        return values

    def to_json_string(self) -> str:
        """The file content ``transformers`` writes: sorted keys, 2-space indent, trailing newline."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``<directory>/preprocessor_config.json`` atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / PREPROCESSOR_CONFIG_NAME
        write_text_atomic(target, self.to_json_string())
        return target


@dataclass
class ASTFeatureExtractorConfig(_SpectralConfig):
    """``ASTFeatureExtractor`` settings: ``num_mel_bins`` (1–512) Kaldi mel bins, ``max_length`` frames per item
    (1–``MAX_FEATURE_VALUES / num_mel_bins``), standardisation with ``mean`` and ``std`` (> 0) when
    ``do_normalize``. ``feature_size``, ``padding_value``, ``padding_side`` and ``return_attention_mask`` are stored
    but change nothing (AST pads with zeros and returns no mask), as in ``transformers``."""

    TYPE: ClassVar[str] = "ASTFeatureExtractor"

    num_mel_bins: int = 128
    max_length: int = 1024
    do_normalize: bool = True
    mean: float = -4.2677393
    std: float = 4.5689974

    def _validate(self) -> None:
        self.num_mel_bins = _integer("num_mel_bins", self.num_mel_bins, 1, MAX_MEL_BINS)
        self.max_length = _integer("max_length", self.max_length, 1, MAX_FEATURE_VALUES // self.num_mel_bins)
        self.do_normalize = _boolean("do_normalize", self.do_normalize)
        self.mean = _number("mean", self.mean)
        self.std = _number("std", self.std, positive=True)


@dataclass
class WhisperFeatureExtractorConfig(_SpectralConfig):
    """``WhisperFeatureExtractor`` settings: ``feature_size`` mel bins (1–512), ``n_fft`` (2–8192, also the window
    length), ``hop_length`` (1–8192), ``chunk_length`` seconds per item (whole seconds), Gaussian ``dither``
    (standard deviation, 0 = none). ``n_samples = chunk_length * sampling_rate`` (at most ``MAX_WAVEFORM_SAMPLES``)
    and ``nb_max_frames = n_samples // hop_length`` are derived (values in the file are ignored, as in
    ``transformers``); one item's STFT is bounded by ``MAX_SPECTRUM_CELLS`` and its features by
    ``MAX_FEATURE_VALUES``."""

    TYPE: ClassVar[str] = "WhisperFeatureExtractor"
    DERIVED_KEYS: ClassVar[frozenset[str]] = frozenset({"n_samples", "nb_max_frames"})

    feature_size: int = 80
    hop_length: int = 160
    chunk_length: int = 30
    n_fft: int = 400
    dither: float = 0.0

    def _validate(self) -> None:
        self.n_fft = _integer("n_fft", self.n_fft, 2, MAX_FFT_LENGTH)
        self.hop_length = _integer("hop_length", self.hop_length, 1, MAX_FFT_LENGTH)
        longest = MAX_WAVEFORM_SAMPLES // self.sampling_rate
        self.chunk_length = _integer("chunk_length", self.chunk_length, 1, max(1, longest))
        if self.n_samples > MAX_WAVEFORM_SAMPLES:
            raise ConfigError(f"chunk_length {self.chunk_length} s at {self.sampling_rate} Hz is more than "
                              f"{MAX_WAVEFORM_SAMPLES} samples")
        if self.n_samples <= self.n_fft // 2:
            raise ConfigError(f"chunk_length x sampling_rate ({self.n_samples} samples) must be more than n_fft / 2")
        if (self.nb_max_frames + 1) * (self.n_fft // 2 + 1) > MAX_SPECTRUM_CELLS:
            raise ConfigError(f"n_fft {self.n_fft} with hop_length {self.hop_length} over {self.n_samples} samples "
                              f"needs more than {MAX_SPECTRUM_CELLS} spectrum values")
        if self.nb_max_frames * self.feature_size > MAX_FEATURE_VALUES:
            raise ConfigError(f"{self.nb_max_frames} frames x {self.feature_size} mel bins is more than "
                              f"{MAX_FEATURE_VALUES} feature values")
        self.dither = _number("dither", self.dither, minimum=0.0)

    @property
    def n_samples(self) -> int:
        """Samples per item: inputs are cut or padded to this length."""
        return self.chunk_length * self.sampling_rate

    @property
    def nb_max_frames(self) -> int:
        """Feature frames per item (``n_samples // hop_length``)."""
        return self.n_samples // self.hop_length

    def _derived(self) -> dict[str, Any]:
        return {"n_samples": self.n_samples, "nb_max_frames": self.nb_max_frames}


@dataclass
class SeamlessM4TFeatureExtractorConfig(_SpectralConfig):
    """``SeamlessM4TFeatureExtractor`` settings: ``num_mel_bins`` (1–512) Kaldi mel bins, ``stride`` (1–16) frames
    stacked into one model frame, ``padding_value`` for padded frames, ``padding_side``, ``return_attention_mask``.
    ``feature_size`` is stored but unused (the features have ``num_mel_bins * stride`` values)."""

    TYPE: ClassVar[str] = "SeamlessM4TFeatureExtractor"

    feature_size: int = 80
    return_attention_mask: bool = True
    num_mel_bins: int = 80
    stride: int = 2

    def _validate(self) -> None:
        self.num_mel_bins = _integer("num_mel_bins", self.num_mel_bins, 1, MAX_MEL_BINS)
        self.stride = _integer("stride", self.stride, 1, MAX_STRIDE)


# ------------------------------------------------------------------------------------------------------ waveforms
def _mono(samples: Any) -> np.ndarray:
    """One waveform as a 1-D float32 array (numpy arrays of any real dtype, lists, torch tensors)."""
    if hasattr(samples, "detach") and hasattr(samples, "cpu"):  # a torch tensor, without importing torch
        samples = samples.detach().cpu().numpy()
    try:
        wave = np.asarray(samples, dtype=np.float32)
    except (TypeError, ValueError):
        raise AudioError("a waveform must be an array of numbers") from None
    if wave.ndim != 1:
        raise AudioError(f"a waveform must be 1-D (mono samples), got shape {wave.shape}")
    if wave.shape[0] == 0:
        raise AudioError("a waveform must contain at least one sample")
    return wave


def _waveforms(raw_speech: Any) -> list[np.ndarray]:
    """The waveforms of a batch call: one waveform (1-D array, tensor, list of numbers) or a batch (2-D array, list
    of those), each as float32 ``[N_i]``."""
    if hasattr(raw_speech, "detach") and hasattr(raw_speech, "cpu"):
        raw_speech = raw_speech.detach().cpu().numpy()
    if isinstance(raw_speech, np.ndarray):
        if raw_speech.ndim > 2:
            raise AudioError(f"only mono audio is supported, got an array of shape {raw_speech.shape}")
        return [_mono(row) for row in raw_speech] if raw_speech.ndim == 2 else [_mono(raw_speech)]
    if isinstance(raw_speech, (list, tuple)):
        if not raw_speech:
            raise AudioError("no audio given (empty list)")
        first = raw_speech[0]
        if isinstance(first, (np.ndarray, list, tuple)) or hasattr(first, "detach"):
            return [_mono(row) for row in raw_speech]
        return [_mono(raw_speech)]
    raise AudioError(f"audio must be an array, a tensor or a list of numbers, got {type(raw_speech).__name__}")


def _padding_strategy(padding: Any) -> str:
    """``"do_not_pad"``, ``"longest"`` or ``"max_length"`` from the ``padding`` argument of a batch call."""
    if hasattr(padding, "value"):  # a transformers PaddingStrategy
        padding = padding.value
    if padding is False or padding == "do_not_pad":
        return "do_not_pad"
    if padding is True or padding == "longest":
        return "longest"
    if padding == "max_length":
        return "max_length"
    raise AudioError(f"invalid padding {padding!r}: use False, True, 'longest', 'max_length' or 'do_not_pad'")


def _round_up(length: int, multiple: int | None) -> int:
    return -(-length // multiple) * multiple if multiple else length


def _pad_batch(
    rows: Sequence[np.ndarray],
    *,
    padding: Any,
    max_length: int | None,
    truncation: bool,
    pad_to_multiple_of: int | None,
    padding_value: float,
    padding_side: str,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Truncate and pad along the first axis, as ``SequenceFeatureExtractor.pad``.

    Args:
        rows: ``B`` arrays ``[T_i, ...]`` (samples ``[N_i]`` or frames ``[T_i, M]``).
        padding: ``True``/``"longest"``, ``"max_length"`` (needs ``max_length``) or ``False``/``"do_not_pad"``.
        truncation: cut rows to ``max_length`` (rounded up to ``pad_to_multiple_of``) first.

    Returns:
        The rows ``[T, ...]`` (padded with ``padding_value`` on ``padding_side``; the target length ``T`` is rounded
        up to ``pad_to_multiple_of``) and their masks ``int32 [T]`` (1 on the rows' own entries).
    """
    strategy = _padding_strategy(padding)
    if truncation:
        if max_length is None:
            raise AudioError("truncation needs max_length")
        rows = [row[: _round_up(max_length, pad_to_multiple_of)] for row in rows]
    masks = [np.ones(row.shape[0], dtype=np.int32) for row in rows]
    if strategy == "do_not_pad":
        return list(rows), masks
    if strategy == "max_length":
        if max_length is None:
            raise AudioError("padding='max_length' needs max_length")
        target = max_length
    else:
        target = max(row.shape[0] for row in rows)
    target = _round_up(target, pad_to_multiple_of)
    padded_rows, padded_masks = [], []
    for row, mask in zip(rows, masks):
        missing = max(0, target - row.shape[0])
        before, after = (missing, 0) if padding_side == "left" else (0, missing)
        width = [(before, after)] + [(0, 0)] * (row.ndim - 1)
        padded_rows.append(np.pad(row, width, constant_values=padding_value) if missing else row)
        padded_masks.append(np.pad(mask, (before, after)) if missing else mask)
    return padded_rows, padded_masks


def _stack(key: str, rows: Sequence[np.ndarray]) -> np.ndarray:
    if len({row.shape for row in rows}) > 1:
        raise AudioError(f"cannot stack {key} items of different lengths into one array; pass padding=True")
    return np.stack(rows)


def _as_tensors(values: dict[str, Any], return_tensors: str | None) -> BatchFeatures:
    """``None`` keeps the values, ``"np"`` stacks lists into arrays, ``"pt"`` makes torch tensors."""
    if hasattr(return_tensors, "value"):  # a transformers TensorType
        return_tensors = return_tensors.value
    if return_tensors is None:
        return BatchFeatures(values)
    if return_tensors not in ("np", "pt"):
        raise AudioError(f"return_tensors must be None, 'np' or 'pt', got {return_tensors!r}")
    arrays = {key: value if isinstance(value, np.ndarray) else _stack(key, value) for key, value in values.items()}
    if return_tensors == "np":
        return BatchFeatures(arrays)
    import torch  # only when torch tensors are asked for

    return BatchFeatures({key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in arrays.items()})


def _check_sampling_rate(expected: int, sampling_rate: int | None) -> None:
    if sampling_rate is None:
        logger.warning("pass sampling_rate to the feature extractor so that audio at the wrong rate is caught")
    elif sampling_rate != expected:
        raise AudioError(f"the model's feature extractor expects audio sampled at {expected} Hz, got "
                         f"sampling_rate={sampling_rate}; resample the audio first")


# ---------------------------------------------------------------------------------------------------- featurizers
class _KaldiFbank:
    """The Kaldi filter bank AST and SeamlessM4T share: 400-sample frames every 160 samples, a 512-point FFT,
    pre-emphasis 0.97, Kaldi mel filters from 20 Hz to half the sampling rate; they differ in the window."""

    def __init__(self, window: str, num_mel_bins: int, sampling_rate: int) -> None:
        self.window = window_function(window, KALDI_FRAME_LENGTH, periodic=False)
        self.filters = mel_filter_bank(KALDI_FFT_LENGTH // 2 + 1, num_mel_bins, KALDI_LOW_FREQUENCY,
                                       sampling_rate // 2, sampling_rate, scale="kaldi", triangles_in_mel_space=True)

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """``wave [N]`` → log mel energies ``float32 [T, num_mel_bins]``, ``T = 1 + (N - 400) // 160`` (0 when
        ``N < 400``)."""
        fbank = kaldi_log_mel(wave, self.window, self.filters, hop_length=KALDI_HOP_LENGTH,
                              fft_length=KALDI_FFT_LENGTH, preemphasis=KALDI_PREEMPHASIS)
        return fbank.astype(np.float32)


class _SpectralFeatureExtractor:
    """Config handling and the attributes ``transformers`` code reads (every config field); subclasses implement
    the features."""

    config_class: ClassVar[type[_SpectralConfig]]
    model_input_name: ClassVar[str]
    model_input_names: ClassVar[list[str]]
    #: whether every item has the size of a ``max_samples`` segment (AST, Whisper)
    fixed_size: ClassVar[bool] = False

    def __init__(self, config: _SpectralConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = self.config_class.from_dict(overrides)
        elif overrides:
            config = self.config_class.from_dict({**config.to_dict(), **overrides})
        if not isinstance(config, self.config_class):
            raise ConfigError(f"{type(self).__name__} needs a {self.config_class.__name__}, "
                              f"got {type(config).__name__}")
        self.config = config

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]):
        """From a model directory (``processor_config.json`` / ``preprocessor_config.json``) or a JSON file."""
        return cls(cls.config_class.from_pretrained(path))

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``preprocessor_config.json`` (``transformers`` reads it back with ``from_pretrained``)."""
        return self.config.save_pretrained(directory)

    def to_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.to_dict()})"

    @property
    def sampling_rate(self) -> int:
        return self.config.sampling_rate

    def _pad(
        self, rows: Sequence[np.ndarray], padding: Any, max_length: int | None, truncation: bool,
        pad_to_multiple_of: int | None,
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """:func:`_pad_batch` with the config's ``padding_value`` and ``padding_side``."""
        return _pad_batch(rows, padding=padding, max_length=max_length, truncation=truncation,
                          pad_to_multiple_of=pad_to_multiple_of, padding_value=self.config.padding_value,
                          padding_side=self.config.padding_side)

    def __getattr__(self, name: str) -> Any:
        """The config's fields read as attributes (``extractor.num_mel_bins``), as code written for
        ``transformers``' extractors reads them."""
        config = self.__dict__.get("config")
        if config is not None and name != "extra" and name in {f.name for f in fields(config)}:
            return getattr(config, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class ASTFeatureExtractor(_SpectralFeatureExtractor):
    """Audio Spectrogram Transformer features: ``input_values float32 [max_length, num_mel_bins]`` per item."""

    config_class = ASTFeatureExtractorConfig
    model_input_name = "input_values"
    model_input_names = ["input_values", "attention_mask"]
    config: ASTFeatureExtractorConfig
    fixed_size = True

    def __init__(self, config: ASTFeatureExtractorConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self._fbank = _KaldiFbank("hann", self.config.num_mel_bins, self.config.sampling_rate)

    @property
    def max_samples(self) -> int:
        """Samples covered by ``max_length`` frames; later samples are cut off."""
        return KALDI_FRAME_LENGTH + (self.config.max_length - 1) * KALDI_HOP_LENGTH

    @property
    def min_samples(self) -> int:
        """Samples in one frame; shorter input gives only padding."""
        return KALDI_FRAME_LENGTH

    def featurize(self, samples: np.ndarray) -> np.ndarray:
        """One mono segment ``[N]`` → ``float32 [max_length, num_mel_bins]`` (zero-padded or cut, then normalised)."""
        wave = _mono(samples)[: self.max_samples]  # later samples fall in frames past max_length
        fbank = self._fbank(wave)
        frames = min(fbank.shape[0], self.config.max_length)
        features = np.zeros((self.config.max_length, self.config.num_mel_bins), dtype=np.float32)
        features[:frames] = fbank[:frames]
        if self.config.do_normalize:
            features = (features - self.config.mean) / (self.config.std * 2)
        return features

    def collate(self, items: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """``featurize`` outputs → ``{"input_values": float32 [B, max_length, num_mel_bins]}``."""
        return {"input_values": np.stack(items)}

    def exact_padding(self, model_config: Any = None) -> bool:
        """Always: every item has the same fixed size."""
        return True

    def __call__(
        self,
        raw_speech: Any,
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        **ignored: Any,
    ) -> BatchFeatures:
        """``ASTFeatureExtractor(raw_speech, ...)``: ``input_values``, a list of ``float32 [max_length,
        num_mel_bins]`` (an array ``[B, ...]`` with ``return_tensors``). Padding arguments are ignored: every item
        is cut or padded to ``max_length`` frames, and no attention mask is returned, as in ``transformers``."""
        _check_sampling_rate(self.sampling_rate, sampling_rate)
        return _as_tensors({"input_values": [self.featurize(wave) for wave in _waveforms(raw_speech)]}, return_tensors)


class WhisperFeatureExtractor(_SpectralFeatureExtractor):
    """Whisper log-mel features: ``input_features float32 [feature_size, nb_max_frames]`` per item."""

    config_class = WhisperFeatureExtractorConfig
    model_input_name = "input_features"
    model_input_names = ["input_features"]
    config: WhisperFeatureExtractorConfig
    fixed_size = True

    def __init__(self, config: WhisperFeatureExtractorConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self._window = window_function("hann", self.config.n_fft, periodic=True)
        self._filters = mel_filter_bank(self.config.n_fft // 2 + 1, self.config.feature_size, 0.0,
                                        WHISPER_MAX_FREQUENCY, self.config.sampling_rate, scale="slaney",
                                        slaney_norm=True)

    @property
    def max_samples(self) -> int:
        """``n_samples``: longer input is cut."""
        return self.config.n_samples

    @property
    def min_samples(self) -> int:
        return 1

    @property
    def n_samples(self) -> int:
        return self.config.n_samples

    @property
    def nb_max_frames(self) -> int:
        return self.config.nb_max_frames

    def log_mel(self, wave: np.ndarray, real_length: int | None = None) -> np.ndarray:
        """Log-mel features of an already padded waveform ``[N]`` (``N > n_fft / 2``):
        ``float32 [feature_size, N // hop_length]``. ``real_length``: where the right padding starts, if any (the
        frames of padding alone are then computed once)."""
        config = self.config
        rng = np.random.default_rng() if config.dither else None
        constant_from = real_length if config.padding_side == "right" else None
        spectrum = centered_log10_mel(wave, self._window, self._filters, hop_length=config.hop_length,
                                      floor=WHISPER_MEL_FLOOR, dither=config.dither, rng=rng,
                                      constant_from=constant_from)
        features = spectrum[:-1].T.astype(np.float32)
        features = np.maximum(features, features.max() - WHISPER_DYNAMIC_RANGE)
        return (features + 4.0) / 4.0

    def featurize(self, samples: np.ndarray) -> np.ndarray:
        """One mono segment ``[N]`` → ``float32 [feature_size, nb_max_frames]``: cut or padded to ``n_samples``
        (with ``padding_value`` on ``padding_side``), then :meth:`log_mel`."""
        (wave,), (mask,) = self._pad([_mono(samples)], "max_length", self.config.n_samples, True, None)
        return self.log_mel(wave, int(mask.sum()))

    def collate(self, items: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """``featurize`` outputs → ``{"input_features": float32 [B, feature_size, nb_max_frames]}`` (Whisper
        classifiers take no attention mask)."""
        return {"input_features": np.stack(items)}

    def exact_padding(self, model_config: Any = None) -> bool:
        """Always: every item is padded to ``n_samples`` on its own."""
        return True

    def __call__(
        self,
        raw_speech: Any,
        truncation: bool = True,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool | None = None,
        padding: Any = "max_length",
        max_length: int | None = None,
        sampling_rate: int | None = None,
        do_normalize: bool | None = None,
        device: str | None = "cpu",
        **ignored: Any,
    ) -> BatchFeatures:
        """``WhisperFeatureExtractor(raw_speech, ...)``.

        The waveforms are cut to ``max_length`` samples (default ``n_samples``) and padded as ``padding`` says
        (default: to ``max_length``), standardised over their own samples when ``do_normalize``, then featurized:
        ``input_features float32 [B, feature_size, T // hop_length]``. ``attention_mask int32``: frame-level
        ``[B, T // hop_length]`` when ``return_attention_mask=True``; when only the config (or ``do_normalize``)
        asks for one, the sample-level mask ``[B, T]``, as ``transformers`` returns it. ``device`` is accepted and
        ignored (the features are computed with numpy).
        """
        _check_sampling_rate(self.sampling_rate, sampling_rate)
        waves, masks = self._pad(_waveforms(raw_speech), padding, max_length or self.config.n_samples, truncation,
                                 pad_to_multiple_of)
        mask_requested = return_attention_mask or do_normalize
        wants_mask = self.config.return_attention_mask if mask_requested is None else bool(mask_requested)
        if do_normalize:
            waves = [_standardize_prefix(wave, int(mask.sum()), self.config.padding_value)
                     for wave, mask in zip(waves, masks)]
        if any(wave.shape[0] <= self.config.n_fft // 2 for wave in waves):
            raise AudioError(f"a padded waveform must be longer than n_fft / 2 = {self.config.n_fft // 2} samples")
        output: dict[str, Any] = {"input_features": _stack("input_features", [self.log_mel(wave, int(mask.sum()))
                                                                     for wave, mask in zip(waves, masks)])}
        if return_attention_mask:
            sample_mask = _stack("attention_mask", masks)
            frame_mask = sample_mask[:, :: self.config.hop_length]
            if sample_mask.shape[1] % self.config.hop_length:
                frame_mask = frame_mask[:, :-1]
            output["attention_mask"] = frame_mask
        elif wants_mask:
            output["attention_mask"] = _stack("attention_mask", masks)
        return _as_tensors(output, return_tensors)


def _standardize_prefix(wave: np.ndarray, length: int, padding_value: float) -> np.ndarray:
    """``(wave - mean) / sqrt(var + 1e-7)`` with the statistics of ``wave[:length]``; entries from ``length`` on
    are set to ``padding_value``. ``wave``: float32 ``[T]`` → float32 ``[T]``."""
    head = wave[:length]
    out = (wave - head.mean()) / np.sqrt(head.var() + VARIANCE_EPSILON)
    out[length:] = padding_value
    return out


class SeamlessM4TFeatureExtractor(_SpectralFeatureExtractor):
    """SeamlessM4T / wav2vec2-BERT features: ``float32 [T, num_mel_bins]`` per item from :meth:`featurize`;
    :meth:`collate` pads, stacks ``stride`` frames and returns ``input_features [B, T', num_mel_bins * stride]`` and
    ``attention_mask [B, T']``."""

    config_class = SeamlessM4TFeatureExtractorConfig
    model_input_name = "input_features"
    model_input_names = ["input_features", "attention_mask"]
    config: SeamlessM4TFeatureExtractorConfig

    max_samples = None

    def __init__(self, config: SeamlessM4TFeatureExtractorConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self._fbank = _KaldiFbank("povey", self.config.num_mel_bins, self.config.sampling_rate)

    @property
    def min_samples(self) -> int:
        """Samples in two frames: the shortest input whose per-bin variance (hence every feature) is finite."""
        return KALDI_FRAME_LENGTH + KALDI_HOP_LENGTH

    def log_mel(self, samples: np.ndarray) -> np.ndarray:
        """Kaldi log-mel energies of ``samples * 2**15``: ``[N]`` → ``float32 [T, num_mel_bins]``, not normalised."""
        return self._fbank(_mono(samples) * SEAMLESS_INPUT_SCALE)

    def featurize(self, samples: np.ndarray) -> np.ndarray:
        """One mono segment ``[N]`` → ``float32 [T, num_mel_bins]``, each mel bin standardised over the ``T`` frames
        (unbiased variance; NaN for ``T < 2``), not yet padded or stacked."""
        fbank = self.log_mel(samples)
        with np.errstate(invalid="ignore", divide="ignore"):
            return _standardize_columns(fbank)

    def collate(self, items: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """``featurize`` outputs ``[T_i, M]`` → ``input_features float32 [B, T', M * stride]`` and, when
        ``return_attention_mask``, ``attention_mask int32 [B, T']``, padded as the default batch call pads."""
        return self.stack_frames(items, padding=True, max_length=None, truncation=False,
                                 pad_to_multiple_of=SEAMLESS_PAD_MULTIPLE,
                                 return_attention_mask=self.config.return_attention_mask)

    def stack_frames(
        self,
        items: Sequence[np.ndarray],
        *,
        padding: Any,
        max_length: int | None,
        truncation: bool,
        pad_to_multiple_of: int | None,
        return_attention_mask: bool,
    ) -> dict[str, np.ndarray]:
        """Pad the frames of ``items [T_i, M]`` to a common ``T`` (see :func:`_pad_batch`), drop ``T % stride`` frames,
        stack every ``stride`` consecutive frames: ``input_features [B, T // stride, M * stride]``; the mask of a
        stacked frame is the mask of its second frame (``index % stride == 1``, none when ``stride`` is 1), as in
        ``transformers``."""
        if not items:
            raise AudioError("no audio given (empty batch)")
        rows, masks = self._pad(items, padding, max_length, truncation, pad_to_multiple_of)
        features, mask = _stack("input_features", rows), _stack("attention_mask", masks)
        stride = self.config.stride
        batch, frames, bins = features.shape
        kept = frames - frames % stride
        output = {"input_features": features[:, :kept].reshape(batch, kept // stride, bins * stride)}
        if return_attention_mask:
            output["attention_mask"] = mask[:, :kept][:, np.arange(kept) % stride == 1]
        return output

    def exact_padding(self, model_config: Any = None) -> bool:
        """Whether padding a clip in a batch leaves its features and their mask as they are alone.

        Needs an attention mask, right padding, and a ``stride`` for which every stacked frame the mask marks valid
        in a longer batch exists in the clip's own output (true for ``stride`` 1 and 2); and a model that honours the
        mask (``add_adapter`` in the model config: the adapter's strided convolutions see the padding)."""
        config = self.config
        if not config.return_attention_mask or config.padding_side != "right":
            return False
        if model_config is not None and (getattr(model_config, "add_adapter", False)
                                         or not getattr(model_config, "masks_padding_exactly", True)):
            return False
        stride, period = config.stride, math.lcm(config.stride, SEAMLESS_PAD_MULTIPLE)
        # A stacked frame k is valid when frame k * stride + 1 is real; alone, a clip of T frames keeps stacked frames
        # k with (k + 1) * stride <= round_up(T, 2). The condition repeats with period lcm(stride, 2) in T.
        return all(((frames - 2) // stride + 1) * stride <= _round_up(frames, SEAMLESS_PAD_MULTIPLE)
                   for frames in range(2, 2 + 2 * period))

    def __call__(
        self,
        raw_speech: Any,
        padding: Any = True,
        pad_to_multiple_of: int | None = SEAMLESS_PAD_MULTIPLE,
        max_length: int | None = None,
        truncation: bool = False,
        return_tensors: str | None = None,
        sampling_rate: int | None = None,
        return_attention_mask: bool | None = None,
        do_normalize_per_mel_bins: bool = True,
        **ignored: Any,
    ) -> BatchFeatures:
        """``SeamlessM4TFeatureExtractor(raw_speech, ...)``: per-clip features (standardised per mel bin when
        ``do_normalize_per_mel_bins``), padded (``padding``, ``max_length`` and ``truncation`` count frames) and
        stacked by :meth:`stack_frames`; ``input_features float32 [B, T', M * stride]`` and, unless
        ``return_attention_mask`` (default: the config's) is false, ``attention_mask int32 [B, T']``."""
        _check_sampling_rate(self.sampling_rate, sampling_rate)
        featurize = self.featurize if do_normalize_per_mel_bins else self.log_mel
        items = [featurize(wave) for wave in _waveforms(raw_speech)]
        wants_mask = self.config.return_attention_mask if return_attention_mask is None else bool(return_attention_mask)
        output = self.stack_frames(items, padding=padding, max_length=max_length, truncation=truncation,
                                   pad_to_multiple_of=pad_to_multiple_of, return_attention_mask=wants_mask)
        return _as_tensors(output, return_tensors)


def _standardize_columns(features: np.ndarray) -> np.ndarray:
    """Each column of ``float32 [T, M]`` minus its mean over ``T``, divided by ``sqrt(unbiased variance + 1e-7)``."""
    return (features - features.mean(axis=0, keepdims=True)) / np.sqrt(
        features.var(axis=0, ddof=1, keepdims=True) + VARIANCE_EPSILON
    )


# ---------------------------------------------------------------------------------------------------------- lookup
FEATURE_EXTRACTOR_CLASSES: dict[str, type[_SpectralFeatureExtractor]] = {
    cls.config_class.TYPE: cls
    for cls in (ASTFeatureExtractor, WhisperFeatureExtractor, SeamlessM4TFeatureExtractor)
}


def spectral_feature_extractor_from_pretrained(path: str | os.PathLike[str]) -> _SpectralFeatureExtractor:
    """The featurizer a model directory (or JSON file) names in ``feature_extractor_type``; ConfigError when the
    type is missing or not one of :data:`FEATURE_EXTRACTOR_CLASSES`."""
    source, values = _config_dict_at(path)
    kind = values.get("feature_extractor_type")
    if kind not in FEATURE_EXTRACTOR_CLASSES:
        known = ", ".join(sorted(FEATURE_EXTRACTOR_CLASSES))
        raise ConfigError(f"{source}: feature_extractor_type {kind!r} is not a spectral featurizer ({known})")
    cls = FEATURE_EXTRACTOR_CLASSES[kind]
    try:
        return cls(cls.config_class.from_dict(values))
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
