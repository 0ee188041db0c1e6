"""The record schema, in one place: what every engine yields, writes and reads back.

A **record** is a plain dict, one of:

* :class:`ClassifyRecord` — ``{"path" | "index", ["channel"], ["start", "end"], "labels": [{"label", "score"}, …],
  "model", ["revision"]}``: labels best first; ``channel`` with ``--channels`` other than ``mix``; ``start``/``end``
  (seconds) for a window record;
* :class:`ErrorRecord` — ``{"path" | "index", "error"}``: an input that failed, and why, in one line;
* :class:`EventRecord` — ``{"path" | "index", ["channel"], "label", "start", "end", "score", "model", ["revision"]}``:
  a stretch of consecutive windows where a label scores at least a threshold (:mod:`audioclf.engine.events`);
* :class:`EmbeddingRecord` — ``{"path" | "index", ["channel"], ["start", "end"], "layer", "embedding", "model",
  ["revision"]}``: hidden states of a file or window, ``embedding`` a float32 numpy array (:mod:`audioclf.engine.embed`).

``path`` names a file input, ``index`` an in-memory input by its position (a dict input with a ``"path"`` has
both). Keys appear in the order above. :func:`validate_record` checks a dict against these types;
:func:`parquet_schema` and :data:`DELIMITED_COLUMNS` are derived from the same fields.

This module also builds records (:class:`ScoreRecords`: label filter, chunk averaging, window records, aggregate)
and reads them back from the files a run wrote (:func:`read_record_file`, for ``--resume``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence, TypedDict, Union, get_args, get_origin, get_type_hints

import numpy as np

from audioclf.errors import AudioclfError, OptionError

if TYPE_CHECKING:  # pragma: no cover
    from audioclf.engine.stream import FileResult

__all__ = [
    "AGGREGATES",
    "DELIMITED_COLUMNS",
    "RESUMABLE_FORMATS",
    "ClassifyRecord",
    "EmbeddingRecord",
    "ErrorRecord",
    "EventRecord",
    "LabelScore",
    "Record",
    "ScoreRecords",
    "delimited_rows",
    "done_paths",
    "error_record",
    "record_head",
    "segment_span",
    "parquet_schema",
    "read_record_file",
    "records_from_jsonl",
    "validate_record",
]

AGGREGATES = ("mean", "max")
RESUMABLE_FORMATS = ("jsonl", "json", "csv", "tsv")


# ------------------------------------------------------------------------------------------------------- schema
class LabelScore(TypedDict):
    label: str
    score: float


class _Identity(TypedDict, total=False):
    path: str
    index: int


class _Scored(_Identity):
    labels: list[LabelScore]
    model: str


class ClassifyRecord(_Scored, total=False):
    channel: int
    start: float
    end: float
    revision: str


class ErrorRecord(_Identity):
    error: str


class _Event(_Identity):
    label: str
    start: float
    end: float
    score: float
    model: str


class EventRecord(_Event, total=False):
    channel: int
    revision: str


class _Embedding(_Identity):
    layer: Union[str, int]
    embedding: np.ndarray
    model: str


class EmbeddingRecord(_Embedding, total=False):
    channel: int
    start: float
    end: float
    revision: str


Record = Union[ClassifyRecord, ErrorRecord]

#: every field a record can have, in output order
FIELDS = ("path", "index", "channel", "start", "end", "labels", "model", "revision", "error")
#: the fields of an event record and of an embedding record, in output order
EVENT_FIELDS = ("path", "index", "channel", "label", "start", "end", "score", "model", "revision")
EMBEDDING_FIELDS = ("path", "index", "channel", "start", "end", "layer", "embedding", "model", "revision")


def validate_record(record: Any) -> None:
    """Raise ``ValueError`` (saying what is wrong) unless ``record`` is a :class:`ClassifyRecord`, an
    :class:`ErrorRecord`, an :class:`EventRecord` or an :class:`EmbeddingRecord`: the right keys, each of its
    declared type, keys in the order of its kind (:data:`FIELDS`, :data:`EVENT_FIELDS`, :data:`EMBEDDING_FIELDS`)."""
    if not isinstance(record, dict):
        raise ValueError(f"a record is a dict, got {type(record).__name__}")
    kind, order = ((ErrorRecord, FIELDS) if "error" in record else (EventRecord, EVENT_FIELDS) if "label" in record
                   else (EmbeddingRecord, EMBEDDING_FIELDS) if "embedding" in record else (ClassifyRecord, FIELDS))
    hints = get_type_hints(kind)
    missing = kind.__required_keys__ - record.keys()
    unknown = record.keys() - hints.keys()
    if missing or unknown:
        raise ValueError(f"{kind.__name__} {record!r}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    if not ({"path", "index"} & record.keys()):
        raise ValueError(f"record {record!r} has neither a path nor an index")
    if ("start" in record) != ("end" in record):
        raise ValueError(f"record {record!r} has only one of start and end")
    if list(record) != [name for name in order if name in record]:
        raise ValueError(f"record {record!r}: keys out of order (expected the order {order})")
    for key, value in record.items():
        if not _is_instance(value, hints[key]):
            raise ValueError(f"record field {key!r} = {value!r} is not {hints[key]}")


def _is_instance(value: Any, annotation: Any) -> bool:
    if get_origin(annotation) is Union:
        return any(_is_instance(value, option) for option in get_args(annotation))
    if get_origin(annotation) is list:
        (element,) = get_args(annotation)
        return isinstance(value, list) and all(_is_instance(item, element) for item in value)
    if isinstance(annotation, type) and issubclass(annotation, dict):  # a TypedDict
        hints = get_type_hints(annotation)
        return (isinstance(value, dict) and value.keys() == hints.keys()
                and all(_is_instance(value[key], hint) for key, hint in hints.items()))
    return isinstance(value, annotation) and not isinstance(value, bool)


def parquet_schema() -> Any:
    """Parquet columns of a record (:data:`FIELDS`, types from the TypedDicts); a field a record lacks is null."""
    import pyarrow as pa

    scalars = {str: pa.string(), int: pa.int64(), float: pa.float64()}

    def arrow_type(annotation: Any) -> Any:
        if get_origin(annotation) is list:
            return pa.list_(arrow_type(get_args(annotation)[0]))
        if annotation in scalars:
            return scalars[annotation]
        return pa.struct([(name, arrow_type(hint)) for name, hint in get_type_hints(annotation).items()])

    hints = {**get_type_hints(ClassifyRecord), **get_type_hints(ErrorRecord)}
    return pa.schema([(name, arrow_type(hints[name])) for name in FIELDS])


def error_record(identity: dict[str, Any], reason: str) -> ErrorRecord:
    """``{"path" | "index", "error"}`` for an input that failed."""
    return {**identity, "error": reason}  # type: ignore[typeddict-item]


def segment_span(start_frame: int, frames: int, sampling_rate: int) -> tuple[float, float]:
    """``(start, end)`` in seconds (rounded to the microsecond) of ``frames`` samples from ``start_frame``."""
    return round(start_frame / sampling_rate, 6), round((start_frame + frames) / sampling_rate, 6)


def record_head(identity: dict[str, Any], channel: int | None, span: tuple[float, float] | None = None) -> dict[str, Any]:
    """The first fields of a record: the input's identity, ``channel`` (unless ``None``: a mix), ``start``/``end``
    (unless ``span`` is ``None``)."""
    record: dict[str, Any] = dict(identity)
    if channel is not None:
        record["channel"] = channel
    if span is not None:
        record["start"], record["end"] = span
    return record


# ---------------------------------------------------------------------------------------------------- building
@dataclass
class ScoreRecords:
    """Turns one input's per-segment scores into its records.

    Attributes:
        id2label: the model's label names by id.
        allowed: label ids to report (``None``: all).
        top_k: labels per record, best first (``0``/``None``: all).
        min_score: leave out labels scoring below this.
        model: the model's name (``"model"`` field); ``revision`` its resolved commit, if any.
        windowed: a record per window (with ``start``/``end``) rather than one per stream.
        aggregate: with ``windowed``, also a record per stream: ``"mean"`` (length-weighted) or ``"max"``.
        sampling_rate: of the segments' frame positions.
    """

    id2label: dict[int, str]
    allowed: np.ndarray | None
    top_k: int | None
    min_score: float | None
    model: str
    revision: str | None
    windowed: bool
    aggregate: str | None
    sampling_rate: int

    @classmethod
    def for_config(cls, config: Any, *, labels: Sequence[str] | None = None, **fields: Any) -> "ScoreRecords":
        """From the model config's ``id2label``; ``labels`` (names) become ``allowed``, an unknown name is an
        :class:`OptionError`."""
        id2label = {int(k): str(v) for k, v in dict(config.id2label).items()}
        allowed = None
        if labels is not None:
            ids = {name: i for i, name in id2label.items()}
            unknown = [name for name in labels if name not in ids]
            if unknown:
                raise OptionError("labels", f"has unknown label(s) {', '.join(map(repr, unknown))}; the model's "
                                            f"labels are: {', '.join(id2label.values())}")
            allowed = np.array(sorted({ids[name] for name in labels}))
        return cls(id2label, allowed, **fields)

    def label_scores(self, scores: np.ndarray) -> list[LabelScore]:
        """``[{"label", "score"}, …]`` for one score vector ``[num_labels]``: allowed labels, best first, at most
        ``top_k``, none below ``min_score``."""
        ids = np.arange(scores.shape[0]) if self.allowed is None else self.allowed
        ids = ids[np.argsort(-scores[ids], kind="stable")]
        if self.min_score is not None:
            ids = ids[scores[ids] >= self.min_score]
        if self.top_k:
            ids = ids[: self.top_k]
        return [{"label": self.id2label[int(i)], "score": float(scores[i])} for i in ids]

    def records(self, result: "FileResult") -> list[Record]:
        """One input's records: its error record, or per stream (channel) the window records in time order then
        the aggregate, or one record of the chunk scores averaged by chunk length."""
        identity = result.item.identity()
        if result.error is not None:
            return [error_record(identity, result.error)]
        records: list[Record] = []
        for stream, channel in enumerate(result.streams):
            parts = [(segment, scores) for segment, scores in result.parts if segment.stream == stream]
            scores = np.stack([row for _, row in parts])
            weights = np.array([segment.frames for segment, _ in parts], dtype=np.float64)
            if not self.windowed:
                records.append(self.record(identity, channel, weighted_mean(scores, weights)))
                continue
            for segment, row in parts:
                span = segment_span(segment.start_frame, segment.frames, self.sampling_rate)
                records.append(self.record(identity, channel, row, span))
            if self.aggregate == "mean":
                records.append(self.record(identity, channel, weighted_mean(scores, weights)))
            elif self.aggregate == "max":
                records.append(self.record(identity, channel, scores.max(axis=0)))
        return records

    def record(self, identity: dict[str, Any], channel: int | None, scores: np.ndarray,
               span: tuple[float, float] | None = None) -> ClassifyRecord:
        """One :class:`ClassifyRecord` for the score vector ``scores`` ``[num_labels]``."""
        record = record_head(identity, channel, span)
        record["labels"] = self.label_scores(scores)
        record["model"] = self.model
        if self.revision:
            record["revision"] = self.revision
        return record  # type: ignore[return-value]


def weighted_mean(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``scores`` ``[S, L]`` averaged over segments with ``weights`` ``[S]`` → ``float32 [L]``."""
    return (np.einsum("s,sl->l", weights, scores.astype(np.float64)) / weights.sum()).astype(np.float32)


