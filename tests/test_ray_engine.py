"""``audioclf classify --engine ray`` on a real two-node Ray cluster started on loopback addresses inside the tests.

The head node listens on 127.0.0.2 and the worker node on 127.0.0.3 (Ray swaps 127.0.0.1 for the machine's own
address, other loopback addresses are kept), each with its own ports and 2 logical CPUs, started with
``ray start --block`` in a process group of its own: killing the group removes a node and everything it runs,
which is how the node-loss test takes the worker node away mid-run and how teardown cleans up.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from oracle import build_reference, save_reference

AUDIO = Path(__file__).parent / "data" / "audio"
CONV = dict(conv_dim=(32,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2))
BIN = Path(sys.executable).parent
ENV = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
ENV.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1",
           RAY_AUTH_MODE="disabled")  # a private test cluster: no token to share between nodes
#: Ray's own node-failure detection, made fast for the tests (defaults take ~30 s to declare a node dead)
HEALTH_CHECKS = dict(RAY_health_check_initial_delay_ms="0", RAY_health_check_period_ms="500",
                     RAY_health_check_timeout_ms="500", RAY_health_check_failure_threshold="4")
CLI_TIMEOUT = 180


# ------------------------------------------------------------------------------------------------------ the cluster
def _free_port_range(count: int) -> int:
    """The first of ``count`` consecutive TCP ports that are free on every address (Ray binds 0.0.0.0)."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port range")


class LoopbackCluster:
    """A Ray head plus worker nodes on loopback addresses, each ``ray start --block`` in its own process group."""

    def __init__(self) -> None:
        self.temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths live below it
        self.nodes: dict[str, subprocess.Popen] = {}
        self.address: str | None = None

    def _start(self, ip: str, cpus: int, head: bool) -> subprocess.Popen:
        base = _free_port_range(40)
        ports = dict(zip(["--node-manager-port", "--object-manager-port", "--dashboard-agent-grpc-port",
                          "--dashboard-agent-listen-port", "--metrics-export-port", "--runtime-env-agent-port"],
                         range(base + 1, base + 7)))
        command = [str(BIN / "ray"), "start", "--block", "--node-ip-address", ip, "--num-cpus", str(cpus),
                   "--num-gpus", "0", "--object-store-memory", str(100 * 1024 * 1024), "--disable-usage-stats",
                   "--min-worker-port", str(base + 10), "--max-worker-port", str(base + 39)]
        for option, port in ports.items():
            command += [option, str(port)]
        if head:
            command += ["--head", "--port", str(base), "--include-dashboard", "false", "--temp-dir", self.temp]
            self.address = f"{ip}:{base}"
        else:
            command += ["--address", self.address]
        log = open(Path(self.temp) / f"node-{ip}.log", "wb")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env={**ENV, **HEALTH_CHECKS}, start_new_session=True)
        log.close()
        self.nodes[ip] = process
        deadline = time.monotonic() + 90
        while b"Ray runtime started" not in (Path(self.temp) / f"node-{ip}.log").read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray node {ip} did not start:\n"
                                   + (Path(self.temp) / f"node-{ip}.log").read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        return process

    def start(self, head_cpus: int = 2, worker_cpus: int = 2) -> "LoopbackCluster":
        """The head on 127.0.0.2 and one worker node on 127.0.0.3."""
        self._start("127.0.0.2", head_cpus, head=True)
        self._start("127.0.0.3", worker_cpus, head=False)
        return self

    def processes(self, ip: str) -> list[tuple[int, str]]:
        """``(pid, command line)`` of every process of a node: its session (Ray gives each worker its own process
        group, but they all stay in the session of the node's ``ray start``)."""
        session = self.nodes[ip].pid
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                if int(stat[stat.rindex(")") + 2:].split()[3]) != session:  # fields after "(comm)": state ppid pgrp session
                    continue
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, ValueError):
                continue
            found.append((int(entry.name), cmdline))
        return found

    def kill_node(self, ip: str) -> None:
        """Take a node away at once: SIGKILL to its raylet, workers and actors (every process of its session)."""
        process = self.nodes[ip]
        for pid, _ in self.processes(ip):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        del self.nodes[ip]
        process.wait(timeout=30)

    def stop(self) -> None:
        """Kill every node (workers first) and remove the cluster's files; nothing of it is worth a clean exit."""
        for ip in list(self.nodes)[::-1]:
            self.kill_node(ip)
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    cluster = LoopbackCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


# ----------------------------------------------------------------------------------------------- model and files
def save_model(directory: Path, **overrides: object) -> Path:
    model = build_reference("wav2vec2", seed=3, feat_extract_norm="layer", **{**CONV, **overrides},
                            id2label={i: label for i, label in enumerate(["yes", "no", "up", "down", "go"])})
    directory = save_reference(model, directory)
    (directory / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": 16000,
        "padding_value": 0.0, "do_normalize": True, "return_attention_mask": True, "padding_side": "right"}))
    return directory


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tmp_path_factory.mktemp("ray-model") / "model")


