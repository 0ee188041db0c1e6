"""The sequence-classification head shared by all six architectures, and the classifier module around it.

Head: optional softmax-weighted sum of hidden states → ``projector`` (D → P) → mean over valid frames →
``classifier`` (P → labels). An architecture module subclasses :class:`AudioClassifier` and says how to build its base
model; everything else (head, initialisation, saving) lives here once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from audioclf.config import ModelConfig
from audioclf.models.blocks import EncoderOutput, frame_mask


@dataclass
class ClassifierOutput:
    """``logits`` ``[B, num_labels]``; ``hidden_states``: ``num_hidden_layers + 1`` tensors ``[B, T, D]``;
    ``attentions``: one ``[B, H, T, T]`` map per layer."""

    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None

    def __getitem__(self, index: int):
        return tuple(v for v in (self.logits, self.hidden_states, self.attentions) if v is not None)[index]


class AudioClassifier(nn.Module):
    """Base model (stored under ``config.base_prefix``) plus the classification head.

    Subclasses set ``model_type`` and implement :meth:`build_base`. The base model's ``forward`` takes
    ``(input_values, attention_mask, output_hidden_states, output_attentions)`` and returns an
    :class:`~audioclf.models.blocks.EncoderOutput`; it has a ``feature_extractor`` with ``output_lengths``.
    """

    model_type: ClassVar[str]
    #: parameters that a base-model checkpoint does not have; initialised when missing
    head_parameters: ClassVar[tuple[str, ...]] = ("projector.", "classifier.", "layer_weights")

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.base_prefix = config.base_prefix
        setattr(self, self.base_prefix, self.build_base(config))
        if config.use_weighted_layer_sum:
            layers = config.num_hidden_layers + 1
            self.layer_weights = nn.Parameter(torch.full((layers,), 1.0 / layers))
        self.projector = nn.Linear(config.hidden_size, config.classifier_proj_size)
        self.classifier = nn.Linear(config.classifier_proj_size, config.num_labels)
        if not self.classifier.weight.is_meta:  # on the meta device there is nothing to fill: weights come later
            self.apply(self._init_module)

    def build_base(self, config: ModelConfig) -> nn.Module:
        raise NotImplementedError

    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_prefix)

    # -- forward ------------------------------------------------------------------------------------------------------
    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool | None = None, output_attentions: bool | None = None) -> ClassifierOutput:
        """``input_values`` ``[B, N]`` float; ``attention_mask`` ``[B, N]`` (1 = real sample, right-padded)."""
        config = self.config
        if output_hidden_states is None:
            output_hidden_states = bool(config.output_hidden_states)
        if output_attentions is None:
            output_attentions = bool(config.output_attentions)
        weighted = config.use_weighted_layer_sum
        encoded: EncoderOutput = self.base_model(input_values, attention_mask,
                                                 output_hidden_states or weighted, output_attentions)
        states = encoded.hidden_states
        if states is not None and getattr(config, "tie_last_hidden_states", False):
            # transformers 4.x semantics: the last entry is the encoder output (after a stable model's final LN)
            states = states[:-1] + (encoded.last_hidden_state,)
        if weighted:
            weights = self.layer_weights.softmax(dim=-1)
            hidden = (torch.stack(states, dim=0) * weights[:, None, None, None]).sum(dim=0)
        else:
            hidden = encoded.last_hidden_state
        projected = self.projector(hidden)
        if attention_mask is None:
            pooled = projected.mean(dim=1)
        else:
            lengths = self.base_model.feature_extractor.output_lengths(attention_mask.sum(-1))
            valid = frame_mask(lengths, projected.shape[1])
            projected = projected.masked_fill(~valid[:, :, None], 0.0)
            pooled = projected.sum(dim=1) / valid.sum(dim=1, keepdim=True)
        logits = self.classifier(pooled)
        return ClassifierOutput(logits, states if output_hidden_states else None,
                                encoded.attentions if output_attentions else None)

    # -- initialisation -----------------------------------------------------------------------------------------------
    def _init_module(self, module: nn.Module) -> None:
        """Random initialisation for a model built from a config (weights loaded later overwrite it)."""
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

    def optimize_for_inference(self) -> "AudioClassifier":
        """Fold inference-time constants once: weight norm into plain conv weights, and any per-model work a layer
        can precompute (SEW-D's relative-position projections). Outputs are unchanged; parameter names of the
        positional conv change (``conv.weight``), so save checkpoints from an unoptimised model. Call it after moving
        the model to its device and dtype. Returns ``self``."""
        from torch.nn.utils import parametrize

        self.eval()
        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        for module in self.modules():
            precompute = getattr(module, "precompute_for_inference", None)
            if precompute is not None:
                precompute()
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self

    def initialise(self, keys: list[str]) -> None:
        """Random initialisation for the named parameters only (those a checkpoint did not provide), leaving every
        other tensor of their modules as loaded."""
        with torch.no_grad():
            if "layer_weights" in keys:
                self.layer_weights.fill_(1.0 / self.layer_weights.numel())
            owners: dict[str, set[str]] = {}
            for key in keys:
                if key == "layer_weights":
                    continue
                path = key.rpartition(".")[0]
                if ".parametrizations." in key:  # weight-norm factors are initialised by their conv
                    path = key.split(".parametrizations.")[0]
                owners.setdefault(path, set()).add(key)
            for path, names in owners.items():
                module = self.get_submodule(path)
                kept = {f"{path}.{name}": tensor.clone() for name, tensor in module.state_dict().items()
                        if f"{path}.{name}" not in names}
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.reset_parameters()
                else:
                    self._init_module(module)
                for name, tensor in module.state_dict().items():
                    if f"{path}.{name}" in kept:
                        tensor.copy_(kept[f"{path}.{name}"])

    def is_head_parameter(self, key: str) -> bool:
        return key.startswith(self.head_parameters)

    # -- saving -------------------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory`` (each atomically)."""
        from audioclf.checkpoints.files import save_safetensors

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {key: value.detach().contiguous() for key, value in self.state_dict().items()}
        save_safetensors(state, directory / "model.safetensors")
        self.config.save_pretrained(directory)
        return directory

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
