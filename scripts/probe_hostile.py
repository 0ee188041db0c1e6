#!/usr/bin/env python3
"""Hostile-but-fair probes of the audioclf command line; prints a markdown table (probe, outcome, verdict).

Each probe builds its inputs in a fresh temporary directory, runs ``python -m audioclf ...`` in a subprocess with a
wall-clock timeout and an address-space limit, and judges the outcome: OK (clear one-line error or correct result,
nothing destroyed), BAD (what went wrong). The probes are black-box: they look only at exit codes, stdout, stderr
and the files left behind, so they run unchanged against any revision (``--repo``). Timing-dependent probes (signals)
wait for the run to go idle rather than for a fixed time, so a loaded machine does not change their verdict.

Usage: python scripts/probe_hostile.py [--repo DIR] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

AS_LIMIT = 6 << 30
TIMEOUT = 120


def run(args, cwd, repo, timeout=TIMEOUT, stdin=None, env_extra=None, enforce_permissions=False):
    """(exit code or "timeout", stdout, stderr, seconds); the child's peak RSS in MB is kept in LAST_PEAK_MB.
    ``enforce_permissions``: as root, run without the capabilities that let root ignore file permissions."""
    global LAST_PEAK_MB
    env = dict(os.environ, PYTHONPATH=str(repo), NO_COLOR="1", **(env_extra or {}))
    start = time.monotonic()

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
        if env.get("PROBE_FSIZE"):  # writes past 200 bytes fail with EFBIG, as on a full disk
            resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))

    out_file, err_file = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    prefix = []
    if enforce_permissions and os.geteuid() == 0:
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner"]
    process = subprocess.Popen([*prefix, sys.executable, "-m", "audioclf", *args], cwd=cwd, env=env, stdout=out_file,
                               stderr=err_file, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                               preexec_fn=limit)
    if stdin is not None:
        process.stdin.write(stdin)
        process.stdin.close()
    code = "timeout"
    while time.monotonic() - start < timeout:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            code = os.waitstatus_to_exitcode(status)
            LAST_PEAK_MB = usage.ru_maxrss / 1024
            process.returncode = code
            break
        time.sleep(0.05)
    else:
        process.kill()
        _, _, usage = os.wait4(process.pid, 0)
        LAST_PEAK_MB = usage.ru_maxrss / 1024
        process.returncode = -9
    out_file.seek(0)
    err_file.seek(0)
    return (code, out_file.read().decode(errors="replace"), err_file.read().decode(errors="replace"),
            time.monotonic() - start)


LAST_PEAK_MB = 0.0


def cpu_seconds(pid):
    """User + system CPU seconds of a running process (Linux /proc), None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(process, quiet=2.0, timeout=300):
    """Wait until ``process`` has used CPU and then stays idle for ``quiet`` seconds (it waits for input)."""
    start = time.monotonic()
    last, since = None, time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            return False
        used = cpu_seconds(process.pid)
        if used != last:
            last, since = used, time.monotonic()
        elif used and used > 1.0 and time.monotonic() - since >= quiet:
            return True
        time.sleep(0.1)
    return False


def has_nan_json(out):
    """Whether JSON Lines output holds a NaN/Infinity literal (not JSON) or a line that is not JSON at all."""
    def refuse(name):
        raise ValueError(name)
    for line in out.splitlines():
        try:
            json.loads(line, parse_constant=refuse)
        except ValueError:
            return True
    return False


def traceback_in(text):
    return "Traceback (most recent call last)" in text


def one_line_error(code, err):
    lines = [l for l in err.strip().splitlines() if l.startswith("error:")]
    return code == 2 and len(lines) >= 1 and not traceback_in(err)


def wav_bytes(samples, rate=16000):
    import io
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.asarray(samples) * 20000).astype("<i2").tobytes())
    return buf.getvalue()


def tiny_model(repo, directory):
    """A copy of the bundled default model (small) to mutate."""
    shutil.copytree(Path(repo) / "audioclf/assets/default-model", directory)
    return directory


