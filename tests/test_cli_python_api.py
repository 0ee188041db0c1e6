"""The Python API a newcomer finds: ``dir()`` and ``help()`` list it despite the lazy imports, records are typed,
``classify`` takes audio in memory as documented."""

from __future__ import annotations

import pydoc
import subprocess
import sys
from pathlib import Path
from typing import get_type_hints, is_typeddict

import numpy as np
import soundfile as sf

import audioclf

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "synth_yes_en-gb.wav"
PUBLIC = {"classify", "Classifier", "AutoConfig", "AutoModelForAudioClassification", "AutoFeatureExtractor",
          "ModelConfig", "AudioclfError", "ClassifyRecord", "ErrorRecord", "LabelScore", "Record"}


def test_dir_lists_the_api_without_importing_torch() -> None:
    code = "import sys, audioclf; print(sorted(dir(audioclf))); print('torch' in sys.modules)"
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.splitlines()
    listed = set(eval(lines[0]))  # a printed list of names
    assert PUBLIC <= listed and lines[1] == "False"
    assert not {"importlib", "Any", "TYPE_CHECKING", "annotations"} & listed  # helpers of __init__ stay out
    assert set(audioclf.__all__) == PUBLIC | {"__version__"}


def test_help_documents_every_public_name() -> None:
    text = pydoc.render_doc(audioclf, renderer=pydoc.plaintext)
    for name in PUBLIC - {"Record"}:  # Record is a Union alias: pydoc lists it under DATA
        assert f"class {name}" in text or f"{name}(" in text, name
    assert "Record = typing.Union[audioclf.engine.records.ClassifyRecord" in text


def test_records_are_typed_dicts_and_the_package_is_typed() -> None:
    assert is_typeddict(audioclf.ClassifyRecord) and is_typeddict(audioclf.ErrorRecord)
    assert get_type_hints(audioclf.LabelScore) == {"label": str, "score": float}
    assert (Path(audioclf.__file__).parent / "py.typed").is_file()


def test_classify_takes_audio_in_memory_like_the_file() -> None:
    """The README's example: an array read with soundfile gives the same scores as the file it came from."""
    waveform, rate = sf.read(SAMPLE, dtype="float32")
    from_file = next(audioclf.classify([str(SAMPLE)], threads=1, top_k=0))
    in_memory = list(audioclf.classify([waveform], sampling_rate=rate, threads=1, top_k=0))
    pair = next(audioclf.classify((waveform, rate), threads=1, top_k=0))
    as_dict = next(audioclf.classify({"array": waveform, "sampling_rate": rate}, threads=1, top_k=0))
    assert len(in_memory) == 1 and in_memory[0]["index"] == 0 and "path" not in in_memory[0]
    expected = {item["label"]: item["score"] for item in from_file["labels"]}
    for record in (in_memory[0], pair, as_dict):
        scores = {item["label"]: item["score"] for item in record["labels"]}
        assert scores.keys() == expected.keys()
        assert np.allclose([scores[k] for k in expected], list(expected.values()), atol=1e-6)
