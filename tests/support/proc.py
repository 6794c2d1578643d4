"""Run ``mailsms`` as a real process, as an MTA or an administrator would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.wait import wait_until

MAILSMS = [sys.executable, "-m", "mailsms"]
POLL_INTERVAL = 0.02


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def run_cli(
    args: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*MAILSMS, *args], cwd=cwd, env=full_env, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


@contextmanager
def serve_process(
    args: Sequence[str], cwd: Path, wait_ports: Sequence[int] = (), timeout: float = 15.0
) -> Iterator[subprocess.Popen[str]]:
    """Start ``mailsms serve`` and wait until its ports answer; stop it with SIGTERM."""
    proc = subprocess.Popen(
        [*MAILSMS, "serve", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(
            lambda: proc.poll() is not None or all(port_open("127.0.0.1", port) for port in wait_ports),
            timeout=timeout,
            interval=POLL_INTERVAL,
            what=f"mailsms serve listening on {list(wait_ports)}",
        )
        if proc.poll() is not None:
            raise AssertionError(f"mailsms serve exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def spool_daemon(
    argv: Sequence[str], workdir: Path, ready: bytes, what: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """An SMS spool daemon (smsd, gammu-smsd) in the foreground: its output in ``workdir/smsd.out``,
    ready once ``workdir/smsd.log`` holds ``ready``; terminated (then killed) at exit."""
    log = open(workdir / "smsd.out", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        logfile = workdir / "smsd.log"

        def started() -> bool:
            return proc.poll() is not None or (logfile.exists() and ready in logfile.read_bytes())

        wait_until(started, timeout=20, what=what)
        assert proc.poll() is None, (workdir / "smsd.out").read_text(errors="replace")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
