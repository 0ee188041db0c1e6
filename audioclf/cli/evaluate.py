"""``audioclf evaluate``: a thin command-line layer over :mod:`audioclf.train.evaluation` (the classify engine plus
:mod:`audioclf.metrics`).

Imports neither torch nor the engine until the command runs.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from audioclf.cli._errors import EXIT_OK, EXIT_SOME_FAILED, handles_errors
from audioclf.cli._options import CacheDir, Device, Format, Quiet, Revision, Threads, Token, examples
from audioclf.cli._output import Column, choose_format, print_machine, print_table
from audioclf.errors import AudioclfError, OptionError

FORMATS = ("table", "json")
EvaluateFormat = Literal["auto", "table", "json"]

EXAMPLES = examples(
    ("audioclf evaluate held-out/ -m my-model", "accuracy, per-label scores and the confusion matrix"),
    ("audioclf evaluate held-out/ -m my-model --plot confusion.png", "the confusion matrix as a picture"),
    ("audioclf evaluate clips.csv -m my-model --label-map noise=_unknown_", "data labels named differently"),
)


@handles_errors()
def evaluate(
    data: Annotated[Path, typer.Argument(help="A directory with one folder per label, or a .csv/.tsv/.jsonl "
                                              "manifest with path,label.", show_default=False)],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model directory or Hub id (default: the "
                                                 "built-in model).", show_default=False)] = None,
    label_map: Annotated[Optional[list[str]], typer.Option("--label-map", help="DATA_LABEL=MODEL_LABEL (repeat, "
                                                           "or comma-separate).", show_default=False)] = None,
    output_format: Format[EvaluateFormat] = "auto",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write the JSON report to this "
                                                   "file.", show_default=False)] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write the confusion matrix as PNG (needs audioclf[plot]).",
                                                 show_default=False)] = None,
    errors: Annotated[Optional[Path], typer.Option("--errors", help="Write the misclassified clips as JSON Lines.",
                                                   show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(help="Most segments per model call.")] = 8,
    chunk: Annotated[float, typer.Option(help="Classify longer clips in chunks of this many seconds.")] = 30.0,
    channels: Annotated[str, typer.Option(help="mix | first | N (0-based).")] = "mix",
    device: Device = "auto",
    threads: Threads = None,
    workers: Annotated[Optional[int], typer.Option(help="Decoding threads (default: up to 4).",
                                                   show_default=False)] = None,
    revision: Revision = None,
    token: Token = None,
    cache_dir: CacheDir = None,
    quiet: Quiet = False,
) -> None:
    """Measure a model on labelled clips: accuracy, balanced accuracy, macro-F1, per-label precision / recall / F1
    / support and the confusion matrix.

    DATA has the layouts of audioclf train (label folders or a manifest). Each clip is classified whole exactly as
    audioclf classify does it; its prediction is the best-scoring label. Data labels the model does not know are an
    error unless --label-map maps them (--label-map dog=canine). Clips that cannot be decoded are named on stderr
    and left out of the metrics.

    --format json prints one JSON object: accuracy, balanced_accuracy, macro_f1, count, per_label ({label:
    {precision, recall, f1, support}}), confusion ({labels, matrix}: rows true labels, columns predicted), loss
    (mean cross entropy of the true labels' scores), failed, model, data. --output writes that object to a file, --plot the confusion matrix as PNG, --errors one JSON line
    per misclassified clip ({"path", "label", "predicted", "score"}).

    Exit status: 0 every clip classified; 1 some clips failed to decode; 2 usage error (unknown labels, a model
    that cannot be loaded, --plot without matplotlib); 130 interrupted.
    """
    fmt = choose_format(output_format, False, machine="json", allowed=FORMATS)
    mapping_arguments = _label_map(label_map or [])
    if plot is not None:
        from audioclf.plots import require_matplotlib

        require_matplotlib()  # before any work: say at once what to install
    for path, flag in ((output, "--output"), (plot, "--plot"), (errors, "--errors")):
        if path is not None and not (path.parent if str(path.parent) else Path(".")).is_dir():
            raise AudioclfError(f"{flag} {path}: the directory {path.parent} does not exist")

    from audioclf.auto import DEFAULT_MODEL_NAME
    from audioclf.engine.classify import Classifier
    from audioclf.train.dataset import read_labelled
    from audioclf.train.evaluation import check_labels, evaluate as run_evaluation

    labelled = read_labelled(data)
    if not labelled.clips:
        raise AudioclfError(f"{data} holds no audio clips")
    classifier = Classifier(model, top_k=0, batch_size=batch_size, chunk=chunk, channels=channels, device=device,
                            threads=threads, workers=workers, revision=revision, token=token,
                            cache_dir=None if cache_dir is None else str(cache_dir))
    model_labels = [classifier.runner.config.id2label[k] for k in sorted(classifier.runner.config.id2label)]
    mapping = check_labels(labelled.labels, model_labels, mapping_arguments)
    result = run_evaluation(classifier, labelled.clips, mapping)
    for failed in result.failed:
        if not quiet:
            typer.echo(f"failed {failed.clip.path}: {failed.error}", err=True)
    report = {**result.report(), "model": model or DEFAULT_MODEL_NAME, "data": str(data)}
    if output is not None:
        from audioclf.fileio import write_text_atomic

        write_text_atomic(output, json.dumps(report, indent=1) + "\n")
    if plot is not None:
        from audioclf.plots import confusion_matrix_plot

        confusion_matrix_plot(report["confusion"]["labels"], report["confusion"]["matrix"], plot,
                              title=f"{report['model']} on {data.name}")
    if errors is not None:
        from audioclf.fileio import atomic_open

        with atomic_open(errors) as stream:
            for wrong in result.misclassified:
                stream.write(json.dumps({"path": wrong.clip.path, "label": wrong.label, "predicted": wrong.predicted,
                                         "score": wrong.score}, ensure_ascii=False) + "\n")
    if fmt == "json":
        print_machine(report, "json")
    else:
        _print_tables(report)
    raise typer.Exit(EXIT_SOME_FAILED if result.failed else EXIT_OK)


def _label_map(arguments: list[str]) -> dict[str, str]:
    mapping = {}
    for argument in arguments:
        for pair in argument.split(","):
            if not pair.strip():
                continue
            source, separator, target = pair.partition("=")
            if not separator or not source.strip() or not target.strip():
                raise OptionError("label_map", f"must be DATA_LABEL=MODEL_LABEL, got {pair!r}")
            mapping[source.strip()] = target.strip()
    return mapping


def _print_tables(report: dict[str, Any]) -> None:
    summary = (f"{report['count']} clips: accuracy {report['accuracy']:.4f}, balanced accuracy "
               f"{report['balanced_accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}")
    print_table([Column("label", bold=True), Column("precision", "right"), Column("recall", "right"),
                 Column("f1", "right"), Column("support", "right")],
                [[label, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", m["support"]]
                 for label, m in report["per_label"].items()], title=summary)
    labels = report["confusion"]["labels"]
    print_table([Column("true \\ predicted", bold=True)] + [Column(label, "right") for label in labels],
                [[label, *row] for label, row in zip(labels, report["confusion"]["matrix"])],
                title="Confusion matrix (rows: true label)")
    sys.stdout.flush()


# Typer keeps single line breaks of the help text; the docstring's paragraphs are written as wrapped source lines.
evaluate.__doc__ = "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(evaluate.__doc__ or "").split("\n\n"))
