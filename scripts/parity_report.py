"""Print the largest logit and hidden-state differences against transformers, per architecture.

Runs the configurations of tests/test_parity.py (every forward-pass switch) on a padded batch with an attention
mask, the same batch without a mask, and single unpadded inputs, and reports the worst case of each type.

    .venv/bin/python scripts/parity_report.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import audioclf  # noqa: E402
from oracle import build_reference, padded_batch, save_reference, scaled_max_diff  # noqa: E402
from test_parity import CASES  # noqa: E402


def main() -> None:
    values, mask = padded_batch()
    inputs = [dict(input_values=values, attention_mask=mask), dict(input_values=values),
              dict(input_values=values[:1, :4001]), dict(input_values=values[2:3, :2501])]
    print(f"{'model_type':<14} {'configs':>7} {'max |Δlogit| / scale':>22} {'max |Δhidden| / scale':>22}")
    for model_type, cases in CASES.items():
        worst_logit = worst_hidden = 0.0
        for index, overrides in enumerate(cases):
            reference = build_reference(model_type, seed=len(overrides), **overrides)
            with tempfile.TemporaryDirectory() as directory:
                save_reference(reference, Path(directory))
                ours = audioclf.AutoModelForAudioClassification.from_pretrained(directory)
            with torch.no_grad():
                for batch in inputs:
                    expected = reference(**batch, output_hidden_states=True)
                    got = ours(**batch, output_hidden_states=True)
                    worst_logit = max(worst_logit, scaled_max_diff(got.logits, expected.logits))
                    for a, b in zip(got.hidden_states, expected.hidden_states):
                        worst_hidden = max(worst_hidden, scaled_max_diff(a, b))
        print(f"{model_type:<14} {len(cases):>7} {worst_logit:>22.2e} {worst_hidden:>22.2e}")


if __name__ == "__main__":
    main()
