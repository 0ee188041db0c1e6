"""The Auto API: ``AutoConfig``, ``AutoModelForAudioClassification`` and ``AutoFeatureExtractor``.

Same call shapes and keyword arguments as the ``transformers`` classes of the same names, dispatching on
``model_type`` to this package's own implementations. Differences: models load in float32 unless a dtype is asked
for, remote code is never executed, and TensorFlow checkpoints are read without TensorFlow.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audioclf.checkpoints.files import CONFIG_NAME
from audioclf.config import SUPPORTED_MODEL_TYPES, ModelConfig
from audioclf.errors import AudioclfError, CheckpointError, ConfigError

#: name patterns used when a config has no ``model_type``, longest first so ``unispeech-sat`` wins over ``unispeech``
_NAME_PATTERNS: tuple[tuple[str, str], ...] = tuple(sorted(
    [("unispeech-sat", "unispeech-sat"), ("unispeech_sat", "unispeech-sat"), ("unispeechsat", "unispeech-sat"),
     ("sew-d", "sew-d"), ("sew_d", "sew-d"), ("sewd", "sew-d"), ("unispeech", "unispeech"),
     ("wav2vec2", "wav2vec2"), ("hubert", "hubert"), ("sew", "sew"),
     ("audio-spectrogram-transformer", "audio-spectrogram-transformer"),
     ("audio_spectrogram_transformer", "audio-spectrogram-transformer"), ("whisper", "whisper"),
     ("wavlm", "wavlm"), ("data2vec-audio", "data2vec-audio"), ("data2vec_audio", "data2vec-audio"),
     ("wav2vec2-conformer", "wav2vec2-conformer"), ("wav2vec2_conformer", "wav2vec2-conformer"),
     ("wav2vec2-bert", "wav2vec2-bert"), ("wav2vec2_bert", "wav2vec2-bert"), ("w2v-bert", "wav2vec2-bert")],
    key=lambda item: -len(item[0]),
))

#: the model shipped inside the package, used when no model is named
DEFAULT_MODEL_NAME = "audioclf/default"
DEFAULT_MODEL_DIR = Path(__file__).parent / "assets" / "default-model"

_HUB_KWARGS = ("cache_dir", "force_download", "proxies", "local_files_only", "revision", "token")


def infer_model_type(name: str) -> str:
    """``model_type`` from a checkpoint name or path by pattern (longest pattern first)."""
    lowered = str(name).lower()
    for pattern, model_type in _NAME_PATTERNS:
        if pattern in lowered:
            return model_type
    raise ConfigError(
        f"cannot tell the architecture of {name!r}: its config has no model_type and the name matches none of "
        f"{', '.join(SUPPORTED_MODEL_TYPES)}"
    )


@dataclass
class ResolvedSource:
    """Local files behind a name: a directory (config + weights) or a single weights file."""

    directory: Path
    weights_file: Path | None = None
    repo_id: str | None = None
    commit: str | None = None


def _is_hub_id(name: str) -> bool:
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not name.startswith((".", "/", "~")) and "\\" not in name


def resolve_source(name_or_path: str | os.PathLike, *, subfolder: str = "", use_safetensors: bool | None = None,
                   from_tf: bool = False, hub: dict[str, Any] | None = None, weights: bool = True) -> ResolvedSource:
    """Map a local directory, a weights file or a Hub id to local files (downloading what is needed; only the
    config files when ``weights`` is false)."""
    text = os.fspath(name_or_path)
    if text == DEFAULT_MODEL_NAME and not Path(text).exists():
        if not (DEFAULT_MODEL_DIR / CONFIG_NAME).is_file():
            raise CheckpointError(f"the default model is not installed (expected {DEFAULT_MODEL_DIR})")
        return ResolvedSource(DEFAULT_MODEL_DIR, repo_id=DEFAULT_MODEL_NAME)
    path = Path(text).expanduser()
    if path.exists():
        if path.is_file():
            return ResolvedSource(path.parent, weights_file=path)
        directory = path / subfolder if subfolder else path
        if not directory.is_dir():
            raise CheckpointError(f"{directory} is not a directory")
        return ResolvedSource(directory)
    if not _is_hub_id(text):
        raise CheckpointError(f"{text!r} is neither a local path nor a Hugging Face Hub model id (org/name)")
    from audioclf.checkpoints.hub import fetch_model

    fetched = fetch_model(text, subfolder=subfolder, use_safetensors=use_safetensors, from_tf=from_tf,
                          weights=weights, **(hub or {}))
    return ResolvedSource(Path(fetched.path), repo_id=fetched.repo_id, commit=fetched.commit)


def _read_config_dict(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no {path.name} in {path.parent}") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def _config_from_dict(data: dict[str, Any], name: str, trust_remote_code: bool | None,
                      overrides: dict[str, Any]) -> ModelConfig:
    if "auto_map" in data:
        raise ConfigError(
            f"{name} needs custom code (auto_map in its config): custom code is unsupported, audioclf never runs "
            f"remote code; supported types: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    data = dict(data)
    if not data.get("model_type"):
        data["model_type"] = infer_model_type(name)
    elif data["model_type"] not in SUPPORTED_MODEL_TYPES:
        raise ConfigError(
            f"{name}: model_type {data['model_type']!r} is not an audio classifier audioclf supports; supported "
            f"types: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return ModelConfig.from_dict(data, **overrides)


class AutoConfig:
    """Reads a model config from a directory, a ``config.json`` file, or a Hub id."""

    def __init__(self) -> None:
        raise EnvironmentError("AutoConfig is not meant to be instantiated: use AutoConfig.from_pretrained(...)")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *, trust_remote_code: bool | None = None,
                        subfolder: str = "", return_unused_kwargs: bool = False, **kwargs: Any):
        hub = {key: kwargs.pop(key) for key in _HUB_KWARGS if key in kwargs}
        kwargs.pop("resume_download", None)
        path = Path(os.fspath(pretrained_model_name_or_path)).expanduser()
        if path.is_file():
            config_path = path
        else:
            source = resolve_source(pretrained_model_name_or_path, subfolder=subfolder, hub=hub, weights=False)
            config_path = source.directory / CONFIG_NAME
        data = _read_config_dict(config_path)
        config = _config_from_dict(data, os.fspath(pretrained_model_name_or_path), trust_remote_code, {})
        unused = {}
        for key, value in kwargs.items():
            if hasattr(config, key) or key == "num_labels":
                setattr(config, key, value)
            else:
                unused[key] = value
        config.validate()
        if return_unused_kwargs:
            return config, unused
        if unused:
            raise AudioclfError(f"unexpected keyword argument(s) for the config: {', '.join(sorted(unused))}")
        return config

    @staticmethod
    def for_model(model_type: str, **kwargs: Any) -> ModelConfig:
        return ModelConfig(model_type=model_type, **kwargs)


def _resolve_dtype(dtype: Any, config: ModelConfig, state: dict | None):
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        declared = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
        if declared:
            return _resolve_dtype(declared, config, state)
        for value in (state or {}).values():
            if value.is_floating_point():
                return value.dtype
        return torch.float32
    name = str(dtype).removeprefix("torch.")
    resolved = getattr(torch, name, None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise AudioclfError(f"unsupported dtype {dtype!r}; use float32, bfloat16, float16 or 'auto'")
    return resolved


class AutoModelForAudioClassification:
    """Builds the audio classifier of a checkpoint's ``model_type`` (``from_pretrained`` / ``from_config``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise EnvironmentError(
            "AutoModelForAudioClassification is designed to be instantiated with "
            "AutoModelForAudioClassification.from_pretrained(pretrained_model_name_or_path) or "
            "AutoModelForAudioClassification.from_config(config)"
        )

    @classmethod
    def from_config(cls, config: ModelConfig, *, torch_dtype: Any = None, dtype: Any = None, **kwargs: Any):
        """A randomly initialised classifier of the class selected by ``config.model_type``, in eval mode."""
        from audioclf.models import build_model

        if not isinstance(config, ModelConfig):
            raise ConfigError(f"from_config expects a ModelConfig, got {type(config).__name__}")
        config = config.copy()
        for key, value in kwargs.items():
            if not hasattr(config, key):
                raise AudioclfError(f"unexpected keyword argument {key!r} (not a config attribute)")
            setattr(config, key, value)
        config.validate()
        model = build_model(config)
        return model.to(_resolve_dtype(dtype if dtype is not None else torch_dtype, config, None))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None, *model_args: Any,
                        config: ModelConfig | str | os.PathLike | None = None, state_dict: dict | None = None,
                        cache_dir: str | os.PathLike | None = None, force_download: bool = False,
                        resume_download: bool | None = None, proxies: dict | None = None,
                        output_loading_info: bool = False, local_files_only: bool = False,
                        revision: str | None = None, token: str | bool | None = None, subfolder: str = "",
                        torch_dtype: Any = None, dtype: Any = None, ignore_mismatched_sizes: bool = False,
                        use_safetensors: bool | None = None, from_tf: bool = False,
                        trust_remote_code: bool | None = None, **kwargs: Any):
        """Load a classifier from a local directory, a weights file, or a Hub model id.

        Keyword arguments follow ``transformers.AutoModelForAudioClassification.from_pretrained``; any other keyword
        that names a config attribute updates the config. Returns the model in eval mode (and, with
        ``output_loading_info=True``, a dict of missing / unexpected / mismatched keys and error messages).
        """
        import torch

        from audioclf.checkpoints.files import find_weights, location_for_file, read_weights
        from audioclf.checkpoints.loading import load_state_dict_into

        if model_args:
            raise AudioclfError("from_pretrained takes no extra positional arguments")
        hub = {"cache_dir": cache_dir, "force_download": force_download, "proxies": proxies,
               "local_files_only": local_files_only, "revision": revision, "token": token}
        source = None
        if pretrained_model_name_or_path is not None:
            source = resolve_source(pretrained_model_name_or_path, subfolder=subfolder,
                                    use_safetensors=use_safetensors, from_tf=from_tf, hub=hub)
        elif state_dict is None or config is None:
            raise AudioclfError("from_pretrained(None, ...) needs both config= and state_dict=")

        # -- config ---------------------------------------------------------------------------------------------------
        name = os.fspath(pretrained_model_name_or_path) if pretrained_model_name_or_path is not None else "state_dict"
        if isinstance(config, ModelConfig):
            config = config.copy()
        elif config is not None:
            config = AutoConfig.from_pretrained(config)
        else:
            config = _config_from_dict(_read_config_dict(source.directory / CONFIG_NAME), name, trust_remote_code, {})
        for key, value in kwargs.items():
            if not (hasattr(config, key) or key == "num_labels"):
                raise AudioclfError(f"unexpected keyword argument {key!r} (not a from_pretrained argument or config "
                                    "attribute)")
            setattr(config, key, value)
        config.validate()

        # -- weights --------------------------------------------------------------------------------------------------
        weights_name = name
        tf_checkpoint = None
        if state_dict is None:
            if from_tf:
                from audioclf.checkpoints.tf import load_tf_state_dict, tf_config_overrides

                tf_checkpoint = load_tf_state_dict(source.weights_file or source.directory)
                for key, value in tf_config_overrides(config.to_dict()).items():
                    setattr(config, key, value)
                weights_name = tf_checkpoint.source or name
            else:
                location = (location_for_file(source.weights_file) if source.weights_file is not None
                            else find_weights(source.directory, use_safetensors))
                state_dict = read_weights(location)
                weights_name = str(location.path)
        from audioclf.models import model_class

        with torch.device("meta"):  # parameters get the checkpoint's tensors, not a random copy first
            model = model_class(config.model_type)(config)
        if tf_checkpoint is not None:
            from audioclf.checkpoints.tf import check_expected_keys

            # an encoder parameter missing from the TF checkpoint is an error, not a warning
            state_dict = check_expected_keys(tf_checkpoint, model.state_dict()).state_dict
        state_dict = {k: (torch.as_tensor(v) if not isinstance(v, torch.Tensor) else v) for k, v in state_dict.items()}
        target_dtype = _resolve_dtype(dtype if dtype is not None else torch_dtype, config, state_dict)
        report = load_state_dict_into(model, state_dict, prefix=config.base_prefix,
                                      ignore_mismatched_sizes=ignore_mismatched_sizes, source=weights_name,
                                      dtype=target_dtype, initialise=model.initialise)
        del state_dict
        model = model.to(target_dtype).eval()
        model.name_or_path = name
        model.source = source
        if output_loading_info:
            return model, report.as_dict()
        return model