def summarize(code, err, seconds):
    last = err.strip().splitlines()[-1][:110] if err.strip() else ""
    tb = " [traceback]" if traceback_in(err) else ""
    return f"exit {code}, {seconds:.1f} s, peak {LAST_PEAK_MB:.0f} MB{tb}: {last}"


PROBES = {}


def probe(name):
    def register(fn):
        PROBES[name] = fn
        return fn
    return register


# ---------------------------------------------------------------------------------------------- never destroy
def _tf_source(repo, tmp):
    src = tmp / "src"
    shutil.copytree(Path(repo) / "tests/data/tf/w2v2_cls_group/h5", src)
    return src


@probe("convert --force onto its own source")
def _(repo, tmp):
    src = _tf_source(repo, tmp)
    code, out, err, s = run(["convert", "--from-tf", str(src), "--output", str(src), "--force"], tmp, repo)
    alive = (src / "tf_model.h5").exists()
    return summarize(code, err, s), ("OK" if alive and code == 2 else f"BAD: source {'kept' if alive else 'DELETED'}, exit {code}")


@probe("convert --force onto an ancestor of the source")
def _(repo, tmp):
    parent = tmp / "parent"
    parent.mkdir()
    (parent / "notes.txt").write_text("mine")
    shutil.copytree(Path(repo) / "tests/data/tf/w2v2_cls_group/h5", parent / "src")
    code, out, err, s = run(["convert", "--from-tf", str(parent / "src"), "--output", str(parent), "--force"], tmp, repo)
    ok = (parent / "src" / "tf_model.h5").exists() and (parent / "notes.txt").exists()
    return summarize(code, err, s), ("OK" if ok and code == 2 else "BAD: source or unrelated files deleted")


@probe("convert --force into a directory of unrelated files")
def _(repo, tmp):
    src = _tf_source(repo, tmp)
    out_dir = tmp / "work"
    out_dir.mkdir()
    (out_dir / "thesis.tex").write_text("years of work")
    code, out, err, s = run(["convert", "--from-tf", str(src), "--output", str(out_dir), "--force"], tmp, repo)
    ok = (out_dir / "thesis.tex").exists()
    return summarize(code, err, s), ("OK" if ok and code == 2 else "BAD: unrelated file deleted" if not ok else f"BAD: exit {code}")