# ---------------------------------------------------------------------------------------- delimited (csv/tsv)
#: columns of csv/tsv output: one row per (record, label); rank counts from 1
DELIMITED_COLUMNS = ("path", "channel", "start", "end", "rank", "label", "score", "error")


def delimited_rows(record: Record) -> list[list[Any]]:
    """The csv/tsv rows of one record: one per label, or one with empty rank/label/score (an error, or every label
    filtered out). ``channel``/``start``/``end`` are empty where they do not apply."""
    base = [record["path"], record.get("channel", ""), record.get("start", ""), record.get("end", "")]
    labels = record.get("labels") or []
    if not labels:
        return [base + ["", "", "", record.get("error", "")]]
    return [base + [rank, item["label"], repr(item["score"]), ""] for rank, item in enumerate(labels, start=1)]


def _records_from_delimited(text: str, source: Path, delimiter: str) -> list[dict[str, Any]]:
    """Rows grouped back into records (consecutive rows of one path/channel/window, ranks 1, 2, …). Cells stay text
    where the writer wrote text, so writing the records again gives the same rows."""
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not rows:
        return []
    if tuple(rows[0]) != DELIMITED_COLUMNS:
        raise AudioclfError(f"{source} does not start with the header {delimiter.join(DELIMITED_COLUMNS)}")
    records: list[dict[str, Any]] = []
    key = None
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(DELIMITED_COLUMNS):
            raise AudioclfError(f"{source}: row {number} has {len(row)} cells, not {len(DELIMITED_COLUMNS)}")
        cells = dict(zip(DELIMITED_COLUMNS, row))
        row_key = (cells["path"], cells["channel"], cells["start"], cells["end"])
        if cells["rank"] in ("", "1") or row_key != key:
            record: dict[str, Any] = {"path": cells["path"]}
            for name in ("channel", "start", "end"):
                if cells[name] != "":
                    record[name] = cells[name]
            if cells["error"]:
                record["error"] = cells["error"]
            else:
                record["labels"] = []
            records.append(record)
            key = row_key
        if cells["rank"] != "":
            try:
                score = float(cells["score"])
            except ValueError:
                raise AudioclfError(f"{source}: row {number} has a score that is not a number") from None
            records[-1].setdefault("labels", []).append({"label": cells["label"], "score": score})
    return records


