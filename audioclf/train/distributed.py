"""How a training run is spread over processes: the hooks through which :mod:`audioclf.train.loop` runs as one
process (:class:`SingleProcess`, ``audioclf train``) or as one of N data-parallel processes of a
``torch.distributed`` process group (:class:`DataParallel`, used by ``audioclf train --engine ray``).

The loop is the same in both cases; only these steps differ:

* **scan**: each process decodes its shard of the clips (every N-th), the lengths and the unusable clips are
  gathered, so every process holds the same list of usable clips. A process keeps the audio it decoded and, within
  the audio budget, every clip it decodes later (:class:`CachedScan`);
* **batches**: the epoch's batches are cut exactly as a local run with ``N · batch_size`` cuts them; each process
  computes every N-th clip of each (length-sorted) batch (:meth:`DataParallel.share`). Its loss is weighted by its
  share of the batch, so that the gradients DDP averages are exactly those of the whole batch's mean loss. When the
  epoch's last batch has fewer clips than there are processes, a process without a clip computes one clip at
  weight 0, so that every process joins the gradient all-reduce;
* **model**: wrapped in ``DistributedDataParallel`` for the forward and backward passes (the optimiser, clipping and
  schedule are the local ones and see the averaged gradients);
* **random draws**: the model is initialised from the same seed everywhere; after that every process draws dropout,
  LayerDrop and SpecAugment masks from its own seed (:meth:`DataParallel.seed`), as each would over its own clips;
* **figures**: the running loss and accuracy are summed over the processes after each batch; validation clips are
  shared out, and their predictions gathered, so every process computes the same metrics and takes the same
  best-epoch and early-stopping decisions;
* **writes**: only the first process (rank 0) writes checkpoints and outputs.

Importing this module does not import torch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from audioclf.data.segments import Segmenter
from audioclf.train.dataset import Clip, ScanResult, decode_clip, scan

__all__ = ["CachedScan", "DataParallel", "Share", "SingleProcess"]


@dataclass(frozen=True)
class Share:
    """What one process computes of a batch: clip indices ``clips`` ``[n]``, the ``weight`` of its mean loss in the
    gradient (1 in a single process; 0 for a stand-in clip), and how many clips count in the running figures."""

    clips: np.ndarray
    weight: float
    counted: int


class SingleProcess:
    """The local run: one process does everything (each hook is the identity)."""

    rank = 0
    world = 1
    local = True

    @property
    def writer(self) -> bool:
        """Whether this process writes checkpoints and outputs."""
        return self.rank == 0

    def scan(self, clips: Sequence[Clip], segmenter: Segmenter, *, workers: int, budget_bytes: float,
             on_skip: Callable[[Clip, str], None] | None = None) -> ScanResult:
        return scan(clips, segmenter, workers=workers, budget_bytes=budget_bytes, on_skip=on_skip)

    def share(self, batch: np.ndarray) -> Share:
        return Share(batch, 1.0, len(batch))

    def sum(self, values: Sequence[float]) -> list[float]:
        """``values`` summed over the processes."""
        return list(values)

    def wrap(self, model: Any) -> Any:
        """The module to call for training forward passes."""
        return model

    def seed(self, seed: int) -> int:
        """The seed of this process's dropout and masking draws."""
        return seed

    def evaluate(self, classifier: Any, clips: Sequence[Clip]) -> Any:
        from audioclf.train.evaluation import evaluate

        return evaluate(classifier, clips)

    def restore(self, checkpoints: Any) -> bool:
        """Put the checkpoint to continue from into the directory ``checkpoints``; whether there was one."""
        return False

    def checkpoint_saved(self, checkpoints: Any, state: Any) -> None:
        """Called on every process after rank 0 wrote a checkpoint into ``checkpoints``."""

    def report_fields(self) -> dict[str, Any]:
        """Extra fields of ``training_report.json``."""
        return {}


