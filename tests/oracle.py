"""Reference models built with ``transformers`` (the test oracle) and saved the ways real checkpoints are saved."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

TINY = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=40,
    conv_dim=(32, 32, 32), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
    num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4, classifier_proj_size=24,
    initializer_range=0.3, num_labels=5,
)
TINY_SEW = dict(TINY, conv_dim=(32, 32, 32, 32), conv_kernel=(10, 3, 1, 3), conv_stride=(5, 2, 1, 2),
                num_conv_pos_embeddings=7)

TINY_CONFORMER = dict(TINY, conv_depthwise_kernel_size=7)
#: wav2vec2-bert reads feature frames: no conv fields; distances clipped at 6 / 3 so the batch reaches the clip
TINY_BERT = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=40, classifier_proj_size=24,
    initializer_range=0.3, num_labels=5, feature_projection_input_dim=12, conv_depthwise_kernel_size=5,
    left_max_position_embeddings=6, right_max_position_embeddings=3,
)
#: model types whose input is feature frames ``input_features [B, T, F]`` with a frame mask
FRAME_INPUT_TYPES = ("wav2vec2-bert",)

#: config keys whose value transformers 5 runs but refuses to validate (set after construction, saved by hand)
UNVALIDATED_KEYS = ("use_intermediate_ffn_before_adapter",)

#: where and in what precision our side of the parity tests runs: ``AUDIOCLF_TEST_DEVICE=cuda`` (default ``cpu``) and
#: ``AUDIOCLF_TEST_DTYPE=float16|bfloat16`` (default ``float32``); the transformers reference stays on the CPU in
#: float32. scripts/gpu_check.sh sets them.
TEST_DEVICE = os.environ.get("AUDIOCLF_TEST_DEVICE", "cpu")
TEST_DTYPE = os.environ.get("AUDIOCLF_TEST_DTYPE", "float32")
#: scaled max |difference| allowed per precision: float32 is the parity bound; the half precisions carry 13 to 16
#: fewer mantissa bits through every layer, so theirs only checks the wiring on the device (worst cases measured on
#: the CPU: 5.5e-3 in float16, 4.8e-2 in bfloat16)
PARITY_TOLERANCE = {"float32": 1e-4, "float16": 3e-2, "bfloat16": 1e-1}[TEST_DTYPE]
if TEST_DEVICE.startswith("cuda"):  # float32 means float32: no TF32 tensor-core rounding in convs or matmuls
    torch.backends.cudnn.conv.fp32_precision = "ieee"
    torch.backends.cuda.matmul.fp32_precision = "ieee"


def on_test_device(model):
    """Our model moved to the test device and dtype."""
    return model.to(TEST_DEVICE, getattr(torch, TEST_DTYPE))


def device_inputs(inputs: dict) -> dict:
    """Model inputs on the test device, float inputs in the test dtype."""
    dtype = getattr(torch, TEST_DTYPE)
    return {name: value.to(TEST_DEVICE, dtype if value.is_floating_point() else None) for name, value in inputs.items()}


#: valid lengths (samples) of the padded test batch: odd and even frame counts after the conv stack
BATCH_LENGTHS = (4001, 3000, 2501, 3650)
#: valid lengths (frames) of the padded feature batch
FRAME_LENGTHS = (60, 41, 33, 52)

# -- spectrogram models: tiny AST and Whisper configs (Whisper's decoder fields only size the unused decoder) ------
TINY_AST = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=40, num_mel_bins=32, max_length=64,
    patch_size=16, frequency_stride=10, time_stride=10, initializer_range=0.3, num_labels=5,
)
TINY_WHISPER = dict(
    d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=40, num_mel_bins=16,
    max_source_positions=30, classifier_proj_size=24, init_std=0.3, num_labels=5,
    decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=40, vocab_size=64, max_target_positions=16,
    pad_token_id=1, bos_token_id=1, eos_token_id=2, decoder_start_token_id=3,
)
SPECTROGRAM_MODEL_TYPES = ("audio-spectrogram-transformer", "whisper")


def reference_classes(model_type: str):
    import transformers as T

    return {
        "wav2vec2": (T.Wav2Vec2Config, T.Wav2Vec2ForSequenceClassification, T.Wav2Vec2Model),
        "hubert": (T.HubertConfig, T.HubertForSequenceClassification, T.HubertModel),
        "unispeech": (T.UniSpeechConfig, T.UniSpeechForSequenceClassification, T.UniSpeechModel),
        "unispeech-sat": (T.UniSpeechSatConfig, T.UniSpeechSatForSequenceClassification, T.UniSpeechSatModel),
        "sew": (T.SEWConfig, T.SEWForSequenceClassification, T.SEWModel),
        "sew-d": (T.SEWDConfig, T.SEWDForSequenceClassification, T.SEWDModel),
        "wavlm": (T.WavLMConfig, T.WavLMForSequenceClassification, T.WavLMModel),
        "data2vec-audio": (T.Data2VecAudioConfig, T.Data2VecAudioForSequenceClassification, T.Data2VecAudioModel),
        "wav2vec2-conformer": (T.Wav2Vec2ConformerConfig, T.Wav2Vec2ConformerForSequenceClassification,
                               T.Wav2Vec2ConformerModel),
        "wav2vec2-bert": (T.Wav2Vec2BertConfig, T.Wav2Vec2BertForSequenceClassification, T.Wav2Vec2BertModel),
        "audio-spectrogram-transformer": (T.ASTConfig, T.ASTForAudioClassification, T.ASTModel),
        "whisper": (T.WhisperConfig, T.WhisperForAudioClassification, T.WhisperModel),
    }[model_type]


def tiny_params(model_type: str) -> dict:
    """The tiny reference config of ``model_type`` (keyword arguments of its transformers config class)."""
    if model_type == "audio-spectrogram-transformer":
        return dict(TINY_AST)
    if model_type == "whisper":
        return dict(TINY_WHISPER)
    if model_type == "wav2vec2-conformer":
        return dict(TINY_CONFORMER)
    if model_type == "wav2vec2-bert":
        return dict(TINY_BERT)
    return dict(TINY_SEW if model_type in ("sew", "sew-d") else TINY)


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Give every parameter and buffer a value far from its initialisation, so every term of the forward matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if not tensor.is_floating_point() or name.endswith("inv_freq"):  # rotary frequencies are constants
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor.copy_(0.5 + noise.abs())
            elif name.endswith("layer_weights"):
                tensor.copy_(noise)
            elif tensor.ndim == 1 and ("norm" in name.lower() and name.endswith("weight")):
                tensor.copy_(1.0 + 0.3 * noise)
            elif name.endswith("bias") or tensor.ndim == 1:
                tensor.copy_(0.2 * noise)
            elif name.endswith("original0"):  # weight-norm magnitude g [1, 1, K]
                tensor.copy_(0.5 + noise.abs())
            elif name.endswith(("cls_token", "distillation_token", "position_embeddings", "embed_positions.weight")):
                tensor.copy_(0.5 * noise)  # AST's tokens and positions start at 0, Whisper's positions are sinusoids


def build_reference(model_type: str, seed: int = 0, base_only: bool = False, **overrides):
    """A random ``transformers`` classifier (or base model) for a tiny config, in eval mode."""
    config_cls, clf_cls, base_cls = reference_classes(model_type)
    params = tiny_params(model_type)
    if model_type == "sew-d":  # small enough that the padded batch reaches the log buckets
        params.update(position_buckets=16, max_position_embeddings=64)
    params.update(overrides)
    # set after construction: not config-class fields (tie), or refused by transformers 5's config validation
    # although its model runs them (the intermediate feed-forward without an adapter, as transformers 4.x allowed)
    late = {key: params.pop(key) for key in ("tie_last_hidden_states", *UNVALIDATED_KEYS) if key in params}
    attn = params.pop("attn_implementation", None)
    config = config_cls(**params)
    if attn is not None:
        config._attn_implementation = attn
    for key, value in late.items():
        setattr(config, key, value)
    torch.manual_seed(seed)
    model = (base_cls if base_only else clf_cls)(config).eval()
    randomise(model, seed)
    return model


def save_reference(model, directory: Path, fmt: str = "safetensors") -> Path:
    """Save like real checkpoints: ``safetensors``, ``bin``, ``sharded`` (safetensors shards), ``sharded-bin``,
    or ``legacy`` (``.bin`` with ``weight_g``/``weight_v`` keys, as older checkpoints have)."""
    unvalidated = {key: getattr(model.config, key) for key in UNVALIDATED_KEYS if getattr(model.config, key, False)}
    for key in unvalidated:
        setattr(model.config, key, False)
    try:
        _save(model, directory, fmt)
    finally:
        for key, value in unvalidated.items():
            setattr(model.config, key, value)
    if unvalidated:
        config_path = directory / "config.json"
        config_path.write_text(json.dumps({**json.loads(config_path.read_text()), **unvalidated}, indent=2))
    return directory


def _save(model, directory: Path, fmt: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        model.save_pretrained(directory)
    elif fmt == "bin":
        model.save_pretrained(directory, safe_serialization=False)
    elif fmt == "sharded":
        model.save_pretrained(directory, max_shard_size="20KB")
    elif fmt == "sharded-bin":
        model.save_pretrained(directory, max_shard_size="20KB", safe_serialization=False)
    elif fmt == "legacy":
        model.config.save_pretrained(directory)
        state = {}
        for key, value in model.state_dict().items():
            key = key.replace("parametrizations.weight.original0", "weight_g")
            key = key.replace("parametrizations.weight.original1", "weight_v")
            state[key] = value.clone()
        torch.save(state, directory / "pytorch_model.bin")
    else:
        raise ValueError(fmt)


def padded_batch(lengths=BATCH_LENGTHS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, max(lengths)]`` float32 inputs right-padded with zeros, and the ``int64`` attention mask."""
    rng = np.random.default_rng(seed)
    batch = np.zeros((len(lengths), max(lengths)), dtype=np.float32)
    mask = np.zeros_like(batch, dtype=np.int64)
    for row, length in enumerate(lengths):
        batch[row, :length] = rng.standard_normal(length).astype(np.float32)
        mask[row, :length] = 1
    return torch.from_numpy(batch), torch.from_numpy(mask)


