"""The ONNX Runtime backend: our exported graphs against ``transformers`` on the same weights and inputs, the
backend choice, and a classify run that never imports torch once the graph is cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from oracle import build_reference, save_reference, scaled_max_diff

from audioclf.engine.onnx_runner import OnnxRunner
from audioclf.engine.runner import choose_backend
from audioclf.errors import OptionError

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

#: name → (architecture, config overrides, whether the preprocessor returns an attention mask)
CASES = {
    "wav2vec2": ("wav2vec2", {}, False),
    "wav2vec2-stable-mask": ("wav2vec2", dict(feat_extract_norm="layer", do_stable_layer_norm=True), True),
    "hubert-mask": ("hubert", dict(feat_extract_norm="layer"), True),
    "unispeech": ("unispeech", {}, False),
    "unispeech-sat": ("unispeech-sat", {}, False),
    "sew": ("sew", {}, False),
    "sew-d-mask": ("sew-d", dict(feat_extract_norm="layer"), True),
    "wavlm-mask": ("wavlm", dict(feat_extract_norm="layer", num_buckets=16, max_bucket_distance=40), True),
    "data2vec-audio": ("data2vec-audio", dict(num_conv_pos_embeddings=3), True),  # padding is never exact
    "conformer-relative": ("wav2vec2-conformer", {}, False),
    "conformer-rotary-mask": ("wav2vec2-conformer", dict(feat_extract_norm="layer",
                                                         position_embeddings_type="rotary"), True),
}


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Graphs built into a fresh cache: every run of this module exports."""
    previous = os.environ.get("HF_ASSETS_CACHE")
    os.environ["HF_ASSETS_CACHE"] = str(tmp_path_factory.mktemp("assets"))
    yield Path(os.environ["HF_ASSETS_CACHE"])
    if previous is None:
        del os.environ["HF_ASSETS_CACHE"]
    else:
        os.environ["HF_ASSETS_CACHE"] = previous


def saved_reference(directory: Path, arch: str, overrides: dict, mask: bool, seed: int = 1):
    from transformers import Wav2Vec2FeatureExtractor

    model = build_reference(arch, seed=seed, **overrides)
    save_reference(model, directory)
    (directory / "preprocessor_config.json").write_text(json.dumps(
        {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": 16000,
         "padding_value": 0.0, "do_normalize": True, "return_attention_mask": mask}))
    return model, Wav2Vec2FeatureExtractor.from_pretrained(directory)


@pytest.mark.parametrize("case", list(CASES))
def test_graph_logits_equal_transformers(case: str, tmp_path: Path) -> None:
    """Dynamic batch and time axes, masks where the model takes them: every row equals ``transformers`` on the same
    batch within 1e-4 of the logit scale."""
    arch, overrides, mask = CASES[case]
    reference, extractor = saved_reference(tmp_path / case, arch, overrides, mask)
    runner = OnnxRunner(tmp_path / case, threads=1)
    featurizer = runner.featurizer()
    rng = np.random.default_rng(3)
    # padded batches where the featurizer's padding is exact (a mask and a layer-norm conv stack), as the engine
    # batches; else one length per batch
    padded = featurizer.exact_padding(runner.config)
    assert padded == (mask and overrides.get("feat_extract_norm") == "layer" and arch != "wav2vec2-conformer")
    groups = [[4001, 3000, 2501, 3650], [12345], [777, 777]] if padded else [[4001, 4001, 4001], [12345], [777, 777]]
    for lengths in groups:
        waves = [rng.standard_normal(n).astype(np.float32) for n in lengths]
        logits = runner.forward(featurizer.collate([featurizer.featurize(w) for w in waves])).logits
        assert logits.shape == (len(waves), reference.config.num_labels)
        with torch.no_grad():  # transformers on the same batch, padded (with its mask) as the featurizer pads it
            expected = reference(**extractor(waves, sampling_rate=16000, padding=True, return_tensors="pt")).logits
        for row, expected_row in zip(logits, expected):
            assert scaled_max_diff(torch.from_numpy(row), expected_row) <= 1e-4, (case, lengths)


def test_choose_backend() -> None:
    assert choose_backend("some/model", "auto", device="cpu") == "onnx"
    assert choose_backend(None, "auto", device="auto") == "onnx"  # this machine: a CPU build of torch
    assert choose_backend(torch.nn.Linear(1, 1), "auto", device="cpu") == "torch"  # a module runs as it is
    assert choose_backend("m", "auto", device="cpu", dtype="bfloat16") == "torch"
    assert choose_backend("m", "auto", device="cuda") == "torch"
    assert choose_backend("m", "torch", device="cpu") == "torch"
    with pytest.raises(OptionError, match="^device cuda: the onnx backend runs on the CPU"):
        choose_backend("m", "onnx", device="cuda")
    with pytest.raises(OptionError, match="^dtype float16"):
        choose_backend("m", "onnx", dtype="float16")


def test_bad_backend_options_raise_at_once() -> None:
    from audioclf.engine.classify import Classifier

    with pytest.raises(OptionError, match="^backend must be one of auto, torch, onnx"):
        Classifier(None, backend="tensorrt")
    with pytest.raises(OptionError, match="^calibrate needs quantize int8"):
        Classifier(None, calibrate=[str(SAMPLES)])
    with pytest.raises(OptionError, match="^calibrate needs the onnx backend"):
        Classifier(None, quantize="int8", calibrate=[str(SAMPLES)], backend="torch")


def test_hidden_states_need_torch() -> None:
    runner = OnnxRunner(None, threads=1)
    featurizer = runner.featurizer()
    batch = featurizer.collate([featurizer.featurize(np.zeros(16000, dtype=np.float32))])
    with pytest.raises(OptionError, match="hidden states"):
        runner.forward(batch, hidden_states=True)


def test_cli_classify_on_onnx_never_imports_torch(private_cache: Path) -> None:
    """Once the graph is cached, ``classify`` (default backend) runs without importing torch, with the scores of the
    torch backend."""
    files = [str(SAMPLES / name) for name in ("speechcommands_yes_1000ms_16k_mono.wav", "synth_go_en-gb-x-rp.wav")]
    OnnxRunner(None, threads=1)  # builds the graph into the cache
    code = ("import sys; from audioclf.cli import main; sys.argv = ['audioclf', 'classify', '--format', 'jsonl', "
            f"'--top-k', '0', '--threads', '1', *{files!r}]\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    status = exit.code\n"
            "print('TORCH', 'torch' in sys.modules, status, file=sys.stderr)")
    env = dict(os.environ, HF_ASSETS_CACHE=str(private_cache))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert "TORCH False 0" in done.stderr, done.stderr
    onnx_records = [json.loads(line) for line in done.stdout.splitlines()]

    import audioclf

    torch_records = list(audioclf.classify(files, top_k=0, threads=1, backend="torch"))
    assert [r["path"] for r in onnx_records] == [r["path"] for r in torch_records] == files
    for ours, theirs in zip(onnx_records, torch_records):
        assert ours["labels"][0]["label"] == theirs["labels"][0]["label"]
        scores = {x["label"]: x["score"] for x in theirs["labels"]}
        assert max(abs(x["score"] - scores[x["label"]]) for x in ours["labels"]) <= 1e-5
