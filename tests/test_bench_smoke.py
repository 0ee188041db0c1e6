"""A fast run of ``scripts/bench.py --quick``: tiny models, a few short files, one repetition.

It checks that the benchmark runs end to end (model and audio generation, every engine and peer, the report) and that
audioclf on both backends, the ONNX Runtime and OpenVINO peer scripts and the ``transformers`` pipeline give the same
fp32 scores on the 16 kHz mono clips. Speed figures are not checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"



def test_quick_bench_runs_and_agrees_with_transformers(tmp_path: Path) -> None:
    from test_audio_ffmpeg import _ensure_ffmpeg

    _ensure_ffmpeg()  # the transformers pipeline decodes file paths with ffmpeg: installed here or the test fails
    report_path = tmp_path / "report.json"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeats", "1", "--models", "w2v2-base", "--sets", "1s,60s",
         "--cache-dir", str(tmp_path / "cache"), "--json", str(report_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "| engine |" in completed.stdout  # the markdown table

    report = json.loads(report_path.read_text())
    assert report["failures"] == []
    assert report["machine"]["nproc"] >= 1 and report["machine"]["transformers"]
    rows = {(r["model"], r["set"], r["engine"]): r for r in report["rows"]}
    for engine in ("pipeline", "pipeline-sf", "api", "api-torch", "cli", "api-bf16", "api-int8", "api-int8-static",
                   "api-int8-torch"):
        assert ("w2v2-base", "1s", engine) in rows, engine
        assert ("w2v2-base", "60s", engine) in rows, engine
    for engine in ("ort-script", "ov-script"):  # the peers read 16 kHz mono sets only
        assert ("w2v2-base", "1s", engine) in rows and ("w2v2-base", "60s", engine) not in rows

    # fp32 on 16 kHz mono: the same scores as the pipeline, ours on both backends and the peers' runtimes
    for engine in ("pipeline-sf", "api", "api-torch", "cli", "ort-script", "ov-script"):
        row = rows[("w2v2-base", "1s", engine)]
        assert row["top1_agreement"] == 1.0, row
        assert row["max_score_diff"] <= 1e-4, row
    for engine in ("pipeline", "pipeline-sf", "api", "api-bf16", "api-int8"):
        assert rows[("w2v2-base", "1s", engine)]["audio_s_per_s"] > 0
    assert rows[("w2v2-base", "1s", "api")]["ratio_to_pipeline"] > 0

    # 44.1 kHz stereo: ffmpeg and soxr resample differently; the scores stay close
    assert rows[("w2v2-base", "60s", "api")]["max_score_diff"] < 0.05

    forward = report["forward"]
    assert set(forward) == {"8x1s", "1x10s"}
    for rates in forward.values():
        assert set(rates) == {"transformers", "audioclf-torch", "audioclf-onnx", "onnxruntime", "openvino"}
        assert all(r["audio_s_per_s"] > 0 for r in rates.values())

    processes = {(p["model"], p["engine"]): p for p in report["processes"]}
    for engine in ("pipeline", "api", "cli", "ort-script", "ov-script"):
        entry = processes[("w2v2-base", engine)]
        assert entry["cold_start_s"] > 0 and entry["peak_rss_mb"] > 0
    precision = {(p["set"], p["dtype"]): p for p in report["precision"]}
    assert {("1s", "bf16"), ("1s", "int8"), ("1s", "int8-static"), ("1s", "int8-torch")} <= set(precision)
    assert all(p["top1_agreement"] is not None for p in precision.values())
    assert 0 < report["help_seconds"]["median"] < 30
