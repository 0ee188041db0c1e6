"""``audioclf export --format onnx --output model.onnx [--model M]``: a model as a plain ONNX graph for other runtimes."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import typer

from audioclf.cli._errors import UsageError, handles_errors

FORMATS = ("onnx",)


@handles_errors()
def export(
    output: Path = typer.Option(..., "--output", "-o", help="The graph file to write (its weights go beside it, in "
                                                            "OUTPUT.data)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model directory, weights file or Hub id "
                                                                    "(default: the built-in model).",
                                        show_default=False),
    revision: Optional[str] = typer.Option(None, help="Hub revision of the model (branch, tag or commit).",
                                           show_default=False),
    output_format: str = typer.Option("onnx", "--format", "-f", help="onnx (the only format so far)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the output path."),
) -> None:
    """Export a model as an ONNX graph (opset 17) for ONNX Runtime, OpenVINO or any other ONNX runtime.

    Inputs: input_values, float32 (batch, samples), the feature extractor's normalised audio, and for models whose
    preprocessor returns one, attention_mask, int32 (batch, samples); both axes are dynamic. Output: logits, float32
    (batch, num_labels). The graph is our own model's readable forward with weight norm folded, no runtime-specific
    fusions; the test suite checks it against transformers with onnxruntime. Both files are written atomically; the
    output path is printed on stdout.
    """
    if output_format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")
    from audioclf.export.artifacts import export_model

    written = export_model(model, output, revision=revision)
    if not quiet:
        typer.echo(f"wrote {written} and {written.name}.data", err=True)
    typer.echo(str(written))


# Typer keeps single line breaks of the help text; the docstring's paragraphs are written as wrapped source lines.
export.__doc__ = "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(export.__doc__ or "").split("\n\n"))
