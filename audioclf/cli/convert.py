"""``audioclf convert SOURCE --output DIR``: TensorFlow checkpoints to safetensors, without TensorFlow.

``--from-tf`` is still accepted (hidden): TensorFlow is the only source format, so the flag says nothing more."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from audioclf.cli._errors import handles_errors
from audioclf.cli._options import examples


EXAMPLES = examples(
    ("audioclf convert ./tf_model.h5 -o ./converted", "a Keras h5 file"),
    ("audioclf convert ./tf_ckpt/model.ckpt.index -o ./converted --config config.json", "a TF tensor bundle"),
    ("audioclf classify -m ./converted a.wav", "then use it like any checkpoint"),
)


@handles_errors()
def convert(
    source: Annotated[Path, typer.Argument(help="tf_model.h5 (or its directory / shard index), a *.ckpt.index file, "
                                                "a checkpoint prefix, or a directory with a 'checkpoint' file.",
                                           metavar="SOURCE", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write model.safetensors and "
                                         "config.json to.", show_default=False)],
    from_tf: Annotated[bool, typer.Option("--from-tf", help="Accepted for compatibility: TensorFlow is the only "
                                          "source format.", hidden=True)] = False,
    config: Annotated[Optional[Path], typer.Option("--config", help="config.json to use instead of SOURCE's.",
                                                   show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output directory.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the output path.")] = False,
) -> None:
    """Convert a TensorFlow checkpoint (Keras h5 or tensor bundle) into a safetensors checkpoint directory.

    The summary (stderr) lists tensors converted, TF variables ignored (optimizer slots, step counters) and model
    parameters the checkpoint lacks. The output path is printed on stdout.
    """
    del from_tf  # TensorFlow is the only source format; the flag stays valid for existing scripts
    from audioclf.convert import convert_tf_checkpoint

    summary = convert_tf_checkpoint(source, output, config=config, force=force)
    if not quiet:
        err = lambda text: typer.echo(text, err=True)  # noqa: E731
        err(f"converted {summary.tensors} tensors ({summary.parameters:,} parameters) from {summary.source_format}")
        if summary.ignored:
            shown = ", ".join(summary.ignored[:6]) + (f" and {len(summary.ignored) - 6} more" if len(summary.ignored) > 6 else "")
            err(f"ignored {len(summary.ignored)} TF variable(s): {shown}")
        if summary.absent:
            err(f"absent from the checkpoint, initialised when loaded: {', '.join(summary.absent)}")
        for key, value in summary.config_overrides.items():
            err(f"config: set {key} = {value} (the TF model computes with this rule)")
    typer.echo(str(summary.output))