def cli(*args: str, **popen: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audioclf", "classify", *args], capture_output=True, env=ENV,
                          timeout=CLI_TIMEOUT, **popen)


def local_records(model_dir: Path, inputs: list[str], *extra: str) -> list[dict]:
    result = cli("--model", str(model_dir), "--format", "jsonl", "--top-k", "0", *extra, *inputs)
    assert result.returncode in (0, 1), result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def shard_records(directory: Path) -> list[dict]:
    """Every record in the shards of ``directory``; each must match the record schema."""
    from audioclf.engine.ray import read_output_records
    from audioclf.engine.records import validate_record

    records = read_output_records(str(directory))
    for record in records:
        validate_record(record)
    return records


def assert_same_records(got: list[dict], expected: list[dict], rename=lambda path: path) -> None:
    """Same records for the same inputs (any order); scores within 1e-6, everything else equal."""
    def key(record: dict) -> tuple:
        return rename(record["path"]), record.get("channel", -1), record.get("start", -1.0)

    got, expected = sorted(got, key=key), sorted(expected, key=key)
    assert [key(r) for r in got] == [key(r) for r in expected]
    for mine, theirs in zip(got, expected):
        mine = {**mine, "path": rename(mine["path"])}
        assert mine.keys() == theirs.keys(), (mine, theirs)
        assert {k: v for k, v in mine.items() if k != "labels"} == {k: v for k, v in theirs.items() if k != "labels"}
        if "labels" in theirs:
            assert [item["label"] for item in mine["labels"]] == [item["label"] for item in theirs["labels"]] or \
                _same_up_to_ties(mine["labels"], theirs["labels"]), (mine, theirs)
            scores = {item["label"]: item["score"] for item in mine["labels"]}
            for item in theirs["labels"]:
                assert abs(scores[item["label"]] - item["score"]) <= 1e-6, (mine["path"], item, scores)


def _same_up_to_ties(a: list[dict], b: list[dict]) -> bool:
    """Label orders may differ only between scores within 1e-6 of each other."""
    return sorted(item["label"] for item in a) == sorted(item["label"] for item in b) and all(
        abs(x["score"] - y["score"]) <= 1e-6 for x, y in zip(a, b))


def one_record_per_input(records: list[dict], inputs: list[str]) -> None:
    paths = [record["path"] for record in records]
    assert sorted(paths) == sorted(inputs), (sorted(set(paths) ^ set(inputs)))


def audio_inputs() -> list[str]:
    """Every test clip (two of them fail: one too short, and a missing file)."""
    return sorted(str(path) for path in AUDIO.iterdir() if path.suffix != ".md") + [str(AUDIO / "missing.wav")]


# ------------------------------------------------------------------------------------------------------------ tests
def test_engine_ray_without_ray_installed_is_a_usage_error(model_dir: Path, tmp_path: Path) -> None:
    code = ("import sys; sys.modules['ray'] = None; sys.argv = ['audioclf'] + sys.argv[1:]; "
            "from audioclf.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", code, "classify", "--engine", "ray", "--model", str(model_dir),
                             str(AUDIO), "--output", str(tmp_path / "out")], capture_output=True, env=ENV, timeout=60)
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2 and result.stdout == b""
    assert len(lines) == 1 and lines[0].startswith("error: ") and "pip install 'audioclf[ray]'" in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_two_node_cluster_gives_the_local_engine_records(cluster: LoopbackCluster, model_dir: Path,
                                                         tmp_path: Path) -> None:
    inputs = audio_inputs()
    expected = local_records(model_dir, inputs)
    out = tmp_path / "out"
    result = cli("--engine", "ray", "--address", cluster.address, "--workers", "2", "--batch-size", "3",
                 "--model", str(model_dir), "--top-k", "0", str(AUDIO), str(AUDIO / "missing.wav"),
                 "--output", str(out))
    assert result.returncode == 1, result.stderr.decode()[-4000:]  # two inputs fail, as locally
    assert result.stdout == b""
    assert f"{len(inputs)} inputs classified; 2 failed" in result.stderr.decode()
    shards = sorted(p.name for p in out.iterdir())
    assert shards and all(name.startswith("part-") and name.endswith(".jsonl") for name in shards), shards
    records = shard_records(out)
    one_record_per_input(records, inputs)
    assert_same_records(records, expected)
    errors = {Path(r["path"]).name: r["error"] for r in records if "error" in r}
    assert errors.keys() == {"missing.wav", "soundfile_tiny_stereo.wav"}
    assert "no such file" in errors["missing.wav"] and "too short" in errors["soundfile_tiny_stereo.wav"]
    # JSON Lines shards hold exactly the lines the local engine prints
    local_lines = {json.dumps(r, ensure_ascii=False) for r in expected if "error" in r}
    shard_lines = {line for name in shards for line in (out / name).read_text().splitlines()}
    assert local_lines <= shard_lines


