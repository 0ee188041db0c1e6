"""Featurizers: the interface the streaming engine uses, and the waveform featurizer with the semantics of
``transformers.Wav2Vec2FeatureExtractor``.

**Interface** (:class:`Featurizer`). The engine featurizes each segment on a decode thread (``featurize``: one
mono ``float32 [N]`` segment → the model input of one item) and pads a batch of them on the main thread
(``collate`` → the model's keyword arrays). ``exact_padding(model_config)`` says whether items of different
lengths may share a batch without changing any item's result; when it is false the engine batches equal lengths
only. ``max_samples`` caps the segment length (``None``: any length). :func:`load_featurizer` picks the class from
the model's feature-extractor settings (``feature_extractor_type``): this waveform featurizer, or the spectral ones
of :mod:`audioclf.audio.spectral_features` (AST, Whisper, wav2vec2-BERT's SeamlessM4T).

**Waveform featurizer** (:class:`FeatureExtractor`). The wav2vec2-family architectures take the raw waveform: the
"features" are the samples themselves, padded to a common length and (when ``do_normalize``) standardised per
sequence:

    y = (x - mean(x[:L])) / sqrt(var(x[:L]) + 1e-7)          (float32, population variance)

``L`` is the attention-mask row sum **only when a mask is returned and padding was requested**; then
``y[L:] = padding_value``. Otherwise the statistics cover the whole row, padding included, and padded samples
end up as ``(padding_value - mean) / std`` instead of ``padding_value``. With ``padding_side="left"`` the
first ``L`` samples include the padding; that is what ``transformers`` computes too, and it is kept so the
numbers match.

Inputs are converted to float32 before anything else (``transformers`` leaves integer and float16 arrays in
their dtype; every real caller passes float32 audio).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from audioclf.checkpoints.files import CONFIG_NAME, PREPROCESSOR_CONFIG_NAME, PROCESSOR_CONFIG_NAME
from audioclf.errors import AudioError, ConfigError
from audioclf.fileio import write_text_atomic

__all__ = [
    "FEATURIZERS",
    "PREPROCESSOR_CONFIG_NAME",
    "BatchFeatures",
    "FeatureExtractor",
    "FeatureExtractorConfig",
    "Featurizer",
    "featurizer_from_dict",
    "load_featurizer",
    "normalize",
]

logger = logging.getLogger(__name__)

FEATURE_EXTRACTOR_TYPE = "Wav2Vec2FeatureExtractor"
VARIANCE_EPSILON = 1e-7


# --------------------------------------------------------------------------------------------------- config
@dataclass
class FeatureExtractorConfig:
    """Contents of ``preprocessor_config.json``.

    Unknown keys (``processor_class``, …) are kept in ``extra`` and written back by :meth:`to_dict` /
    :meth:`save_pretrained`. ``feature_extractor_type`` is checked on reading (only
    ``Wav2Vec2FeatureExtractor`` is supported) and always written, so it is not stored.
    """

    feature_size: int = 1
    sampling_rate: int = 16000
    padding_value: float = 0.0
    do_normalize: bool = True
    return_attention_mask: bool = False
    padding_side: str = "right"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.feature_size = _as_int(self.feature_size, "feature_size")
        if self.feature_size != 1:
            raise ConfigError(
                f"feature_size {self.feature_size} is not supported: waveform models take 1 value per sample"
            )
        self.sampling_rate = _as_int(self.sampling_rate, "sampling_rate")
        if self.sampling_rate <= 0:
            raise ConfigError(f"sampling_rate must be positive, got {self.sampling_rate}")
        if isinstance(self.padding_value, bool) or not isinstance(self.padding_value, (int, float)):
            raise ConfigError(f"padding_value must be a number, got {self.padding_value!r}")
        self.padding_value = float(self.padding_value)
        if not math.isfinite(self.padding_value):
            raise ConfigError(f"padding_value must be finite, got {self.padding_value}")
        for name in ("do_normalize", "return_attention_mask"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
            setattr(self, name, bool(getattr(self, name)))
        if self.padding_side not in ("right", "left"):
            raise ConfigError(f"padding_side must be 'right' or 'left', got {self.padding_side!r}")
        if not isinstance(self.extra, dict):
            raise ConfigError(f"extra must be a dict, got {type(self.extra).__name__}")
        self.extra = dict(self.extra)
        kind = self.extra.pop("feature_extractor_type", FEATURE_EXTRACTOR_TYPE)
        if kind != FEATURE_EXTRACTOR_TYPE:
            raise ConfigError(f"feature_extractor_type {kind!r} is not supported (only {FEATURE_EXTRACTOR_TYPE})")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "FeatureExtractorConfig":
        """Build from a parsed ``preprocessor_config.json``.

        Missing keys take the defaults; unknown keys go to ``extra``."""
        if not isinstance(values, dict):
            raise ConfigError(f"a preprocessor config must be a JSON object, got {type(values).__name__}")
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {key: value for key, value in values.items() if key in known}
        extra = {key: value for key, value in values.items() if key not in known}
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str]) -> "FeatureExtractorConfig":
        """Read one JSON file (raises :class:`ConfigError` when missing or malformed)."""
        path = Path(path)
        values = _read_json(path)
        try:
            return cls.from_dict(values)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]) -> "FeatureExtractorConfig":
        """From a model directory (its ``preprocessor_config.json``, or the defaults when the directory has
        none) or from a JSON file path."""
        path = Path(path)
        if path.is_dir():
            file = path / PREPROCESSOR_CONFIG_NAME
            return cls.from_json_file(file) if file.is_file() else cls()
        if path.is_file():
            return cls.from_json_file(path)
        raise ConfigError(f"{path}: no such file or directory")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the six fields, every extra key, and ``feature_extractor_type``."""
        values: dict[str, Any] = dict(self.extra)
        values.update(
            feature_extractor_type=FEATURE_EXTRACTOR_TYPE,
            feature_size=self.feature_size,
            sampling_rate=self.sampling_rate,
            padding_value=self.padding_value,
            do_normalize=self.do_normalize,
            return_attention_mask=self.return_attention_mask,
            padding_side=self.padding_side,
        )
        return values

    def to_json_string(self) -> str:
        """The file content ``transformers`` writes: sorted keys, 2-space indent, trailing newline."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``<directory>/preprocessor_config.json`` atomically (temporary file + ``os.replace``)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / PREPROCESSOR_CONFIG_NAME
        write_text_atomic(target, self.to_json_string())
        return target


def _read_json(path: Path) -> Any:
    """The parsed content of a JSON file; :class:`ConfigError` (one line, naming the file) when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read ({error})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise ConfigError(f"{path}: invalid JSON at {where} ({error.msg})") from None
    except RecursionError:  # a hostile file of deeply nested brackets
        raise ConfigError(f"{path}: invalid JSON (nested too deeply)") from None


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ConfigError(f"{name} must be an integer, got {value!r}")


