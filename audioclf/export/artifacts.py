"""Which graph a model runs as, where it is cached, and how it is built.

:func:`model_files` resolves a model name (directory, weights file, Hub id, ``None`` for the default model) to its
local files, config and featurizer without torch. :func:`cached_graph` returns the cache entry (see
:mod:`audioclf.export.cache`) of its graph for a variant, building it when needed: the one step that imports torch
(load the checkpoint with our own model classes, trace it, then let ONNX Runtime optimize, and for ``int8`` variants
quantize, the graph). :func:`export_model` writes the plain traced graph to a path of the user's choosing.

Variants: ``fp32``; ``int8`` (dynamic: int8 weights of the linear layers, activations quantized per batch);
``int8-static`` (weights and activations int8, activation ranges calibrated on the user's audio).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from audioclf.errors import AudioclfError, OptionError
from audioclf.export.cache import CacheEntry, digest_files, entry_key, file_digest, open_or_build
from audioclf.fileio import atomic_path

__all__ = ["EXPORT_FORMAT", "GRAPH_NAME", "VARIANTS", "ModelFiles", "cached_graph", "calibration_batches",
           "export_model", "model_files"]

#: bump whenever the exporter changes the graph it writes for the same checkpoint (part of every cache key)
EXPORT_FORMAT = 2
GRAPH_NAME = "model.onnx"
VARIANTS = ("fp32", "int8", "int8-static")
#: most segments of calibration audio used for ``int8-static``
CALIBRATION_SEGMENTS = 64


@dataclass(frozen=True)
class ModelFiles:
    """A model's local files: ``directory`` (config files), ``weights`` (the files holding tensors), ``load_path``
    (what ``from_pretrained`` reads: the directory, or the weights file named), its ``name`` for records, resolved
    Hub ``revision`` (``None`` for local files), ``config`` and ``featurizer``."""

    name: str
    directory: Path
    weights: tuple[Path, ...]
    load_path: Path
    revision: str | None
    config: Any
    featurizer: Any


def model_files(model: str | os.PathLike[str] | None = None, revision: str | None = None, *,
                token: str | bool | None = None, cache_dir: str | os.PathLike[str] | None = None) -> ModelFiles:
    """Resolve ``model`` (fetching from the Hub when needed: ``revision``, access ``token``, ``cache_dir``) without
    importing torch."""
    from audioclf.audio.features import load_featurizer
    from audioclf.auto import DEFAULT_MODEL_NAME, AutoConfig, resolve_source
    from audioclf.checkpoints.files import find_weights, location_for_file, shard_names

    name = DEFAULT_MODEL_NAME if model is None else os.fspath(model)
    source = resolve_source(name, hub={"revision": revision, "token": token, "cache_dir": cache_dir})
    config = AutoConfig.from_pretrained(source.directory)  # first, as loading the model does: the same errors
    location = (location_for_file(source.weights_file) if source.weights_file is not None
                else find_weights(source.directory))
    weights = ([location.path.parent / shard for shard in shard_names(location.path)] if location.sharded
               else [location.path])
    return ModelFiles(name, source.directory, tuple(weights), source.weights_file or source.directory, source.commit,
                      config, load_featurizer(source.directory))


def _config_digests(directory: Path) -> dict[str, str | None]:
    from audioclf.checkpoints.files import CONFIG_NAME, PREPROCESSOR_CONFIG_NAME

    out: dict[str, str | None] = {}
    for name in (CONFIG_NAME, PREPROCESSOR_CONFIG_NAME):
        path = directory / name
        out[name] = file_digest(path) if path.is_file() else None
    return out


def cached_graph(files: ModelFiles, variant: str = "fp32", calibrate: Sequence[str | os.PathLike[str]] | None = None,
                 *, threads: int | None = None) -> CacheEntry:
    """The cache entry holding ``files``' graph for ``variant`` (its graph is ``entry.path(GRAPH_NAME)``), built when
    missing or corrupt. ``calibrate``: audio files or directories (``int8-static`` only)."""
    from audioclf.export.runtime import runtime_version

    if variant not in VARIANTS:
        raise OptionError("quantize", f"must be one of {', '.join(VARIANTS)}, got {variant!r}")
    calibration: list[Path] = []
    if variant == "int8-static":
        calibration = _calibration_files(calibrate or [])
    parts = {"format": EXPORT_FORMAT, "runtime": runtime_version(), "variant": variant,
             "weights": digest_files(files.weights), "configs": _config_digests(files.directory),
             "calibration": sorted(file_digest(path) for path in calibration)}
    if variant == "int8-static":
        parts["calibration_segments"] = CALIBRATION_SEGMENTS
    return open_or_build(entry_key(parts),
                         lambda folder: _build(files, variant, calibration, folder, threads) | {"key_parts": parts})


def _calibration_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    from audioclf.data.sources import expand_inputs

    found = sorted({Path(item.path) for item in expand_inputs([os.fspath(p) for p in paths], recursive=True)
                    if item.error is None and item.path is not None})
    if not found:
        raise OptionError("calibrate", f"{', '.join(map(os.fspath, paths)) or 'nothing'}: no audio files found")
    return found


def calibration_batches(files: ModelFiles, audio: Sequence[Path], limit: int = CALIBRATION_SEGMENTS
                        ) -> Iterator[dict[str, Any]]:
    """One collated single-segment batch per segment of ``audio`` (cut as ``classify`` cuts files), at most
    ``limit``; files that cannot be decoded are skipped."""
    from audioclf.data.segments import FrameCounter, Segmenter
    from audioclf.data.sources import SourceItem

    segmenter = Segmenter.for_model(files.config, files.featurizer)
    given = 0
    for path in audio:
        try:
            source, streams = segmenter.open(SourceItem(str(path)))
            for segment in segmenter.segments(source, len(streams), FrameCounter(segmenter.sampling_rate)):
                yield files.featurizer.collate([segment.features])
                given += 1
                if given >= limit:
                    return
        except AudioclfError:
            continue


def _load_torch_model(files: ModelFiles) -> Any:
    from audioclf.auto import AutoModelForAudioClassification

    # inference, as on torch: every weight must be in the checkpoint (no random head, no random layer)
    return AutoModelForAudioClassification.from_pretrained(files.load_path, missing_weights="none")


def _build(files: ModelFiles, variant: str, calibration: list[Path], folder: Path, threads: int | None
           ) -> dict[str, Any]:
    """Write the graph of ``variant`` into ``folder`` (torch is imported here)."""
    from audioclf.export.onnx import export_onnx
    from audioclf.export.runtime import optimize_graph, quantize_dynamic_graph, quantize_static_graph

    scratch = Path(tempfile.mkdtemp(prefix="audioclf-export-"))
    try:
        traced = scratch / "traced.onnx"
        inputs = export_onnx(_load_torch_model(files), files.featurizer, traced)
        graph = traced
        if variant == "int8":
            graph = scratch / "int8.onnx"
            quantize_dynamic_graph(traced, graph)
        elif variant == "int8-static":
            graph = scratch / "int8-static.onnx"
            batches = list(calibration_batches(files, calibration))
            if not batches:
                raise OptionError("calibrate", "none of the calibration files could be decoded")
            quantize_static_graph(traced, graph, batches)
        optimize_graph(graph, folder / GRAPH_NAME, threads)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"model": files.name, "revision": files.revision, "inputs": inputs, "variant": variant,
            "calibration_files": len(calibration)}


def export_model(model: str | os.PathLike[str] | None, target: str | os.PathLike[str], *,
                 revision: str | None = None, token: str | bool | None = None,
                 cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write the model's plain traced graph (no runtime-specific fusions: any ONNX runtime reads it) to ``target``
    (weights in ``target`` + ``.data``), atomically. Returns ``target``."""
    from audioclf.export.onnx import export_onnx
    from audioclf.export.runtime import DATA_SUFFIX

    files = model_files(model, revision, token=token, cache_dir=cache_dir)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = target.parent / (target.name + DATA_SUFFIX)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        export_onnx(_load_torch_model(files), files.featurizer, scratch / target.name, data_name=data.name)
        for written, final in ((scratch / data.name, data), (scratch / target.name, target)):  # the graph last
            with atomic_path(final) as temporary:
                os.replace(written, temporary)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
