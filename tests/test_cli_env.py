"""``audioclf env``: what a bug report needs, checked against the installation itself."""

from __future__ import annotations

import importlib.util
import json
import platform
import re
import tomllib
from pathlib import Path

import torch
from typer.testing import CliRunner

from audioclf.cli import app

PYPROJECT = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")


def test_env_reports_versions_devices_paths_and_extras(tmp_path: Path) -> None:
    secret = "hf_not_a_real_token_0123456789"
    result = CliRunner().invoke(app, ["env"], env={"HF_TOKEN": secret, "HF_HOME": str(tmp_path / "home"),
                                                   "HF_HUB_CACHE": None, "HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)  # JSON when stdout is not a terminal
    assert secret not in result.stdout and facts["hub"]["token"] == "set"
    assert facts["hub"]["cache_dir"] == str(tmp_path / "home" / "hub") and facts["hub"]["offline"] is True
    assert facts["python"]["version"] == platform.python_version()
    assert {_name(name) for name in facts["dependencies"]} == {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert all(facts["dependencies"].values())
    assert facts["torch"]["version"] == torch.__version__ and facts["torch"]["cuda_available"] == torch.cuda.is_available()
    assert set(facts["extras"]) == set(PYPROJECT["project"]["optional-dependencies"])
    modules = {"test": ["pytest", "transformers", "pyte"], "tf": ["h5py"], "plot": ["matplotlib"],
               "ray": ["ray", "pyarrow"]}
    for extra, names in modules.items():
        found = all(importlib.util.find_spec(name) is not None for name in names)
        assert facts["extras"][extra]["installed"] == found, (extra, facts["extras"][extra])


def test_env_table_for_people() -> None:
    result = CliRunner().invoke(app, ["env", "-f", "table"], env={"COLUMNS": "200", "HF_TOKEN": None})
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split(None, 1)[1].strip() for line in result.stdout.splitlines() if line.strip()}
    assert rows["torch.version"] == torch.__version__
    assert rows["extras.test"] == "installed"
    assert rows["tools.ffmpeg"] in ("not found", str(__import__("shutil").which("ffmpeg")))
