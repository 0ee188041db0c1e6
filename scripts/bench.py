#!/usr/bin/env python3
"""Throughput, cold start, memory and agreement of audioclf against the ``transformers`` pipeline.

One run times, on the same model directory, the same files and the same thread count:

* ``pipeline``     - ``transformers.pipeline("audio-classification")`` called once per file path (batch size 1,
                     ``top_k=None``); it decodes every file with an ``ffmpeg`` subprocess (mono mix + resample).
* ``pipeline-sf``  - the same pipeline object called with arrays decoded by ``soundfile`` (mixed to mono and
                     resampled with soxr HQ when needed), so the cost of the ffmpeg subprocess shows separately.
* ``api``          - ``audioclf.engine.classify.Classifier(dir, top_k=0, threads=N)`` (what ``audioclf.classify`` builds),
                     classifying the whole list in one call with its default options (the default backend: ONNX
                     Runtime on our own exported graph, cached beforehand).
* ``api-torch``    - the same with ``backend="torch"``.
* ``cli``          - the installed ``audioclf classify --model DIR --top-k 0 --threads N --format jsonl FILES...``.
* ``ort-script``   - what a speed-minded user scripts instead (:data:`PEER_SCRIPT`): the transformers checkpoint
                     exported with ``torch.onnx.export``, soundfile decode, normalisation, batches of 8, one ONNX
                     Runtime session with default options; ``ov-script`` the same with OpenVINO.
* ``forward``      - raw forward in one process, interleaved: transformers, audioclf on each backend, the peer graph
                     in ONNX Runtime and OpenVINO, on an 8 x 1 s and a 1 x 10 s batch.
* ``api-bf16``     - the API with ``dtype="bfloat16"`` (torch backend).
* ``api-cuda``     - the API on the GPU (``device="cuda"``, torch backend) in float32; ``api-cuda-fp16`` /
                     ``api-cuda-bf16`` in half precision (rows only with ``--precision cuda,...`` on a CUDA machine).
* ``api-int8``     - the API with ``quantize="int8"`` (ONNX Runtime dynamic int8 linear layers);
  ``api-int8-static`` with ``calibrate`` (a separate set of 16 clips of the same kind); ``api-int8-torch`` on the
                     fp32 model after ``torch.ao.quantization.quantize_dynamic`` of its linear layers.

Every engine runs in its own fresh process, for each repetition, interleaved (pipeline, api, cli, ..., then again),
with ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` and ``torch.set_num_threads`` set to the same N. Figures:

* throughput: audio seconds / wall seconds of the classify calls, model load excluded. Python engines first classify
  one 1 s file (warm-up, not timed), then each set once. The CLI cannot be timed from inside: its figure is the
  marginal rate ``(audio - audio of file 0) / (wall of the whole set - wall of a run on file 0 alone)``; the
  end-to-end rate (process start and model load included) is in the JSON too.
* cold start: process start to the first result for one 1 s file (import, model load, decode, inference).
* peak RSS: ``ru_maxrss`` of the engine's process (``os.wait4``): for Python engines over all the sets it ran, for
  the CLI per invocation (the largest is shown; the one-file run is the cold-start figure).
* agreement: top-1 label agreement and max |score difference| of each engine versus the ``pipeline`` engine over
  the same files, and of the reduced-precision rows versus fp32 ``api``.

Medians over ``--repeats`` are reported, ratios first: these machines are shared and noisy.

Models (built once with ``transformers`` from configs, random weights with a fixed seed, cached under
``.bench-cache/``): ``w2v2-base`` (wav2vec2-base sized: 94.6 M parameters, weighted layer sum, group-norm conv stack,
no attention mask), ``hubert-large`` (24 x 1024, stable layer norm, layer-norm conv stack, attention mask),
``sewd-mid`` (SEW-D, 24 x 512) and ``ast-audioset`` (AST sized like MIT/ast-finetuned-audioset-10-10-0.4593: 12 x
768, 1024 frames x 128 mel bins, 10/10 patch strides, 527 labels, its feature extractor's AudioSet statistics; every
input is padded to 10.24 s, so a 1 s clip costs as much as a 10 s one). The classifier head is calibrated on a few extra clips (centred and scaled so
logits spread by about 2 across inputs): with a raw random head every input gets the same top-1 label, which would
make top-1 agreement meaningless. Audio (deterministic tones, vibrato and coloured noise, 16-bit WAV): ``1s``
(64 x 1 s, 16 kHz), ``10s`` (16 x 10 s, 16 kHz), ``60s`` (4 x 60 s, 44.1 kHz stereo) and ``long`` (one 1 h file,
16 kHz; CLI only, with ``--long``). ``w2v2-base`` runs every selected set; the other models run the ``1s`` set
(``hubert-large`` its first ``--large-clips`` files), ``ast-audioset`` the first ``--ast-clips`` files of ``1s`` and
``10s``.

Examples::

    python scripts/bench.py                                # everything but the 1-hour file (tens of minutes)
    python scripts/bench.py --models w2v2-base --sets 1s --repeats 1
    python scripts/bench.py --long --json results.json
    python scripts/bench.py --quick --repeats 1            # tiny models and a few short files (about a minute)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / ".bench-cache"
RATE = 16000
SEED = 20240611
LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_silence_", "_unknown_"]
#: --precision choices: CPU rows, then GPU rows (the API with device="cuda"; float32, float16, bfloat16)
PRECISIONS = ("bf16", "int8", "int8-static", "int8-torch", "cuda", "cuda-fp16", "cuda-bf16")
#: API engines that run in half precision (the torch backend); every other engine runs float32
ENGINE_DTYPES = {"api-bf16": "bfloat16", "api-cuda-fp16": "float16", "api-cuda-bf16": "bfloat16"}
ROOFLINE_W2V2_BASE_FP32_2T = 17.0  # audio-s/s: the fp32 compute bound of a base model on the reference 2-core CPU

# name -> transformers architecture, config overrides, whether the preprocessor asks for an attention mask
MODELS = {
    "w2v2-base": {"arch": "wav2vec2", "mask": False, "config": {"use_weighted_layer_sum": True}},
    "hubert-large": {"arch": "hubert", "mask": True, "config": {
        "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
        "feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True, "use_weighted_layer_sum": True}},
    "sewd-mid": {"arch": "sew-d", "mask": False, "config": {
        "hidden_size": 512, "num_hidden_layers": 24, "num_attention_heads": 8, "intermediate_size": 2048,
        "use_weighted_layer_sum": True}},
    # the AST defaults are the AudioSet checkpoint's sizes
    "ast-audioset": {"arch": "audio-spectrogram-transformer", "mask": False, "labels": 527, "sets": ("1s", "10s"),
                     "config": {}},
}
_TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
         "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4, "classifier_proj_size": 32}
QUICK_MODELS = {
    "w2v2-base": {"arch": "wav2vec2", "mask": False, "config": dict(_TINY, conv_dim=(32,) * 7, use_weighted_layer_sum=True)},
    "hubert-large": {"arch": "hubert", "mask": True, "config": dict(
        _TINY, conv_dim=(32,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
        use_weighted_layer_sum=True)},
    "sewd-mid": {"arch": "sew-d", "mask": False, "config": dict(_TINY, conv_dim=(32,) * 13, use_weighted_layer_sum=True)},
    "ast-audioset": {"arch": "audio-spectrogram-transformer", "mask": False, "labels": 527, "sets": ("1s", "10s"),
                     "config": {k: _TINY[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                      "intermediate_size")}},
}

# name -> files, seconds each, sample rate, channels
SETS = {"1s": (64, 1.0, 16000, 1), "10s": (16, 10.0, 16000, 1), "60s": (4, 60.0, 44100, 2)}
QUICK_SETS = {"1s": (6, 1.0, 16000, 1), "10s": (2, 3.0, 16000, 1), "60s": (2, 4.0, 44100, 2)}
LONG_SECONDS, QUICK_LONG_SECONDS = 3600.0, 40.0

BASE_MODEL = "w2v2-base"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# =================================================================================================== synthetic audio
def synth(rng, frames: int, rate: int, channels: int):
    """Deterministic speech-ish audio ``float32 [frames, channels]``: a few harmonic tones with vibrato and a
    syllable-rate envelope, plus coloured noise; every call draws its own pitch, timbre, noise colour and level."""
    import numpy as np

    t = np.arange(frames) / rate
    out = np.zeros((frames, channels), dtype=np.float64)
    for channel in range(channels):
        signal = np.zeros(frames)
        for _ in range(int(rng.integers(1, 4))):
            f0 = rng.uniform(80.0, 900.0)
            vibrato = rng.uniform(0.0, 0.03) * np.sin(2 * np.pi * rng.uniform(2.0, 7.0) * t)
            phase = 2 * np.pi * np.cumsum(f0 * (1.0 + vibrato)) / rate
            for harmonic in range(1, int(rng.integers(2, 7))):
                if f0 * harmonic < rate / 2 - 200:
                    signal += rng.uniform(0.1, 1.0) / harmonic * np.sin(harmonic * phase + rng.uniform(0, 2 * np.pi))
        envelope = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(1.5, 8.0) * t + rng.uniform(0, 2 * np.pi))
        spectrum = np.fft.rfft(rng.standard_normal(frames))
        freqs = np.fft.rfftfreq(frames, 1.0 / rate)
        tilt = rng.uniform(0.0, 2.0)
        spectrum *= 1.0 / np.maximum(freqs, 20.0) ** (tilt / 2)
        spectrum *= np.exp(-((freqs - rng.uniform(300, 4000)) / rng.uniform(500, 4000)) ** 2) + 0.05
        noise = np.fft.irfft(spectrum, n=frames)
        noise /= max(np.std(noise), 1e-9)
        mix = signal * envelope / max(np.std(signal), 1e-9) + rng.uniform(0.05, 1.0) * noise
        out[:, channel] = mix / np.max(np.abs(mix)) * rng.uniform(0.1, 0.8)
    return out.astype(np.float32)


def write_set(directory: Path, count: int, seconds: float, rate: int, channels: int, seed: int) -> None:
    import numpy as np
    import soundfile as sf

    directory.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        path = directory / f"clip-{k:03d}.wav"
        if path.is_file():
            continue
        audio = synth(np.random.default_rng([seed, k]), int(round(seconds * rate)), rate, channels)
        partial = path.with_suffix(".partial")
        sf.write(partial, audio, rate, subtype="PCM_16", format="WAV")
        partial.replace(path)


def write_long(path: Path, seconds: float, seed: int) -> None:
    """One long 16 kHz mono WAV written in 10 s blocks (each block its own sound)."""
    import numpy as np
    import soundfile as sf

    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    total, block = int(seconds * RATE), 10 * RATE
    with sf.SoundFile(partial, "w", RATE, 1, "PCM_16", format="WAV") as handle:
        for index, start in enumerate(range(0, total, block)):
            handle.write(synth(np.random.default_rng([seed, index]), min(block, total - start), RATE, 1))
    partial.replace(path)


# ============================================================================================================ models
def build_model(name: str, spec: dict, directory: Path) -> None:
    """A random ``transformers`` classifier for ``spec``, with a calibrated head, saved with its preprocessor."""
    import numpy as np
    import torch
    import transformers as T

    config_cls, model_cls = {
        "wav2vec2": (T.Wav2Vec2Config, T.Wav2Vec2ForSequenceClassification),
        "hubert": (T.HubertConfig, T.HubertForSequenceClassification),
        "sew-d": (T.SEWDConfig, T.SEWDForSequenceClassification),
        "audio-spectrogram-transformer": (T.ASTConfig, T.ASTForAudioClassification),
    }[spec["arch"]]
    labels = [f"class-{i}" for i in range(spec["labels"])] if "labels" in spec else LABELS
    config = config_cls(num_labels=len(labels), id2label=dict(enumerate(labels)),
                        label2id={label: i for i, label in enumerate(labels)}, **spec["config"])
    torch.manual_seed(SEED)
    model = model_cls(config).eval()
    if spec["arch"] == "audio-spectrogram-transformer":
        extractor, head = T.ASTFeatureExtractor(), model.classifier.dense  # AudioSet statistics, 1024 frames
    else:
        extractor = T.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=RATE, padding_value=0.0,
                                               do_normalize=True, return_attention_mask=spec["mask"])
        head = model.classifier

    # Calibrate the head: centre the pooled features of a few clips and scale the logits to a spread of ~2.
    rng = np.random.default_rng([SEED, 999])
    pooled = []
    hook = head.register_forward_hook(lambda module, args, output: pooled.append(args[0].detach()))
    with torch.no_grad():
        for _ in range(8):
            wave = synth(rng, RATE, RATE, 1)[:, 0]
            inputs = extractor(wave, sampling_rate=RATE, return_tensors="pt")
            model(inputs[extractor.model_input_names[0]])
    hook.remove()
    features = torch.cat(pooled)
    centre = features.mean(dim=0)
    with torch.no_grad():
        weight = head.weight
        spread = float(((features - centre) @ weight.T).std())
        weight.mul_(2.0 / max(spread, 1e-6))
        head.bias.copy_(-(weight @ centre))

    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    extractor.save_pretrained(partial)
    (partial / "bench-model.json").write_text(json.dumps(
        {"name": name, "parameters": sum(p.numel() for p in model.parameters()), **spec}, indent=1))
    partial.replace(directory)


def prepare(plan: dict) -> None:
    """Create what is missing: model directories and audio sets (run in a child process)."""
    for name, (spec, directory) in plan["models"].items():
        if not (Path(directory) / "bench-model.json").is_file():
            log(f"building model {name} ...")
            build_model(name, spec, Path(directory))
    for name, (count, seconds, rate, channels, directory, seed) in plan["sets"].items():
        if len(list(Path(directory).glob("clip-*.wav"))) < count:
            log(f"writing audio set {name} ...")
            write_set(Path(directory), count, seconds, rate, channels, seed)
    if plan.get("peer_graph"):
        model_dir, graph = plan["peer_graph"]
        if not Path(graph).is_file():
            log("exporting the transformers checkpoint to ONNX for the peers ...")
            export_peer_graph(Path(model_dir), Path(graph))
    for model_dir, variant, calibration in plan.get("graphs", []):
        if Path(model_dir).is_dir():
            from audioclf.engine.onnx_runner import OnnxRunner

            log(f"building the {variant} graph of {Path(model_dir).name} (once per checkpoint) ...")
            OnnxRunner(model_dir, quantize=None if variant == "fp32" else "int8",
                       calibrate=[calibration] if calibration else None)
    if plan.get("long"):
        path, seconds, seed = plan["long"]
        if not Path(path).is_file():
            log(f"writing the {seconds:g} s file ...")
            write_long(Path(path), seconds, seed)


# ============================================================================================================ worker
def worker(spec: dict) -> None:
    """Load one engine, classify the warm-up file (the cold-start point), then time each set once."""
    engine, model_dir, threads = spec["engine"], spec["model"], spec["threads"]
    result: dict = {"engine": engine, "sets": {}}
    if engine == "pipeline":
        import numpy as np
        import soundfile as sf
        import soxr
        import torch
        from transformers import pipeline

        torch.set_num_threads(threads)
        pipe = pipeline("audio-classification", model=model_dir, feature_extractor=model_dir, device=-1)
        rate = pipe.feature_extractor.sampling_rate

        def by_path(files: list[str]) -> list[dict]:
            return [{x["label"]: x["score"] for x in pipe(path, top_k=None)} for path in files]

        def by_array(files: list[str]) -> list[dict]:
            out = []
            for path in files:
                data, source_rate = sf.read(path, dtype="float32", always_2d=True)
                wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
                if source_rate != rate:
                    wave = soxr.resample(wave, source_rate, rate, quality="HQ").astype(np.float32)
                out.append({x["label"]: x["score"] for x in pipe(np.ascontiguousarray(wave), top_k=None)})
            return out

        variants = {"pipeline": by_path, "pipeline-sf": by_array} if spec["sf"] else {"pipeline": by_path}
    elif engine == "forward":
        forward_worker(spec)
        return
    else:
        from audioclf.engine.classify import Classifier

        model: object = model_dir
        options: dict = {"dtype": ENGINE_DTYPES.get(engine, "float32")}
        if engine in ("api-torch", "api-bf16"):
            options["backend"] = "torch"
        elif engine.startswith("api-cuda"):
            options.update(backend="torch", device="cuda")
        elif engine == "api-int8":
            options["quantize"] = "int8"
        elif engine == "api-int8-static":
            options.update(quantize="int8", calibrate=[spec["calibration"]])
        elif engine == "api-int8-torch":
            import torch

            from audioclf.auto import AutoModelForAudioClassification

            torch.set_num_threads(threads)
            model = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
            torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        classifier = Classifier(model, top_k=0, threads=threads, **options)

        def api(files: list[str]) -> list[dict]:
            records = list(classifier.classify(files))
            failed = [r for r in records if "error" in r]
            if failed:
                raise RuntimeError(f"{failed[0]['path']}: {failed[0]['error']}")
            return [{x["label"]: x["score"] for x in record["labels"]} for record in records]

        variants = {engine: api}
    result["loaded_at"] = time.time()
    for run in variants.values():
        run([spec["warmup"]])
        result.setdefault("first_result_at", time.time())
    for entry in spec["sets"]:
        for variant, run in variants.items():
            started = time.perf_counter()
            scores = run(entry["files"])
            wall = time.perf_counter() - started
            result["sets"].setdefault(entry["name"], {})[variant] = {"wall": wall, "scores": scores}
    Path(spec["out"]).write_text(json.dumps(result))


# The end-to-end script a speed-minded user writes around a runtime: soundfile decode, normalise as the feature
# extractor does, batches of 8, one session. 16 kHz mono inputs only (no resampling or channel mixing).
PEER_SCRIPT = """
import json, sys
import numpy as np, soundfile as sf
runtime, graph, threads, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
config = json.load(open(graph.rsplit("/", 1)[0] + "/config.json"))
labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
if runtime == "onnxruntime":
    import onnxruntime as ort
    options = ort.SessionOptions(); options.intra_op_num_threads = threads
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    run = lambda x: session.run(None, {"input_values": x})[0]
else:
    import openvino as ov
    compiled = ov.Core().compile_model(graph, "CPU", {"INFERENCE_NUM_THREADS": threads})
    run = lambda x: compiled(x)[0]