# --------------------------------------------------------------------------------------------- featurizing
def normalize(wave: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-variance copy of one unpadded waveform.

    ``wave``: ``[samples]``, any real dtype (converted to float32). Returns ``float32 [samples]``, computed in
    float32 exactly as ``Wav2Vec2FeatureExtractor`` does.
    """
    x = _as_wave(wave)
    return (x - x.mean()) / np.sqrt(x.var() + VARIANCE_EPSILON)


def _as_wave(wave: Any) -> np.ndarray:
    """One waveform as a 1-D float32 array (torch tensors and lists accepted)."""
    if hasattr(wave, "detach") and hasattr(wave, "cpu"):  # a torch tensor, without importing torch
        wave = wave.detach().cpu().numpy()
    array = np.asarray(wave, dtype=np.float32)
    if array.ndim != 1:
        raise AudioError(f"a waveform must be 1-D (mono samples), got shape {array.shape}")
    if array.shape[0] == 0:
        raise AudioError("a waveform must contain at least one sample")
    return array


def _pad_rows(
    rows: list[np.ndarray],
    config: FeatureExtractorConfig,
    strategy: str,
    max_length: int | None,
    truncation: bool,
    pad_to_multiple_of: int | None,
    return_attention_mask: bool,
) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Truncate and pad float32 rows like ``SequenceFeatureExtractor.pad``; strategy is
    ``"do_not_pad"``, ``"longest"`` or ``"max_length"``."""

    def round_up(length: int) -> int:
        if pad_to_multiple_of and length % pad_to_multiple_of:
            return (length // pad_to_multiple_of + 1) * pad_to_multiple_of
        return length

    if truncation:
        if max_length is None:
            raise AudioError("truncation needs max_length")
        limit = round_up(max_length)
        rows = [row[:limit] for row in rows]
    masks = [np.ones(row.shape[0], dtype=np.int32) for row in rows] if return_attention_mask else None
    if strategy == "do_not_pad" or not rows:
        return rows, masks
    if strategy == "longest":
        target = max(row.shape[0] for row in rows)
    elif max_length is None:
        raise AudioError("padding='max_length' needs max_length")
    else:
        target = max_length
    target = round_up(target)
    padded: list[np.ndarray] = []
    for i, row in enumerate(rows):
        missing = target - row.shape[0]
        if missing > 0:
            width = (0, missing) if config.padding_side == "right" else (missing, 0)
            row = np.pad(row, width, "constant", constant_values=config.padding_value)
            if masks is not None:
                masks[i] = np.pad(masks[i], width)
        padded.append(row)
    return padded, masks


def _normalize_rows(
    rows: list[np.ndarray], masks: list[np.ndarray] | None, padding_value: float
) -> list[np.ndarray]:
    """``zero_mean_unit_var_norm``: statistics over the first ``mask.sum()`` samples when masks are given
    (tail reset to ``padding_value``), else over the whole row."""
    if masks is None:
        return [(x - x.mean()) / np.sqrt(x.var() + VARIANCE_EPSILON) for x in rows]
    out = []
    for x, mask in zip(rows, masks):
        length = int(mask.sum())
        y = (x - x[:length].mean()) / np.sqrt(x[:length].var() + VARIANCE_EPSILON)
        if length < y.shape[0]:
            y[length:] = padding_value
        out.append(y)
    return out


class BatchFeatures(dict):
    """The featurizer's output: a dict (``input_values``, optionally ``attention_mask``) whose keys can also be
    read as attributes, like ``transformers.BatchFeature``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, *args: Any, **kwargs: Any) -> "BatchFeatures":
        """Move torch tensors (``return_tensors="pt"``) with ``Tensor.to``; other values are kept."""
        return BatchFeatures({k: v.to(*args, **kwargs) if hasattr(v, "to") else v for k, v in self.items()})


class Featurizer(Protocol):
    """What the streaming engine needs from a featurizer (see the module docstring).

    Attributes:
        sampling_rate: the rate the model's audio must have, in Hz.
        model_input_name: the model's keyword for the features: ``"input_values"`` or ``"input_features"``.
        max_samples: the longest segment the model takes, in samples (``None``: unlimited).
        fixed_size: every item has the size of a ``max_samples`` segment, whatever the segment's length (AST,
            Whisper): a batch costs ``max_samples`` per item.
        min_samples: the shortest segment with usable features, in samples.
    """

    sampling_rate: int
    model_input_name: str
    max_samples: int | None
    fixed_size: bool
    min_samples: int

    def featurize(self, samples: np.ndarray) -> np.ndarray:
        """One mono segment ``float32 [N]`` → the features of one item (``[N]`` or ``[frames, bins]``)."""
        ...

    def collate(self, items: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """``featurize`` outputs of one batch → the model's keyword arrays (``attention_mask`` included when the
        model takes one), padded as ``transformers`` pads a batch."""
        ...

    def exact_padding(self, model_config: Any) -> bool:
        """True when items of different lengths may share a batch without changing any item's result."""
        ...