# ------------------------------------------------------------------------------------------------- reading back
def read_record_file(path: Path, fmt: str) -> list[dict[str, Any]]:
    """The records in an output file of format ``fmt`` (one of :data:`RESUMABLE_FORMATS`: ``jsonl`` and ``json``
    as written, ``csv``/``tsv`` grouped back from rows). Raises :class:`AudioclfError` when the file cannot be read
    or does not hold records of that format."""
    if fmt not in RESUMABLE_FORMATS:
        raise AudioclfError(f"cannot read {fmt} output back; use {', '.join(RESUMABLE_FORMATS)}")
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError) as error:
        raise AudioclfError(f"cannot read {path}: {error}") from None
    if fmt == "jsonl":
        return records_from_jsonl(text, path)
    if fmt == "json":
        data = _json(text, path, "the file") if text.strip() else []
        if not isinstance(data, list):
            raise AudioclfError(f"{path} does not hold a JSON array of records")
        return [_record(item, path, f"element {k}") for k, item in enumerate(data)]
    return _records_from_delimited(text, path, "," if fmt == "csv" else "\t")


def records_from_jsonl(text: str, source: Any) -> list[dict[str, Any]]:
    """The records of JSON Lines text (lines split at ``\\n`` only: a record's strings may hold other line
    separators such as U+2028); ``source`` names the text in errors."""
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            records.append(_record(_json(line, source, f"line {number}"), source, f"line {number}"))
    return records


def done_paths(records: Iterable[dict[str, Any]]) -> set[str]:
    """The input paths that have records."""
    return {record["path"] for record in records}


def _json(text: str, source: Any, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise AudioclfError(f"{source}: {where} is not JSON ({error.msg})") from None


def _record(value: Any, source: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("path"), str):
        raise AudioclfError(f"{source}: {where} is not a record (an object with a \"path\")")
    return value
