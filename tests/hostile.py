"""Helpers of the hostile-input tests: a small real model to mutate, the CLI in-process, a subprocess under limits."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import audioclf.auto

AUDIO = Path(__file__).parent / "data" / "audio"
CLIP = AUDIO / "speechcommands_yes_1000ms_16k_mono.wav"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}


def model_copy(directory: Path, **config_changes: Any) -> Path:
    """A copy of the bundled default model (4 layers, 12 labels) in ``directory`` with ``config_changes`` applied;
    ``labels=[...]`` renames the labels (cycling through the list)."""
    shutil.copytree(audioclf.auto.DEFAULT_MODEL_DIR, directory)
    config = json.loads((directory / "config.json").read_text())
    labels = config_changes.pop("labels", None)
    if labels is not None:
        count = len(config["id2label"])
        names = [labels[i] if i < len(labels) else f"{labels[i % len(labels)]}{i}" for i in range(count)]
        config["id2label"] = {str(i): name for i, name in enumerate(names)}
        config["label2id"] = {name: i for i, name in enumerate(names)}
    config.update(config_changes)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def cli(*args: str, stdin: str | None = None) -> Any:
    """Run ``audioclf ARGS`` in this process (stdout is not a terminal); returns click's Result (exit_code, stdout,
    stderr)."""
    from audioclf.cli import app

    return CliRunner().invoke(app, list(args), input=stdin, catch_exceptions=False)


def one_error_line(result: Any) -> str:
    """The single ``error: ...`` line of a run that must have failed with a usage error (exit 2)."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (result.exit_code, lines)
    return lines[0]


def limited_run(args: list[str], address_space: int = 3 << 30, timeout: float = 300,
                **kwargs: Any) -> subprocess.CompletedProcess:
    """``python ARGS`` under an address-space limit and a timeout (a hang fails the test)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=ENV,
                          preexec_fn=limit, **kwargs)


def without_root_powers() -> list[str]:
    """A command prefix that makes file permissions count (root's capabilities to ignore them dropped)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test permissions as root: apt-get install util-linux"
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner"]