class FeatureExtractor:
    """The waveform featurizer: the interface and numbers of ``Wav2Vec2FeatureExtractor``, and :class:`Featurizer`.

    ``FeatureExtractor.from_pretrained(model_dir)`` reads ``preprocessor_config.json`` (defaults when absent).
    """

    model_input_names = ["input_values", "attention_mask"]
    model_input_name = "input_values"
    #: waveform models take segments of any length, and pad a batch to its longest segment only
    max_samples: int | None = None
    fixed_size = False
    #: any sample gives a waveform item (the model's receptive field is the model's own limit)
    min_samples = 1

    def __init__(self, config: FeatureExtractorConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = FeatureExtractorConfig.from_dict(overrides)
        elif overrides:
            config = FeatureExtractorConfig.from_dict({**config.to_dict(), **overrides})
        self.config = config

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]) -> "FeatureExtractor":
        return cls(FeatureExtractorConfig.from_pretrained(path))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "FeatureExtractor":
        return cls(FeatureExtractorConfig.from_dict(values))

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        return self.config.save_pretrained(directory)

    def __repr__(self) -> str:
        return f"FeatureExtractor({self.config.to_dict()})"

    # The attributes transformers code reads from a feature extractor.
    @property
    def sampling_rate(self) -> int:
        return self.config.sampling_rate

    @property
    def feature_size(self) -> int:
        return self.config.feature_size

    @property
    def padding_value(self) -> float:
        return self.config.padding_value

    @property
    def padding_side(self) -> str:
        return self.config.padding_side

    @property
    def do_normalize(self) -> bool:
        return self.config.do_normalize

    @property
    def return_attention_mask(self) -> bool:
        return self.config.return_attention_mask

    # ---------------------------------------------------------------------------------------- streaming interface
    def featurize(self, samples: np.ndarray) -> np.ndarray:
        """One mono segment ``[N]`` (any real dtype) → contiguous ``float32 [N]``: the samples, standardised when
        ``do_normalize`` (statistics over this segment only)."""
        wave = np.ascontiguousarray(_as_wave(samples))
        return normalize(wave) if self.do_normalize else wave

    def collate(self, items: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """:meth:`featurize` outputs ``[N_i]`` → ``{"input_values": float32 [B, N]}`` padded to the longest with
        ``padding_value`` on ``padding_side``, plus ``"attention_mask": int32 [B, N]`` (1 on real samples) when
        ``return_attention_mask``. Equal to ``self(items, padding=True)`` on the unnormalised items whenever that
        call normalises each item over its own samples (a mask and right padding, or equal lengths)."""
        rows, masks = _pad_rows([_as_wave(item) for item in items], self.config, "longest", None, False, None,
                                self.return_attention_mask)
        batch = {"input_values": np.stack(rows) if rows else np.zeros((0, 0), np.float32)}
        if masks is not None:
            batch["attention_mask"] = np.stack(masks) if masks else np.zeros((0, 0), np.int32)
        return batch

    def exact_padding(self, model_config: Any) -> bool:
        """Padding changes nothing when the model gets a mask, pads on the right, normalises its conv stack per
        frame (``feat_extract_norm == "layer"``; group norm runs over the padded time axis too) and keeps padded
        frames away from valid ones in its encoder (``masks_padding_exactly``)."""
        return (self.return_attention_mask and self.padding_side == "right"
                and getattr(model_config, "feat_extract_norm", None) == "layer"
                and getattr(model_config, "masks_padding_exactly", True))

    # ------------------------------------------------------------------------------- transformers-style batch call
    def __call__(
        self,
        raw_speech: Any,
        padding: bool | str = False,
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
        sampling_rate: int | None = None,
        **kwargs: Any,
    ) -> BatchFeatures:
        """Featurize one waveform or a batch.

        Args:
            raw_speech: one waveform (``[samples]`` array, tensor or list of floats) or a batch (2-D array,
                list of arrays/tensors/lists).
            padding: ``False``/``"do_not_pad"``, ``True``/``"longest"``, or ``"max_length"`` (with ``max_length``).
            max_length, truncation, pad_to_multiple_of: as in ``transformers``.
            return_attention_mask: ``None`` → ``config.return_attention_mask``.
            return_tensors: ``None`` (lists of float32/int32 arrays), ``"np"`` (2-D arrays) or ``"pt"`` (torch).
            sampling_rate: rate of ``raw_speech``; a value other than ``config.sampling_rate`` is an error
                (nothing is resampled here); omitting it logs a warning.

        Returns:
            :class:`BatchFeatures` with ``input_values`` (float32) and, when requested, ``attention_mask``
            (int32), one row per input.
        """
        if sampling_rate is not None:
            if sampling_rate != self.sampling_rate:
                raise AudioError(
                    f"the model's feature extractor expects audio sampled at {self.sampling_rate} Hz, "
                    f"got sampling_rate={sampling_rate}; resample the audio first"
                )
        else:
            logger.warning(
                "pass sampling_rate to the feature extractor so that audio at the wrong rate is caught"
            )
        strategy = _padding_strategy(padding)
        rows = self._rows(raw_speech)
        mask = self.return_attention_mask if return_attention_mask is None else bool(return_attention_mask)
        values, masks = _pad_rows(rows, self.config, strategy, max_length, truncation, pad_to_multiple_of, mask)
        if self.do_normalize:
            values = _normalize_rows(values, masks if strategy != "do_not_pad" else None, self.padding_value)
        output: dict[str, Any] = {"input_values": values}
        if masks is not None:
            output["attention_mask"] = masks
        return BatchFeatures({key: _to_tensors(key, value, return_tensors) for key, value in output.items()})

    @staticmethod
    def _rows(raw_speech: Any) -> list[np.ndarray]:
        if hasattr(raw_speech, "detach") and hasattr(raw_speech, "cpu"):
            raw_speech = raw_speech.detach().cpu().numpy()
        if isinstance(raw_speech, np.ndarray):
            if raw_speech.ndim > 2:
                raise AudioError(f"only mono audio is supported, got an array of shape {raw_speech.shape}")
            return [_as_wave(row) for row in raw_speech] if raw_speech.ndim == 2 else [_as_wave(raw_speech)]
        if isinstance(raw_speech, (list, tuple)):
            if not raw_speech:
                raise AudioError("no audio given (empty list)")
            first = raw_speech[0]
            if isinstance(first, (np.ndarray, list, tuple)) or hasattr(first, "detach"):
                return [_as_wave(row) for row in raw_speech]
            return [_as_wave(raw_speech)]
        raise AudioError(f"audio must be an array, a tensor or a list of floats, got {type(raw_speech).__name__}")


def _padding_strategy(padding: bool | str) -> str:
    if padding is False or padding == "do_not_pad":
        return "do_not_pad"
    if padding is True or padding == "longest":
        return "longest"
    if padding == "max_length":
        return "max_length"
    if hasattr(padding, "value"):  # a transformers PaddingStrategy enum
        return _padding_strategy(padding.value)
    raise AudioError(f"invalid padding {padding!r}: use False, True, 'longest', 'max_length' or 'do_not_pad'")


def _to_tensors(key: str, rows: list[np.ndarray], return_tensors: str | None) -> Any:
    if return_tensors is None:
        return rows
    if return_tensors not in ("np", "pt"):
        raise AudioError(f"return_tensors must be None, 'np' or 'pt', got {return_tensors!r}")
    if len({row.shape[0] for row in rows}) > 1:
        raise AudioError(f"cannot stack {key} rows of different lengths into one tensor; pass padding=True")
    stacked = np.stack(rows)
    if return_tensors == "np":
        return stacked
    import torch  # only when torch tensors are asked for

    return torch.from_numpy(stacked)


# ---------------------------------------------------------------------------------------------------------- factory
#: ``feature_extractor_type`` → a constructor from the parsed ``preprocessor_config.json``
FEATURIZERS: dict[str, Callable[[dict[str, Any]], Featurizer]] = {
    FEATURE_EXTRACTOR_TYPE: FeatureExtractor.from_dict,
}


def featurizer_from_dict(values: dict[str, Any]) -> Featurizer:
    """The featurizer a parsed ``preprocessor_config.json`` describes; without ``feature_extractor_type`` the
    waveform featurizer (what ``transformers`` picks for the wav2vec2-family model types). An unsupported type is a
    one-line :class:`ConfigError`."""
    if not isinstance(values, dict):
        raise ConfigError(f"a preprocessor config must be a JSON object, got {type(values).__name__}")
    kind = values.get("feature_extractor_type", FEATURE_EXTRACTOR_TYPE)
    factory = FEATURIZERS.get(kind) if isinstance(kind, str) else None
    if factory is None:
        raise ConfigError(f"feature_extractor_type {kind!r} is not supported (supported: {', '.join(FEATURIZERS)})")
    return factory(values)


# Spectral featurizers (AST, Whisper, wav2vec2-BERT's SeamlessM4T) are built on first use: their module imports
# this one.
def _spectral_featurizer(kind: str) -> Callable[[dict[str, Any]], Featurizer]:
    def build(values: dict[str, Any]) -> Featurizer:
        from audioclf.audio.spectral_features import FEATURE_EXTRACTOR_CLASSES

        featurizer_class = FEATURE_EXTRACTOR_CLASSES[kind]
        return featurizer_class(featurizer_class.config_class.from_dict(values))
    return build


FEATURIZERS.update({kind: _spectral_featurizer(kind) for kind in ("ASTFeatureExtractor", "WhisperFeatureExtractor",
                                                                   "SeamlessM4TFeatureExtractor")})

#: model_type -> the featurizer of a checkpoint without (pre)processor config, and its settings from config.json
DEFAULT_FEATURIZERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "audio-spectrogram-transformer": lambda config: {"feature_extractor_type": "ASTFeatureExtractor"},
    "whisper": lambda config: {"feature_extractor_type": "WhisperFeatureExtractor",
                               "feature_size": config.get("num_mel_bins", 80)},
    "wav2vec2-bert": lambda config: {"feature_extractor_type": "SeamlessM4TFeatureExtractor"},
}


