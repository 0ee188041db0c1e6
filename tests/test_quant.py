"""int8 keeps the accuracy of a trained model: the bundled model on the 240 held-out clips, float32 against dynamic
int8 and static int8 calibrated on other clips (scripts/quant_accuracy.py, whose figures the README quotes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: most accuracy an int8 variant may lose, in points
MAX_LOSS_POINTS = 0.5


def test_int8_keeps_held_out_accuracy(tmp_path: Path) -> None:
    out = tmp_path / "quant.json"
    env = dict(os.environ, HF_ASSETS_CACHE=str(tmp_path / "assets"), HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "quant_accuracy.py"), "--variants", "fp32,int8,int8-static",
                    "--repeats", "1", "--threads", "1", "--json", str(out)], check=True, env=env, timeout=600)
    rows = {row["variant"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows["fp32"]["clips"] == 240
    assert rows["fp32"]["accuracy"] > 0.85  # a trained model: the comparison means something
    for variant in ("int8", "int8-static"):
        loss = 100 * (rows["fp32"]["accuracy"] - rows[variant]["accuracy"])
        assert loss <= MAX_LOSS_POINTS, f"{variant} loses {loss:.2f} points"
        assert rows[variant]["max_score_diff_vs_fp32"] > 0  # int8 really ran: the scores moved
