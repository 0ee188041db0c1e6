"""``audioclf classify``: a thin command-line layer over :mod:`audioclf.pipeline`.

This module imports neither torch nor the pipeline at import time; the command imports them when it runs.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from audioclf.cli.output import FORMATS, atomic_output, open_writer, resolve_format
from audioclf.errors import AudioclfError

EXIT_OK = 0
EXIT_SOME_FAILED = 1


def classify(
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Files, directories, glob patterns, or - (paths on stdin).",
                                                         show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model directory, weights file or Hub id "
                                                 "(default: the built-in model).", show_default=False)] = None,
    revision: Annotated[Optional[str], typer.Option(help="Hub revision of the model (branch, tag or commit).",
                                                    show_default=False)] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into subdirectories.")] = False,
    files_from: Annotated[Optional[Path], typer.Option("--files-from", help="Read input paths from this file "
                                                       "(one per line; - for stdin).", show_default=False)] = None,
    null: Annotated[bool, typer.Option("-0", "--null", help="Path lists (stdin, --files-from) are NUL-separated.")] = False,
    channels: Annotated[str, typer.Option(help="mix | first | N (0-based) | each (one record per channel).")] = "mix",
    batch_size: Annotated[int, typer.Option(help="Most segments per model call.")] = 8,
    max_batch_seconds: Annotated[Optional[float], typer.Option(help="Most padded audio per model call, in seconds "
                                                               "(default: 32 on CPU, 320 on GPU).",
                                                               show_default=False)] = None,
    chunk: Annotated[float, typer.Option(help="Classify longer files in chunks of this many seconds.")] = 30.0,
    window: Annotated[Optional[float], typer.Option(help="One record per window of this many seconds.",
                                                    show_default=False)] = None,
    hop: Annotated[Optional[float], typer.Option(help="Seconds between window starts (default: --window).",
                                                 show_default=False)] = None,
    aggregate: Annotated[Optional[str], typer.Option(help="With --window, also a file record: mean | max.",
                                                     show_default=False)] = None,
    top_k: Annotated[int, typer.Option(help="Labels per record (0 = all).")] = 5,
    min_score: Annotated[Optional[float], typer.Option(help="Leave out labels scoring below this.",
                                                       show_default=False)] = None,
    activation: Annotated[str, typer.Option(help="auto | softmax | sigmoid | none (auto follows the model's "
                                            "problem_type).")] = "auto",
    labels: Annotated[Optional[str], typer.Option(help="Only report these labels (comma-separated).",
                                                  show_default=False)] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="auto | table | jsonl | json | csv | tsv.")] = "auto",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the records to this file (atomically) "
                                                   "instead of stdout.", show_default=False)] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | mps (auto: cuda when available).")] = "auto",
    dtype: Annotated[str, typer.Option(help="float32 | bfloat16 | float16.")] = "float32",
    threads: Annotated[Optional[int], typer.Option(help="Torch CPU threads (default: torch's choice).",
                                                   show_default=False)] = None,
    workers: Annotated[Optional[int], typer.Option(help="Decoding threads (default: up to 4).",
                                                   show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary on stderr.")] = False,
) -> None:
    """Classify audio files and print one record per file (or per window / channel).

    INPUTS are files, directories, glob patterns (quoted patterns are expanded too) or - for a list of paths on
    stdin, one per line (-0: NUL-separated). A directory gives the audio files directly inside it, or the whole
    tree with --recursive (extensions compared case-insensitively, hidden entries skipped). Paths read from stdin
    or --files-from are used literally.

    Files up to --chunk seconds are classified whole; longer files are cut into chunks whose scores are averaged,
    weighted by chunk length. A last chunk too short for one model frame (25 ms for most models) is added to the
    previous one. --window/--hop give one record per window instead (a last window that short is dropped); with
    --aggregate also a file record (mean: length-weighted mean of the window scores, max: per-label maximum).
    --channels each gives one record per channel ("channel": N).

    Output (stdout; progress and messages go to stderr): records in input order. JSON Lines record:
    {"path", "channel"?, "start"?, "end"?, "labels": [{"label", "score"}, ...], "model", "revision"?}, labels
    sorted by score; a failed input gives {"path", "error"}. csv/tsv: one row per (record, label) with columns
    path,channel,start,end,rank,label,score,error. --format auto: a table on a terminal, JSON Lines otherwise
    (with --output: by file extension .json/.csv/.tsv/.txt, else JSON Lines).

    Exit status: 0 every input classified; 1 some input failed (its record says why); 2 usage error (bad option,
    unknown label, model that cannot be loaded).
    """
    if output_format not in FORMATS:
        raise AudioclfError(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")
    arguments = list(inputs or [])
    if not arguments and files_from is None:
        raise AudioclfError("no inputs: give files, directories, glob patterns, or - to read paths from stdin")
    if files_from is not None and str(files_from) != "-" and not files_from.is_file():
        raise AudioclfError(f"--files-from {files_from}: no such file")
    if output is not None and not (output.parent if str(output.parent) else Path(".")).is_dir():
        raise AudioclfError(f"--output {output}: the directory {output.parent} does not exist")
    label_names = None if labels is None else [name.strip() for name in labels.split(",") if name.strip()]

    from audioclf.inputs import STDIN, expand_inputs
    from audioclf.pipeline import Classifier

    _return_large_buffers_to_os()

    classifier = Classifier(
        model, batch_size=batch_size, max_batch_seconds=max_batch_seconds, chunk=chunk, window=window, hop=hop,
        aggregate=aggregate, channels=channels, top_k=top_k, min_score=min_score, activation=activation,
        labels=label_names, device=device, dtype=dtype, threads=threads, workers=workers, recursive=recursive,
        revision=revision,
    )
    items: Any = expand_inputs(arguments, recursive=recursive, files_from=files_from, null_separated=null)
    total = None
    if STDIN not in arguments and files_from is None:
        items = list(items)  # cheap, and gives the progress bar a total
        total = len(items)

    fmt = resolve_format(output_format, output, sys.stdout.isatty())
    show_progress = not quiet and sys.stderr.isatty()
    started = time.monotonic()
    with _Progress(total, show_progress) as progress:
        if output is None:
            try:
                _write(classifier, items, open_writer(fmt, sys.stdout), progress)
            except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise typer.Exit(EXIT_SOME_FAILED) from None
        else:
            with atomic_output(output) as stream:
                _write(classifier, items, open_writer(fmt, stream), progress)
    if not quiet and progress.failed:
        typer.echo(f"{progress.failed} of {progress.done} inputs failed ({time.monotonic() - started:.1f} s)", err=True)
    raise typer.Exit(EXIT_SOME_FAILED if progress.failed else EXIT_OK)


# Typer keeps single line breaks of the help text; the docstring's paragraphs are written as wrapped source lines.
classify.__doc__ = "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(classify.__doc__ or "").split("\n\n"))



def _return_large_buffers_to_os() -> None:
    """Pin glibc's mmap threshold at 4 MiB (no-op elsewhere).

    glibc raises the threshold each time a large mmapped block is freed, after which blocks of up to 32 MiB (activations
    of one chunk, decoded audio blocks) come from the heap and stay in the process after use; over a long run that adds
    about 150 MB to the resident size of a base-sized model. A fixed threshold hands them back to the OS when freed.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 4 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _write(classifier: Any, items: Any, writer: Any, progress: "_Progress") -> None:
    for record in classifier.classify(items, progress=progress.update):
        writer.write(record)
    writer.close()


class _Progress:
    """Counts finished inputs and, on a terminal, shows a rich progress bar on stderr (files, audio-s/s, ETA)."""

    def __init__(self, total: int | None, visible: bool) -> None:
        self.total = total
        self.visible = visible
        self.done = 0
        self.failed = 0
        self.audio_seconds = 0.0
        self._bar: Any = None
        self._task: Any = None
        self._started = time.monotonic()

    def __enter__(self) -> "_Progress":
        if self.visible:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                TextColumn("{task.fields[speed]}"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("classify", total=self.total, speed="")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc_info)

    def update(self, done: Any) -> None:
        """Pipeline callback: one input (a :class:`audioclf.pipeline.FileDone`) has finished."""
        self.done += 1
        self.failed += done.error is not None
        self.audio_seconds += done.duration
        if self._bar is not None:
            elapsed = max(time.monotonic() - self._started, 1e-9)
            self._bar.update(self._task, advance=1, speed=f"{self.audio_seconds / elapsed:.1f} audio-s/s")
