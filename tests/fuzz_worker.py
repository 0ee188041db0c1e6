"""Bytes fuzzers, run in their own process by test_fuzz_parsers.py: ``python fuzz_worker.py TARGET:EXAMPLES ...``.

The process limits its own address space first (``FUZZ_ADDRESS_SPACE`` bytes, default 3 GiB), so an input that
makes a reader allocate what a file only declares fails with ``MemoryError`` (a finding) instead of swapping.
Hypothesis mutates a small valid file of the target's format (bytes replaced, inserted or cut off, with the
header bytes favoured), writes it to disk and hands it to the package's reader, which must either succeed or
raise the package's one-line error for that reader. Anything else (another exception type, a multi-line message)
fails the example: hypothesis prints it, with a traceback, and the process exits non-zero. Examples are derived
from a fixed seed (``derandomize``), so a run is reproducible.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TESTS = Path(__file__).parent
DATA = TESTS / "data"


# ------------------------------------------------------------------------------------------------------ mutation
@st.composite
def mutations(draw, size: int, hot: int = 512) -> list[tuple[str, int, int]]:
    """Edits of a file of ``size`` bytes: ("set", position, byte), ("insert", position, byte), ("cut", length, 0).
    Positions fall in the first and last ``hot`` bytes (headers, trailers) three times in four."""
    position = st.one_of(st.integers(0, min(hot, size) - 1), st.integers(max(0, size - hot), size - 1),
                         st.integers(0, min(hot, size) - 1), st.integers(0, size - 1))
    edit = st.one_of(
        st.tuples(st.just("set"), position, st.integers(0, 255)),
        st.tuples(st.just("set"), position, st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF])),
        st.tuples(st.just("insert"), position, st.integers(0, 255)),
        st.tuples(st.just("cut"), st.integers(0, size), st.just(0)),
    )
    return draw(st.lists(edit, min_size=1, max_size=12))


def mutate(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, position, value in edits:
        if kind == "cut":
            del out[position:]
        elif position < len(out):
            if kind == "set":
                out[position] = value
            else:
                out.insert(position, value)
    return bytes(out)


# ------------------------------------------------------------------------------------------------------ targets
def _audio_seed(fmt: str, subtype: str, seconds: float = 0.5) -> bytes:
    import soundfile as sf

    rate = 16000
    wave = (np.random.default_rng(0).standard_normal(int(rate * seconds)) * 0.1).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _read_audio(path: Path) -> None:
    from audioclf.audio.decode import AudioSource
    from audioclf.errors import AudioError

    try:
        for _ in AudioSource(path).blocks(4096):
            pass
    except AudioError as error:
        _one_line(error)


def _read_model_config(path: Path) -> None:
    from audioclf.auto import AutoConfig
    from audioclf.errors import AudioclfError

    try:
        AutoConfig.from_pretrained(path)
    except AudioclfError as error:
        _one_line(error)


def _read_preprocessor(path: Path) -> None:
    from audioclf.audio.features import load_featurizer
    from audioclf.errors import ConfigError

    try:
        load_featurizer(path)
    except ConfigError as error:
        _one_line(error)


def _read_safetensors(path: Path) -> None:
    from audioclf.checkpoints.files import read_weights_file
    from audioclf.errors import CheckpointError

    try:
        read_weights_file(path)
    except CheckpointError as error:
        _one_line(error)


def _read_tf(path: Path) -> None:
    from audioclf.checkpoints.tf import load_tf_state_dict
    from audioclf.errors import TFCheckpointError

    try:
        result = load_tf_state_dict(path)
        for key in result.state_dict:  # read every tensor, not just the metadata
            result.state_dict[key]
    except TFCheckpointError as error:
        _one_line(error)


def _one_line(error: BaseException) -> None:
    assert "\n" not in str(error) and str(error), f"not a one-line message: {str(error)!r}"


def _safetensors_seed() -> bytes:
    import torch
    from safetensors.torch import save

    return save({"encoder.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
                 "encoder.bias": torch.zeros(3, dtype=torch.float16)}, metadata={"format": "pt"})


def _config_seed() -> bytes:
    return (DATA / "configs" / "superb__hubert-large-superb-er" / "config.json").read_bytes()


def _preprocessor_seed() -> bytes:
    return json.dumps({"feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
                       "sampling_rate": 16000, "padding_value": 0.0, "do_normalize": True,
                       "return_attention_mask": False}).encode()


#: name -> (the valid file to mutate, its name, the reader, how many leading/trailing bytes count as its header)
Target = tuple[Callable[[], bytes], str, Callable[[Path], None], int]
TARGETS: dict[str, Target] = {
    "wav": (lambda: _audio_seed("WAV", "PCM_16"), "clip.wav", _read_audio, 64),
    "flac": (lambda: _audio_seed("FLAC", "PCM_16"), "clip.flac", _read_audio, 256),
    "ogg": (lambda: _audio_seed("OGG", "VORBIS"), "clip.ogg", _read_audio, 256),
    "opus": (lambda: _audio_seed("OGG", "OPUS"), "clip.opus", _read_audio, 256),
    "mp3": (lambda: _audio_seed("MP3", "MPEG_LAYER_III"), "clip.mp3", _read_audio, 256),
    "config": (_config_seed, "config.json", _read_model_config, 4096),
    "preprocessor": (_preprocessor_seed, "preprocessor_config.json", _read_preprocessor, 4096),
    "safetensors": (_safetensors_seed, "model.safetensors", _read_safetensors, 160),
    "h5": (lambda: (DATA / "tf" / "w2v2_cls_group" / "h5" / "tf_model.h5").read_bytes(), "tf_model.h5", _read_tf, 4096),
    "bundle-index": (lambda: (DATA / "tf" / "w2v2_cls_group" / "v1" / "model.ckpt.index").read_bytes(),
                     "model.ckpt.index", _read_tf, 512),
    "bundle-data": (lambda: (DATA / "tf" / "w2v2_cls_group" / "v1" / "model.ckpt.data-00000-of-00001").read_bytes(),
                    "model.ckpt.data-00000-of-00001", _read_tf, 512),
}


def run(name: str, examples: int) -> None:
    make_seed, file_name, read, hot = TARGETS[name]
    seed = make_seed()
    workspace = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    if name.startswith("bundle"):  # the other files of the bundle sit beside the mutated one
        for sibling in (DATA / "tf" / "w2v2_cls_group" / "v1").iterdir():
            shutil.copy(sibling, workspace / sibling.name)
    elif name == "h5":
        shutil.copy(DATA / "tf" / "w2v2_cls_group" / "h5" / "config.json", workspace / "config.json")
    target = workspace / file_name
    source = workspace / "model.ckpt" if name.startswith("bundle") else target  # a bundle is read by its prefix

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutations(len(seed), hot))
    def fuzz(edits: list[tuple[str, int, int]]) -> None:
        target.write_bytes(mutate(seed, edits))
        read(source)

    target.write_bytes(seed)
    read(source)  # the unmutated file reads cleanly
    try:
        fuzz()
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    limit = int(os.environ.get("FUZZ_ADDRESS_SPACE", 3 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for argument in sys.argv[1:]:  # NAME:EXAMPLES, one process for several targets (torch is imported once)
        target_name, count = argument.split(":")
        run(target_name, int(count))
        print(f"{target_name}: {count} examples, no finding", flush=True)