def featurizer_settings(directory: str | os.PathLike[str]) -> tuple[Path | None, dict[str, Any]]:
    """The feature-extractor settings of a model directory and the file they came from.

    The ``feature_extractor`` (or ``audio_processor``) entry of ``processor_config.json`` (``transformers`` 5.x)
    wins over ``preprocessor_config.json``, as in ``transformers``. With neither file: ``(None, settings)``, the
    settings of the model type's default featurizer (:data:`DEFAULT_FEATURIZERS`, from ``config.json``) or ``{}``
    (the waveform featurizer's defaults). Raises :class:`ConfigError` naming a file that cannot be read."""
    directory = Path(directory)
    processor = directory / PROCESSOR_CONFIG_NAME
    if processor.is_file():
        values = _read_json(processor)
        nested = values.get("feature_extractor", values.get("audio_processor")) if isinstance(values, dict) else None
        if nested is not None:
            if not isinstance(nested, dict):
                raise ConfigError(f"{processor}: 'feature_extractor' must be a JSON object")
            return processor, nested
    preprocessor = directory / PREPROCESSOR_CONFIG_NAME
    if preprocessor.is_file():
        return preprocessor, _read_json(preprocessor)
    config_file = directory / CONFIG_NAME
    config = _read_json(config_file) if config_file.is_file() else {}
    default = DEFAULT_FEATURIZERS.get(config.get("model_type")) if isinstance(config, dict) else None
    return None, default(config) if default is not None else {}


def load_featurizer(path: str | os.PathLike[str] | None) -> Featurizer:
    """The featurizer of a model directory (see :func:`featurizer_settings`; the waveform featurizer's defaults when
    ``path`` is ``None``) or of a JSON file. Raises :class:`ConfigError` naming the file."""
    if path is None:
        return featurizer_from_dict({})
    path = Path(path)
    if path.is_dir():
        source, values = featurizer_settings(path)
    elif path.is_file():
        source, values = path, _read_json(path)
    else:
        raise ConfigError(f"{path}: no such file or directory")
    try:
        return featurizer_from_dict(values)
    except ConfigError as error:
        message = str(error)
        if source is None or message.startswith(f"{source}: "):
            raise
        raise ConfigError(f"{source}: {message}") from None