def padded_features(lengths=FRAME_LENGTHS, width: int = TINY_BERT["feature_projection_input_dim"],
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, max(lengths), width]`` float32 feature frames right-padded with zeros, and the ``int64`` frame mask."""
    rng = np.random.default_rng(seed)
    batch = np.zeros((len(lengths), max(lengths), width), dtype=np.float32)
    mask = np.zeros(batch.shape[:2], dtype=np.int64)
    for row, length in enumerate(lengths):
        batch[row, :length] = rng.standard_normal((length, width)).astype(np.float32)
        mask[row, :length] = 1
    return torch.from_numpy(batch), torch.from_numpy(mask)


def model_batch(model_type: str, seed: int = 0) -> tuple[str, torch.Tensor, torch.Tensor]:
    """The model's input name and its padded test batch with mask: waveforms, or feature frames."""
    if model_type in FRAME_INPUT_TYPES:
        return ("input_features", *padded_features(seed=seed))
    return ("input_values", *padded_batch(seed=seed))


def input_cases(model_type: str) -> dict[str, dict[str, torch.Tensor]]:
    """The parity inputs: the padded batch with and without its mask, and two of its rows alone, unpadded."""
    name, values, mask = model_batch(model_type)
    lengths = mask.sum(-1).tolist()
    return {
        "padded+mask": {name: values, "attention_mask": mask},
        "padded,no mask": {name: values},
        "single": {name: values[:1, :lengths[0]]},
        "single odd": {name: values[2:3, :lengths[2]]},
    }


def spectrogram_batch(config, batch: int = 4, seed: int = 0) -> torch.Tensor:
    """Random model inputs for a spectrogram model's ``config`` (ours or transformers'): AST ``input_values``
    ``[B, max_length, num_mel_bins]``, Whisper ``input_features`` ``[B, num_mel_bins, 2 · max_source_positions]``."""
    generator = torch.Generator().manual_seed(seed)
    if config.model_type == "whisper":
        shape = (batch, config.num_mel_bins, 2 * config.max_source_positions)
    else:
        shape = (batch, config.max_length, config.num_mel_bins)
    return torch.randn(shape, generator=generator)


def scaled_max_diff(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """max |ours - reference| divided by the reference's scale (max |reference|, at least 1); ``ours`` may be on
    another device or in another dtype."""
    scale = max(float(reference.abs().max()), 1.0)
    return float((ours.detach().float().cpu() - reference.float()).abs().max()) / scale


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def ours_like(reference):
    """Our classifier with the reference's config and weights (a strict state-dict load), in eval mode."""
    from audioclf.config import ModelConfig
    from audioclf.models import build_model

    model = build_model(ModelConfig.from_dict(reference.config.to_dict()))
    model.load_state_dict(reference.state_dict(), strict=True)
    return model
