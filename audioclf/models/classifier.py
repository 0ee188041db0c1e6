"""The audio classifier: a base model plus the sequence-classification head shared by every architecture.

Head: optional softmax-weighted sum of hidden states → ``projector`` (D → P) → mean over valid frames →
``classifier`` (P → labels), and a loss when labels are given. An architecture module subclasses
:class:`AudioClassifier` and says how to build its base model; everything else (head, loss, freezing, gradient
checkpointing, initialisation, saving) lives here once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from audioclf.config import ModelConfig
from audioclf.errors import ModelError
from audioclf.models.blocks import EncoderOutput, LayerStack, frame_mask
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

    Subclasses set ``model_type`` and implement :meth:`build_base`, returning a
    :class:`~audioclf.models.speech.SpeechModel` whose ``forward`` takes ``(input_values, attention_mask,
    output_hidden_states, output_attentions)`` and returns an :class:`~audioclf.models.blocks.EncoderOutput`.

    The model trains as the ``transformers`` classifier of the same name does: ``train()`` turns on every dropout,
    LayerDrop and SpecAugment its config asks for, at the same places and with the same random draws. The loss
    differs in one respect: ``transformers``' audio classifiers always use cross entropy, this one follows
    ``config.problem_type`` (:func:`sequence_classification_loss`), which gives the same result for single-label
    classification.
    """

    model_type: ClassVar[str]

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.base_prefix = config.base_prefix
        self.inference_only = False
        setattr(self, self.base_prefix, self.build_base(config))
        if config.use_weighted_layer_sum:
            self.layer_weights = nn.Parameter(torch.empty(config.num_hidden_layers + 1))
        self.projector = nn.Linear(config.hidden_size, config.classifier_proj_size)
        self.classifier = nn.Linear(config.classifier_proj_size, config.num_labels)
        if not self.classifier.weight.is_meta:  # on the meta device there is nothing to fill: weights come later
            self.apply(self._init_module)

    def build_base(self, config: ModelConfig) -> SpeechModel:
        raise NotImplementedError

    @property
    def base_model(self) -> SpeechModel:
        return getattr(self, self.base_prefix)

    # -- forward ------------------------------------------------------------------------------------------------------
    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_hidden_states: bool | None = None,
                output_attentions: bool | None = None) -> ClassifierOutput:
        """``input_values`` ``[B, N]`` float; sample mask ``attention_mask`` ``[B, N]`` (1 = real sample,
        right-padded); ``labels``: ``[B]`` class indices, or ``[B, L]`` floats (multi-label, regression); the loss
        follows ``config.problem_type`` (:func:`sequence_classification_loss`). ``output_hidden_states`` /
        ``output_attentions``: None takes the config's value."""
        if self.inference_only and torch.is_grad_enabled() and (
                input_values.requires_grad or any(p.requires_grad for p in self.parameters())):
            raise ModelError("this model was optimized for inference and cannot compute gradients: run it under "
                             "torch.no_grad() or load it again to train")
        config = self.config
        if output_hidden_states is None:
            output_hidden_states = config.output_hidden_states
        if output_attentions is None:
            output_attentions = config.output_attentions
        weighted = config.use_weighted_layer_sum
        encoded: EncoderOutput = self.base_model(input_values, attention_mask, output_hidden_states or weighted,
                                                 output_attentions)
        states = encoded.hidden_states
        if states is not None and config.tie_last_hidden_states:
            # transformers 4.x semantics: the last entry is the encoder output (after a stable model's final LN)
            states = states[:-1] + (encoded.last_hidden_state,)
        if weighted:
            weights = self.layer_weights.softmax(dim=-1)
            hidden = (torch.stack(states, dim=1) * weights[:, None, None]).sum(dim=1)
        else:
            hidden = encoded.last_hidden_state
        projected = self.projector(hidden)
        if attention_mask is None:
            pooled = projected.mean(dim=1)
        else:
            valid = self.base_model.frame_mask(attention_mask, projected.shape[1])
            projected = projected.masked_fill(~valid[:, :, None], 0.0)
            pooled = projected.sum(dim=1) / valid.sum(dim=1, keepdim=True)
        logits = self.classifier(pooled)
        loss = sequence_classification_loss(logits, labels, config.problem_type) if labels is not None else None
        return ClassifierOutput(loss, logits, states if output_hidden_states else None,
                                encoded.attentions if output_attentions else None)

    # -- training switches --------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "AudioClassifier":
        if mode and self.inference_only:
            raise ModelError("this model was optimized for inference and cannot be trained: load it again to train")
        return super().train(mode)

    def freeze_feature_encoder(self) -> None:
        """No gradients for the conv feature encoder (its parameters stay as they are in training)."""
        self.base_model.feature_extractor.requires_grad_(False)

    def freeze_base_model(self) -> None:
        """No gradients for the whole base model: only the head (projector, classifier, layer weights) trains."""
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
        std = self.config.initializer_range
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
        elif isinstance(module, nn.Conv1d):
            if hasattr(module, "parametrizations"):  # positional conv: v random, g = ‖v‖ per tap
                fan_in = module.kernel_size[0] * module.in_channels
                v = module.parametrizations.weight.original1
                nn.init.normal_(v, 0.0, 2.0 / fan_in ** 0.5)
                with torch.no_grad():
                    module.parametrizations.weight.original0.copy_(v.norm(dim=(0, 1), keepdim=True))
            else:
                nn.init.kaiming_normal_(module.weight)
            if module.bias is not None:
                fan_in = module.in_channels // module.groups * module.kernel_size[0]
                bound = 1.0 / fan_in ** 0.5
                nn.init.uniform_(module.bias, -bound, bound)
        elif hasattr(module, "reset_own_parameters"):  # blocks with tensors of their own (position tables, gates)
            module.reset_own_parameters()
        elif isinstance(module, SpeechModel) and module.masked_spec_embed is not None:
            nn.init.uniform_(module.masked_spec_embed)
        elif module is self and self.config.use_weighted_layer_sum:
            nn.init.constant_(self.layer_weights, 1.0 / self.layer_weights.numel())

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
