"""``audioclf inspect MODEL``: what a model is, from its config files alone (no weights are read)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from audioclf.cli._errors import handles_errors
from audioclf.cli._options import CacheDir, Format, Revision, Token, examples
from audioclf.cli._output import Column, choose_format, print_machine, print_table

#: the feature-extractor settings shown (those the featurizer has): waveform, AST, Whisper and SeamlessM4T ones
_FEATURE_EXTRACTOR_SHOWN = ("feature_extractor_type", "do_normalize", "return_attention_mask", "padding_value",
                            "feature_size", "num_mel_bins", "max_length", "mean", "std", "chunk_length", "stride")


EXAMPLES = examples(
    ("audioclf inspect audioclf/default", "the bundled model"),
    ("audioclf inspect superb/wav2vec2-base-superb-ks --revision main", "a Hub model (config files only)"),
    ("audioclf inspect ./my-checkpoint -f json | jq .labels", "JSON for scripts (the default when piped)"),
)

InspectFormat = Literal["auto", "table", "json"]


@handles_errors()
def inspect(
    model: Annotated[str, typer.Argument(help="Hub model id, local checkpoint directory, or config.json "
                                              "('audioclf/default' is the bundled model).", metavar="MODEL",
                                         show_default=False)],
    revision: Revision = None,
    cache_dir: CacheDir = None,
    token: Token = None,
    output_format: Format[InspectFormat] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.", hidden=True)] = False,
) -> None:
    """Show a model's architecture, labels, sizes, feature-extractor settings and cache status.

    Reads config.json and preprocessor_config.json only; parameters are counted from the config. A table on a
    terminal, one JSON object when stdout is piped.
    """
    from audioclf.describe import describe_model

    fmt = choose_format(output_format, as_json, machine="json", allowed=("table", "json"))
    facts = describe_model(model, revision=revision, cache_dir=cache_dir, token=token)
    if fmt == "json":
        print_machine(facts.to_dict(), fmt)
        return
    extractor = facts.feature_extractor
    rows = [
        ("model", facts.model),
        ("path", facts.path),
        ("architecture", f"{facts.architecture} (model_type {facts.model_type})"),
        ("layers", f"{facts.num_hidden_layers} x hidden {facts.hidden_size}, {facts.num_attention_heads} heads, "
                   f"ffn {facts.intermediate_size}; {facts.front_end}"),
        ("parameters", f"{facts.parameters:,} ({facts.size_fp32_bytes / 2**20:.1f} MiB in float32)"),
        ("sampling rate", f"{facts.sampling_rate} Hz"),
        ("labels", f"{facts.num_labels}: {', '.join(facts.labels)}"),
        ("feature extractor", ", ".join(f"{key}={extractor[key]}" for key in _FEATURE_EXTRACTOR_SHOWN
                                        if key in extractor)),
        ("weights", ", ".join(facts.weights_files) or "none in this directory"),
    ]
    if facts.revision is not None and facts.cache is not None:
        rows.append(("revision", facts.revision))
        rows.append(("cache", f"{len(facts.cache['revisions'])} revision(s), "
                              f"{facts.cache['size_on_disk'] / 2**20:.1f} MiB"))
    print_table([Column("", bold=True), Column("")], rows, show_header=False)

