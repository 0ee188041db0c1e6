import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

DATA = Path(__file__).parent / "data"

_ASSETS: dict[str, str] = {}


def pytest_configure(config) -> None:
    """A private export cache for the run (before collection, so the environments that test modules copy for their
    subprocesses carry it too): classify's ONNX backend exports each model the suite uses once per run, and nothing
    is left in the user's Hugging Face cache."""
    _ASSETS["dir"] = tempfile.mkdtemp(prefix="audioclf-test-assets-")
    _ASSETS["previous"] = os.environ.get("HF_ASSETS_CACHE", "")
    os.environ["HF_ASSETS_CACHE"] = _ASSETS["dir"]


def pytest_unconfigure(config) -> None:
    if "dir" in _ASSETS:
        shutil.rmtree(_ASSETS.pop("dir"), ignore_errors=True)
        previous = _ASSETS.pop("previous")
        if previous:
            os.environ["HF_ASSETS_CACHE"] = previous
        else:
            os.environ.pop("HF_ASSETS_CACHE", None)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's in-process runs (tiny models gain nothing from more, and OpenMP thread teams
    stall on a busy machine); the previous setting is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
