"""The keyword-spotting model shipped inside the package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import audioclf
from audioclf.auto import DEFAULT_MODEL_DIR

HELDOUT = Path(__file__).parent / "data" / "heldout"
LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_silence_", "_unknown_"]


def test_bundled_files_and_size():
    names = sorted(p.name for p in DEFAULT_MODEL_DIR.iterdir())
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= set(names)
    assert sum((DEFAULT_MODEL_DIR / n).stat().st_size for n in names) <= 5 * 2**20
    model = audioclf.AutoModelForAudioClassification.from_pretrained("audioclf/default")
    assert sorted(model.config.id2label.values()) == sorted(LABELS)
    assert type(model).model_type in audioclf.config.SUPPORTED_MODEL_TYPES


def test_heldout_voices_accuracy_through_the_cli():
    manifest = json.loads((HELDOUT / "manifest.json").read_text())["clips"]
    result = subprocess.run([sys.executable, "-m", "audioclf", "classify", "--format", "jsonl", "--top-k", "1",
                             *[str(HELDOUT / clip["file"]) for clip in manifest]], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(manifest)
    predicted = {Path(r["path"]).name: r["labels"][0]["label"] for r in records}
    assert all(r["model"] == "audioclf/default" for r in records)
    correct = sum(predicted[clip["file"]] == clip["label"] for clip in manifest)
    assert correct / len(manifest) >= 0.90, f"{correct}/{len(manifest)} correct"


def test_inspect_shows_the_default_model():
    result = subprocess.run([sys.executable, "-m", "audioclf", "inspect", "audioclf/default", "--json"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["labels"] == [audioclf.AutoConfig.from_pretrained(DEFAULT_MODEL_DIR).id2label[i] for i in range(12)]
    assert facts["sampling_rate"] == 16000
