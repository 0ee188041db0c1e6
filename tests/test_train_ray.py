"""``audioclf train --engine ray``: Ray Train's TorchTrainer with DDP workers running the local training loop.

* on this machine's own Ray (2 CPUs), 2 workers with batch B compute what a local run with batch 2B computes: the
  same loss and accuracy curves and nearly the same weights (a tiny model without dropout or masks, so that only
  the order of floating-point sums differs);
* on a real two-node cluster on loopback addresses (the classify engine's :class:`LoopbackCluster`), the worker node
  is killed (SIGKILL to all its processes) while one of the two training workers runs there: Ray Train starts the
  workers again on the head from the last checkpoint and the run ends with a complete model; then a run whose driver
  is killed continues with ``--resume``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from test_ray_engine import ENV, LoopbackCluster

pytestmark = pytest.mark.cluster

RATE = 16000
#: a tiny wav2vec2 trained from scratch with no random draw inside the model (no dropout, LayerDrop or masks)
TINY = {"model_type": "wav2vec2", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 48, "conv_dim": [16] * 7, "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
        "conv_stride": [5, 2, 2, 2, 2, 2, 2], "num_conv_pos_embeddings": 8, "num_conv_pos_embedding_groups": 4,
        "classifier_proj_size": 16, "hidden_dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0,
        "feat_proj_dropout": 0.0, "final_dropout": 0.0, "layerdrop": 0.0, "mask_time_prob": 0.0,
        "mask_feature_prob": 0.0}
#: tone bands of the three labels (Hz)
BANDS = {"high": (2500, 3500), "low": (200, 400), "mid": (800, 1200)}
RUN_TIMEOUT = 420


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<label>/<k>.wav``: 16 one-second clips per label, a tone of the label's band with random level, phase and
    noise."""
    root = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    time_axis = np.arange(RATE) / RATE
    for label, (low, high) in BANDS.items():
        (root / label).mkdir()
        for k in range(16):
            wave = rng.uniform(0.1, 0.5) * np.sin(2 * np.pi * rng.uniform(low, high) * time_axis + rng.uniform(0, 6))
            wave += rng.normal(0, 0.05, RATE)
            sf.write(root / label / f"{k:02d}.wav", wave.astype(np.float32), RATE)
    return root


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def train_command(data: Path, output: Path, config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "audioclf", "train", str(data), "--output", str(output), "--config", str(config),
            "--threads", "1", "--seed", "0", "--val-split", "0.2", *extra]


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=RUN_TIMEOUT)


def report_of(output: Path) -> dict:
    return json.loads((output / "training_report.json").read_text())