@probe("classify --output onto a device node")
def _(repo, tmp):
    node = tmp / "null-device"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    code, out, err, s = run(["classify", str(Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"),
                             "--output", str(node), "--format", "jsonl"], tmp, repo)
    ok = stat.S_ISCHR(os.lstat(node).st_mode)
    return summarize(code, err, s), ("OK" if ok and code == 0 else "BAD: device node replaced by a regular file" if not ok else f"BAD: exit {code}")


@probe("classify --output onto a symlink")
def _(repo, tmp):
    target = tmp / "real.jsonl"
    target.write_text("")
    link = tmp / "link.jsonl"
    link.symlink_to(target)
    code, out, err, s = run(["classify", str(Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"),
                             "--output", str(link)], tmp, repo)
    still_link = link.is_symlink()
    wrote = target.read_text().strip() != ""
    verdict = "OK" if (still_link and wrote and code == 0) or (still_link and code == 2) else \
        f"BAD: symlink {'kept' if still_link else 'replaced by a regular file'}, target {'written' if wrote else 'untouched'}, exit {code}"
    return summarize(code, err, s), verdict


@probe("classify --output onto a directory")
def _(repo, tmp):
    d = tmp / "outdir"
    d.mkdir()
    code, out, err, s = run(["classify", str(Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"),
                             "--output", str(d), "--format", "jsonl"], tmp, repo)
    return summarize(code, err, s), ("OK" if one_line_error(code, err) and d.is_dir() else "BAD")


@probe("classify --output in a read-only directory")
def _(repo, tmp):
    d = tmp / "ro"
    d.mkdir()
    (d / "old.jsonl").write_text("old\n")
    os.chmod(d, 0o555)
    code, out, err, s = run(["classify", str(Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"),
                             "--output", str(d / "old.jsonl")], tmp, repo, enforce_permissions=True)
    os.chmod(d, 0o755)
    kept = (d / "old.jsonl").read_text() == "old\n"
    return summarize(code, err, s), ("OK" if kept and one_line_error(code, err) else "BAD")


@probe("classify --output onto a full disk (/dev/full)")
def _(repo, tmp):
    code, out, err, s = run(["classify", str(Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"),
                             "--output", "/dev/full"], tmp, repo)
    return summarize(code, err, s), ("OK" if one_line_error(code, err) else "BAD")


@probe("classify --output beyond the file-size limit (old file kept)")
def _(repo, tmp):
    old = tmp / "old.jsonl"
    old.write_text("old\n")
    files = _long_run(repo, tmp, 3)
    code, out, err, s = run(["classify", *files, "--output", str(old)], tmp, repo,
                            env_extra={"PROBE_FSIZE": "1"})
    kept = old.read_text() == "old\n"
    return summarize(code, err, s), ("OK" if kept and one_line_error(code, err) else "BAD")


def _long_run(repo, tmp, count=40):
    files = []
    audio = np.random.default_rng(0).standard_normal(16000 * 4).astype(np.float32) * 0.1
    for k in range(count):
        f = tmp / f"clip{k:03d}.wav"
        f.write_bytes(wav_bytes(audio))
        files.append(str(f))
    return files


def _signal_probe(repo, tmp, sig, count=6):
    """Classify ``count`` files listed on stdin (kept open, so the run then waits for more), send ``sig`` once the
    run is idle, and return (exit code, stderr, records kept in the output, hidden files left beside it). After
    SIGKILL, "kept" is what a following ``--resume`` run recovers: the inputs are moved away first, so any input
    whose record was lost comes back as an error record."""
    files = _long_run(repo, tmp, count)
    out = tmp / "records.jsonl"
    env = dict(os.environ, PYTHONPATH=str(repo), NO_COLOR="1")
    launch = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
              "os.execv(sys.executable, [sys.executable, '-m', 'audioclf', *sys.argv[1:]])")
    err_file = tempfile.TemporaryFile()
    p = subprocess.Popen([sys.executable, "-c", launch, "classify", "--output", str(out), "--resume", "--threads", "1",
                          "-"], cwd=tmp, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err_file)
    p.stdin.write("".join(f + "\n" for f in files).encode())
    p.stdin.flush()
    if not wait_idle(p):
        p.kill()
        p.wait()
        return p.returncode, "did not become idle", 0, []
    p.send_signal(sig)
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    p.stdin.close()
    err_file.seek(0)
    err = err_file.read().decode(errors="replace")
    if sig == signal.SIGKILL:
        for f in files:
            os.rename(f, f + ".moved")
        run(["classify", "--output", str(out), "--resume", *files], tmp, repo)
    records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    kept = sum(1 for r in records if "labels" in r)
    hidden = [x.name for x in tmp.iterdir() if x.name.startswith(".records")]
    return p.returncode, err, kept, hidden


@probe("SIGTERM mid-run with --resume --output")
def _(repo, tmp):
    code, err, kept, hidden = _signal_probe(repo, tmp, signal.SIGTERM)
    ok = kept == 6 and not hidden and code not in (0, 1)
    return f"exit {code}, {kept} of 6 finished records kept, hidden files left: {len(hidden)}", ("OK" if ok else "BAD")


@probe("SIGKILL mid-run with --resume --output")
def _(repo, tmp):
    code, err, kept, hidden = _signal_probe(repo, tmp, signal.SIGKILL)
    ok = kept == 6 and not hidden
    return (f"exit {code}, {kept} of 6 finished records recovered by --resume, hidden files left after it: "
            f"{len(hidden)}", "OK" if ok else "BAD: finished records lost" if kept < 6 else "BAD: files left")


@probe("Ctrl-C mid-run")
def _(repo, tmp):
    code, err, kept, hidden = _signal_probe(repo, tmp, signal.SIGINT)
    lines = err.strip().splitlines()
    ok = code == 130 and lines and lines[-1] == "interrupted" and not traceback_in(err)
    return f"exit {code}, last line {lines[-1] if lines else ''!r}", "OK" if ok else "BAD"


@probe("two runs writing the same --output")
def _(repo, tmp):
    files = _long_run(repo, tmp, 3)
    out = tmp / "shared.jsonl"
    env = dict(os.environ, PYTHONPATH=str(repo), NO_COLOR="1")
    first = subprocess.Popen([sys.executable, "-m", "audioclf", "classify", "--output", str(out), "-"], cwd=tmp, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first.stdin.write((files[0] + "\n").encode())
    first.stdin.flush()
    wait_idle(first)
    code, _, err, s = run(["classify", "--output", str(out), files[1], files[2]], tmp, repo)
    first.stdin.close()
    first.wait(timeout=120)
    paths = {json.loads(line)["path"] for line in out.read_text().splitlines()} if out.exists() else set()
    refused = one_line_error(code, err)
    ok = refused and paths == {files[0]} or paths == set(files)
    return summarize(code, err, s) + f"; output holds {len(paths)} of the records", (
        "OK" if ok else "BAD: one run's records silently dropped")


@probe("stale temporary of a killed run")
def _(repo, tmp):
    out = tmp / "r.jsonl"
    stale = tmp / ".r.jsonl.abcd1234.tmp"
    stale.write_text("half written")
    f = Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"
    code, _, err, s = run(["classify", str(f), "--output", str(out)], tmp, repo)
    return summarize(code, err, s), "OK" if code == 0 and not stale.exists() else "BAD: stale temporary left"


@probe("csv --resume with a quoted newline in a path")
def _(repo, tmp):
    src = Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"
    odd = tmp / "two\nlines.wav"
    shutil.copy(src, odd)
    other = tmp / "b.wav"
    shutil.copy(src, other)
    out = tmp / "r.csv"
    run(["classify", str(odd), "--output", str(out)], tmp, repo)
    code, _, err, s = run(["classify", str(odd), str(other), "--output", str(out), "--resume"], tmp, repo)
    text = out.read_text() if out.exists() else ""
    import csv, io
    rows = list(csv.reader(io.StringIO(text)))[1:]
    paths = {r[0] for r in rows}
    ok = code == 0 and paths == {str(odd), str(other)} and len([r for r in rows if r[4] == "1"]) == 2
    return summarize(code, err, s), ("OK" if ok else f"BAD: paths {sorted(paths)[:3]}")


# ------------------------------------------------------------------------------------- bounded time and memory
@probe("WAV declaring a 1 Hz sample rate")
def _(repo, tmp):
    f = tmp / "slow.wav"
    f.write_bytes(wav_bytes(np.zeros(8000), rate=1))
    code, out, err, s = run(["classify", str(f), "--format", "jsonl"], tmp, repo)
    ok = code == 1 and not traceback_in(err) and LAST_PEAK_MB < 1000 and code != "timeout"
    return summarize(code, err, s), ("OK" if ok else "BAD")


@probe("WAV declaring 65535 channels")
def _(repo, tmp):
    header = wav_bytes(np.zeros(4))
    f = tmp / "wide.wav"
    data = bytearray(header[:44]) + bytes(65535 * 2 * 200)
    struct.pack_into("<HIIH", data, 22, 65535, 16000, 16000 * 2 * 65535 & 0xFFFFFFFF, 2 * 65535 & 0xFFFF)
    struct.pack_into("<I", data, 40, 65535 * 2 * 200)
    struct.pack_into("<I", data, 4, len(data) - 8)
    f.write_bytes(bytes(data))
    code, out, err, s = run(["classify", str(f), "--format", "jsonl"], tmp, repo)
    ok = code == 1 and '"error"' in out and not traceback_in(err) and LAST_PEAK_MB < 1000
    return summarize(code, err, s), ("OK" if ok else "BAD")


def _config_probe(repo, tmp, change):
    model = tiny_model(repo, tmp / "model")
    config = json.loads((model / "config.json").read_text())
    change(config)
    (model / "config.json").write_text(json.dumps(config))
    f = Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"
    return run(["classify", "--model", str(model), str(f), "--format", "jsonl"], tmp, repo, timeout=60)


@probe("config num_hidden_layers 1000000")
def _(repo, tmp):
    code, out, err, s = _config_probe(repo, tmp, lambda c: c.update(num_hidden_layers=1000000))
    return summarize(code, err, s), ("OK" if one_line_error(code, err) and LAST_PEAK_MB < 1000 else "BAD")


@probe("config conv_dim of 10**9")
def _(repo, tmp):
    code, out, err, s = _config_probe(repo, tmp, lambda c: c.update(conv_dim=[10 ** 9] * len(c["conv_dim"])))
    return summarize(code, err, s), ("OK" if one_line_error(code, err) else "BAD")


@probe("config layer_norm_eps NaN")
def _(repo, tmp):
    model = tiny_model(repo, tmp / "model")
    text = (model / "config.json").read_text()
    config = json.loads(text)
    config["layer_norm_eps"] = float("nan")
    (model / "config.json").write_text(json.dumps(config))  # json.dumps writes NaN
    f = Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"
    code, out, err, s = run(["classify", "--model", str(model), str(f), "--format", "jsonl"], tmp, repo)
    nan_out = has_nan_json(out)
    return summarize(code, err, s), ("OK" if one_line_error(code, err) and not nan_out else "BAD: NaN in output" if nan_out else "BAD")


def _nested_json_probe(file_name, prefix):
    def check(repo, tmp):
        model = tiny_model(repo, tmp / "model")
        (model / file_name).write_text(prefix + "[" * 100000 + "]" * 100000 + "}")
        f = Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"
        code, out, err, s = run(["classify", "--model", str(model), str(f)], tmp, repo)
        return summarize(code, err, s), ("OK" if one_line_error(code, err) else "BAD")
    return check


PROBES["deeply nested config.json"] = _nested_json_probe("config.json", '{"model_type": "wav2vec2", "x": ')


@probe("200 MB config.json")
def _(repo, tmp):
    model = tiny_model(repo, tmp / "model")
    config = json.loads((model / "config.json").read_text())
    with open(model / "config.json", "w") as stream:
        stream.write(json.dumps(config)[:-1] + ', "padding": "')
        chunk = "x" * (1 << 20)
        for _ in range(200):
            stream.write(chunk)
        stream.write('"}')
    f = Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"
    code, out, err, s = run(["classify", "--model", str(model), str(f)], tmp, repo)
    return summarize(code, err, s), ("OK" if one_line_error(code, err) and LAST_PEAK_MB < 500 else "BAD")


PROBES["deeply nested preprocessor_config.json"] = _nested_json_probe("preprocessor_config.json", '{"x": ')


@probe("checkpoint with NaN weights")
def _(repo, tmp):
    from safetensors.numpy import load_file, save_file
    model = tiny_model(repo, tmp / "model")
    state = load_file(str(model / "model.safetensors"))
    key = next(k for k in state if k.startswith("classifier") and k.endswith("bias"))
    state[key] = np.full_like(state[key], np.nan)
    save_file(state, str(model / "model.safetensors"))
    f = Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"
    code, out, err, s = run(["classify", "--model", str(model), str(f), "--format", "jsonl"], tmp, repo)
    nan_out = has_nan_json(out)
    ok = code in (1, 2) and not nan_out and not traceback_in(err)
    return summarize(code, err, s), ("OK" if ok else "BAD: NaN in output" if nan_out else "BAD")


@probe("preprocessor sampling_rate 10**9")
def _(repo, tmp):
    model = tiny_model(repo, tmp / "model")
    pre = json.loads((model / "preprocessor_config.json").read_text())
    pre["sampling_rate"] = 10 ** 9
    (model / "preprocessor_config.json").write_text(json.dumps(pre))
    f = Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"
    code, out, err, s = run(["classify", "--model", str(model), str(f)], tmp, repo)
    return summarize(code, err, s), ("OK" if one_line_error(code, err) else "BAD")


@probe("h5 with a huge compressed never-written dataset")
def _(repo, tmp):
    import h5py
    src = _tf_source(repo, tmp)
    with h5py.File(src / "tf_model.h5", "a") as h5:
        group = h5["wav2vec2"] if "wav2vec2" in h5 else h5[list(h5.keys())[0]]
        names = [n if isinstance(n, bytes) else str(n).encode() for n in group.attrs.get("weight_names", [])]
        huge = names[0].rsplit(b"/", 1)[0] + b"/huge:0"
        group.create_dataset(huge.decode(), shape=(20000, 20000), dtype="f4", compression="gzip", chunks=(1000, 1000))
        group.attrs["weight_names"] = np.array(names + [huge])
    code, out, err, s = run(["convert", "--from-tf", str(src), "--output", str(tmp / "out")], tmp, repo)
    return summarize(code, err, s), ("OK" if code in (0, 2) and not traceback_in(err) and LAST_PEAK_MB < 1000 else "BAD")


def _bundle_helpers(repo):
    import importlib.util
    sys.path.insert(0, str(Path(repo) / "tests"))
    spec = importlib.util.spec_from_file_location("probe_bundle_helpers", Path(repo) / "tests/test_tf_bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@probe("TF bundle with a huge unused tensor")
def _(repo, tmp):
    helpers = _bundle_helpers(repo)
    src = tmp / "src"
    shutil.copytree(Path(repo) / "tests/data/tf/w2v2_cls_group/v1", src)
    index = src / "model.ckpt.index"
    data = next(src.glob("model.ckpt.data-*"))
    entries = list(helpers.table_entries(index))
    offset = data.stat().st_size
    size = 65536 * 65536 * 4  # 17 GB, a sparse file on disk
    entries.append((b"unused/huge", helpers.entry_proto(1, (65536, 65536), 0, offset, size, None)))
    entries.sort()
    helpers.write_table(index, entries)
    os.truncate(data, offset + size)
    code, out, err, s = run(["convert", "--from-tf", str(src), "--output", str(tmp / "out")], tmp, repo)
    ok = code == 0 and not traceback_in(err) and LAST_PEAK_MB < 1000
    return summarize(code, err, s), ("OK" if ok else "BAD")


@probe("h5 external link outside the model directory")
def _(repo, tmp):
    import h5py
    src = _tf_source(repo, tmp)
    secret = tmp / "secret.h5"
    with h5py.File(secret, "w") as h5:
        h5["data"] = np.zeros(3, np.float32)
    with h5py.File(src / "tf_model.h5", "a") as h5:
        group = h5[[k for k in h5.keys()][0]]
        names = [n if isinstance(n, bytes) else str(n).encode() for n in group.attrs["weight_names"]]
        first = names[0].decode()
        del group[first]
        group[first] = h5py.ExternalLink(str(secret), "/data")
    code, out, err, s = run(["convert", "--from-tf", str(src), "--output", str(tmp / "out")], tmp, repo)
    return summarize(code, err, s), ("OK" if one_line_error(code, err) and "outside" in err else "BAD: followed")


# ----------------------------------------------------------------------------------------- terminal / spreadsheet
def _labels_probe(repo, tmp, labels, args):
    model = tiny_model(repo, tmp / "model")
    config = json.loads((model / "config.json").read_text())
    config["id2label"] = {str(i): labels[i % len(labels)] + (str(i) if i >= len(labels) else "") for i in range(len(config["id2label"]))}
    config["label2id"] = {v: int(k) for k, v in config["id2label"].items()}
    (model / "config.json").write_text(json.dumps(config))
    if args[0] != "classify":  # inspect MODEL ...
        return run([args[0], str(model), *args[1:]], tmp, repo)
    f = Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"
    return run([args[0], "--model", str(model), *args[1:], str(f)], tmp, repo)


@probe("escape sequences in labels (table)")
def _(repo, tmp):
    evil = ["\x1b]0;pwned\x07", "\x1b[2J", "a\rb", "new\nline", "nul\x00x"]
    code, out, err, s = _labels_probe(repo, tmp, evil, ["classify", "--format", "table", "--top-k", "0"])
    raw = any(ch in out for ch in ("\x1b", "\r", "\x00", "\x07"))
    return summarize(code, err, s), ("BAD: control characters printed raw" if raw else "OK")


@probe("escape sequences in a file name (table and stderr)")
def _(repo, tmp):
    bad = tmp / "evil\x1b]0;pwned\x07\x1b[2Jname.wav"
    bad.write_bytes(b"not audio")
    code, out, err, s = run(["classify", str(bad), "--format", "table"], tmp, repo)
    raw = any(ch in out + err for ch in ("\x1b", "\x07"))
    return summarize(code, err, s), ("BAD: control characters printed raw" if raw else "OK")


@probe("formula injection in csv")
def _(repo, tmp):
    evil = ["=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)"]
    code, out, err, s = _labels_probe(repo, tmp, evil, ["classify", "--format", "csv", "--top-k", "0"])
    import csv, io
    cells = [c for row in csv.reader(io.StringIO(out)) for c in row]
    bad = [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not c[1:2].isdigit() and c != "-")]
    return summarize(code, err, s), ("BAD: formula cells " + ", ".join(bad[:3]) if bad else "OK")


@probe("carriage return in a label (csv rows, --resume)")
def _(repo, tmp):
    import csv
    out_file = tmp / "out.csv"
    args = ["classify", "--format", "csv", "--top-k", "0", "--output", str(out_file), "--resume"]
    for _attempt in range(2):  # the second run reads the first one's rows back
        code, out, err, s = _labels_probe(repo, tmp, ["over\rwrite", "plain"], args)
        shutil.rmtree(tmp / "model")
    with open(out_file, newline="") as stream:
        widths = {len(row) for row in csv.reader(stream)}
    return summarize(code, err, s), ("OK" if code == 0 and widths == {8} else f"BAD: rows of {sorted(widths)} cells")


@probe("inspect with a label '[/]'")
def _(repo, tmp):
    code, out, err, s = _labels_probe(repo, tmp, ["[/]", "[bold]x"], ["inspect"])
    return summarize(code, err, s), ("OK" if code == 0 and "[/]" in out else "BAD")


# --------------------------------------------------------------------------------------------- files and paths
@probe("sharded index pointing outside the model directory")
def _(repo, tmp):
    model = tiny_model(repo, tmp / "model")
    outside = tmp / "outside.safetensors"
    shutil.move(model / "model.safetensors", outside)
    (model / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": str(outside)}}))
    f = Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"
    code, out, err, s = run(["classify", "--model", str(model), str(f)], tmp, repo)
    return summarize(code, err, s), ("OK" if one_line_error(code, err) else "BAD: loaded weights from outside")


@probe("symlink loop inside a directory input")
def _(repo, tmp):
    d = tmp / "in"
    (d / "sub").mkdir(parents=True)
    shutil.copy(Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav", d / "a.wav")
    (d / "loop.wav").symlink_to(d / "loop.wav")
    (d / "sub" / "up").symlink_to(d)
    code, out, err, s = run(["classify", "--recursive", str(d), "--format", "jsonl"], tmp, repo)
    records = [json.loads(l) for l in out.splitlines() if l.strip()]
    ok = any("labels" in r for r in records) and not traceback_in(err) and s < 60
    return summarize(code, err, s) + f", {len(records)} records", ("OK" if ok else "BAD")


@probe("** glob with a directory symlink cycle")
def _(repo, tmp):
    d = tmp / "g"
    (d / "sub").mkdir(parents=True)
    shutil.copy(Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav", d / "sub" / "a.wav")
    (d / "sub" / "cycle").symlink_to(d)
    code, out, err, s = run(["classify", "--recursive", str(d) + "/**/*.wav", "--format", "jsonl"], tmp, repo, timeout=60)
    records = [json.loads(l) for l in out.splitlines() if l.strip()]
    paths = [r["path"] for r in records]
    ok = code != "timeout" and len(paths) == len(set(os.path.realpath(p) for p in paths))
    return summarize(code, err, s) + f", {len(records)} records", ("OK" if ok else "BAD: duplicates or hang")


@probe("non-UTF-8 file name")
def _(repo, tmp):
    name = os.fsencode(str(tmp)) + b"/caf\xe9.wav"
    shutil.copy(Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav", name)
    code, out, err, s = run(["classify", str(tmp), "--format", "jsonl"], tmp, repo)
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    ok = (code == 0 and records and "labels" in records[0] and os.fsencode(records[0]["path"]) == name
          and not traceback_in(err))
    return summarize(code, err, s), ("OK" if ok else "BAD")


def _truncated(repo, tmp, source, keep):
    data = (Path(repo) / source).read_bytes()
    f = tmp / ("cut" + Path(source).suffix)
    f.write_bytes(data[: int(len(data) * keep)])
    code, out, err, s = run(["classify", str(f), "--format", "jsonl"], tmp, repo)
    return code, out, err, s


@probe("truncated Ogg (60%)")
def _(repo, tmp):
    code, out, err, s = _truncated(repo, tmp, "tests/data/audio/librispeech_5703-47212-0000_16k_mono.ogg", 0.6)
    return summarize(code, err, s), ("OK" if code == 1 and '"error"' in out else "BAD: classified as a shorter recording")


@probe("truncated MP3 (60%)")
def _(repo, tmp):
    code, out, err, s = _truncated(repo, tmp, "tests/data/audio/audioread_test-1_22k_mono.mp3", 0.6)
    return summarize(code, err, s), ("OK" if code == 1 and '"error"' in out else "BAD: classified as a shorter recording")


@probe("checkpoint with none of the model's tensors")
def _(repo, tmp):
    model = tiny_model(repo, tmp / "model")
    from safetensors.numpy import save_file
    save_file({"unrelated.weight": np.zeros(3, dtype=np.float32)}, str(model / "model.safetensors"))
    f = Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"
    code, out, err, s = run(["classify", "--model", str(model), str(f)], tmp, repo)
    return summarize(code, err, s), ("OK" if one_line_error(code, err) else "BAD: classified with random weights")


# --------------------------------------------------------------------------------------------- options
for _flag, _value in (("--threads", "100000"), ("--chunk", "1e308"), ("--batch-size", "1000000000"),
                      ("--window", "1e-300"), ("--top-k", "-1"), ("--workers", "100000"),
                      ("--max-batch-seconds", "1e308"), ("--window", "1e308"), ("--min-score", "nan")):
    def _make(flag, value):
        def _probe(repo, tmp):
            f = Path(repo) / "tests/data/audio/speechcommands_yes_1000ms_16k_mono.wav"
            code, out, err, s = run(["classify", flag, value, str(f), "--format", "jsonl"], tmp, repo, timeout=60)
            return summarize(code, err, s), ("OK" if one_line_error(code, err) or (code == 0 and not traceback_in(err)) else "BAD")
        return _probe
    PROBES[f"classify {_flag} {_value}"] = _make(_flag, _value)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--only", default=None)
    args = parser.parse_args()
    names = list(PROBES) if not args.only else [n for n in PROBES if any(k in n for k in args.only.split(","))]
    print("| probe | outcome | verdict |\n|---|---|---|")
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                outcome, verdict = PROBES[name](args.repo, Path(tmp))
            except Exception as error:  # the probe itself broke
                outcome, verdict = f"probe failed: {type(error).__name__}: {error}", "?"
        outcome = outcome.replace("|", "\\|").replace("\n", " ")
        print(f"| {name} | {outcome} | {verdict} |", flush=True)


if __name__ == "__main__":
    main()
