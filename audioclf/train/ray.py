"""``audioclf train --engine ray``: the local training loop run by N data-parallel workers of Ray Train's
``TorchTrainer`` (PyTorch DDP: gloo on CPU, nccl on GPU).

Run::

    driver: check the options and the output location → TorchTrainer(N workers, one placement group)
        each worker: audioclf.train.loop.train(..., parallel=RayTrainProcess())   (the local loop, unchanged)
            scan its shard of the clips → every epoch: its share of each batch, DDP all-reduce of the gradients,
            validation shared out → rank 0 writes the checkpoint into a local folder, reported to Ray Train,
            which copies it to ``OUTPUT/checkpoints/`` → rank 0 writes the model and report into OUTPUT
        driver: reads ``OUTPUT/training_report.json``, removes ``OUTPUT/checkpoints`` (unless kept)

**Decoding** happens in each worker, through the local trainer's own data path (scan, decoded-audio cache, crops,
augmentation, featurizer, frozen-part cache), not in Ray Data: every random draw stays a function of
``(seed, epoch, clip)``, so a run is reproducible, resumable and (on CPU) computes the batches of a local run with
``N × --batch-size``; decoded clips and frozen-part outputs stay in the worker's memory from one epoch to the next
instead of being streamed again; and no audio travels through the object store. Each worker decodes 1/N of the clips
in the scan (see :mod:`audioclf.train.distributed`).

**Batches and learning rate.** ``--batch-size`` is per worker: a step averages the gradients of
``N × batch_size × accumulate`` clips, and an epoch has ``N`` times fewer steps. The learning rate is not rescaled:
the run computes what a local run with ``--batch-size N·B`` computes, with the same ``--lr``.

**Placement.** Each worker holds ``--threads`` CPUs (default 1; fewer, fractional, when the cluster has fewer CPUs
than workers × threads) or one GPU. CPU workers are spread over the nodes (each gains a node's cores), GPU workers
packed (NVLink between GPUs of a node is faster than the network).

**Storage.** Checkpoints go to ``OUTPUT/checkpoints`` through Ray Train's checkpointing (``RunConfig.storage_path``),
the outputs to ``OUTPUT``: a path every node can reach (a shared mount) or a URI (``s3://``, ``gs://``,
``file://``). Each output file is written to a hidden temporary name and renamed when complete.

**Failures.** A worker that dies (its node lost, a process killed) stops the worker group; Ray Train starts it again
(up to ``MAX_RESTARTS`` times) on whatever nodes are left and every worker continues from the last checkpoint.
A stopped run (driver killed, restarts exhausted) continues with ``--resume``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from audioclf.data.failures import one_line
from audioclf.data.sources import filesystem, is_uri
from audioclf.engine.ray import ray_session
from audioclf.errors import AudioclfError, DataError, OptionError
from audioclf.train.checkpoint import CHECKPOINT_DIR
from audioclf.train.distributed import DataParallel
from audioclf.train.loop import OUTPUT_FILES, TrainingEvents, TrainingResult, train
from audioclf.train.recipe import Recipe
from audioclf.train.report import REPORT_NAME

__all__ = ["INSTALL_HINT", "MAX_RESTARTS", "RayTrainProcess", "train_on_ray"]

INSTALL_HINT = "--engine ray needs Ray Train, which is not installed: pip install 'audioclf[ray]'"
#: how many times a failed worker group is started again from the last checkpoint
MAX_RESTARTS = 3
#: the file Ray Train keeps in OUTPUT/checkpoints naming the latest checkpoint (what --resume continues from)
SNAPSHOT_NAME = "checkpoint_manager_snapshot.json"


def import_ray_train() -> Any:
    """``ray`` with Ray Train and its torch integration, or :class:`AudioclfError` naming what to install."""
    try:
        import ray
        import ray.train  # noqa: F401
        import ray.train.torch  # noqa: F401
    except ImportError:
        raise AudioclfError(INSTALL_HINT) from None
    return ray


class RayTrainProcess(DataParallel):
    """A Ray Train worker's part: checkpoints go through ``ray.train.report``, restarts start from
    ``ray.train.get_checkpoint()``."""

    def __init__(self, command: list[str]) -> None:
        super().__init__()
        self.command = command
        self.restored = False

    def restore(self, checkpoints: Path) -> bool:
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return False
        shutil.rmtree(checkpoints, ignore_errors=True)
        with checkpoint.as_directory() as directory:
            shutil.copytree(directory, checkpoints)
        self.restored = True
        return True

    def checkpoint_saved(self, checkpoints: Path, state: Any) -> None:
        import ray.train

        metrics = {"epochs_done": state.epochs_done, "batches_done": state.batches_done,
                   "steps_done": state.steps_done}
        # every worker reports (a barrier); rank 0's folder becomes the checkpoint
        checkpoint = ray.train.Checkpoint.from_directory(str(checkpoints)) if self.writer else None
        ray.train.report(metrics, checkpoint=checkpoint)

    def report_fields(self) -> dict[str, Any]:
        fields = super().report_fields()
        fields["distributed"].update(engine="ray", restored=self.restored)
        return {**fields, "command": self.command}


def _train_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the local loop into a local folder, whose outputs rank 0 then publishes."""
    parallel = RayTrainProcess(config["command"])
    staging = Path(tempfile.mkdtemp(prefix="audioclf-train-"))
    try:
        events = config["events"] if parallel.writer else None
        train(config["data"], staging / "output", config["recipe"], validation=config["validation"],
              events=events, parallel=parallel)
        if parallel.writer:
            _publish(staging / "output", config["output"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(folder: Path, output: str) -> None:
    """Copy the output files of ``folder`` to ``output`` (a path or URI), each under a temporary name first; the
    report last, so that its presence means the run is complete."""
    fs, directory = filesystem(output)
    fs.create_dir(directory, recursive=True)
    names = [name for name in OUTPUT_FILES if name != REPORT_NAME] + [REPORT_NAME]
    for name in names:
        if not (folder / name).is_file():
            continue
        temporary = f"{directory}/.{name}.tmp"
        with fs.open_output_stream(temporary) as stream, open(folder / name, "rb") as source:
            shutil.copyfileobj(source, stream, length=1 << 20)
        fs.move(temporary, f"{directory}/{name}")


# --------------------------------------------------------------------------------------------------------- driver
def _location(path: str | os.PathLike[str] | None) -> str | None:
    """A URI as it is, a local path made absolute (workers run in other folders)."""
    if path is None:
        return None
    text = os.fspath(path)
    return text if is_uri(text) else os.path.abspath(text)


def _prepare_output(output: str, resume: bool, force: bool) -> None:
    """The local trainer's rules for the output location, through pyarrow's filesystems."""
    import pyarrow.fs as pafs

    if resume and force:
        raise OptionError("resume", "cannot be combined with --force")
    try:
        fs, directory = filesystem(output)
        info = fs.get_file_info(directory)
        if info.type == pafs.FileType.File:
            raise OptionError("output", f"{output} exists and is not a directory")
        entries = (fs.get_file_info(pafs.FileSelector(directory))
                   if info.type == pafs.FileType.Directory else [])
        checkpoints = f"{directory}/{CHECKPOINT_DIR}"
        if resume:
            if fs.get_file_info(f"{checkpoints}/{SNAPSHOT_NAME}").type != pafs.FileType.File:
                raise DataError(f"--resume: {output} holds no Ray run to resume (no {CHECKPOINT_DIR}/{SNAPSHOT_NAME})")
        elif entries and not force:
            raise OptionError("output", f"{output} exists and is not empty: pass --resume to continue its run or "
                                        "--force to start over")
        elif entries:
            fs.delete_dir_contents(checkpoints, missing_dir_ok=True)
            for name in OUTPUT_FILES:
                if fs.get_file_info(f"{directory}/{name}").type == pafs.FileType.File:
                    fs.delete_file(f"{directory}/{name}")
    except AudioclfError:
        raise
    except Exception as error:
        raise AudioclfError(f"--output {output}: {one_line(error)}") from None


def _check_data(data: str, validation: str | None) -> None:
    """What the driver can check at once when it sees the data (a local path): layout and label count, so that a
    mistake is told before any worker starts (and is not retried as a worker failure)."""
    from audioclf.train.dataset import read_labelled

    for location in (data, validation):
        if location is None or is_uri(location):
            continue
        labelled = read_labelled(location)
        if location == data and len(labelled.labels) < 2:
            named = f" ({labelled.labels[0]})" if labelled.labels else ""
            raise DataError(f"{location} has {len(labelled.labels)} label(s){named}: training needs at least 2")


def _worker_error(error: Exception) -> Exception:
    """The first worker's own exception inside a Ray Train failure, when it is one of ours."""
    for failure in getattr(error, "worker_failures", {}).values():
        cause = getattr(failure, "cause", failure)
        if isinstance(cause, AudioclfError):
            return cause
    return AudioclfError(f"training on Ray failed: {one_line(error)}")


def train_on_ray(data: str | os.PathLike[str], output: str | os.PathLike[str], recipe: Recipe | None = None, *,
                 validation: str | os.PathLike[str] | None = None, resume: bool = False, force: bool = False,
                 address: str | None = None, workers: int | None = None, events: TrainingEvents | None = None,
                 quiet: bool = False) -> TrainingResult:
    """Train as :func:`audioclf.train.loop.train` does, with ``workers`` data-parallel Ray Train workers.

    Args:
        data, validation: data sets (see :mod:`audioclf.train.dataset`) every node can read.
        output: a directory (shared path or URI) every node can write: the model, the report, and
            ``checkpoints/`` while the run lasts.
        recipe: the local recipe; ``batch_size`` is per worker, ``threads`` the CPUs of each worker, ``workers``
            (decoding threads) those of each worker.
        resume, force: as locally (``resume`` continues the Ray run whose checkpoints are in ``output``).
        address: the cluster (``host:port``, ``auto``); ``None``: ``RAY_ADDRESS`` when set, else a Ray instance
            started on this machine for the run.
        workers: training workers; default one per GPU with a GPU device, else one per node.
        events: told what happens; rank 0's events are shipped to it (they print on the worker's stderr, which Ray
            forwards to the driver).
        quiet: Ray's own logs at warning level only.
    """
    ray = import_ray_train()
    recipe = recipe or Recipe()
    recipe.validate()
    if workers is not None and workers < 1:
        raise OptionError("workers", f"must be 1 or more, got {workers}")
    data_location, output_location = _location(data), _location(output)
    validation_location = _location(validation)
    _check_data(data_location, validation_location)
    _prepare_output(output_location, resume, force)

    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    with ray_session(address, quiet):
        resources = ray.cluster_resources()
        device = str(recipe.device)
        gpu = device.startswith("cuda") or (device == "auto" and resources.get("GPU", 0) > 0)
        if gpu and resources.get("GPU", 0) < 1:
            raise OptionError("device", f"{device}: the Ray cluster has no GPU")
        if workers is None:
            workers = int(resources["GPU"]) if gpu else max(1, len([n for n in ray.nodes() if n.get("Alive")]))
        cpus = float(resources.get("CPU", 1))
        worker_cpus = min(float(recipe.threads or 1), cpus / workers)
        scaling = ScalingConfig(num_workers=workers, use_gpu=gpu, resources_per_worker={"CPU": worker_cpus},
                                placement_strategy="PACK" if gpu else "SPREAD")
        run_config = RunConfig(name=CHECKPOINT_DIR, storage_path=output_location,
                               failure_config=FailureConfig(max_failures=MAX_RESTARTS),
                               checkpoint_config=CheckpointConfig(num_to_keep=1))
        config = {"data": data_location, "validation": validation_location, "output": output_location,
                  "recipe": recipe, "events": events, "command": list(sys.argv)}
        trainer = TorchTrainer(_train_worker, train_loop_config=config, scaling_config=scaling,
                               torch_config=TorchConfig(backend="nccl" if gpu else "gloo"), run_config=run_config)
        try:
            trainer.fit()
        except ray.train.TrainingFailedError as error:
            raise _worker_error(error) from None
    return _finished(output_location, recipe.keep_checkpoints)


def _finished(output: str, keep_checkpoints: bool) -> TrainingResult:
    """The report rank 0 wrote; Ray's checkpoints removed unless kept."""
    import json

    fs, directory = filesystem(output)
    with fs.open_input_stream(f"{directory}/{REPORT_NAME}") as stream:
        report = json.loads(stream.read().decode("utf-8"))
    if not keep_checkpoints:
        try:
            fs.delete_dir(f"{directory}/{CHECKPOINT_DIR}")
        except (FileNotFoundError, OSError):
            pass
    return TrainingResult(Path(output) if not is_uri(output) else output, report)  # type: ignore[arg-type]