class DataParallel(SingleProcess):
    """One process of a ``torch.distributed`` process group (already initialised: gloo on CPU, nccl on GPU)."""

    local = False

    def __init__(self) -> None:
        import torch
        import torch.distributed as dist

        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.backend = dist.get_backend()
        self.device = (torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl"
                       else torch.device("cpu"))

    def _gather(self, value: Any) -> list[Any]:
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, value)
        return gathered

    def scan(self, clips: Sequence[Clip], segmenter: Segmenter, *, workers: int, budget_bytes: float,
             on_skip: Callable[[Clip, str], None] | None = None) -> ScanResult:
        clips = list(clips)
        mine = scan(clips[self.rank::self.world], segmenter, workers=workers, budget_bytes=budget_bytes)
        kept = {clip: k for k, clip in enumerate(mine.clips)}  # Clip is hashable; duplicates decode alike
        reasons = dict((clip, reason) for clip, reason in mine.skipped)
        found = _interleaved(self._gather([(int(mine.lengths[kept[clip]]) if clip in kept else reasons[clip])
                                           for clip in clips[self.rank::self.world]]), len(clips))
        usable, lengths, audio, skipped = [], [], [], []
        used = 0.0
        for position, clip in enumerate(clips):
            outcome = found[position]
            if isinstance(outcome, str):
                skipped.append((clip, outcome))
                if on_skip is not None:
                    on_skip(clip, outcome)
                continue
            wave = mine.audio[kept[clip]] if position % self.world == self.rank else None
            usable.append(clip)
            lengths.append(outcome)
            audio.append(wave)
            used += 0 if wave is None else wave.nbytes
        return CachedScan(usable, np.asarray(lengths, dtype=np.int64), audio, skipped,
                          spare_bytes=max(0.0, budget_bytes - used))

    def share(self, batch: np.ndarray) -> Share:
        part = batch[self.rank::self.world]
        if len(part) == 0:
            return Share(batch[:1], 0.0, 0)
        return Share(part, self.world * len(part) / len(batch), len(part))

    def sum(self, values: Sequence[float]) -> list[float]:
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def wrap(self, model: Any) -> Any:
        from torch.nn.parallel import DistributedDataParallel

        # Unused parameters are normal here: LayerDrop skips layers, SpecAugment's mask embedding is used only
        # when a mask is drawn, and a frozen part's output may come from the cache.
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                       find_unused_parameters=True)

    def seed(self, seed: int) -> int:
        if self.rank == 0:
            return seed
        return int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])

    def evaluate(self, classifier: Any, clips: Sequence[Clip]) -> Any:
        from audioclf.train.evaluation import evaluation_of, predict

        parts = self._gather(list(predict(classifier, list(clips)[self.rank::self.world])))
        return evaluation_of(_interleaved(parts, len(clips)), clips)

    def report_fields(self) -> dict[str, Any]:
        return {"distributed": {"workers": self.world, "backend": self.backend}}


@dataclass
class CachedScan(ScanResult):
    """A :class:`ScanResult` that keeps clips decoded after the scan while ``spare_bytes`` last (a process of a
    data-parallel run decodes only its shard in the scan, and the other clips when a batch first needs them)."""

    spare_bytes: float = 0.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def waveform(self, index: int, segmenter: Segmenter) -> np.ndarray:
        kept = self.audio[index]
        if kept is not None:
            return kept
        wave = decode_clip(segmenter, self.clips[index].path)
        with self._lock:
            if self.audio[index] is None and wave.nbytes <= self.spare_bytes:
                self.audio[index] = wave
                self.spare_bytes -= wave.nbytes
        return wave


def _interleaved(parts: Iterable[Sequence[Any]], count: int) -> list[Any]:
    """Items dealt out round-robin (``items[rank::world]`` to each of ``parts``) put back in order."""
    parts = list(parts)
    return [parts[k % len(parts)][k // len(parts)] for k in range(count)]