def weights_of(output: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(output / "model.safetensors")


def assert_complete(output: Path, epochs: int) -> dict:
    """A finished run's output, as the local trainer leaves it; its report."""
    names = {p.name for p in output.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "training_report.json"} <= names, names
    assert not any(name.startswith(".") for name in names), names  # no temporaries left
    assert "checkpoints" not in names  # removed after success
    report = report_of(output)
    assert [row["epoch"] for row in report["epochs"]] == list(range(1, epochs + 1))
    assert report["distributed"]["engine"] == "ray" and report["distributed"]["backend"] == "gloo"
    return report


def test_two_workers_match_a_local_run_with_twice_the_batch(tones: Path, tiny_config: Path, tmp_path: Path) -> None:
    """Also: ``--workers 2 --threads 1`` on a Ray started for the run on this 2-CPU machine. 39 training clips in
    batches of 8 (4 per worker): the last batch of 7 splits 4/3, which the weighting of each worker's loss makes
    exact."""
    epochs = 3
    local = run(train_command(tones, tmp_path / "local", tiny_config, "--epochs", str(epochs), "--batch-size", "8",
                              "--quiet"))
    assert local.returncode == 0, local.stderr[-3000:]
    ray = run(train_command(tones, tmp_path / "ray", tiny_config, "--epochs", str(epochs), "--batch-size", "4",
                            "--engine", "ray", "--workers", "2"))
    assert ray.returncode == 0, ray.stderr[-4000:]
    report = assert_complete(tmp_path / "ray", epochs)
    assert report["distributed"]["workers"] == 2
    expected = report_of(tmp_path / "local")
    assert report["data"] == expected["data"]
    for mine, theirs in zip(report["epochs"], expected["epochs"]):
        for key in ("train_loss", "val_loss"):
            assert abs(mine[key] - theirs[key]) <= 1e-4 * max(1.0, abs(theirs[key])), (key, mine, theirs)
        for key in ("train_accuracy", "val_accuracy", "lr"):
            assert mine[key] == pytest.approx(theirs[key], abs=1e-9), (key, mine, theirs)
    got, want = weights_of(tmp_path / "ray"), weights_of(tmp_path / "local")
    assert got.keys() == want.keys()
    worst = max(float(np.abs(got[key] - want[key]).max()) for key in want)
    assert worst <= 1e-3, worst
    assert expected["epochs"][-1]["val_accuracy"] > 1 / len(BANDS)  # it learned something: the curves mean something


def _training_workers(cluster: LoopbackCluster, ip: str) -> list[str]:
    return [cmd for _, cmd in cluster.processes(ip) if cmd.startswith("ray::RayTrainWorker")]


def _committed(output: Path) -> bool:
    """Whether Ray Train has registered a checkpoint of the run (its snapshot names the latest one): a checkpoint
    folder that is still being reported when its worker dies is not one to continue from."""
    return (output / "checkpoints" / "checkpoint_manager_snapshot.json").is_file()


def test_losing_the_worker_node_then_resuming_a_killed_driver(tones: Path, tiny_config: Path, tmp_path: Path) -> None:
    """Two training workers spread over the two nodes; once the first epoch's checkpoint is registered, the worker node
    is killed. Ray Train notices the dead worker, starts both workers on the head (2 CPUs) and they continue from
    that checkpoint: the run completes. Then, on the head alone, a run's driver is killed with SIGKILL after a
    checkpoint; the same command with ``--resume`` completes it."""
    epochs = 6
    cluster = LoopbackCluster()
    process = None
    try:
        cluster.start(head_cpus=2, worker_cpus=2)
        output = tmp_path / "node-loss"
        process = subprocess.Popen(train_command(tones, output, tiny_config, "--epochs", str(epochs),
                                                 "--batch-size", "4", "--engine", "ray", "--address", cluster.address,
                                                 "--workers", "2"),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        deadline = time.monotonic() + 180
        while not (_committed(output) and _training_workers(cluster, "127.0.0.3")):
            assert process.poll() is None, process.communicate()[1][-4000:]
            assert time.monotonic() < deadline, "no checkpoint with a worker on the worker node in time"
            time.sleep(0.05)
        cluster.kill_node("127.0.0.3")
        assert process.poll() is None  # the run was still going
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
        assert process.returncode == 0, stderr[-4000:]
        report = assert_complete(output, epochs)
        lines = [line for line in stderr.splitlines() if "PlacementGroupCleaner" not in line]
        assert report["distributed"]["restored"] is True, "\n".join(lines)[-6000:]  # the workers started again
        assert report["kept_epoch"] in range(1, epochs + 1)

        # the driver killed: the run stops; --resume continues it from the last checkpoint
        output = tmp_path / "driver-killed"
        command = train_command(tones, output, tiny_config, "--epochs", "3", "--batch-size", "4", "--engine", "ray",
                                "--address", cluster.address, "--workers", "2")
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        deadline = time.monotonic() + 180
        while not _committed(output):
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        refused = run(command)
        assert refused.returncode == 2 and "--resume" in refused.stderr, refused.stderr[-3000:]
        resumed = run(command + ["--resume"])
        assert resumed.returncode == 0, resumed.stderr[-4000:]
        report = assert_complete(output, 3)
        assert report["distributed"]["restored"] is True
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        cluster.stop()
