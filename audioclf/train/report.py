"""What a finished training run leaves in its output directory besides the checkpoints.

* the model as a ``transformers`` checkpoint: ``config.json`` (``architectures``, the label maps, ``problem_type``
  ``single_label_classification``), ``model.safetensors`` (every tensor of the model, ``masked_spec_embed``
  included, no optimiser state), ``preprocessor_config.json`` (the start model's, unchanged; a default waveform one
  from scratch);
* ``training_report.json``: the arguments, data counts, skipped files, per-epoch figures, the kept epoch and its
  validation metrics, timings and versions;
* ``training_curves.png`` and ``confusion_matrix.png`` (the kept model on the validation clips) when matplotlib is
  installed (``audioclf[plot]``); without it the report says why they are missing.
"""

from __future__ import annotations

import json
import platform
import sys
from typing import Any

from audioclf.fileio import write_text_atomic

__all__ = ["REPORT_NAME", "training_report", "write_outputs"]

REPORT_NAME = "training_report.json"
CURVES_NAME = "training_curves.png"
CONFUSION_NAME = "confusion_matrix.png"


def training_report(run: Any) -> dict[str, Any]:
    """The JSON report of a finished run (a :class:`audioclf.train.loop._Run`)."""
    import torch

    from audioclf import __version__

    state, recipe = run.state, run.recipe
    train_clips, val_clips = run.train_scan.clips, run.val_clips
    history = state.history
    per_epoch = [row["seconds"] for row in history]
    best = dict(state.best or {})
    return {
        "arguments": recipe.to_dict(),
        "labels": list(run.labels),
        "start": {"model": recipe.start_model, "config": recipe.config, "learning_rate": run.learning_rate,
                  "parameters": sum(p.numel() for p in run.model.parameters()),
                  "trainable_parameters": sum(p.numel() for p in run.model.parameters() if p.requires_grad),
                  "frozen": run.frozen.summary() if run.frozen is not None else None},
        "data": {"train": _counts(train_clips, run.labels), "validation": _counts(val_clips, run.labels),
                 "skipped": [{"path": clip.path, "label": clip.label, "reason": reason} for clip, reason in run.skipped]},
        "epochs": history,
        "kept_epoch": best.get("epoch"),
        "stopped_early": state.stopped_early,
        "validation": best.get("validation"),
        "timings": {**{key: round(value, 3) for key, value in run.timings.items()},
                    "seconds_per_epoch": round(sum(per_epoch) / len(per_epoch), 3) if per_epoch else None},
        "versions": {"audioclf": __version__, "torch": torch.__version__, "python": platform.python_version(),
                     "platform": platform.platform()},
        "command": sys.argv,
        "pictures": None,
    }


def _counts(clips: list[Any], labels: list[str]) -> dict[str, Any]:
    per_label = {label: 0 for label in labels}
    for clip in clips:
        per_label[clip.label] += 1
    return {"clips": len(clips), "per_label": per_label}


def write_outputs(run: Any, report: dict[str, Any]) -> None:
    """The model files, the pictures (when matplotlib is there) and the report, each written atomically."""
    from audioclf.audio.features import FeatureExtractor
    from audioclf.checkpoints.files import PREPROCESSOR_CONFIG_NAME
    from audioclf.plots import INSTALL_HINT, confusion_matrix_plot, plotting_available, training_curves_plot

    output = run.output
    run.model.save_pretrained(output)
    source = None if run.start_directory is None else run.start_directory / PREPROCESSOR_CONFIG_NAME
    if source is not None and source.is_file():
        write_text_atomic(output / PREPROCESSOR_CONFIG_NAME, source.read_text(encoding="utf-8"))
    elif isinstance(run.featurizer, FeatureExtractor):
        run.featurizer.save_pretrained(output)
    if plotting_available():
        pictures = []
        if report["epochs"]:
            training_curves_plot(report["epochs"], output / CURVES_NAME, report["kept_epoch"])
            pictures.append(CURVES_NAME)
        validation = report["validation"]
        if validation:
            confusion = validation["confusion"]
            confusion_matrix_plot(confusion["labels"], confusion["matrix"], output / CONFUSION_NAME,
                                  title=f"Validation, epoch {report['kept_epoch']}")
            pictures.append(CONFUSION_NAME)
        report["pictures"] = pictures
    else:
        report["pictures"] = INSTALL_HINT
        run.events.message(f"no pictures: {INSTALL_HINT}")
    write_text_atomic(output / REPORT_NAME, json.dumps(report, indent=1) + "\n")
