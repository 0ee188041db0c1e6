"""``audioclf env``: what a bug report needs to know about this installation (no network, nothing written).

Versions of Python, audioclf and every runtime dependency (read from the installed package's own metadata, so the
list follows pyproject.toml), torch's build, devices and threads, ffmpeg, the Hub settings and cache folder (a
token is reported as set or not, never shown), and which extras are installed.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import sys
from typing import Any, Literal

from audioclf.cli._errors import handles_errors
from audioclf.cli._options import Format, examples
from audioclf.cli._output import Column, choose_format, print_machine, print_table

EXAMPLES = examples(
    ("audioclf env", "a table on a terminal"),
    ("audioclf env -f json > env.json", "attach to a bug report"),
)

EnvFormat = Literal["auto", "table", "json"]

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


@handles_errors()
def env(output_format: Format[EnvFormat] = "auto") -> None:
    """Show versions, devices, cache paths and installed extras, for bug reports.

    A table on a terminal, one JSON object when stdout is piped. Nothing is downloaded or written; a Hub token is
    only reported as set or not set.
    """
    fmt = choose_format(output_format, False, machine="json", allowed=("table", "json"))
    facts = collect()
    if fmt == "json":
        print_machine(facts, fmt)
        return
    rows = [(key, _cell(value, "not found" if key.startswith("tools.") else "none")) for key, value in _flatten(facts)]
    print_table([Column("", bold=True), Column("")], rows, show_header=False)


def collect() -> dict[str, Any]:
    """Everything ``audioclf env`` reports, as a JSON-ready dict."""
    from audioclf import __version__

    requirements = _requirements()
    return {
        "audioclf": {"version": __version__, "location": os.path.dirname(os.path.dirname(__file__))},
        "python": {"version": platform.python_version(), "executable": sys.executable,
                   "platform": platform.platform()},
        "dependencies": {name: _version(name) for name in requirements.get("", [])},
        "torch": _torch(),
        "tools": {"ffmpeg": shutil.which("ffmpeg")},
        "hub": _hub(),
        "extras": {extra: {"installed": all(_version(name) is not None for name in names),
                           "missing": [name for name in names if _version(name) is None]}
                   for extra, names in sorted(requirements.items()) if extra},
    }


def _requirements() -> dict[str, list[str]]:
    """Distribution names audioclf requires, by extra (``""``: the runtime dependencies)."""
    try:
        lines = importlib.metadata.requires("audioclf") or []
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return {}
    by_extra: dict[str, list[str]] = {}
    for line in lines:
        name, extra = _NAME.match(line), _EXTRA.search(line)
        if name:
            by_extra.setdefault(extra.group(1) if extra else "", []).append(name.group(1))
    return by_extra


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _torch() -> dict[str, Any]:
    try:
        import torch
    except Exception as error:  # a broken torch install is exactly what this command must show
        return {"error": f"{type(error).__name__}: {error}"}
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None)
    return {
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": cuda,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "mps_available": bool(mps is not None and mps.is_available()),
        "threads": torch.get_num_threads(),
    }


def _hub() -> dict[str, Any]:
    from audioclf.checkpoints import hub

    return {
        "endpoint": hub.hub_endpoint(),
        "cache_dir": str(hub.default_cache_dir()),
        "HF_HOME": os.environ.get("HF_HOME"),
        "offline": hub.is_offline_mode(),
        "token": "set" if os.environ.get("HF_TOKEN") or _saved_token() else "not set",
    }


def _saved_token() -> bool:
    try:
        from huggingface_hub import get_token

        return get_token() is not None
    except Exception:  # an unreadable token file is "not set" for this report
        return False


def _flatten(facts: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in facts.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and not {"installed", "missing"} >= set(value):
            rows += _flatten(value, name + ".")
        else:
            rows.append((name, value))
    return rows


def _cell(value: Any, none: str) -> str:
    if isinstance(value, dict):  # an extra
        return "installed" if value["installed"] else f"not installed (missing {', '.join(value['missing'])})"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return none if value is None else str(value)