class AutoFeatureExtractor:
    """Reads a model's feature-extractor settings into the featurizer its ``feature_extractor_type`` names: the
    waveform ``FeatureExtractor`` (``Wav2Vec2FeatureExtractor``), ``ASTFeatureExtractor``,
    ``WhisperFeatureExtractor`` or ``SeamlessM4TFeatureExtractor`` (wav2vec2-BERT). Settings come from
    ``processor_config.json`` (its ``feature_extractor`` entry) or ``preprocessor_config.json``, else the defaults
    of the model type (see :func:`audioclf.audio.features.featurizer_settings`)."""

    def __init__(self) -> None:
        raise EnvironmentError("AutoFeatureExtractor is not meant to be instantiated: use "
                               "AutoFeatureExtractor.from_pretrained(...)")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *, subfolder: str = "", **kwargs: Any):
        """Keyword arguments other than the Hub ones replace settings (validated like the file's)."""
        from audioclf.audio.features import featurizer_from_dict, load_featurizer

        hub = {key: kwargs.pop(key) for key in _HUB_KWARGS if key in kwargs}
        kwargs.pop("resume_download", None)
        path = Path(os.fspath(pretrained_model_name_or_path)).expanduser()
        if not path.is_file():
            path = resolve_source(pretrained_model_name_or_path, subfolder=subfolder, hub=hub, weights=False).directory
        featurizer = load_featurizer(path)
        if kwargs:
            featurizer = featurizer_from_dict({**featurizer.config.to_dict(), **kwargs})
        return featurizer
