"""Bytes fuzzers over every reader of a file a user may be handed: WAV/FLAC/Ogg (Vorbis, Opus)/MP3 headers,
config.json and preprocessor_config.json, safetensors headers, TF bundles (index and data) and Keras .h5 files.

Each group runs :mod:`fuzz_worker` in a subprocess under an address-space limit (``FUZZ_ADDRESS_SPACE``, 3 GiB) and
a timeout, so an allocation a file only declares fails as ``MemoryError`` and a hang fails the test. Every mutated
file must read or give the reader's one-line error: no other exception, no traceback. The examples are derived from
a fixed seed; ``AUDIOCLF_FUZZ_SCALE`` multiplies their number (e.g. 20 for a longer hunt). Marked ``fuzz`` (about a
minute on 2 cores in all); ``pytest -m "not fuzz"`` leaves them out, ``make test`` runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "fuzz_worker.py"
SCALE = float(os.environ.get("AUDIOCLF_FUZZ_SCALE", "1"))

#: group -> {target: examples}; the weight readers are slower per example (they build tensors)
GROUPS = {
    "audio": {"wav": 100, "flac": 100, "ogg": 100, "opus": 100, "mp3": 100},
    "configs": {"config": 100, "preprocessor": 100},
    "weights": {"safetensors": 60, "h5": 40, "bundle-index": 40, "bundle-data": 40},
}


@pytest.mark.fuzz
@pytest.mark.parametrize("group", list(GROUPS))
def test_mutated_files_read_or_give_one_line_errors(group: str) -> None:
    targets = [f"{name}:{max(1, round(count * SCALE))}" for name, count in GROUPS[group].items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FUZZ_ADDRESS_SPACE": str(3 << 30)}
    result = subprocess.run([sys.executable, str(WORKER), *targets], capture_output=True, text=True, env=env,
                            timeout=240 * max(1.0, SCALE), cwd=WORKER.parent)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    assert "Traceback" not in report, report[-6000:]
    assert [line.split(":")[0] for line in result.stdout.splitlines() if line.endswith("no finding")] == \
        list(GROUPS[group]), report[-6000:]
