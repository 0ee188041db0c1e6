"""Opt-in reduced precision in the classify engine: bfloat16 and dynamic int8 quantization stay close to float32."""

from __future__ import annotations

from pathlib import Path

import pytest

import audioclf
from audioclf.errors import AudioclfError

CLIPS = sorted((Path(__file__).parent / "data" / "heldout").glob("*.flac"))[::10]


def top1(records):
    return {r["path"]: (r["labels"][0]["label"], r["labels"][0]["score"]) for r in records}


@pytest.mark.parametrize("options", [dict(quantize="int8"), dict(dtype="bfloat16")], ids=["int8", "bfloat16"])
def test_reduced_precision_agrees_with_float32(options):
    reference = top1(audioclf.classify([str(c) for c in CLIPS], top_k=1))
    reduced = top1(audioclf.classify([str(c) for c in CLIPS], top_k=1, **options))
    assert reduced.keys() == reference.keys()
    agree = sum(reduced[p][0] == reference[p][0] for p in reference) / len(reference)
    assert agree >= 0.9
    assert max(abs(reduced[p][1] - reference[p][1]) for p in reference) < 0.2
    assert any(reduced[p][1] != reference[p][1] for p in reference)  # the option really changed the computation


def test_quantize_option_errors():
    with pytest.raises(AudioclfError, match="quantize must be int8"):
        audioclf.classify([str(CLIPS[0])], quantize="int4")
    with pytest.raises(AudioclfError, match="float32 models only"):
        audioclf.classify([str(CLIPS[0])], quantize="int8", dtype="bfloat16")
