"""``audioclf inspect MODEL``: what a model is, from its config files alone (no weights are read)."""

from __future__ import annotations

import json
from typing import Optional

import typer


def describe_model(model: str, revision: Optional[str] = None, cache_dir: Optional[str] = None,
                   token: Optional[str] = None) -> dict:
    """The facts ``inspect`` shows, as a JSON-ready dict. Parameters are counted on a weightless (meta) model."""
    from pathlib import Path

    import torch

    from audioclf.audio.features import FeatureExtractorConfig
    from audioclf.auto import AutoConfig, resolve_source
    from audioclf.models import model_class

    path = Path(model).expanduser()
    hub = {"revision": revision, "cache_dir": cache_dir, "token": token}
    if path.is_file():
        directory, source = path.parent, None
        config = AutoConfig.from_pretrained(path)
    else:
        source = resolve_source(model, hub=hub, weights=False)
        directory = source.directory
        config = AutoConfig.from_pretrained(directory)
    features = FeatureExtractorConfig.from_pretrained(directory)
    with torch.device("meta"):
        classifier = model_class(config.model_type)(config)
    parameters = sum(p.numel() for p in classifier.parameters())
    weights = sorted(p.name for p in directory.iterdir() if p.name.endswith((".safetensors", ".bin", ".h5", ".index",
                                                                            ".index.json")))
    facts = {
        "model": model,
        "path": str(directory),
        "architecture": type(classifier).__name__,
        "architectures": getattr(config, "architectures", None),
        "model_type": config.model_type,
        "sampling_rate": features.sampling_rate,
        "num_labels": config.num_labels,
        "labels": [config.id2label[i] for i in range(config.num_labels)],
        "problem_type": config.problem_type,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "intermediate_size": config.intermediate_size,
        "conv_layers": len(config.conv_dim),
        "feat_extract_norm": config.feat_extract_norm,
        "do_stable_layer_norm": getattr(config, "do_stable_layer_norm", None),
        "use_weighted_layer_sum": config.use_weighted_layer_sum,
        "parameters": parameters,
        "size_fp32_bytes": parameters * 4,
        "weights_files": weights,
        "feature_extractor": features.to_dict(),
    }
    if source is not None and source.repo_id and source.commit:
        from audioclf.checkpoints.hub import cache_status

        status = cache_status(source.repo_id, cache_dir=cache_dir)
        facts["revision"] = source.commit
        facts["cache"] = {
            "cached": status.cached,
            "size_on_disk": status.size_on_disk,
            "revisions": [{"commit": r.commit, "refs": sorted(r.refs), "size_on_disk": r.size_on_disk}
                          for r in status.revisions],
        }
    return facts


def inspect(
    model: str = typer.Argument(..., help="Hub model id, local checkpoint directory, or config.json "
                                          "('audioclf/default' is the bundled model)."),
    revision: Optional[str] = typer.Option(None, "--revision", "-r", help="Branch, tag or commit (Hub ids)."),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", help="Hugging Face cache directory."),
    token: Optional[str] = typer.Option(None, "--token", help="Hub access token (default: HF_TOKEN)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show a model's architecture, labels, sizes, feature-extractor settings and cache status.

    Reads config.json and preprocessor_config.json only; parameters are counted from the config.
    Exit status: 0 shown, 2 the model cannot be found or its config is invalid.
    """
    facts = describe_model(model, revision=revision, cache_dir=cache_dir, token=token)
    if as_json:
        typer.echo(json.dumps(facts))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("model", facts["model"]),
        ("path", facts["path"]),
        ("architecture", f"{facts['architecture']} (model_type {facts['model_type']})"),
        ("layers", f"{facts['num_hidden_layers']} x hidden {facts['hidden_size']}, {facts['num_attention_heads']} "
                   f"heads, ffn {facts['intermediate_size']}; {facts['conv_layers']} conv layers "
                   f"({facts['feat_extract_norm']} norm)"),
        ("parameters", f"{facts['parameters']:,} ({facts['size_fp32_bytes'] / 2**20:.1f} MiB in float32)"),
        ("sampling rate", f"{facts['sampling_rate']} Hz"),
        ("labels", f"{facts['num_labels']}: {', '.join(facts['labels'])}"),
        ("feature extractor", ", ".join(f"{k}={v}" for k, v in facts["feature_extractor"].items()
                                        if k in ("do_normalize", "return_attention_mask", "padding_value"))),
        ("weights", ", ".join(facts["weights_files"]) or "none in this directory"),
    ]
    if "revision" in facts:
        cache = facts["cache"]
        rows.append(("revision", facts["revision"]))
        rows.append(("cache", f"{len(cache['revisions'])} revision(s), {cache['size_on_disk'] / 2**20:.1f} MiB"))
    for key, value in rows:
        table.add_row(key, str(value))
    Console().print(table)
