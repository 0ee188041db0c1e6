"""What a model is, from its config files alone: architecture, labels, sizes, feature-extractor settings and, for a
Hub model, the resolved commit and what the cache holds.

No weights are read: parameters are counted on a weightless (meta-device) model built from the config.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["ModelDescription", "describe_model"]


@dataclass(frozen=True)
class ModelDescription:
    """The facts about one model. ``revision`` and ``cache`` are set for Hub models only."""

    model: str
    path: str
    architecture: str
    architectures: list[str] | None
    model_type: str
    sampling_rate: int
    num_labels: int
    labels: list[str]
    problem_type: str | None
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    front_end: str
    conv_layers: int | None
    feat_extract_norm: str | None
    do_stable_layer_norm: bool | None
    use_weighted_layer_sum: bool
    parameters: int
    size_fp32_bytes: int
    weights_files: list[str]
    feature_extractor: dict[str, Any]
    revision: str | None = None
    cache: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (without ``revision``/``cache`` for a local model)."""
        facts = asdict(self)
        for key in ("revision", "cache"):
            if facts[key] is None:
                del facts[key]
        return facts


def front_end(config: Any, conv_stack: Any = None) -> str:
    """One line on what turns the input into the transformer's frames (``conv_stack``: the model's conv feature
    encoder, if it has one)."""
    if config.model_type == "audio-spectrogram-transformer":
        from audioclf.config import patch_grid

        return (f"{config.patch_size}x{config.patch_size} patches every {config.frequency_stride} mel bins and "
                f"{config.time_stride} frames of a {config.max_length} x {config.num_mel_bins} spectrogram "
                f"({patch_grid(config)[0] * patch_grid(config)[1]} patches)")
    if config.model_type == "whisper":
        return (f"2 convs over {config.num_mel_bins} mel bins x {2 * config.max_source_positions} frames "
                f"({config.max_source_positions} encoder frames)")
    if conv_stack is None:  # wav2vec2-BERT
        return f"feature projection of {config.feature_projection_input_dim}-wide filter-bank frames, no conv layers"
    return f"{len(conv_stack.conv_layers)} conv layers ({conv_stack.norm} norm)"


def describe_model(model: str | os.PathLike, revision: str | None = None, cache_dir: str | os.PathLike | None = None,
                   token: str | bool | None = None) -> ModelDescription:
    """Describe ``model``: a Hub id, a local checkpoint directory, or a ``config.json`` file. A Hub model's config
    files are fetched (or found in the cache); its weights are not."""
    import torch

    from audioclf.audio.features import load_featurizer
    from audioclf.auto import AutoConfig, resolve_source
    from audioclf.checkpoints.files import list_weight_files
    from audioclf.models import model_class

    name = os.fspath(model)
    path = Path(name).expanduser()
    source = None
    if path.is_file():
        directory = path.parent
        config = AutoConfig.from_pretrained(path)
    else:
        source = resolve_source(name, hub={"revision": revision, "cache_dir": cache_dir, "token": token},
                                weights=False)
        directory = source.directory
        config = AutoConfig.from_pretrained(directory)
    featurizer = load_featurizer(directory)
    with torch.device("meta"):
        classifier = model_class(config.model_type)(config)
    conv_stack = getattr(classifier.base_model, "feature_extractor", None)  # None: spectrogram or filter-bank input
    parameters = sum(p.numel() for p in classifier.parameters())
    hub_facts: dict[str, Any] = {}
    if source is not None and source.repo_id and source.commit:
        from audioclf.checkpoints.hub import cache_status

        status = cache_status(source.repo_id, cache_dir=cache_dir)
        hub_facts = {
            "revision": source.commit,
            "cache": {
                "cached": status.cached,
                "size_on_disk": status.size_on_disk,
                "revisions": [{"commit": r.commit, "refs": sorted(r.refs), "size_on_disk": r.size_on_disk}
                              for r in status.revisions],
            },
        }
    return ModelDescription(
        model=name,
        path=str(directory),
        architecture=type(classifier).__name__,
        architectures=getattr(config, "architectures", None),
        model_type=config.model_type,
        sampling_rate=featurizer.sampling_rate,
        num_labels=config.num_labels,
        labels=[config.id2label[i] for i in range(config.num_labels)],
        problem_type=config.problem_type,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.feed_forward_size,
        front_end=front_end(config, conv_stack),
        conv_layers=len(conv_stack.conv_layers) if conv_stack is not None else None,
        feat_extract_norm=conv_stack.norm if conv_stack is not None else None,
        do_stable_layer_norm=getattr(config, "do_stable_layer_norm", None),
        use_weighted_layer_sum=getattr(config, "use_weighted_layer_sum", False),
        parameters=parameters,
        size_fp32_bytes=parameters * 4,
        weights_files=list_weight_files(directory),
        feature_extractor=featurizer.config.to_dict(),
        **hub_facts,
    )
