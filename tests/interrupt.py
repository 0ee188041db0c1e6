"""Interrupting a running ``audioclf classify`` the way a user does: Ctrl-C while it still waits for input."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Callable


def interrupt_classify(args: list[str], paths: list[str], ready: Callable[[], bool], env: dict[str, str],
                       settle: float = 0.0, timeout: float = 60.0) -> tuple[int, str]:
    """Run ``audioclf classify ARGS -`` with ``paths`` written to its stdin and stdin left open (so the run waits for
    more paths), wait until ``ready()`` is true (at most ``timeout`` s, failing if the process exits first), wait
    ``settle`` more seconds, send SIGINT and return ``(exit status, stderr)``."""
    process = subprocess.Popen([sys.executable, "-m", "audioclf", "classify", *args, "-"], env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        process.stdin.write("".join(f"{path}\n" for path in paths).encode())
        process.stdin.flush()
        deadline = time.monotonic() + timeout
        while not ready():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        time.sleep(settle)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stderr.decode()
