"""Write a small, fixed subset of the held-out (never trained on) keyword clips as FLAC files for the test suite.

    python scripts/export_heldout.py --data data/synth-kws --out tests/data/heldout --per-class 20

The subset is drawn with a fixed seed from the test split made by scripts/synth_keywords.py; `manifest.json` records
each file's label and voice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/synth-kws")
    parser.add_argument("--out", default="tests/data/heldout")
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with np.load(Path(args.data) / "test.npz") as data:
        audio, labels, names, voices = data["audio"], data["labels"], data["label_names"], data["voice"]
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for label, name in enumerate(names):
        chosen = rng.choice(np.flatnonzero(labels == label), size=args.per_class, replace=False)
        for index in sorted(chosen):
            file = f"{str(name).strip('_')}_{index:04d}.flac"
            sf.write(out / file, audio[index], 16000, subtype="PCM_16")
            manifest.append({"file": file, "label": str(name), "voice": str(voices[index])})
    (out / "manifest.json").write_text(json.dumps({"command": " ".join(["python", "scripts/export_heldout.py",
                                                                        f"--data {args.data}", f"--out {args.out}",
                                                                        f"--per-class {args.per_class}",
                                                                        f"--seed {args.seed}"]),
                                                   "clips": manifest}, indent=1) + "\n")
    print(f"wrote {len(manifest)} clips to {out}")


if __name__ == "__main__":
    main()
