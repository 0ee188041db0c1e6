"""Converting TensorFlow checkpoints (``tf_model.h5``, tensor bundles) into a safetensors checkpoint directory.

The output directory holds ``model.safetensors``, ``config.json`` and, when the source has one,
``preprocessor_config.json``. It is built in a temporary directory beside the target and renamed into place, so an
error at any step leaves nothing behind and an existing output is only replaced with ``force``.

``force`` replaces only an earlier conversion result: an output directory that is the source, holds the source (an
ancestor of it), or holds anything besides the files a conversion writes is refused (:func:`check_replaceable`), and
the old result is removed file by file, never as a tree. The output's lock (:func:`audioclf.fileio.locked_output`)
is held meanwhile.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from audioclf.checkpoints.files import CONFIG_NAME, PREPROCESSOR_CONFIG_NAME, SAFETENSORS_NAME
from audioclf.config import ModelConfig
from audioclf.errors import AudioclfError, CheckpointError, OutputError

#: the files a conversion writes: the only ones ``force`` removes
CONVERSION_FILES = frozenset({SAFETENSORS_NAME, CONFIG_NAME, PREPROCESSOR_CONFIG_NAME})


def _replace_directory(staging: Path, output: Path) -> None:
    """Put ``staging`` at ``output``; an existing ``output`` (checked by :func:`check_replaceable`) is moved aside
    first and then emptied of the conversion files only."""
    if not output.exists():
        os.replace(staging, output)
        return
    old = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.old.", suffix=".tmp"))
    os.replace(output, old / output.name)
    os.replace(staging, output)
    for name in CONVERSION_FILES:
        (old / output.name / name).unlink(missing_ok=True)
    (old / output.name).rmdir()
    old.rmdir()


@dataclass
class ConversionSummary:
    """What a conversion did: tensors written, TF variables left out, model parameters the source lacks."""

    output: Path
    source_format: str
    tensors: int
    parameters: int
    ignored: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config_overrides: dict = field(default_factory=dict)


def _source_directory(source: Path) -> Path:
    return source if source.is_dir() else source.parent


def check_replaceable(output: Path, sources: list[Path], force: bool) -> None:
    """Raise :class:`OutputError` unless ``output`` may receive a conversion: it does not exist, or ``force`` is
    given and it is a directory holding only :data:`CONVERSION_FILES` that neither is nor contains any of
    ``sources`` (the checkpoint, its config)."""
    if not output.exists() and not output.is_symlink():
        return
    if not force:
        raise AudioclfError(f"{output} already exists; pass --force to replace it")
    if output.is_symlink() or not output.is_dir():
        raise OutputError(f"{output} exists and is not a directory; not replacing it")
    real = Path(os.path.realpath(output))
    for source in sources:
        inside = Path(os.path.realpath(source))
        if inside == real or real in inside.parents:
            raise OutputError(f"--output {output} holds the source {source}; not replacing it (choose another "
                              "directory)")
    others = sorted(entry.name for entry in os.scandir(output)
                    if entry.name not in CONVERSION_FILES or not entry.is_file(follow_symlinks=False))
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise OutputError(f"--output {output} holds files that are not a conversion result ({shown}); --force "
                          "replaces only an earlier conversion")


def convert_tf_checkpoint(source: str | os.PathLike, output: str | os.PathLike,
                          config: str | os.PathLike | ModelConfig | None = None,
                          force: bool = False) -> ConversionSummary:
    """Convert ``source`` (a directory with ``tf_model.h5`` / its shard index / a ``checkpoint`` file, an ``.h5``
    file, a ``*.ckpt.index`` file or a checkpoint prefix) into a safetensors checkpoint in ``output``.

    The config comes from ``config`` or the source's ``config.json``. A missing encoder parameter is an error; a
    missing classification head is reported in ``absent`` (it is initialised when the result is loaded). An
    existing ``output`` is replaced only with ``force`` and only when it holds an earlier conversion
    (:func:`check_replaceable`).
    """
    from audioclf.fileio import locked_output

    source, output = Path(source).expanduser(), Path(output).expanduser()
    if not source.exists() and not Path(str(source) + ".index").exists():
        raise CheckpointError(f"TF checkpoint not found: {source}")
    sources = [source] + ([Path(config)] if isinstance(config, (str, os.PathLike)) else [])
    check_replaceable(output, sources, force)
    output.parent.mkdir(parents=True, exist_ok=True)
    with locked_output(output, directory=True):
        return _convert(source, output, config, sources, force)


def _convert(source: Path, output: Path, config: str | os.PathLike | ModelConfig | None, sources: list[Path],
             force: bool) -> ConversionSummary:
    import torch

    from audioclf.auto import AutoConfig
    from audioclf.checkpoints.files import save_safetensors
    from audioclf.checkpoints.tf import check_expected_keys, load_tf_state_dict, tf_config_overrides
    from audioclf.models import model_class

    if isinstance(config, ModelConfig):
        model_config = config.copy()
    elif config is not None:
        model_config = AutoConfig.from_pretrained(config)
    else:
        config_path = _source_directory(source) / CONFIG_NAME
        if not config_path.is_file():
            raise AudioclfError(f"no config for {source}: pass --config CONFIG (no {CONFIG_NAME} beside the checkpoint)")
        model_config = AutoConfig.from_pretrained(config_path)
    overrides = tf_config_overrides(model_config.to_dict())
    for key, value in overrides.items():
        setattr(model_config, key, value)

    checkpoint = load_tf_state_dict(source)
    with torch.device("meta"):
        expected = model_class(model_config.model_type)(model_config).state_dict()
    try:
        report = check_expected_keys(checkpoint, expected)
    except CheckpointError as error:
        raise CheckpointError(f"{source}: {error} (does the config fit the checkpoint?)") from None

    check_replaceable(output, sources, force)  # again: it may have changed while the checkpoint was read
    staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp"))
    try:
        state = {key: value.to(torch.float32).contiguous() if value.is_floating_point() else value.contiguous()
                 for key, value in report.state_dict.items()}
        save_safetensors(state, staging / SAFETENSORS_NAME, metadata={"converted_from": checkpoint.source_format})
        model_config.save_pretrained(staging)
        preprocessor = _source_directory(source) / PREPROCESSOR_CONFIG_NAME
        if preprocessor.is_file():
            shutil.copyfile(preprocessor, staging / PREPROCESSOR_CONFIG_NAME)
        _replace_directory(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # our own temporary directory
        raise
    return ConversionSummary(
        output=output, source_format=checkpoint.source_format, tensors=len(state),
        parameters=sum(t.numel() for t in state.values()), ignored=list(checkpoint.ignored),
        absent=list(report.missing), notes=list(report.notes) + list(checkpoint.notes), config_overrides=overrides,
    )
