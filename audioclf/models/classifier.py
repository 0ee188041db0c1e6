"""The audio classifier: a base model plus a classification head, and everything every architecture shares.

Default head (the wav2vec2 family and Whisper): optional softmax-weighted sum of hidden states → ``projector``
(D → P) → mean over valid frames → ``classifier`` (P → labels). An architecture module subclasses
:class:`AudioClassifier` and says how to build its base model (and, for another head such as AST's, how to build
and apply it); the loss, freezing, gradient checkpointing, initialisation and saving live here once.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from audioclf.config import ModelConfig
from audioclf.errors import ModelError
from audioclf.models.blocks import EncoderOutput, LayerStack
from audioclf.models.speech import SpeechModel


@dataclass
class ClassifierOutput:
    """``loss``: a scalar (None without labels); ``logits`` ``[B, num_labels]``; ``hidden_states``:
    ``num_hidden_layers + 1`` tensors ``[B, T, D]``; ``attentions``: one ``[B, H, T, T]`` map per layer (None for a
    layer LayerDrop skipped)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor | None, ...] | None = None

    def to_tuple(self) -> tuple:
        return tuple(v for v in (self.loss, self.logits, self.hidden_states, self.attentions) if v is not None)

    def __getitem__(self, index: int):
        return self.to_tuple()[index]


def sequence_classification_loss(logits: torch.Tensor, labels: torch.Tensor, problem_type: str | None) -> torch.Tensor:
    """The loss of ``logits`` ``[B, L]`` against ``labels`` for ``problem_type``.

    ``single_label_classification``: cross entropy, labels ``[B]`` class indices. ``multi_label_classification``:
    BCE with logits, labels ``[B, L]`` (0/1 floats). ``regression``: MSE, labels ``[B, L]`` (``[B]`` when
    ``L == 1``, both squeezed). ``None`` infers the type from the shapes and dtypes as ``transformers``' text
    classifiers do: one label -> regression; integer labels (int64/int32) -> single label; otherwise multi label.
    """
    num_labels = logits.shape[-1]
    if problem_type is None:
        if num_labels == 1:
            problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            problem_type = "single_label_classification"
        else:
            problem_type = "multi_label_classification"
    if problem_type == "regression":
        labels = labels.to(logits.dtype)
        if num_labels == 1:
            return F.mse_loss(logits.squeeze(), labels.squeeze())
        return F.mse_loss(logits, labels)
    if problem_type == "single_label_classification":
        return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1).long())
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


