"""Labelled audio for ``audioclf train`` and ``audioclf evaluate``: the two data layouts, the stratified split, and
the scan that decodes every clip once and reports the unusable ones.

**Layouts.** ``DATA`` is either

* a directory with one sub-directory per label: ``DATA/<label>/**`` holds that label's audio files (any format
  ``classify`` decodes; hidden entries skipped; files directly in ``DATA`` are ignored and counted); or
* a manifest ``.csv`` / ``.tsv`` (a header with ``path`` and ``label`` columns; other columns are ignored) or
  ``.jsonl`` (one ``{"path", "label"}`` object per line). Relative paths resolve against the manifest's directory.

Labels are the sorted label names.

**Scan.** Every clip is decoded once, on worker threads, through the shared audio path (decode, channel policy,
resample to the model's rate: :meth:`audioclf.data.segments.Segmenter.open` and
:func:`audioclf.audio.stream.iter_model_blocks`). A clip that cannot be decoded, holds no samples or is shorter
than the model needs is skipped and named in the :class:`ScanResult`, never fatal. Decoded audio is kept in memory
up to a budget; the rest is decoded again when needed.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from audioclf.audio.decode import has_audio_extension
from audioclf.audio.stream import iter_model_blocks
from audioclf.data.failures import failure_reason
from audioclf.data.prefetch import prefetch_map
from audioclf.data.segments import Segmenter
from audioclf.data.sources import SourceItem, expand_inputs
from audioclf.errors import AudioError, DataError

__all__ = ["MANIFEST_SUFFIXES", "Clip", "LabelledData", "ScanResult", "decode_clip", "read_labelled", "scan",
           "stratified_split"]

MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl")


@dataclass(frozen=True)
class Clip:
    """One labelled audio file."""

    path: str
    label: str


@dataclass
class LabelledData:
    """The clips of a data set, their label names (sorted) and the files that were ignored (not in a label
    folder)."""

    clips: list[Clip]
    labels: list[str]
    ignored: list[str] = field(default_factory=list)


def read_labelled(data: str | os.PathLike[str]) -> LabelledData:
    """The clips of a label-folder directory or a manifest (see the module docstring). A one-line
    :class:`DataError` when ``data`` is neither, or a manifest row lacks a path or a label."""
    path = Path(data)
    if path.is_dir():
        return _read_folders(path)
    if path.is_file():
        if path.suffix.lower() not in MANIFEST_SUFFIXES:
            raise DataError(f"{path}: a data set is a directory of label folders or a manifest "
                            f"({', '.join(MANIFEST_SUFFIXES)}), not a {path.suffix or 'suffix-less'} file")
        return _read_manifest(path)
    raise DataError(f"{path}: no such directory or manifest")


def _read_folders(root: Path) -> LabelledData:
    clips, labels, ignored = [], [], []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            labels.append(entry.name)
            clips += [Clip(item.path, entry.name) for item in expand_inputs([entry.path], recursive=True)
                      if item.error is None]
        elif has_audio_extension(entry.name):
            ignored.append(entry.path)
    return LabelledData(clips, sorted(labels), ignored)


def _read_manifest(path: Path) -> LabelledData:
    base = path.parent
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None
    rows: list[tuple[int, object, object]] = []
    if path.suffix.lower() == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: line {number} is not JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {number} is not an object with \"path\" and \"label\"")
            rows.append((number, row.get("path"), row.get("label")))
    else:
        reader = csv.reader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        header = [cell.strip().lower() for cell in next(reader, [])]
        if "path" not in header or "label" not in header:
            raise DataError(f"{path}: the first row must name the columns, with path and label among them")
        where_path, where_label = header.index("path"), header.index("label")
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            get = lambda k: cells[k].strip() if k < len(cells) else None  # noqa: E731
            rows.append((number, get(where_path), get(where_label)))
    clips = []
    for number, clip_path, label in rows:
        if not isinstance(clip_path, str) or not clip_path:
            raise DataError(f"{path}: row {number} has no path")
        if not isinstance(label, (str, int)) or isinstance(label, bool) or str(label) == "":
            raise DataError(f"{path}: row {number} has no label")
        resolved = Path(clip_path).expanduser()
        clips.append(Clip(str(resolved if resolved.is_absolute() else base / resolved), str(label)))
    return LabelledData(clips, sorted({clip.label for clip in clips}))


def stratified_split(clips: Sequence[Clip], fraction: float, seed: int) -> tuple[list[Clip], list[Clip]]:
    """``(train, validation)``: of each label's ``n`` clips, ``round(fraction · n)`` (at least 1 when ``n >= 2`` and
    ``fraction > 0``, never all of them) go to validation, chosen by a generator seeded with ``seed``. Both lists
    keep the input order."""
    if fraction <= 0:
        return list(clips), []
    rng = np.random.default_rng([seed, _SPLIT_STREAM])
    held: set[int] = set()
    by_label: dict[str, list[int]] = {}
    for index, clip in enumerate(clips):
        by_label.setdefault(clip.label, []).append(index)
    for label in sorted(by_label):
        members = by_label[label]
        count = min(max(1, round(fraction * len(members))), len(members) - 1) if len(members) >= 2 else 0
        held.update(np.asarray(members)[rng.permutation(len(members))[:count]].tolist())
    return ([clip for k, clip in enumerate(clips) if k not in held],
            [clip for k, clip in enumerate(clips) if k in held])


_SPLIT_STREAM = 1


# ------------------------------------------------------------------------------------------------------------- scan
def decode_clip(segmenter: Segmenter, path: str) -> np.ndarray:
    """One clip at the model rate after the channel policy, ``float32 [N]``. Raises :class:`AudioError` (one line,
    without the path) for a file that cannot be decoded, is empty, or is shorter than ``segmenter.min_samples``."""
    item = SourceItem(path)
    try:
        source, _ = segmenter.open(item)
        blocks = [block[:, 0] for block in iter_model_blocks(source, segmenter.sampling_rate, segmenter.policy)]
    except Exception as error:
        raise AudioError(failure_reason(error, path)) from None
    wave = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    rate = segmenter.sampling_rate
    if wave.shape[0] == 0:
        raise AudioError("empty: no audio samples")
    if wave.shape[0] < segmenter.min_samples:
        raise AudioError(f"too short: {wave.shape[0]} samples at {rate} Hz ({wave.shape[0] / rate:.3f} s); "
                         f"training needs at least {segmenter.min_samples} ({segmenter.min_samples / rate:.3f} s)")
    return wave


@dataclass
class ScanResult:
    """The usable clips (input order), their lengths in model-rate samples, the decoded audio kept in memory (by
    position among the usable clips; ``None`` where it did not fit the budget), and the skipped clips with the
    reason."""

    clips: list[Clip]
    lengths: np.ndarray
    audio: list[np.ndarray | None]
    skipped: list[tuple[Clip, str]]

    def waveform(self, index: int, segmenter: Segmenter) -> np.ndarray:
        """Clip ``index``'s audio: from memory, else decoded again."""
        kept = self.audio[index]
        return kept if kept is not None else decode_clip(segmenter, self.clips[index].path)


def scan(clips: Iterable[Clip], segmenter: Segmenter, *, workers: int, budget_bytes: float,
         on_skip: Callable[[Clip, str], None] | None = None) -> ScanResult:
    """Decode every clip once on ``workers`` threads (see the module docstring); ``on_skip`` is told of each
    skipped clip as it is found."""
    usable, lengths, audio, skipped = [], [], [], []
    used = 0.0
    for clip, wave, error in prefetch_map(clips, lambda clip: decode_clip(segmenter, clip.path), workers=workers):
        if error is not None:
            reason = failure_reason(error, clip.path)
            skipped.append((clip, reason))
            if on_skip is not None:
                on_skip(clip, reason)
            continue
        usable.append(clip)
        lengths.append(wave.shape[0])
        keep = used + wave.nbytes <= budget_bytes
        audio.append(wave if keep else None)
        used += wave.nbytes if keep else 0
    return ScanResult(usable, np.asarray(lengths, dtype=np.int64), audio, skipped)
