"""``audioclf convert --from-tf SOURCE --output DIR``: TensorFlow checkpoints to safetensors, without TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from audioclf.cli._errors import UsageError, handles_errors
from audioclf.text import printable


@handles_errors()
def convert(
    source: Path = typer.Argument(..., help="tf_model.h5 (or its directory / shard index), a *.ckpt.index file, "
                                            "a checkpoint prefix, or a directory with a 'checkpoint' file."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory to write model.safetensors and config.json to."),
    from_tf: bool = typer.Option(False, "--from-tf", help="Read a TensorFlow checkpoint (required)."),
    config: Optional[Path] = typer.Option(None, "--config", help="config.json to use instead of SOURCE's."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the output path."),
) -> None:
    """Convert a TensorFlow checkpoint into a safetensors checkpoint directory.

    The summary (stderr) lists tensors converted, TF variables ignored (optimizer slots, step counters) and model
    parameters the checkpoint lacks. The output path is printed on stdout.
    """
    if not from_tf:
        raise UsageError("only TensorFlow checkpoints can be converted: pass --from-tf")
    from audioclf.convert import convert_tf_checkpoint

    summary = convert_tf_checkpoint(source, output, config=config, force=force)
    if not quiet:
        err = lambda text: typer.echo(printable(text), err=True)  # noqa: E731 (names from the checkpoint)
        err(f"converted {summary.tensors} tensors ({summary.parameters:,} parameters) from {summary.source_format}")
        if summary.ignored:
            shown = ", ".join(summary.ignored[:6]) + (f" and {len(summary.ignored) - 6} more" if len(summary.ignored) > 6 else "")
            err(f"ignored {len(summary.ignored)} TF variable(s): {shown}")
        if summary.absent:
            err(f"absent from the checkpoint, initialised when loaded: {', '.join(summary.absent)}")
        for key, value in summary.config_overrides.items():
            err(f"config: set {key} = {value} (the TF model computes with this rule)")
    typer.echo(str(summary.output))