class AudioClassifier(nn.Module):
    """Base model (stored under ``config.base_prefix``) plus the classification head.

    Subclasses set ``model_type`` and implement :meth:`build_base`, returning a module whose ``forward`` takes
    ``(inputs, attention_mask, output_hidden_states, output_attentions)`` and returns an
    :class:`~audioclf.models.blocks.EncoderOutput`, and whose ``frame_mask(attention_mask, num_frames)`` gives the
    frame mask ``[B, T]`` of a sample mask (None: every frame counts). A head other than the default one overrides
    :meth:`build_head` and :meth:`logits_from`.

    The model trains as the ``transformers`` classifier of the same name does: ``train()`` turns on every dropout,
    LayerDrop and SpecAugment its config asks for, at the same places and with the same random draws. The loss
    differs in one respect: ``transformers``' wav2vec2-family and Whisper classifiers always use cross entropy, this
    one follows ``config.problem_type`` (:func:`sequence_classification_loss`), which gives the same result for
    single-label classification.
    """

    model_type: ClassVar[str]

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.base_prefix = config.base_prefix
        self.inference_only = False
        setattr(self, self.base_prefix, self.build_base(config))
        self.build_head(config)
        if not next(self.parameters()).is_meta:  # on the meta device there is nothing to fill: weights come later
            self.apply(self._init_module)

    def build_base(self, config: ModelConfig) -> nn.Module:
        raise NotImplementedError

    def build_head(self, config: ModelConfig) -> None:
        """The default head: ``layer_weights`` ``[L + 1]`` (with ``use_weighted_layer_sum``), ``projector``,
        ``classifier``."""
        if config.use_weighted_layer_sum:
            self.layer_weights = nn.Parameter(torch.empty(config.num_hidden_layers + 1))
        self.projector = nn.Linear(config.hidden_size, config.classifier_proj_size)
        self.classifier = nn.Linear(config.classifier_proj_size, config.num_labels)

    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_prefix)

    @property
    def uses_all_hidden_states(self) -> bool:
        """Whether the head reads every hidden state (the weighted layer sum), not only the last one."""
        return bool(getattr(self.config, "use_weighted_layer_sum", False))

    # -- forward ------------------------------------------------------------------------------------------------------
    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_hidden_states: bool | None = None,
                output_attentions: bool | None = None) -> ClassifierOutput:
        """``input_values`` ``[B, N]`` float waveforms (AST: spectrograms ``[B, T, M]``); sample mask
        ``attention_mask`` ``[B, N]`` (1 = real sample, right-padded); ``labels``: ``[B]`` class indices, or ``[B, L]`` floats (multi-label, regression); the loss
        follows ``config.problem_type`` (:func:`sequence_classification_loss`). ``output_hidden_states`` /
        ``output_attentions``: None takes the config's value."""
        return self.classify(input_values, attention_mask, labels, output_hidden_states, output_attentions)

    def classify(self, inputs: torch.Tensor, attention_mask: torch.Tensor | None, labels: torch.Tensor | None,
                 output_hidden_states: bool | None, output_attentions: bool | None) -> ClassifierOutput:
        """The forward pass for any input name: base model, head, loss."""
        if self.inference_only and torch.is_grad_enabled() and (
                inputs.requires_grad or any(p.requires_grad for p in self.parameters())):
            raise ModelError("this model was optimized for inference and cannot compute gradients: run it under "
                             "torch.no_grad() or load it again to train")
        config = self.config
        if output_hidden_states is None:
            output_hidden_states = config.output_hidden_states
        if output_attentions is None:
            output_attentions = config.output_attentions
        encoded: EncoderOutput = self.base_model(inputs, attention_mask,
                                                 output_hidden_states or self.uses_all_hidden_states,
                                                 output_attentions)
        states = encoded.hidden_states
        if states is not None and config.tie_last_hidden_states:
            # the last entry is the encoder output (after the final LayerNorm): transformers 4.x and Whisper
            states = states[:-1] + (encoded.last_hidden_state,)
        logits = self.logits_from(encoded.last_hidden_state, states, attention_mask)
        loss = sequence_classification_loss(logits, labels, config.problem_type) if labels is not None else None
        return ClassifierOutput(loss, logits, states if output_hidden_states else None,
                                encoded.attentions if output_attentions else None)

    def logits_from(self, last_hidden_state: torch.Tensor, hidden_states: tuple[torch.Tensor, ...] | None,
                    attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The default head: ``[B, T, D]`` states (the weighted sum of ``hidden_states`` with
        ``use_weighted_layer_sum``) → projector → mean over the valid frames → classifier: ``[B, num_labels]``."""
        if self.uses_all_hidden_states:
            weights = self.layer_weights.softmax(dim=-1)
            hidden = (torch.stack(hidden_states, dim=1) * weights[:, None, None]).sum(dim=1)
        else:
            hidden = last_hidden_state
        projected = self.projector(hidden)
        valid = self.base_model.frame_mask(attention_mask, projected.shape[1])
        if valid is None:
            pooled = projected.mean(dim=1)
        else:
            projected = projected.masked_fill(~valid[:, :, None], 0.0)
            pooled = projected.sum(dim=1) / valid.sum(dim=1, keepdim=True)
        return self.classifier(pooled)

    # -- training switches --------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "AudioClassifier":
        if mode and self.inference_only:
            raise ModelError("this model was optimized for inference and cannot be trained: load it again to train")
        return super().train(mode)

    def freeze_feature_encoder(self) -> None:
        """No gradients for the conv feature encoder (its parameters stay as they are in training). A model without
        one (AST, Whisper) raises :class:`ModelError`, as ``transformers`` has no such method for them."""
        encoder = getattr(self.base_model, "feature_extractor", None)
        if encoder is None:
            raise ModelError(f"{type(self).__name__} has no convolutional feature encoder to freeze: use "
                             "freeze_base_model() to train the head only")
        encoder.requires_grad_(False)

    def freeze_base_model(self) -> None:
        """No gradients for the whole base model: only the head (projector, classifier, layer weights; AST: its
        classifier) trains."""
        self.base_model.requires_grad_(False)

    def gradient_checkpointing_enable(self) -> None:
        """Recompute each transformer layer in the backward pass instead of keeping its activations (training
        only; outputs and gradients unchanged)."""
        self._set_checkpointing(True)

    def gradient_checkpointing_disable(self) -> None:
        self._set_checkpointing(False)

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(m.checkpointing for m in self.modules() if isinstance(m, LayerStack))

    def _set_checkpointing(self, enabled: bool) -> None:
        for module in self.modules():
            if isinstance(module, LayerStack):
                module.checkpointing = enabled

    def optimize_for_inference(self) -> "AudioClassifier":
        """Switch on the inference fast paths of :mod:`audioclf.models.inference` (same outputs, less time and
        memory). The model is then in eval mode for good: it refuses ``train()`` and forwards that need gradients,
        and the positional conv's parameter names change (``conv.weight``), so save checkpoints from an unoptimised
        model. Call it after moving the model to its device and dtype. Returns ``self``."""
        from audioclf.models.inference import optimize_for_inference

        optimize_for_inference(self)
        return self

    # -- initialisation -----------------------------------------------------------------------------------------------
    def _init_module(self, module: nn.Module) -> None:
        """Random initialisation of ``module``'s own tensors (not its children's), for a model built from a config
        (weights loaded later overwrite it)."""
        std = self.initializer_std
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, std)
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            if module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_parameters()
        elif isinstance(module, (nn.Conv1d, nn.Conv2d)):
            if hasattr(module, "parametrizations"):  # positional conv: v random, g = ‖v‖ per tap
                fan_in = module.kernel_size[0] * module.in_channels
                v = module.parametrizations.weight.original1
                nn.init.normal_(v, 0.0, 2.0 / fan_in ** 0.5)
                with torch.no_grad():
                    module.parametrizations.weight.original0.copy_(v.norm(dim=(0, 1), keepdim=True))
            else:
                nn.init.kaiming_normal_(module.weight)
            if module.bias is not None:
                fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
                bound = 1.0 / fan_in ** 0.5
                nn.init.uniform_(module.bias, -bound, bound)
        elif hasattr(module, "reset_own_parameters"):  # blocks with tensors of their own (position tables, gates)
            module.reset_own_parameters()
        elif isinstance(module, SpeechModel) and module.masked_spec_embed is not None:
            nn.init.uniform_(module.masked_spec_embed)
        elif module is self and self.uses_all_hidden_states:
            nn.init.constant_(self.layer_weights, 1.0 / self.layer_weights.numel())

    @property
    def initializer_std(self) -> float:
        """Standard deviation of the random initialisation of linear layers (``config.initializer_range``)."""
        return self.config.initializer_range

    def initialise(self, keys: list[str]) -> None:
        """Random initialisation for the named parameters and buffers only (those a checkpoint did not provide),
        leaving every other tensor of their modules as loaded."""
        owners: dict[str, set[str]] = {}
        for key in keys:
            path = key.split(".parametrizations.")[0] if ".parametrizations." in key else key.rpartition(".")[0]
            owners.setdefault(path, set()).add(key)
        with torch.no_grad():
            for path, names in owners.items():
                module = self.get_submodule(path)
                own = {f"{path}.{name}" if path else name: tensor for name, tensor in module.state_dict(keep_vars=True).items()
                       if "." not in name or name.startswith("parametrizations.")}
                kept = {key: tensor.detach().clone() for key, tensor in own.items() if key not in names}
                self._init_module(module)
                for key, value in kept.items():
                    own[key].detach().copy_(value)

    # -- saving -------------------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory`` (each atomically)."""
        from audioclf.checkpoints.files import save_safetensors

        if self.inference_only:
            raise ModelError("a model optimized for inference has different parameter names: save the model before "
                             "optimize_for_inference()")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {key: value.detach().contiguous() for key, value in self.state_dict().items()}
        save_safetensors(state, directory / "model.safetensors")
        self.config.save_pretrained(directory)
        return directory