def test_file_uris_parquet_and_resume(cluster: LoopbackCluster, model_dir: Path, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    names = sorted(p.name for p in AUDIO.iterdir() if p.name.startswith("speechcommands") or p.suffix == ".ogg")
    first, later = names[:3], names[3:]
    for name in first:
        shutil.copy(AUDIO / name, clips / name)
    out = tmp_path / "results"
    common = ["--engine", "ray", "--address", cluster.address, "--workers", "2", "--model", str(model_dir),
              "--format", "parquet", f"file://{clips}", "--output", f"file://{out}"]

    result = cli(*common)
    assert result.returncode == 0, result.stderr.decode()[-4000:]
    assert f"{len(first)} inputs classified; 0 failed" in result.stderr.decode()
    first_shards = {p.name for p in out.glob("part-*.parquet")}
    assert len(first_shards) == 1

    for name in later:  # more files arrive; an interrupted write left a half shard behind
        shutil.copy(AUDIO / name, clips / name)
    (out / ".part-0123456789ab-000000.parquet.tmp").write_bytes(b"PAR1 half written")
    refused = cli(*common)
    assert refused.returncode == 2 and "--resume" in refused.stderr.decode().strip().splitlines()[-1]

    resumed = cli(*common, "--resume")
    assert resumed.returncode == 0, resumed.stderr.decode()[-4000:]
    assert f"{len(later)} inputs classified, {len(first)} already done; 0 failed" in resumed.stderr.decode()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("part-")) == []  # stale temporaries gone
    from audioclf.data.sources import filesystem
    from audioclf.engine.ray import read_shard_records

    fs, _ = filesystem(str(out))
    new_shards = {p.name for p in out.glob("part-*.parquet")} - first_shards
    assert len(new_shards) == 1
    new_paths = [r["path"] for r in read_shard_records(fs, str(out / new_shards.pop()))]
    assert sorted(new_paths) == [f"file://{clips}/{name}" for name in later]  # only the new inputs ran

    records = shard_records(out)
    one_record_per_input(records, [f"file://{clips}/{name}" for name in names])
    expected = local_records(model_dir, [str(clips / name) for name in names], "--top-k", "5")
    assert_same_records(records, expected, rename=lambda path: path.removeprefix("file://"))

    again = cli(*common, "--resume")  # nothing left to do
    assert again.returncode == 0 and f"0 inputs classified, {len(names)} already done" in again.stderr.decode()


def test_losing_a_worker_node_mid_run_loses_no_input_and_duplicates_none(tmp_path: Path) -> None:
    """Two model actors, one per node; the worker node is killed (SIGKILL to all its processes) while its actor is
    busy (or, on a slow day, up or starting: the run is under way either way). Ray restarts the actor on the head and retries its batch, and rebuilds the decoded inputs that were held
    in the dead node's object store. The head has a third CPU: a fixed pool of two CPU actors plus one decode task
    must fit on the surviving node, or decoding would wait for a CPU forever. The model is wider than elsewhere so
    that the actors, not decoding, are the busy part."""
    model_dir = save_model(tmp_path / "model", conv_dim=(128,) * 7, hidden_size=128, intermediate_size=256)
    clips = tmp_path / "clips"
    clips.mkdir()
    long_clips = [AUDIO / "librispeech_5703-47212-0000_16k_mono.ogg", AUDIO / "ljspeech_LJ050-0131_22k_mono.wav"]
    inputs = []
    for k in range(32):
        source = long_clips[k % 2]
        target = clips / f"{k:02d}-{source.name}"
        shutil.copy(source, target)
        inputs.append(str(target))
    options = ["--window", "0.5", "--model", str(model_dir)]
    expected = local_records(model_dir, [str(clips)], *options)
    out = tmp_path / "out"
    cluster = LoopbackCluster()
    process = None
    try:
        cluster.start(head_cpus=3, worker_cpus=2)
        process = subprocess.Popen(
            [sys.executable, "-m", "audioclf", "classify", "--engine", "ray", "--address", cluster.address,
             "--workers", "2", "--batch-size", "2", *options, str(clips), "--output", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        actor = "ray::MapWorker(MapBatches(_ModelActor))"
        started = time.monotonic()
        give_up = started + 40
        while time.monotonic() < give_up:  # wait for the worker node's actor to be up, then (a little) for a batch
            titles = [cmd for _, cmd in cluster.processes("127.0.0.3") if cmd.startswith(actor)]
            if any(".submit" in title for title in titles):
                break
            if any("__init__" not in title for title in titles):
                give_up = min(give_up, time.monotonic() + 5)
            assert process.poll() is None, process.communicate()[1].decode()[-4000:]
            time.sleep(0.02)
        cluster.kill_node("127.0.0.3")
        assert process.poll() is None  # the run was still going
        stdout, stderr = process.communicate(timeout=CLI_TIMEOUT)
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        cluster.stop()
    assert process.returncode == 0, stderr.decode()[-4000:]
    records = shard_records(out)
    assert sorted({r["path"] for r in records}) == sorted(inputs)  # every input accounted for
    keys = [(r["path"], r["start"]) for r in records]
    assert len(keys) == len(set(keys)), "duplicate records"
    assert_same_records(records, expected)
