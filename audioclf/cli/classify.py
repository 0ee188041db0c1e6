"""``audioclf classify``: a thin command-line layer over :mod:`audioclf.engine.classify`.

This module imports neither torch nor the engine at import time; the command imports them when it runs. Errors go
through the CLI's one error layer (:mod:`audioclf.cli._errors`): the library's argument errors are told with the
flags' names. SIGINT and SIGTERM stop a run cleanly (:class:`_StopSignals`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from audioclf.cli._errors import EXIT_OK, EXIT_SOME_FAILED, handles_errors, report
from audioclf.cli._options import (
    BatchSize, CacheDir, Channels, Device, Dtype, FilesFrom, Format, Hop, Inputs, MaxBatchSeconds, Model, Null, Quiet,
    Recursive, Revision, Threads, Token, Window, examples,
)
from audioclf.cli._run import Progress as _Progress
from audioclf.cli._run import StopSignals as _StopSignals
from audioclf.cli._run import return_large_buffers_to_os as _return_large_buffers_to_os
from audioclf.cli._run import with_flags as _with_flags
from audioclf.cli.output import (
    EVENT_FORMATS, FORMATS, PER_INPUT_FORMATS, EventFilesWriter, RecordFile, RecordFormat, open_writer,
    resolve_format,
)
from audioclf.errors import AudioclfError, OptionError

ENGINES = ("local", "ray")
Engine = Literal["local", "ray"]
Activation = Literal["auto", "softmax", "sigmoid", "none"]
Aggregate = Literal["mean", "max"]
Quantization = Literal["int8"]
Backend = Literal["auto", "torch", "onnx"]
#: what ``--format`` takes: the record formats, the event tables of ``--events``, and parquet for ``--engine ray``
ClassifyFormat = Literal[RecordFormat, "audacity", "raven", "parquet"]

EXAMPLES = examples(
    ("audioclf classify recording.wav", "the bundled keyword model, a table on a terminal"),
    ("audioclf classify -m superb/hubert-large-superb-er clips/*.flac", "a model from the Hub"),
    ("audioclf classify -m ./ckpt -r data/ -f csv -o results.csv", "a whole tree to a CSV file"),
    ("find data -name '*.wav' | audioclf classify -m ./ckpt - | jq -c .labels[0]", "paths on stdin, JSON Lines out"),
    ("audioclf classify -m ./ckpt --window 2 --hop 1 --aggregate mean long.ogg", "a timeline plus a file record"),
    ("audioclf classify --window 1 --hop 0.25 --events -f raven -o tables/ --plot pics/ *.wav",
     "detection events as Raven tables, and timeline pictures"),
)


@handles_errors()
def classify(
    inputs: Inputs = None,
    model: Model = None,
    revision: Revision = None,
    token: Token = None,
    cache_dir: CacheDir = None,
    recursive: Recursive = False,
    files_from: FilesFrom = None,
    null: Null = False,
    channels: Channels = "mix",
    batch_size: BatchSize = 8,
    max_batch_seconds: MaxBatchSeconds = None,
    chunk: Annotated[float, typer.Option(help="Classify longer files in chunks of this many seconds.")] = 30.0,
    window: Window = None,
    hop: Hop = None,
    aggregate: Annotated[Optional[Aggregate], typer.Option(help="With --window, also a file record: the mean or "
                                                           "max of the window scores.", show_default=False)] = None,
    top_k: Annotated[int, typer.Option(help="Labels per record (0 = all).")] = 5,
    min_score: Annotated[Optional[float], typer.Option(help="Leave out labels scoring below this.",
                                                       show_default=False)] = None,
    activation: Annotated[Activation, typer.Option(help="auto follows the model's problem_type.")] = "auto",
    labels: Annotated[Optional[str], typer.Option(help="Only report these labels (comma-separated).",
                                                  show_default=False)] = None,
    output_format: Format[ClassifyFormat] = "auto",
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the records to this file (atomically) "
                                                  "instead of stdout; --engine ray: a directory (path or URI) for "
                                                  "record shards.", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Keep the records already in --output and skip their "
                                         "inputs (continue an interrupted run).")] = False,
    engine: Annotated[Engine, typer.Option(help="ray: decode in Ray Data tasks, the model in an actor pool.")] = "local",
    address: Annotated[Optional[str], typer.Option(help="--engine ray: cluster address (host:port, ray://host:port, "
                                                   "auto; default: RAY_ADDRESS, else a local Ray).",
                                                   show_default=False)] = None,
    device: Device = "auto",
    dtype: Dtype = "float32",
    quantize: Annotated[Optional[Quantization], typer.Option(help="int8: int8 linear layers (CPU, opt-in; scores "
                                                             "move slightly): dynamic, or static with --calibrate.",
                                                             show_default=False)] = None,
    threads: Threads = None,
    backend: Annotated[Backend, typer.Option(help="onnx: ONNX Runtime on a graph exported once per model and cached "
                                             "(CPU, float32 or int8; torch is not imported once the graph is "
                                             "cached); auto: onnx for a float32 model on the CPU, else torch.")] = "auto",
    calibrate: Annotated[Optional[list[Path]], typer.Option(help="With --quantize int8: static int8 calibrated on "
                                                            "this audio (file or directory; repeatable; onnx "
                                                            "backend).", show_default=False)] = None,
    workers: Annotated[Optional[int], typer.Option(help="Decoding threads (default: up to 4); --engine ray: model "
                                                   "replicas (actors).", show_default=False)] = None,
    quiet: Quiet = False,
    events: Annotated[bool, typer.Option("--events", help="With --window: write detection events (consecutive "
                                         "windows scoring at least --threshold, merged) instead of window records.")] = False,
    threshold: Annotated[Optional[float], typer.Option(help="--events: the score a window needs (default 0.5).",
                                                       show_default=False)] = None,
    min_gap: Annotated[float, typer.Option(help="--events: join events of a label separated by less than this many "
                                           "seconds.")] = 0.0,
    min_duration: Annotated[float, typer.Option(help="--events: drop events shorter than this many seconds.")] = 0.0,
    plot: Annotated[Optional[Path], typer.Option(help="With --window: draw a timeline picture (spectrogram, one score "
                                                 "lane per label, events shaded) to this PNG, or one per input into "
                                                 "this existing directory. Needs matplotlib.", show_default=False)] = None,
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

    --events (with --window/--hop) writes detection events instead of window records: per input, channel and label,
    consecutive windows whose score is at least --threshold (default 0.5) merge into one event {"path",
    "channel"?, "label", "start", "end", "score", "model"} (score: the highest window score); events of a label that
    overlap, touch or lie less than --min-gap seconds apart are joined, events shorter than --min-duration dropped,
    --labels keeps only those labels. Formats: jsonl, json, csv/tsv (path,channel,label,start,end,score,error), table,
    audacity (a label track: start<TAB>end<TAB>label) and raven (a Raven Pro selection table with Label and Score
    columns); with --output DIR (an existing directory) audacity and raven write one file per input,
    NAME.labels.txt or NAME.selections.txt. Those two formats cannot hold errors: failed inputs are told on stderr.

    --plot FILE.png (one input) or --plot DIR (one NAME.png per input) draws each input's timeline: its spectrogram
    on top and one lane per label with the label's score over time, the threshold and the events shaded. Lanes:
    --labels, else the labels with events, else the --top-k best. Needs matplotlib: pip install 'audioclf[plot]'.

    --resume with --output keeps the records already there and classifies only the other inputs; with it an
    interrupted run (Ctrl-C or SIGTERM) still writes the records of the inputs it finished, so the next run goes on
    from there. Without --resume an interrupted run leaves --output as it was.

    --engine ray runs on a Ray cluster (--address; pip install 'audioclf[ray]'): inputs (paths, directories, globs,
    lists, or URIs such as file:// or s3://) are decoded in Ray Data tasks and classified by --workers model actors
    (--device cuda: one GPU each), --batch-size inputs per actor call. Records, the same as locally, go to shards
    part-*.jsonl (or --format parquet) in the --output directory; --resume skips inputs already in the shards.

    On a terminal, records are shown as rows of a table as they are ready, below a progress bar on stderr that
    is cleared when the run ends (--quiet: no bar, no summary).

    Exit status: 0 every input classified; 1 some input failed (its record says why); 2 usage error (bad option,
    unknown label, model that cannot be loaded); 130 interrupted (Ctrl-C); 141 the reader of the output went away
    (| head -1); 143 terminated (SIGTERM).
    """
    if engine not in ENGINES:
        raise AudioclfError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    formats = EVENT_FORMATS if events else FORMATS
    if engine == "local" and output_format not in formats:
        if output_format in PER_INPUT_FORMATS:
            raise AudioclfError(f"--format {output_format} needs --events")
        raise AudioclfError(f"--format {output_format} needs --engine ray; --engine local writes "
                            f"{', '.join(formats)}")
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
    from audioclf.cli._events import WindowReport

    window_report = WindowReport.from_options(
        events=events, threshold=threshold, min_gap=min_gap, min_duration=min_duration, plot=plot, window=window,
        aggregate=aggregate, resume=resume, engine=engine, labels=label_names, top_k=top_k, min_score=min_score,
        title=f"model {model or 'audioclf/default'} · window {window} s · hop {hop or window} s")
    options = dict(batch_size=batch_size, max_batch_seconds=max_batch_seconds, chunk=chunk, window=window, hop=hop,
                   aggregate=aggregate, channels=channels, top_k=top_k, min_score=min_score, activation=activation,
                   labels=label_names, device=device, dtype=dtype, quantize=quantize, threads=threads, recursive=recursive,
                   revision=revision, token=token, cache_dir=None if cache_dir is None else str(cache_dir),
                   backend=backend, calibrate=[str(path) for path in calibrate or []] or None)
    with _StopSignals() as stop:
        try:
            if engine == "ray":
                status = _classify_on_ray(arguments, files_from, null, model, options, output_format, output, resume,
                                          address, workers, quiet)
            else:
                status = _classify_locally(arguments, files_from, null, model, options, output_format, output, resume,
                                           workers, quiet, stop, window_report)
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
                      workers: Optional[int], quiet: bool, stop: "_StopSignals", report: Any = None) -> int:
    """The local engine: records to stdout or to ``--output`` (atomically); returns the exit status. A signal
    raises KeyboardInterrupt (:class:`_StopSignals`); with ``--resume`` the finished inputs are saved first.
    ``report``: a :class:`~audioclf.cli._events.WindowReport` (events, pictures) or ``None``."""
    output_path = None if output is None else Path(output)
    fmt = resolve_format(output_format, output_path, sys.stdout.isatty())
    per_input = output_path is not None and output_path.is_dir()
    if per_input and fmt not in PER_INPUT_FORMATS:
        raise AudioclfError(f"--output {output} is a directory; only --events --format audacity or raven write one "
                            "file per input")
    if report is not None:
        options = report.engine_options(options)
    from audioclf.engine.records import RESUMABLE_FORMATS, done_paths

    if resume and fmt not in RESUMABLE_FORMATS:
        raise AudioclfError(f"--resume cannot read {fmt} output back; use --format {', '.join(RESUMABLE_FORMATS)}")
    # --output: locked for the whole run, records journaled per input, written when the run ends (RecordFile)
    record_output = output_path if output_path is not None and not per_input else None
    with RecordFile(record_output, fmt, resume) if record_output is not None else contextlib.nullcontext() as record_file:
        kept: list[dict[str, Any]] = record_file.kept if record_file is not None else []

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
        if report is not None:
            report.check_inputs(total)
        finish = report.finish if report is not None and report.active else None
        writer_options = dict(events=report is not None and report.events,
                              sampling_rate=classifier.featurizer.sampling_rate)

        show_progress = not quiet and sys.stderr.isatty()
        started = time.monotonic()
        kept_failed = len(done_paths(record for record in kept if "error" in record))
        with _Progress(total, show_progress, output_on_screen=output_path is None and sys.stdout.isatty()) as progress:
            if per_input:
                assert output_path is not None
                _write(classifier, items, EventFilesWriter(output_path, fmt, classifier.featurizer.sampling_rate),
                       progress, stop, finish)
            elif record_file is None:  # a closed pipe (`| head -1`) ends the command with 141 (handles_errors)
                _write(classifier, items, open_writer(fmt, sys.stdout, **writer_options), progress, stop, finish)
            else:
                record_file.writer_options.update(writer_options)
                try:
                    _write(classifier, items, record_file, progress, stop, finish)
                except KeyboardInterrupt:
                    if not resume:
                        record_file.discard()
                        raise  # the old output stays as it was
                    record_file.close()  # keep the inputs finished; the next --resume goes on from there
                    stop.note(signal.SIGINT)  # the command exits as interrupted whatever this returns
                    return EXIT_SOME_FAILED
    failed = progress.failed + kept_failed
    if not quiet and failed:
        done_count = progress.done + len(done_paths(kept))
        typer.echo(f"{failed} of {done_count} inputs failed ({time.monotonic() - started:.1f} s)", err=True)
    return EXIT_SOME_FAILED if failed else EXIT_OK


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



def _write(classifier: Any, items: Any, writer: Any, progress: "_Progress", stop: "_StopSignals",
           finish: Any = None) -> None:
    """Write the records of every input, one input at a time with signals held off, so that an interrupted run
    never leaves an input half written; then close the writer. ``finish``: what becomes of an input's records
    before they are written (events, pictures); an :class:`EventFilesWriter` gets each input's records at once."""
    for records in classifier.classify_inputs(items, progress=progress.update):
        identity = {key: records[0][key] for key in ("path", "index") if key in records[0]} if records else {}
        if finish is not None:
            records = finish(records)
        with stop.deferred(), progress.making_room():
            if isinstance(writer, EventFilesWriter):
                writer.write_input(identity, records)
            else:
                writer.write_input(records)
    with progress.making_room():
        writer.close()
