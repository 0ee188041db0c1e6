"""Stopping a running ``audioclf classify`` the way a user or a service manager does: SIGINT (Ctrl-C) or SIGTERM while
it still waits for input.

The child starts with both signals at their default dispositions whatever the test runner inherited: a test run
started in the background by a non-interactive shell (``make test &``, CI scripts) ignores SIGINT, its children
inherit that, and Python then leaves SIGINT ignored, so the signal would never arrive. stdin stays open until the
child has exited, so it cannot finish its input list instead of stopping; its output goes to files, so no pipe can
fill up and block it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable

#: runs ``audioclf`` (the arguments after ``--``) with SIGINT and SIGTERM at their defaults; exec keeps those
_LAUNCH = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
           "signal.signal(signal.SIGTERM, signal.SIG_DFL); "
           "os.execv(sys.executable, [sys.executable, '-m', 'audioclf', *sys.argv[1:]])")


def interrupt_classify(args: list[str], paths: list[str], ready: Callable[[], bool], env: dict[str, str],
                       settle: float = 0.0, timeout: float = 60.0, signum: int = signal.SIGINT) -> tuple[int, str]:
    """Run ``audioclf classify ARGS -`` with ``paths`` written to its stdin and stdin left open (so the run waits for
    more paths), wait until ``ready()`` is true (at most ``timeout`` s, failing if the process exits first), wait
    ``settle`` more seconds, send ``signum`` and return ``(exit status, stderr)`` once the process has exited (it
    must within 30 s)."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen([sys.executable, "-c", _LAUNCH, "classify", *args, "-"], env=env,
                                   stdin=subprocess.PIPE, stdout=stdout, stderr=stderr)
        try:
            process.stdin.write("".join(f"{path}\n" for path in paths).encode())
            process.stdin.flush()
            deadline = time.monotonic() + timeout
            while not ready():
                assert process.poll() is None, f"exited ({process.returncode}) before it was ready"
                assert time.monotonic() < deadline, "not ready in time"
                time.sleep(0.05)
            time.sleep(settle)
            process.send_signal(signum)
            try:
                returncode = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"still running 30 s after signal {signum}") from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdin.close()
        stderr.seek(0)
        return returncode, stderr.read().decode()