def load(path):
    wave, rate = sf.read(path, dtype="float32")
    return (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
for start in range(0, len(files), 8):
    group = files[start:start + 8]
    waves = [load(path) for path in group]
    batches = [np.stack(waves)] if len({len(w) for w in waves}) == 1 else [w[None] for w in waves]
    logits = np.concatenate([run(batch) for batch in batches])
    scores = np.exp(logits - logits.max(1, keepdims=True))
    scores /= scores.sum(1, keepdims=True)
    for path, row in zip(group, scores):
        print(json.dumps({"path": path, "labels": [{"label": l, "score": s} for l, s in zip(labels, row.tolist())]}))
"""
PEERS = {"ort-script": "onnxruntime", "ov-script": "openvino"}
#: engines timed as whole processes (marginal and end-to-end rates)
PROCESS_ENGINES = ("cli", *PEERS)
#: the sets the peer scripts read (16 kHz mono)
PEER_SETS = ("1s", "10s")


def export_peer_graph(model_dir: Path, target: Path) -> None:
    """The transformers checkpoint as ONNX, the way its users export it: ``torch.onnx.export`` of
    ``AutoModelForAudioClassification`` (eager attention), dynamic batch and time axes, opset 17."""
    import warnings

    import torch
    from transformers import AutoModelForAudioClassification

    model = AutoModelForAudioClassification.from_pretrained(model_dir, attn_implementation="eager").eval()

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_values):
            return self.model(input_values).logits

    partial = target.with_name(target.name + ".partial")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Logits().eval(), (torch.randn(2, RATE),), str(partial), input_names=["input_values"],
                          output_names=["logits"], dynamic_axes={"input_values": {0: "batch", 1: "samples"},
                                                                 "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
    partial.replace(target)


def forward_worker(spec: dict) -> None:
    """Raw forward of every runtime on the same batches in one process, interleaved: transformers, audioclf
    (torch backend, onnx backend), the peer graph in ONNX Runtime and OpenVINO; audio-s/s per batch shape."""
    import numpy as np
    import torch
    from transformers import AutoModelForAudioClassification

    from audioclf.engine.onnx_runner import OnnxRunner
    from audioclf.engine.runner import ModelRunner

    threads, model_dir, graph = spec["threads"], spec["model"], spec["peer_graph"]
    torch.set_num_threads(threads)
    reference = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
    ours_torch = ModelRunner(model_dir, threads=threads, device="cpu")
    ours_onnx = OnnxRunner(model_dir, threads=threads)
    runs = {"transformers": lambda x: reference(torch.from_numpy(x)).logits,
            "audioclf-torch": lambda x: ours_torch.forward({"input_values": x}),
            "audioclf-onnx": lambda x: ours_onnx.forward({"input_values": x})}
    if graph:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        runs["onnxruntime"] = lambda x: session.run(None, {"input_values": x})
        try:
            import openvino as ov

            compiled = ov.Core().compile_model(graph, "CPU", {"INFERENCE_NUM_THREADS": threads})
            runs["openvino"] = lambda x: compiled(x)
        except ImportError:
            pass
    rng = np.random.default_rng(SEED)
    out: dict = {}
    for shape in ((8, RATE), (1, 10 * RATE)):
        x = rng.standard_normal(shape).astype(np.float32)
        x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
        times: dict[str, list[float]] = {name: [] for name in runs}
        with torch.inference_mode():
            for name, run in runs.items():
                run(x)  # warm-up
            for _ in range(spec["forward_repeats"]):
                for name, run in runs.items():
                    started = time.perf_counter()
                    run(x)
                    times[name].append(time.perf_counter() - started)
        out[f"{shape[0]}x{shape[1] / RATE:g}s"] = {name: shape[0] * shape[1] / RATE / statistics.median(t)
                                                   for name, t in times.items()}
    Path(spec["out"]).write_text(json.dumps({"engine": "forward", "forward": out}))


# ======================================================================================================= measurement
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = args.quick
        self.cache = Path(args.cache_dir) / ("quick" if args.quick else "full")
        self.threads = args.threads
        self.env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
                        HF_ASSETS_CACHE=str(Path(args.cache_dir) / "assets"),
                        OPENBLAS_NUM_THREADS=str(args.threads), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                        TRANSFORMERS_VERBOSITY="error", TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore",
                        HF_HUB_DISABLE_PROGRESS_BARS="1")
        cli = Path(sys.executable).parent / "audioclf"
        self.cli = [str(cli)] if cli.is_file() else [sys.executable, "-m", "audioclf"]
        self.cache.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="run-", dir=self.cache))
        self._durations: dict[str, float] = {}
        self.failures: list[str] = []

    # -- paths ---------------------------------------------------------------------------------------------------
    def model_dir(self, name: str) -> Path:
        return self.cache / "models" / name

    def set_files(self, name: str) -> list[str]:
        count = (QUICK_SETS if self.quick else SETS)[name][0]
        return [str(self.cache / "audio" / name / f"clip-{k:03d}.wav") for k in range(count)]

    def set_seconds(self, name: str) -> float:
        return (QUICK_SETS if self.quick else SETS)[name][1]

    @property
    def peer_graph(self) -> Path:
        """The transformers checkpoint of the base model exported to ONNX (for the ONNX Runtime / OpenVINO peers)."""
        return self.model_dir(BASE_MODEL) / "peer.onnx"

    @property
    def calibration_dir(self) -> Path:
        return self.cache / "audio" / "calibration"

    @property
    def long_path(self) -> Path:
        seconds = QUICK_LONG_SECONDS if self.quick else LONG_SECONDS
        return self.cache / "audio" / "long" / f"long-{seconds:g}s.wav"

    # -- preparation ---------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        models = QUICK_MODELS if self.quick else MODELS
        sets = QUICK_SETS if self.quick else SETS
        wanted = set(self.args.sets) | {"1s"}  # the 1 s set always: its first file is the warm-up / cold-start file
        plan = {
            "models": {m: (models[m], str(self.model_dir(m))) for m in self.args.models},
            "sets": {s: (*sets[s], str(self.cache / "audio" / s), SEED + i) for i, s in enumerate(SETS) if s in wanted},
            "long": ([str(self.long_path), QUICK_LONG_SECONDS if self.quick else LONG_SECONDS, SEED + 100]
                     if self.args.long else None),
            "peer_graph": ([str(self.model_dir(BASE_MODEL)), str(self.peer_graph)]
                           if self.args.peers and BASE_MODEL in self.args.models else None),
            # our graphs are built once per checkpoint, like the peers' export: build them before timing anything
            "graphs": [[str(self.model_dir(m)), "fp32", None] for m in self.args.models] + [
                [str(self.model_dir(BASE_MODEL)), "int8", None]] * ("int8" in self.args.precision) + [
                [str(self.model_dir(BASE_MODEL)), "int8-static", str(self.calibration_dir)]] * (
                "int8-static" in self.args.precision),
        }
        if "int8-static" in self.args.precision:  # calibration audio: the same kind of clips, other draws
            count, seconds, rate, channels = (QUICK_SETS if self.quick else SETS)["1s"]
            plan["sets"]["calibration"] = (16, seconds, rate, channels, str(self.calibration_dir), SEED + 50)
        plan_file = self.work / "plan.json"
        plan_file.write_text(json.dumps(plan))
        subprocess.run([sys.executable, __file__, "--_prepare", str(plan_file)], env=self.env, check=True)

    # -- running -------------------------------------------------------------------------------------------------
    def spawn(self, command: list[str]) -> dict:
        """Run ``command``; its stdout lines, wall time, time to the first stdout line, peak RSS and exit status."""
        stderr = tempfile.TemporaryFile(dir=self.work)
        started = time.time()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=self.env, text=True)
        assert process.stdout is not None
        lines, first = [], None
        for line in process.stdout:
            if first is None:
                first = time.time()
            lines.append(line)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.time() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        tail = stderr.read().decode(errors="replace")[-3000:]
        stderr.close()
        return {"started": started, "wall": wall, "first": None if first is None else first - started,
                "rss_mb": usage.ru_maxrss / 1024, "status": process.returncode, "lines": lines, "stderr": tail}

    def run_worker(self, model: str, engine: str, sets: list[str], files_for) -> dict | None:
        out = self.work / f"{model}-{engine}.json"
        out.unlink(missing_ok=True)
        spec = {"engine": engine, "model": str(self.model_dir(model)), "threads": self.threads, "sf": self.args.sf,
                "warmup": self.set_files("1s")[0], "out": str(out), "calibration": str(self.calibration_dir),
                "peer_graph": str(self.peer_graph) if self.peer_graph.is_file() else None,
                "forward_repeats": 1 if self.quick else 3,
                "sets": [{"name": s, "files": files_for(s)} for s in sets]}
        spec_file = self.work / f"{model}-{engine}.spec.json"
        spec_file.write_text(json.dumps(spec))
        proc = self.spawn([sys.executable, __file__, "--_worker", str(spec_file)])
        if proc["status"] != 0 or not out.is_file():
            self.fail(f"{model} {engine}: exit {proc['status']}\n{proc['stderr']}")
            return None
        result = json.loads(out.read_text())
        if engine == "forward":
            return result
        result["cold_start"] = result["first_result_at"] - proc["started"]
        result["load"] = result["loaded_at"] - proc["started"]
        result["rss_mb"] = proc["rss_mb"]
        return result

    def run_cli(self, model: str, files: list[str], engine: str = "cli") -> dict | None:
        """One whole process of ``engine`` (``cli``, or a peer script) on ``files``; its records' scores."""
        if engine == "cli":
            command = [*self.cli, "classify", "--model", str(self.model_dir(model)), "--top-k", "0",
                       "--threads", str(self.threads), "--format", "jsonl", "--quiet", *files]
        else:
            script = self.work / "peer.py"
            if not script.is_file():
                script.write_text(PEER_SCRIPT)
            command = [sys.executable, str(script), PEERS[engine], str(self.peer_graph), str(self.threads), *files]
        proc = self.spawn(command)
        if proc["status"] != 0:
            self.fail(f"{model} {engine}: exit {proc['status']}\n{proc['stderr']}")
            return None
        records = [json.loads(line) for line in proc["lines"] if line.strip()]
        proc["scores"] = [{x["label"]: x["score"] for x in r["labels"]} for r in records]
        if len(proc["scores"]) != len(files):
            self.fail(f"{model} {engine}: {len(proc['scores'])} records for {len(files)} files")
            return None
        del proc["lines"]
        return proc

    def fail(self, message: str) -> None:
        self.failures.append(message)
        log(f"FAILED: {message}")

    # -- the whole run -------------------------------------------------------------------------------------------
    def run(self) -> dict:
        args = self.args
        self.prepare()
        peers = list(PEERS) + ["forward"] if args.peers else []
        engines = ["pipeline", "api", "api-torch", "cli", *peers] + [f"api-{p}" for p in args.precision]
        # raw[(model, engine)] = list of per-repeat results
        raw: dict[tuple[str, str], list] = {}
        plan = []
        for model in args.models:
            runs_sets = (QUICK_MODELS if self.quick else MODELS)[model].get("sets", ("1s",))
            sets = list(args.sets) if model == BASE_MODEL else [s for s in args.sets if s in runs_sets]
            if not sets:
                log(f"note: {model} runs the {', '.join(runs_sets)} set(s) only, which --sets leaves out; skipped")
                continue
            model_engines = engines if model == BASE_MODEL else ["pipeline", "api", "cli"]
            plan.append((model, sets, model_engines))

        def files_for(model: str):
            def pick(name: str) -> list[str]:
                files = self.set_files(name)
                limit = {"hubert-large": args.large_clips, "ast-audioset": args.ast_clips}.get(model)
                return files[:limit] if limit else files
            return pick

        for repeat in range(args.repeats):
            for model, sets, model_engines in plan:
                for engine in model_engines:
                    log(f"[{repeat + 1}/{args.repeats}] {model}: {engine} on {', '.join(sets)} ...")
                    if engine in PROCESS_ENGINES:
                        result = {"sets": {}}
                        first = self.run_cli(model, [self.set_files("1s")[0]], engine)
                        if first is None:
                            continue
                        result["cold_start"], result["one_file_rss_mb"] = first["first"], first["rss_mb"]
                        rss = [first["rss_mb"]]
                        for name in sets:
                            if engine in PEERS and name not in PEER_SETS:
                                continue
                            files = files_for(model)(name)
                            one = first if name == "1s" else self.run_cli(model, files[:1], engine)
                            whole = self.run_cli(model, files, engine)
                            if one is None or whole is None:
                                continue
                            rss += [one["rss_mb"], whole["rss_mb"]]
                            result["sets"][name] = {engine: {"wall": whole["wall"], "one_file_wall": one["wall"],
                                                             "rss_mb": whole["rss_mb"], "scores": whole["scores"]}}
                        result["rss_mb"] = max(rss)
                    else:
                        result = self.run_worker(model, engine, sets, files_for(model))
                        if result is None:
                            continue
                    raw.setdefault((model, engine), []).append(result)
        report = self.summarise(plan, raw, files_for)
        report["help_seconds"] = self.time_help()
        if args.long:
            report["long"] = self.run_long()
        report["targets"] = [] if self.quick else self.targets(report)
        report["failures"] = self.failures
        return report

    def time_help(self) -> dict:
        times = []
        for k in range(6):
            proc = self.spawn([*self.cli, "--help"])
            if k:
                times.append(proc["wall"])
        return {"median": statistics.median(times), "runs": times}

    def run_long(self) -> dict:
        if BASE_MODEL not in self.args.models:
            return {"error": f"--long needs {BASE_MODEL} in --models"}
        import soundfile as sf

        seconds = sf.info(str(self.long_path)).duration
        log(f"{BASE_MODEL}: cli on the {seconds:g} s file ...")
        proc = self.run_cli(BASE_MODEL, [str(self.long_path)])
        if proc is None:
            return {"error": "failed"}
        return {"model": BASE_MODEL, "audio_seconds": seconds, "wall": proc["wall"],
                "audio_s_per_s": seconds / proc["wall"], "rss_mb": proc["rss_mb"]}

    # -- summary -------------------------------------------------------------------------------------------------
    def summarise(self, plan: list, raw: dict, files_for) -> dict:
        rows, processes, precision = [], [], []
        for model, sets, model_engines in plan:
            reference_runs = raw.get((model, "pipeline"), [])
            api_runs = raw.get((model, "api"), [])
            for name in sets:
                files = files_for(model)(name)
                durations = [self.duration(f) for f in files]
                audio = sum(durations)

                def rates(runs: list, variant: str) -> list[float]:
                    out = []
                    for run in runs:
                        entry = run["sets"].get(name, {}).get(variant)
                        if entry is None:
                            continue
                        if variant in PROCESS_ENGINES:  # marginal: the whole set minus a run on its first file alone
                            extra = entry["wall"] - entry["one_file_wall"]
                            # too small a difference to stand out from process start-up noise: no figure
                            out.append((audio - durations[0]) / extra if extra > 0.25 else None)
                        else:
                            out.append(audio / entry["wall"])
                    return out

                def scores(runs: list, variant: str):
                    for run in runs:
                        entry = run["sets"].get(name, {}).get(variant)
                        if entry is not None:
                            return entry["scores"]
                    return None

                reference_scores = scores(reference_runs, "pipeline")
                reference_rate = _median(rates(reference_runs, "pipeline"))
                api_rate = _median(rates(api_runs, "api"))
                api_scores = scores(api_runs, "api")
                variants = [("pipeline", "pipeline"), ("pipeline", "pipeline-sf")] + [
                    (e, e) for e in model_engines if e not in ("pipeline", "forward")]
                for engine, variant in variants:
                    runs = raw.get((model, engine), [])
                    measured = rates(runs, variant)
                    if not runs or not any(variant in r["sets"].get(name, {}) for r in runs):
                        continue
                    rate = _median(measured)
                    row = {"model": model, "set": name, "engine": variant, "files": len(files),
                           "audio_seconds": round(audio, 3), "audio_s_per_s": rate, "runs": measured,
                           "ratio_to_pipeline": rate / reference_rate if rate and reference_rate else None,
                           **_agreement(scores(runs, variant), reference_scores)}
                    if variant in PROCESS_ENGINES:
                        row["end_to_end_audio_s_per_s"] = _median(
                            [audio / r["sets"][name][variant]["wall"] for r in runs if name in r["sets"]])
                        row["rss_mb"] = _median([r["sets"][name][variant]["rss_mb"] for r in runs
                                                 if name in r["sets"]])
                    if model == BASE_MODEL and self.threads == 2 and not self.quick and rate and variant in ("api", "cli"):
                        row["fraction_of_roofline"] = rate / ROOFLINE_W2V2_BASE_FP32_2T
                    rows.append(row)
                    if variant.startswith("api-") and variant != "api-torch":
                        precision.append({"model": model, "set": name, "dtype": variant[4:], "audio_s_per_s": rate,
                                          "speedup_vs_fp32": rate / api_rate if rate and api_rate else None,
                                          **_agreement(scores(runs, variant), api_scores)})
            reference_cold = _median([r["cold_start"] for r in reference_runs])
            for engine in model_engines:
                runs = raw.get((model, engine), [])
                if not runs or engine == "forward":
                    continue
                cold = _median([r["cold_start"] for r in runs])
                entry = {"model": model, "engine": engine, "cold_start_s": cold,
                         "cold_start_ratio": reference_cold / cold if reference_cold and cold else None,
                         "peak_rss_mb": _median([r["rss_mb"] for r in runs]), "sets": sets}
                if engine in PROCESS_ENGINES:
                    entry["one_file_rss_mb"] = _median([r["one_file_rss_mb"] for r in runs])
                else:
                    entry["load_s"] = _median([r["load"] for r in runs])
                processes.append(entry)
        forward: dict = {}
        for run in raw.get((BASE_MODEL, "forward"), []):
            for shape, rates in run["forward"].items():
                for runtime, rate in rates.items():
                    forward.setdefault(shape, {}).setdefault(runtime, []).append(rate)
        forward = {shape: {runtime: {"audio_s_per_s": _median(v), "runs": v} for runtime, v in rates.items()}
                   for shape, rates in forward.items()}
        return {"rows": rows, "processes": processes, "precision": precision, "forward": forward}

    def duration(self, path: str) -> float:
        if path not in self._durations:
            import soundfile as sf

            self._durations[path] = sf.info(path).duration
        return self._durations[path]

    def targets(self, report: dict) -> list[dict]:
        """The issue's targets for the base model (fp32, ``--threads 2``), where this run measured them."""
        found = []

        def row(model: str, name: str, engine: str):
            return next((r for r in report["rows"] if (r["model"], r["set"], r["engine"]) == (model, name, engine)), None)

        for model, name, goal in ((BASE_MODEL, "1s", 3.0), ("sewd-mid", "1s", 3.0), (BASE_MODEL, "10s", 1.6),
                                  (BASE_MODEL, "60s", 1.6)):
            for engine in ("api", "cli"):
                r = row(model, name, engine)
                if r and r["ratio_to_pipeline"]:
                    found.append({"target": f"{model} {name} {engine} >= {goal}x pipeline",
                                  "measured": round(r["ratio_to_pipeline"], 2), "met": r["ratio_to_pipeline"] >= goal})
        r = row(BASE_MODEL, "1s", "api")
        if r and r["audio_s_per_s"] and self.threads == 2:
            found.append({"target": f"{BASE_MODEL} 1s api >= 70% of the {ROOFLINE_W2V2_BASE_FP32_2T:g} audio-s/s roofline",
                          "measured": round(r["audio_s_per_s"] / ROOFLINE_W2V2_BASE_FP32_2T, 2),
                          "met": r["audio_s_per_s"] >= 0.7 * ROOFLINE_W2V2_BASE_FP32_2T})
        for name, goal in (("1s", 1.2), ("10s", 1.0)):
            ours, peer = row(BASE_MODEL, name, "cli"), row(BASE_MODEL, name, "ort-script")
            if ours and peer and ours.get("end_to_end_audio_s_per_s") and peer.get("end_to_end_audio_s_per_s"):
                ratio = ours["end_to_end_audio_s_per_s"] / peer["end_to_end_audio_s_per_s"]
                found.append({"target": f"{BASE_MODEL} {name} cli end to end >= {goal}x the ONNX Runtime script",
                              "measured": round(ratio, 2), "met": ratio >= goal})
        for p in report["processes"]:
            if p["model"] == BASE_MODEL and p["engine"] in ("api", "cli") and p["cold_start_ratio"]:
                found.append({"target": f"{BASE_MODEL} cold start ({p['engine']}) >= 4x faster than the pipeline",
                              "measured": round(p["cold_start_ratio"], 2), "met": p["cold_start_ratio"] >= 4.0})
        found.append({"target": "audioclf --help < 0.3 s", "measured": round(report["help_seconds"]["median"], 3),
                      "met": report["help_seconds"]["median"] < 0.3})
        long = report.get("long")
        if long and "rss_mb" in long:
            found.append({"target": "1-hour file peak RSS < 1 GB", "measured": round(long["rss_mb"]),
                          "met": long["rss_mb"] < 1000})
        for r in report["rows"]:
            if r["model"] == BASE_MODEL and r["engine"] in ("api", "cli") and r.get("top1_agreement") is not None:
                found.append({"target": f"{BASE_MODEL} {r['set']} {r['engine']}: same top-1 as the pipeline",
                              "measured": r["top1_agreement"], "met": r["top1_agreement"] == 1.0})
        return found


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _agreement(ours, reference) -> dict:
    """Top-1 agreement rate and max |score difference| of two lists of ``{label: score}`` (same files, same order)."""
    if not ours or not reference or len(ours) != len(reference):
        return {"top1_agreement": None, "max_score_diff": None}
    same = sum(max(a, key=a.get) == max(b, key=b.get) for a, b in zip(ours, reference))
    diff = max(abs(a.get(label, 0.0) - b.get(label, 0.0)) for a, b in zip(ours, reference) for label in set(a) | set(b))
    return {"top1_agreement": same / len(ours), "max_score_diff": diff}


# ============================================================================================================ output
def machine() -> dict:
    info = {"nproc": os.cpu_count(), "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
        info["cpu_features"] = sorted({f for f in flags.split(":", 1)[1].split()
                                       if f.startswith(("avx512f", "avx512_bf16", "avx512_vnni", "amx", "avx2"))})
    except (OSError, StopIteration):
        pass
    try:
        info["nproc"] = int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout)
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    for package in ("torch", "transformers", "numpy", "soundfile", "soxr"):
        try:
            from importlib.metadata import version

            info[package] = version(package)
        except Exception:
            info[package] = None
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        first = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout.splitlines()[:1]
        info["ffmpeg"] = first[0] if first else ffmpeg
    return info


def _fmt(value, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def _sci(value) -> str:
    return "-" if value is None else f"{value:.1e}"


def markdown(report: dict) -> str:
    m, s = report["machine"], report["settings"]
    out = [f"# audioclf benchmark{' (quick: tiny models, not meaningful for speed)' if s['quick'] else ''}", "",
           f"Machine: {m['nproc']} CPUs ({m['cpu']}; {', '.join(m.get('cpu_features', []))}), load average at start "
           f"{', '.join(f'{x:.2f}' for x in (s['load_average_start'] or []))}, at end "
           f"{', '.join(f'{x:.2f}' for x in (s['load_average_end'] or []))}. torch {m['torch']}, transformers "
           f"{m['transformers']}, Python {m['python']}, {m.get('ffmpeg', 'no ffmpeg')}.",
           f"Threads {s['threads']} (torch.set_num_threads / --threads, OMP/MKL_NUM_THREADS); {s['repeats']} interleaved "
           f"repetition(s), medians shown. The pipeline decodes file paths with an ffmpeg subprocess per file; "
           f"pipeline-sf gets arrays decoded by soundfile (+ soxr HQ when resampling). audioclf runs its defaults "
           f"(batch 8, 30 s chunks: 60 s files are two chunks averaged, so their scores are not the pipeline's "
           f"whole-file scores; soxr vs ffmpeg resampling also differs at 44.1 kHz).", ""]
    out += ["## Throughput (audio-seconds per second)", "",
            "| model | set | engine | x pipeline | audio-s/s | runs | top-1 agree | max abs score diff |",
            "|---|---|---|---:|---:|---|---:|---:|"]
    for r in report["rows"]:
        runs = ", ".join(_fmt(x, 1) for x in r["runs"])
        extra = ""
        if r.get("end_to_end_audio_s_per_s") is not None:
            extra = f" (end to end {r['end_to_end_audio_s_per_s']:.1f})"
        if r.get("fraction_of_roofline") is not None:
            extra += f" ({100 * r['fraction_of_roofline']:.0f}% of roofline)"
        out.append(f"| {r['model']} | {r['set']} ({r['files']} files, {r['audio_seconds']:g} s) | {r['engine']} | "
                   f"{_fmt(r['ratio_to_pipeline'])} | {_fmt(r['audio_s_per_s'])}{extra} | {runs} | "
                   f"{_fmt(r['top1_agreement'], 3)} | {_sci(r['max_score_diff'])} |")
    out += ["", "cli, ort-script, ov-script: whole processes; the rate is marginal (whole-set run minus a one-file "
            "run), end to end includes process start and model load (the peers' graph is the transformers checkpoint "
            "exported with torch.onnx.export; the script decodes with soundfile, normalises, batches 8). api: the "
            "default backend; api-torch: the torch backend. Agreement is versus the pipeline (file paths, ffmpeg).",
            ""]
    if report.get("forward"):
        runtimes = sorted({r for rates in report["forward"].values() for r in rates})
        out += ["## Raw forward (audio-seconds per second, one process, interleaved)", "",
                "| batch | " + " | ".join(runtimes) + " |", "|---|" + "---:|" * len(runtimes)]
        for shape, rates in report["forward"].items():
            out.append(f"| {shape} | " + " | ".join(_fmt(rates.get(r, {}).get("audio_s_per_s")) for r in runtimes)
                       + " |")
        out += ["", "transformers: the reference model; audioclf-torch / audioclf-onnx: our model on each backend; "
                "onnxruntime / openvino: the peer graph with each runtime's default options.", ""]
    out += ["## Cold start and memory", "",
            "| model | engine | x faster than pipeline | process start to first result (one 1 s file) | model load | "
            "peak RSS |", "|---|---|---:|---:|---:|---|"]
    for p in report["processes"]:
        rss = f"{p['peak_rss_mb']:.0f} MB over {', '.join(p['sets'])}"
        if "one_file_rss_mb" in p:
            rss = f"{p['one_file_rss_mb']:.0f} MB one file; largest run {p['peak_rss_mb']:.0f} MB"
        out.append(f"| {p['model']} | {p['engine']} | {_fmt(p['cold_start_ratio'])} | {_fmt(p['cold_start_s'])} s | "
                   f"{_fmt(p.get('load_s'))} | {rss} |")
    out += ["", f"`audioclf --help`: {report['help_seconds']['median']:.3f} s (median of 5).", ""]
    if report["precision"]:
        out += ["## Reduced precision (audioclf API, versus fp32 audioclf)", "",
                "| model | set | dtype | x fp32 | audio-s/s | top-1 agree vs fp32 | max abs score diff vs fp32 |",
                "|---|---|---|---:|---:|---:|---:|"]
        for p in report["precision"]:
            out.append(f"| {p['model']} | {p['set']} | {p['dtype']} | {_fmt(p['speedup_vs_fp32'])} | "
                       f"{_fmt(p['audio_s_per_s'])} | {_fmt(p['top1_agreement'], 3)} | {_sci(p['max_score_diff'])} |")
        out += ["", "int8: ONNX Runtime dynamic int8 linear layers (the default backend's --quantize int8); "
                "int8-static: --quantize int8 --calibrate (16 other clips of the same kind); int8-torch: "
                "torch.ao.quantization.quantize_dynamic on the linear layers. Random-weight models: the accuracy cost "
                "is indicative only.", ""]
    long = report.get("long")
    if long:
        if "error" in long:
            out += [f"Long file: {long['error']}", ""]
        else:
            out += ["## Long file", "", f"{long['model']} cli, one {long['audio_seconds']:g} s 16 kHz file: "
                    f"{long['audio_s_per_s']:.1f} audio-s/s end to end ({long['wall']:.0f} s), peak RSS "
                    f"{long['rss_mb']:.0f} MB.", ""]
    if report["targets"]:
        out += ["## Targets", "", "| target | measured | met |", "|---|---:|---|"]
        for t in report["targets"]:
            out.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'NO'} |")
        out.append("")
    if report["failures"]:
        out += ["## Failures", ""] + [f"- {f.splitlines()[0]}" for f in report["failures"]] + [""]
    return "\n".join(out)


# ============================================================================================================== main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--quick", action="store_true", help="tiny models and a few short files (about a minute)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every engine (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (default 3)")
    parser.add_argument("--sets", default="1s,10s,60s", help="audio sets: 1s,10s,60s (default all)")
    parser.add_argument("--models", help="models: w2v2-base,hubert-large,sewd-mid,ast-audioset (default all; with "
                        "--quick w2v2-base)")
    parser.add_argument("--precision", default="bf16,int8,int8-static,int8-torch",
                        help=f"reduced-precision and device rows for {BASE_MODEL}: {','.join(PRECISIONS)} or none "
                        "(default: the CPU ones, bf16,int8,int8-static,int8-torch)")
    parser.add_argument("--no-peers", dest="peers", action="store_false",
                        help="skip the ONNX Runtime / OpenVINO peers (scripts and raw forward)")
    parser.add_argument("--no-sf", dest="sf", action="store_false",
                        help="skip pipeline-sf (the pipeline on soundfile-decoded arrays)")
    parser.add_argument("--large-clips", type=int, default=16, help="1 s clips for hubert-large (default 16)")
    parser.add_argument("--ast-clips", type=int, default=6,
                        help="files of each set for ast-audioset (default 6; every one costs a 10.24 s input)")
    parser.add_argument("--long", action="store_true", help="also the 1-hour file through the CLI (minutes)")
    parser.add_argument("--json", type=Path, help="write the JSON report here (default <cache-dir>/results.json)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"models and audio (default {DEFAULT_CACHE})")
    parser.add_argument("--_worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_prepare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._worker:
        worker(json.loads(args._worker.read_text()))
        return 0
    if args._prepare:
        prepare(json.loads(args._prepare.read_text()))
        return 0

    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    if args.models is None:
        args.models = BASE_MODEL if args.quick else ",".join(MODELS)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.precision = [] if args.precision.strip() in ("", "none") else [p.strip() for p in args.precision.split(",")]
    for value, allowed, flag in ((args.sets, SETS, "--sets"), (args.models, MODELS, "--models"),
                                 (args.precision, PRECISIONS, "--precision")):
        unknown = [v for v in value if v not in allowed]
        if unknown:
            parser.error(f"{flag}: unknown {', '.join(unknown)} (choose from {', '.join(allowed)})")
    if args.threads < 1 or args.repeats < 1:
        parser.error("--threads and --repeats must be 1 or more")

    bench = Bench(args)
    load_start = os.getloadavg()
    try:
        report = {"machine": machine(), "settings": {
            "quick": args.quick, "threads": args.threads, "repeats": args.repeats, "sets": args.sets,
            "models": args.models, "precision": args.precision, "pipeline_sf": args.sf, "large_clips": args.large_clips,
            "peers": args.peers, "ast_clips": args.ast_clips,
            "load_average_start": load_start, "cache_dir": str(bench.cache)}}
        report.update(bench.run())
        report["settings"]["load_average_end"] = os.getloadavg()
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
    target = args.json or bench.cache / "results.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    log(f"JSON report: {target}")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
