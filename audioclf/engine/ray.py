"""``audioclf classify --engine ray``: the classify engine scaled out over a Ray cluster with Ray Data.

Data flow::

    driver: expand inputs (paths, directories, globs, lists, URIs) → skip inputs with records (--resume)
        → ray.data.from_items([{index, path, error}])
        → map (Ray tasks, 1 CPU each):   Segmenter.prepare — decode → channel policy → resample → segments →
                                          featurize (the local engine's code), one row per input
        → map_batches (actor pool of --workers model replicas, each loads the model once, CPU or GPU):
                                          Classifier.score_prepared — batching, model, activation, records
        → write (Datasink):               shards ``part-<run>-<task>.jsonl`` / ``.parquet`` in the output directory

**Records** are the local engine's records, built by the same code: a JSON Lines shard holds exactly the lines
``audioclf classify --format jsonl`` prints. A Parquet shard has one row per record with the columns of
:func:`audioclf.engine.records.parquet_schema`; fields a record does not have are null (:func:`read_shard_records`
drops them again). The driver needs only the model's config files (to check the options and cut nothing itself);
each actor loads the weights once.

**Shards** are written to a hidden temporary name and renamed when complete, so a shard is either whole or absent;
a write task that is retried rewrites the same shard name. All records of one input are in one shard. A plain
local ``--output`` path is written by tasks on the driver's node (the results land where the command runs); a URI
(``file://`` on a shared mount, ``s3://``, ``gs://``, …) is written from any node.

**Failures.** An input that cannot be decoded, or a batch the model fails on, gives error records as locally.
A lost worker node is Ray's business: decode tasks are retried and lost outputs rebuilt from lineage (Ray's
default of 3 retries per task); model actors are restarted elsewhere and their pending batches retried (Ray Data
starts pool actors with ``max_restarts=-1, max_task_retries=-1``). Outputs are deterministic, so a retried task
yields the same rows, and a retried write task the same shard.

**Resume.** With ``resume=True`` the shards already in the output directory are read and their inputs skipped;
without it an output directory that already holds shards is refused, so two runs never mix.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

from audioclf.data.failures import failure_reason, one_line
from audioclf.data.segments import PreparedFile, Segmenter, load_model_configs
from audioclf.data.sources import SourceItem, filesystem, is_uri, local_copy
from audioclf.engine.records import ScoreRecords, parquet_schema, records_from_jsonl
from audioclf.errors import AudioclfError, OptionError

__all__ = ["FORMATS", "INSTALL_HINT", "RayRun", "classify_on_ray", "ray_session", "read_output_records"]

INSTALL_HINT = "--engine ray needs Ray Data and pyarrow, which are not installed: pip install 'audioclf[ray]'"
FORMATS = ("jsonl", "parquet")
SHARD_PREFIX = "part-"
#: inputs per shard (Ray bundles blocks until a write task has at least this many)
SHARD_INPUTS = 512
#: the columns of a decoded input's row (:meth:`PreparedFile.to_row`)
_PREPARED_COLUMNS = ("path", "error", "duration", "streams", "layout", "features")


@contextmanager
def ray_session(address: str | None, quiet: bool) -> Iterator[bool]:
    """Ray connected for the block: to ``address`` (``host:port``, ``ray://host:port``, ``auto``), else to
    ``RAY_ADDRESS`` when set, else to a Ray instance started here (without the dashboard). Yields whether it was
    connected here (then it is shut down after the block); a Ray already initialised is used as it is."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING if quiet else logging.INFO}
        if address is None and not os.environ.get("RAY_ADDRESS"):
            kwargs["include_dashboard"] = False
        ray.init(address=address, **kwargs)
    try:
        yield started_here
    finally:
        if started_here:
            ray.shutdown()


def import_ray() -> Any:
    """``ray`` with Ray Data and pyarrow, or :class:`AudioclfError` naming what to install."""
    try:
        import pyarrow.fs  # noqa: F401
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise AudioclfError(INSTALL_HINT) from None
    return ray


# ------------------------------------------------------------------------------------------------------- shards
def _shard_names(fs: Any, directory: str) -> list[str]:
    import pyarrow.fs as pafs

    entries = fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
    return sorted(entry.path for entry in entries if entry.type == pafs.FileType.File
                  and os.path.basename(entry.path).startswith(SHARD_PREFIX)
                  and entry.path.endswith((".jsonl", ".parquet")))


def read_shard_records(fs: Any, shard: str) -> list[dict[str, Any]]:
    """The records of one shard, as the local engine yields them."""
    if shard.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(shard, filesystem=fs)
        return [{key: value for key, value in row.items() if value is not None} for row in table.to_pylist()]
    with fs.open_input_stream(shard) as stream:
        text = stream.read().decode("utf-8")
    return records_from_jsonl(text, shard)


def read_output_records(output: str) -> list[dict[str, Any]]:
    """Every record in the shards of an output directory (a path or URI), shard by shard."""
    import_ray()
    fs, directory = filesystem(output)
    return [record for shard in _shard_names(fs, directory) for record in read_shard_records(fs, shard)]


# ---------------------------------------------------------------------------------------------------- Ray stages
def _decode(row: dict[str, Any], segmenter: Segmenter) -> dict[str, Any]:
    """Ray Data map: one input row → its segments (the local engine's :meth:`Segmenter.prepare`)."""
    item = SourceItem(str(row["path"]), error=row["error"] or None)
    try:
        with local_copy(item.path) as local:
            prepared = segmenter.prepare(item, local)
    except FileNotFoundError:
        prepared = PreparedFile(item, error="no such file")
    except Exception as failure:  # the filesystem could not deliver the bytes
        prepared = PreparedFile(item, error=f"cannot read: {failure_reason(failure, item.label)}")
    return {"index": row["index"], **prepared.to_row()}


class _ModelActor:
    """Ray Data actor: one model replica, loaded once; scores batches of prepared inputs into records."""

    def __init__(self, model: str | None, options: dict[str, Any]) -> None:
        from audioclf.engine.classify import Classifier

        self.classifier = Classifier(model, **options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        files = [PreparedFile.from_row({column: batch[column][k] for column in _PREPARED_COLUMNS})
                 for k in range(len(batch["index"]))]
        results = self.classifier.score_prepared(files)
        return {
            "index": np.asarray(batch["index"], dtype=np.int64),
            "path": np.array([file.item.path for file in files], dtype=object),
            "failed": np.array([any("error" in record for record in records) for records in results]),
            "records": np.array(["".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
                                 for records in results], dtype=object),
        }


def _shard_sink(output: str, fmt: str, run_id: str, distributed: bool) -> Any:
    """A Ray Data Datasink writing each write task's rows to one shard (temporary name, then renamed)."""
    from ray.data import Datasink

    class ShardDatasink(Datasink):
        def __init__(self) -> None:
            self.output, self.fmt, self.run_id, self.distributed = output, fmt, run_id, distributed

        @property
        def supports_distributed_writes(self) -> bool:
            return self.distributed

        @property
        def min_rows_per_write(self) -> int:
            return SHARD_INPUTS

        def get_name(self) -> str:
            return "WriteShards"

        def write(self, blocks: Iterable[Any], ctx: Any) -> dict[str, Any]:
            from ray.data.block import BlockAccessor

            failed, texts = 0, []
            for block in blocks:
                table = BlockAccessor.for_block(block).to_arrow()
                if table.num_rows:
                    failed += sum(table.column("failed").to_pylist())
                    texts += table.column("records").to_pylist()
            if not texts:
                return {"shard": None, "inputs": 0, "failed": 0, "records": 0}
            fs, directory = filesystem(self.output)
            name = f"{SHARD_PREFIX}{self.run_id}-{ctx.task_idx:06d}.{self.fmt}"
            temporary = f"{directory}/.{name}.tmp"
            records = sum(text.count("\n") for text in texts)
            if self.fmt == "jsonl":
                with fs.open_output_stream(temporary) as stream:
                    stream.write("".join(texts).encode("utf-8"))
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                rows = records_from_jsonl("".join(texts), name)
                pq.write_table(pa.Table.from_pylist(rows, schema=parquet_schema()), temporary, filesystem=fs)
            fs.move(temporary, f"{directory}/{name}")
            return {"shard": name, "inputs": len(texts), "failed": failed, "records": records}

        def on_write_complete(self, write_result: Any) -> None:
            self.results = list(getattr(write_result, "write_returns", write_result))

    return ShardDatasink()


# --------------------------------------------------------------------------------------------------------- driver
@dataclass
class RayRun:
    """What a run did: inputs classified now, inputs skipped (records already present), and failed inputs among
    all inputs with records in the output directory."""

    classified: int = 0
    skipped: int = 0
    failed: int = 0
    shards: int = 0


def classify_on_ray(items: Iterable[SourceItem], output: str, *, model: str | None, options: dict[str, Any],
                    fmt: str = "jsonl", address: str | None = None, workers: int | None = None,
                    resume: bool = False, quiet: bool = False) -> RayRun:
    """Classify ``items`` on a Ray cluster and write shards of records to the directory ``output`` (path or URI).

    Args:
        items: the inputs (see :func:`audioclf.data.sources.expand_uri_inputs`).
        output: directory for the shards; created when missing.
        model: model directory, weights file or Hub id, readable from every node (``None``: the default model).
        options: :class:`~audioclf.engine.classify.ClassifyOptions` fields; ``batch_size`` is also the number of
            inputs per actor call.
        fmt: ``"jsonl"`` or ``"parquet"``.
        address: the cluster (``host:port``, ``ray://host:port``, ``auto``); ``None``: ``RAY_ADDRESS`` when set,
            else a Ray instance started on this machine for the run.
        workers: model replicas (actors), each holding ``threads`` CPUs (default 1) and, with a GPU device, one GPU;
            default one per GPU of the cluster, else a quarter of its CPUs (at least one). The actors must leave at
            least one CPU of the cluster for decode tasks (checked when the run starts).
        resume: skip inputs whose records are already in ``output``.
        quiet: no progress bars, warnings only.
    """
    from audioclf.engine.classify import ClassifyOptions

    if fmt not in FORMATS:
        raise OptionError("format", f"must be {' or '.join(FORMATS)} with the Ray engine, not {fmt}")
    if workers is not None and workers < 1:
        raise OptionError("workers", f"must be 1 or more, got {workers}")
    ray = import_ray()
    opts = ClassifyOptions.checked(options)
    fs, directory = filesystem(output)
    try:
        info = fs.get_file_info(directory)
        import pyarrow.fs as pafs

        if info.type == pafs.FileType.File:
            raise AudioclfError(f"--output {output}: is a file; --engine ray writes a directory of shards")
        fs.create_dir(directory, recursive=True)
        existing = _shard_names(fs, directory)
    except AudioclfError:
        raise
    except Exception as error:
        raise AudioclfError(f"--output {output}: {one_line(error)}") from None
    if existing and not resume:
        raise AudioclfError(f"--output {output} already holds results ({len(existing)} shards); add --resume to "
                            "continue that run, or choose an empty directory")
    _remove_stale_temporaries(fs, directory)

    run = RayRun()
    done: set[str] = set()
    for shard in existing:
        for record in read_shard_records(fs, shard):
            if record["path"] not in done:
                done.add(record["path"])
                run.failed += "error" in record
    rows = []
    for item in items:
        if item.path in done:
            run.skipped += 1
        else:
            rows.append({"index": len(rows), "path": item.path, "error": item.error or ""})
    if not rows:
        return run

    # The driver reads the model's config files only: enough to check the options against the model (receptive
    # field, label names) and to cut the audio; the actors load the weights.
    config, featurizer = load_model_configs(model, opts.revision, token=opts.token, cache_dir=opts.cache_dir)
    segmenter = Segmenter.for_model(config, featurizer, channels=opts.channels, chunk=opts.chunk, window=opts.window,
                                    hop=opts.hop)
    ScoreRecords.for_config(config, labels=opts.labels, top_k=opts.top_k, min_score=opts.min_score, model="",
                            revision=None, windowed=opts.window is not None, aggregate=opts.aggregate,
                            sampling_rate=featurizer.sampling_rate)

    with ray_session(address, quiet) as started_here:
        if (address or os.environ.get("RAY_ADDRESS") or "").startswith("ray://") and not is_uri(output):
            raise AudioclfError("with a ray:// address the driver runs on the cluster: give --output as a URI every "
                                "node can write (file:// on a shared mount, s3://, gs://, …)")
        context = ray.data.DataContext.get_current()
        if quiet:
            context.enable_progress_bars = False
        device = str(options.get("device") or "auto")
        resources = ray.cluster_resources()
        gpus = 1 if device.startswith("cuda") or (device == "auto" and resources.get("GPU", 0) > 0) else 0
        cpus = float(resources.get("CPU", 0))
        actor_cpus = options.get("threads") or 1
        if workers is None:
            workers = max(1, int(resources.get("GPU", 0))) if gpus else max(1, int(cpus // (4 * actor_cpus)))
        if workers * actor_cpus + 1 > cpus:
            # Each actor holds its CPUs for the whole run: with none left, no decode task could ever start.
            problem = (f"--workers {workers} model replicas hold {workers * actor_cpus:g} of the cluster's {cpus:g} "
                       "CPUs, and decoding needs at least one more")
            if started_here:
                raise AudioclfError(f"{problem}; use fewer --workers (or --threads)")
            print(f"warning: {problem}; the run waits until the cluster grows", file=sys.stderr)
        batch_size = int(options.get("batch_size") or 8)
        dataset = ray.data.from_items(rows)
        # max_calls=0 is Ray's default for tasks (no limit); stating it keeps decoding in its own pool of tasks:
        # with remote arguments equal to the actors', Ray Data would fuse it into the model actors and decode
        # only as many inputs at a time as there are model replicas.
        dataset = dataset.map(_decode, fn_kwargs={"segmenter": segmenter}, num_cpus=1, max_calls=0)
        dataset = dataset.map_batches(
            _ModelActor, fn_constructor_kwargs={"model": model, "options": {**options, "workers": 1}},
            batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
            num_gpus=gpus, num_cpus=actor_cpus,
        )
        sink = _shard_sink(output, fmt, f"{uuid.uuid4().hex[:12]}", distributed=is_uri(output))
        dataset.write_datasink(sink)
    results = [result for result in getattr(sink, "results", []) if result["shard"]]
    run.classified = sum(result["inputs"] for result in results)
    run.failed += sum(result["failed"] for result in results)
    run.shards = len(results)
    return run


def _remove_stale_temporaries(fs: Any, directory: str) -> None:
    """Remove shards that an interrupted run left half-written (hidden ``.part-*.tmp`` files)."""
    import pyarrow.fs as pafs

    for entry in fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True)):
        name = os.path.basename(entry.path)
        if entry.type == pafs.FileType.File and name.startswith("." + SHARD_PREFIX) and name.endswith(".tmp"):
            try:
                fs.delete_file(entry.path)
            except OSError:
                pass
