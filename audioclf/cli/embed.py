"""``audioclf embed``: a thin command-line layer over :mod:`audioclf.engine.embed`.

Imports neither torch nor the engine at import time. Errors go through the CLI's error layer; SIGINT and SIGTERM
stop a run as they stop ``classify`` (:class:`~audioclf.cli._run.StopSignals`).
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from audioclf.cli._errors import EXIT_OK, EXIT_SOME_FAILED, handles_errors, report
from audioclf.cli._options import (
    BatchSize, CacheDir, Channels, Device, Dtype, FilesFrom, Format, Hop, Inputs, MaxBatchSeconds, Model, Null, Quiet, Recursive, Revision,
    Threads, Token, Window, examples,
)
from audioclf.cli._run import Progress, StopSignals, return_large_buffers_to_os, with_flags
from audioclf.cli.output import EMBEDDING_FORMATS, JsonLinesWriter, atomic_output, import_pyarrow, write_embedding_arrays
from audioclf.errors import AudioclfError, OptionError

#: ``--format``: auto is jsonl, or what the --output extension says
EmbedFormat = Literal["auto", "jsonl", "npy", "npz", "parquet"]

EXAMPLES = examples(
    ("audioclf embed clips/*.wav -m superb/wav2vec2-base-superb-ks > vectors.jsonl", "one mean vector per file"),
    ("audioclf embed long.wav --window 2 --hop 1 -f npz -o long.npz", "one vector per window, as numpy arrays"),
    ("audioclf embed a.wav --layer all -f npy -o a.npy", "every hidden state, stacked"),
)


@handles_errors()
def embed(
    inputs: Inputs = None,
    model: Model = None,
    revision: Revision = None,
    token: Token = None,
    cache_dir: CacheDir = None,
    layer: Annotated[str, typer.Option(help="last (the encoder output) | N (hidden_states[N]; negative from the end) "
                                            "| all (every hidden state, stacked).")] = "last",
    pooling: Annotated[str, typer.Option(help="mean (over valid frames) | none (one vector per frame).")] = "mean",
    recursive: Recursive = False,
    files_from: FilesFrom = None,
    null: Null = False,
    channels: Channels = "mix",
    batch_size: BatchSize = 8,
    max_batch_seconds: MaxBatchSeconds = None,
    chunk: Annotated[float, typer.Option(help="Embed longer files in chunks of this many seconds.")] = 30.0,
    window: Window = None,
    hop: Hop = None,
    output_format: Format[EmbedFormat] = "auto",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file (atomically) instead "
                                                   "of stdout; needed for npy, npz and parquet.",
                                                   show_default=False)] = None,
    device: Device = "auto",
    dtype: Dtype = "float32",
    threads: Threads = None,
    workers: Annotated[Optional[int], typer.Option(help="Decoding threads (default: up to 4).", show_default=False)] = None,
    quiet: Quiet = False,
) -> None:
    """Embed audio files: one vector per file (or per window / channel) from a model's hidden states.

    INPUTS are taken as by classify (files, directories, glob patterns, - for paths on stdin, --files-from).

    --layer last is the encoder output (transformers' last_hidden_state: after the final LayerNorm of
    stable-layer-norm models); --layer N is transformers' hidden_states[N] (0: the input of the first transformer
    layer; the last entry is taken before a stable model's final LayerNorm, as transformers 5.x does); --layer all
    stacks every hidden state (an array of layers + 1 by dim). --pooling mean averages the valid frames (padding never
    counts); --pooling none keeps one vector per frame (frames by dim).

    Files up to --chunk seconds are embedded whole. A longer file is cut into chunks; its embedding is the mean over
    the frames of all chunks (the chunk means weighted by their frame counts), and with --pooling none the chunks'
    frames in time order. --window/--hop give one record per window instead; --channels each one per channel.

    Output: --format jsonl (default) streams one JSON object per record: {"path", "channel"?, "start"?, "end"?,
    "layer", "embedding": [...], "model", "revision"?}; a failed input gives {"path", "error"}. npz (arrays
    embeddings, frames, paths, channels, starts, ends), npy (the embeddings matrix, with the rows listed in
    NAME.rows.csv) and parquet (one row per record; needs pyarrow: pip install 'audioclf\\[parquet]') are written to
    --output when the run ends; failed inputs are told on stderr. With --pooling none, npz/npy concatenate the frame
    vectors of all records along the frame axis and frames says how many belong to each record.

    Exit status: 0 every input embedded; 1 some input failed; 2 usage error (bad option, a model that cannot be
    loaded); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
    """
    fmt = _resolve_format(output_format, output)
    arguments = list(inputs or [])
    if not arguments and files_from is None:
        raise AudioclfError("no inputs: give files, directories, glob patterns, or - to read paths from stdin")
    if files_from is not None and str(files_from) != "-" and not files_from.is_file():
        raise AudioclfError(f"--files-from {files_from}: no such file")
    if fmt != "jsonl" and output is None:
        raise AudioclfError(f"--format {fmt} needs --output FILE")
    if output is not None and not (output.parent if str(output.parent) else Path(".")).is_dir():
        raise AudioclfError(f"--output {output}: the directory {output.parent} does not exist")
    if fmt == "parquet":
        import_pyarrow()  # before anything slow: say at once when pyarrow is missing
    options = dict(layer=layer, pooling=pooling, batch_size=batch_size, max_batch_seconds=max_batch_seconds,
                   chunk=chunk, window=window, hop=hop, channels=channels, device=device, dtype=dtype, threads=threads,
                   workers=workers, recursive=recursive, revision=revision,
                   token=token, cache_dir=None if cache_dir is None else str(cache_dir))
    with StopSignals() as stop:
        try:
            status = _embed(arguments, files_from, null, model, options, fmt, output, quiet, stop)
        except OptionError as error:
            raise with_flags(error) from None
        except KeyboardInterrupt:
            stop.note(signal.SIGINT)
    if stop.received is not None:
        report(KeyboardInterrupt())
        raise typer.Exit(128 + stop.received)
    raise typer.Exit(status)


def _resolve_format(name: str, output: Optional[Path]) -> str:
    if name == "auto":
        suffix = output.suffix.lower().lstrip(".") if output is not None else ""
        return suffix if suffix in EMBEDDING_FORMATS else "jsonl"
    if name not in EMBEDDING_FORMATS:
        raise AudioclfError(f"--format must be one of {', '.join(EMBEDDING_FORMATS)}, got {name!r}")
    return name


def _embed(arguments: list[str], files_from: Optional[Path], null: bool, model: Optional[str], options: dict[str, Any],
           fmt: str, output: Optional[Path], quiet: bool, stop: StopSignals) -> int:
    """Run the embedder and write its records; returns the exit status."""
    from audioclf.data.sources import STDIN, expand_inputs
    from audioclf.engine.embed import Embedder

    return_large_buffers_to_os()
    embedder = Embedder(model, **options)
    items: Any = expand_inputs(arguments, recursive=bool(options["recursive"]), files_from=files_from,
                               null_separated=null)
    total = None
    if STDIN not in arguments and files_from is None:
        items = list(items)
        total = len(items)
    with Progress(total, not quiet and sys.stderr.isatty(), verb="embedding") as progress:
        batches = embedder.embed_inputs(items, progress=progress.update)
        if fmt != "jsonl":
            kept = []
            for records in batches:
                for record in records:
                    if "error" in record:
                        typer.echo(f"error: {record.get('path')}: {record['error']}", err=True)
                    else:
                        kept.append(record)
            assert output is not None
            write_embedding_arrays(kept, output, fmt, frame_vectors=options["pooling"] == "none")
        elif output is None:
            try:
                _write_lines(batches, JsonLinesWriter(sys.stdout), stop)
            except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return EXIT_SOME_FAILED
        else:
            with atomic_output(output) as stream:
                _write_lines(batches, JsonLinesWriter(stream), stop)
    if not quiet and progress.failed:
        typer.echo(f"{progress.failed} of {progress.done} inputs failed", err=True)
    return EXIT_SOME_FAILED if progress.failed else EXIT_OK


def _write_lines(batches: Any, writer: JsonLinesWriter, stop: StopSignals) -> None:
    """Write the records of each input with signals held off, so that an input is never half written."""
    for records in batches:
        with stop.deferred():
            for record in records:
                writer.write(record)
    writer.close()


# Typer keeps single line breaks of the help text; the docstring's paragraphs are written as wrapped source lines.
embed.__doc__ = "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(embed.__doc__ or "").split("\n\n"))
