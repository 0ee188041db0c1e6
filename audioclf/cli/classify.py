"""``audioclf classify``: a thin command-line layer over :mod:`audioclf.engine.classify`.

This module imports neither torch nor the engine at import time; the command imports them when it runs. Errors go
through the CLI's one error layer (:mod:`audioclf.cli._errors`): the library's argument errors are told with the
flags' names. SIGINT and SIGTERM stop a run cleanly (:class:`_StopSignals`).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer

from audioclf.cli._errors import EXIT_OK, EXIT_SOME_FAILED, flag_for, handles_errors, report
from audioclf.cli.output import FORMATS, atomic_output, open_writer, resolve_format
from audioclf.errors import AudioclfError, OptionError

ENGINES = ("local", "ray")


@handles_errors()
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
    output_format: Annotated[str, typer.Option("--format", "-f", help="auto | table | jsonl | json | csv | tsv "
                                               "(--engine ray: jsonl | parquet).")] = "auto",
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the records to this file (atomically) "
                                                  "instead of stdout; --engine ray: a directory (path or URI) for "
                                                  "record shards.", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Keep the records already in --output and skip their "
                                         "inputs (continue an interrupted run).")] = False,
    engine: Annotated[str, typer.Option(help="local | ray (decode in Ray Data tasks, the model in an actor pool).")] = "local",
    address: Annotated[Optional[str], typer.Option(help="--engine ray: cluster address (host:port, ray://host:port, "
                                                   "auto; default: RAY_ADDRESS, else a local Ray).",
                                                   show_default=False)] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | mps (auto: cuda when available).")] = "auto",
    dtype: Annotated[str, typer.Option(help="float32 | bfloat16 | float16.")] = "float32",
    quantize: Annotated[Optional[str], typer.Option(help="int8: int8 linear layers (CPU, opt-in; scores move "
                                                         "slightly): dynamic, or static with --calibrate.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads of the model (default: one per core).",
                                                   show_default=False)] = None,
    backend: Annotated[str, typer.Option(help="auto | onnx | torch. onnx: ONNX Runtime on a graph exported once per "
                                         "model and cached (CPU, float32 or int8; torch is not imported once the graph "
                                         "is cached); auto: onnx for float32 on the CPU, else torch.")] = "auto",
    calibrate: Annotated[Optional[list[Path]], typer.Option(help="With --quantize int8: static int8 calibrated on "
                                                            "this audio (file or directory; repeatable; onnx "
                                                            "backend).", show_default=False)] = None,
    workers: Annotated[Optional[int], typer.Option(help="Decoding threads (default: up to 4); --engine ray: model "
                                                   "replicas (actors).", show_default=False)] = None,
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

    --resume with --output keeps the records already there and classifies only the other inputs; with it an
    interrupted run (Ctrl-C or SIGTERM) still writes the records of the inputs it finished, so the next run goes on
    from there. Without --resume an interrupted run leaves --output as it was.

    --engine ray runs on a Ray cluster (--address; pip install 'audioclf[ray]'): inputs (paths, directories, globs,
    lists, or URIs such as file:// or s3://) are decoded in Ray Data tasks and classified by --workers model actors
    (--device cuda: one GPU each), --batch-size inputs per actor call. Records, the same as locally, go to shards
    part-*.jsonl (or --format parquet) in the --output directory; --resume skips inputs already in the shards.

    Exit status: 0 every input classified; 1 some input failed (its record says why); 2 usage error (bad option,
    unknown label, model that cannot be loaded); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
    """
    if engine not in ENGINES:
        raise AudioclfError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "local" and output_format not in FORMATS:
        raise AudioclfError(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")
    arguments = list(inputs or [])
    if not arguments and files_from is None:
        raise AudioclfError("no inputs: give files, directories, glob patterns, or - to read paths from stdin")
    if files_from is not None and str(files_from) != "-" and not files_from.is_file():
        raise AudioclfError(f"--files-from {files_from}: no such file")
    if resume and output is None:
        raise AudioclfError("--resume needs --output (the results to continue)")
    if address is not None and engine != "ray":
        raise AudioclfError("--address needs --engine ray")
    label_names = None if labels is None else [name.strip() for name in labels.split(",") if name.strip()]
    options = dict(batch_size=batch_size, max_batch_seconds=max_batch_seconds, chunk=chunk, window=window, hop=hop,
                   aggregate=aggregate, channels=channels, top_k=top_k, min_score=min_score, activation=activation,
                   labels=label_names, device=device, dtype=dtype, quantize=quantize, threads=threads, recursive=recursive,
                   revision=revision, backend=backend, calibrate=[str(path) for path in calibrate or []] or None)
    with _StopSignals() as stop:
        try:
            if engine == "ray":
                status = _classify_on_ray(arguments, files_from, null, model, options, output_format, output, resume,
                                          address, workers, quiet)
            else:
                status = _classify_locally(arguments, files_from, null, model, options, output_format, output, resume,
                                           workers, quiet, stop)
        except OptionError as error:
            raise _with_flags(error) from None
        except KeyboardInterrupt:
            stop.note(signal.SIGINT)
    if stop.received is not None:  # also when the run went on to the end after a signal
        report(KeyboardInterrupt())  # "interrupted", as every command says it
        raise typer.Exit(128 + stop.received)  # 130 for SIGINT, 143 for SIGTERM
    raise typer.Exit(status)


def _classify_locally(arguments: list[str], files_from: Optional[Path], null: bool, model: Optional[str],
                      options: dict[str, Any], output_format: str, output: Optional[str], resume: bool,
                      workers: Optional[int], quiet: bool, stop: "_StopSignals") -> int:
    """The local engine: records to stdout or to ``--output`` (atomically); returns the exit status. A signal
    raises KeyboardInterrupt (:class:`_StopSignals`); with ``--resume`` the finished inputs are saved first."""
    output_path = None if output is None else Path(output)
    if output_path is not None and not (output_path.parent if str(output_path.parent) else Path(".")).is_dir():
        raise AudioclfError(f"--output {output}: the directory {output_path.parent} does not exist")
    fmt = resolve_format(output_format, output_path, sys.stdout.isatty())
    from audioclf.engine.records import RESUMABLE_FORMATS, done_paths, read_record_file

    kept: list[dict[str, Any]] = []
    if resume:
        if fmt not in RESUMABLE_FORMATS:
            raise AudioclfError(f"--resume cannot read {fmt} output back; use --format {', '.join(RESUMABLE_FORMATS)}")
        if output_path is not None and output_path.exists():
            try:
                kept = read_record_file(output_path, fmt)
            except AudioclfError as error:
                raise AudioclfError(f"--resume: {error}") from None

    from audioclf.data.sources import STDIN, expand_inputs
    from audioclf.engine.classify import Classifier

    _return_large_buffers_to_os()

    classifier = Classifier(model, workers=workers, **options)
    items: Any = expand_inputs(arguments, recursive=bool(options["recursive"]), files_from=files_from,
                               null_separated=null)
    if kept:
        done = done_paths(kept)
        items = (item for item in items if item.path not in done)
    total = None
    if STDIN not in arguments and files_from is None:
        items = list(items)  # cheap, and gives the progress bar a total
        total = len(items)

    show_progress = not quiet and sys.stderr.isatty()
    started = time.monotonic()
    kept_failed = len(done_paths(record for record in kept if "error" in record))
    with _Progress(total, show_progress) as progress:
        if output_path is None:
            try:
                _write(classifier, items, open_writer(fmt, sys.stdout), progress, stop)
            except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return EXIT_SOME_FAILED
        else:
            with atomic_output(output_path) as stream:
                writer = open_writer(fmt, stream)
                for record in kept:
                    writer.write(record)
                try:
                    _write(classifier, items, writer, progress, stop)
                except KeyboardInterrupt:
                    if not resume:
                        raise  # the old output stays as it was
                    writer.close()  # keep the inputs whose records are written; the next --resume goes on from there
                    stop.note(signal.SIGINT)  # the command exits as interrupted whatever this returns
                    return EXIT_SOME_FAILED
    failed = progress.failed + kept_failed
    if not quiet and failed:
        done_count = progress.done + len(done_paths(kept))
        typer.echo(f"{failed} of {done_count} inputs failed ({time.monotonic() - started:.1f} s)", err=True)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _with_flags(error: OptionError) -> OptionError:
    """The error with the argument a dependency names told as a flag too (``hop needs window`` is shown as ``--hop
    needs --window``; the error layer turns the leading argument into its flag)."""
    if not error.detail.startswith("needs "):
        return error
    return OptionError(error.option, "needs " + flag_for(error.detail.removeprefix("needs ")))


def _classify_on_ray(arguments: list[str], files_from: Optional[Path], null: bool, model: Optional[str],
                     options: dict[str, Any], output_format: str, output: Optional[str], resume: bool,
                     address: Optional[str], workers: Optional[int], quiet: bool) -> int:
    """``--engine ray``: shards of records in the ``--output`` directory; returns the usual exit status."""
    from audioclf.data.sources import expand_uri_inputs
    from audioclf.engine import ray as engine

    fmt = "jsonl" if output_format == "auto" else output_format
    if fmt not in engine.FORMATS:
        raise AudioclfError(f"--engine ray writes --format {' or '.join(engine.FORMATS)}, not {fmt}")
    if output is None:
        raise AudioclfError("--engine ray needs --output DIR (a directory or URI for the record shards)")
    engine.import_ray()  # before anything slow: say at once when Ray is missing
    started = time.monotonic()
    items = list(expand_uri_inputs(arguments, recursive=bool(options.get("recursive")),
                                   files_from=None if files_from is None else str(files_from), null_separated=null))
    run = engine.classify_on_ray(items, output, model=model, options=options, fmt=fmt, address=address,
                                 workers=workers, resume=resume, quiet=quiet)
    if not quiet:
        skipped = f", {run.skipped} already done" if run.skipped else ""
        typer.echo(f"{run.classified} inputs classified{skipped}; {run.failed} failed; {run.shards} new shards in "
                   f"{output} ({time.monotonic() - started:.1f} s)", err=True)
    return EXIT_SOME_FAILED if run.failed else EXIT_OK


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


def _write(classifier: Any, items: Any, writer: Any, progress: "_Progress", stop: "_StopSignals") -> None:
    """Write the records of every input, one input at a time with signals held off, so that an interrupted run
    never leaves an input half written; then close the writer."""
    for records in classifier.classify_inputs(items, progress=progress.update):
        with stop.deferred():
            for record in records:
                writer.write(record)
    writer.close()


class _StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM during a run: the handler notes the signal and raises KeyboardInterrupt in the
    main thread, which stops the engine; the command then exits with 128 + the signal number (130, 143) after
    saying "interrupted". :meth:`deferred` holds the KeyboardInterrupt back while a block runs (it is raised at the
    end of the block). The signal is remembered even where the KeyboardInterrupt cannot surface (raised inside a
    finalizer), so the exit status never claims success. A signal the process inherited as ignored (a background
    job of a non-interactive shell ignores SIGINT) stays ignored, as Python itself leaves it."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._holding = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def note(self, signum: int) -> None:
        """Remember a stop by ``signum`` unless an earlier signal is remembered already."""
        if self.received is None:
            self.received = int(signum)

    def _handle(self, signum: int, frame: Any) -> None:
        self.note(signum)
        if not self._holding:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Run the block without interruption; a signal that arrived meanwhile raises KeyboardInterrupt after it."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self.received is not None:
            raise KeyboardInterrupt


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
        """Engine callback: one input (a :class:`audioclf.engine.classify.FileDone`) has finished."""
        self.done += 1
        self.failed += done.error is not None
        self.audio_seconds += done.duration
        if self._bar is not None:
            elapsed = max(time.monotonic() - self._started, 1e-9)
            self._bar.update(self._task, advance=1, speed=f"{self.audio_seconds / elapsed:.1f} audio-s/s")
