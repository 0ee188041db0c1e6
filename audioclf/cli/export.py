"""``audioclf export -o model.onnx [--model M]``: a model as a plain ONNX graph for other runtimes."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Literal

import typer

from audioclf.cli._errors import handles_errors
from audioclf.cli._options import CacheDir, Model, Quiet, Revision, Token, examples

#: what ``--graph-format`` accepts (``--format`` is the records format of every other command)
GraphFormat = Literal["onnx"]

EXAMPLES = examples(
    ("audioclf export -o kws.onnx", "the built-in model; weights in kws.onnx.data"),
    ("audioclf export -m superb/wav2vec2-base-superb-ks --revision main -o ks/model.onnx", "a Hub model"),
    ("audioclf export -m ./my-model --graph-format onnx -q -o my-model.onnx", "print only the path"),
)


@handles_errors()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="The graph file to write (its weights go beside it, "
                                                                "in OUTPUT.data).", show_default=False)],
    model: Model = None,
    revision: Revision = None,
    token: Token = None,
    cache_dir: CacheDir = None,
    graph_format: Annotated[GraphFormat, typer.Option("--graph-format", help="Format of the graph written.")] = "onnx",
    quiet: Quiet = False,
) -> None:
    """Export a model as an ONNX graph (opset 17) for ONNX Runtime, OpenVINO or any other ONNX runtime.

    Inputs: the arrays the model's feature extractor returns, float32 (input_values (batch, samples) for waveform
    models, input_features for spectrogram models) and, for models whose preprocessor returns one, attention_mask,
    int32; the batch and time axes are dynamic. Output: logits, float32 (batch, num_labels). The graph is our own
    model's readable forward with weight norm folded, no runtime-specific fusions; the test suite checks it against
    transformers with onnxruntime. Both files are written atomically; the output path is printed on stdout.
    """
    from audioclf.export.artifacts import export_model

    written = export_model(model, output, revision=revision, token=token,
                           cache_dir=None if cache_dir is None else str(cache_dir))
    if not quiet:
        typer.echo(f"wrote {written} and {written.name}.data ({graph_format})", err=True)
    typer.echo(str(written))


# Typer keeps single line breaks of the help text; the docstring's paragraphs are written as wrapped source lines.
export.__doc__ = "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(export.__doc__ or "").split("\n\n"))
