"""A real smstools3 smsd for tests: its configuration, its spool, the process."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.proc import spool_daemon

SMSD = Path("/usr/sbin/smsd")
FOLDERS = ("outgoing", "checked", "incoming", "sent", "failed", "report")


def smsd_config(workdir: Path, device: Path, *, report: bool = True) -> str:
    """smsd.conf for one modem at ``device``, spool under ``workdir/spool``, settings mailsms needs.

    ``autosplit = 0``: mailsms writes one file per part with its UDH.
    ``decode_unicode_text = no``: UCS2 MOs stay UTF-16BE (smsd's own UTF-8 conversion drops emoji).
    ``internal_combine = no``: each MO part comes with its UDH-DATA; mailsms reassembles.
    ``delaytime``/``errorsleeptime`` of 1 s keep the tests short.
    """
    spool = workdir / "spool"
    lines = [
        "devices = GSM1",
        *(f"{folder} = {spool / folder}" for folder in FOLDERS),
        f"logfile = {workdir / 'smsd.log'}",
        f"infofile = {workdir / 'smsd.working'}",
        f"pidfile = {workdir / 'smsd.pid'}",
        "loglevel = 7",
        "delaytime = 1",
        "errorsleeptime = 1",
        "autosplit = 0",
        "receive_before_send = no",
        "incoming_utf8 = yes",
        "decode_unicode_text = no",
        "internal_combine = no",
        "",
        "[GSM1]",
        f"device = {device}",
        "incoming = yes",
        f"report = {'yes' if report else 'no'}",
        "memory_start = 1",
        "check_memory_method = 1",
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def running_smsd(workdir: Path, device: Path) -> Iterator[subprocess.Popen[bytes]]:
    """smsd in the foreground (``-t``) on ``device``; its spool folders made first; stopped at exit."""
    assert SMSD.exists(), f"{SMSD} is missing: install Debian's smstools (scripts/install-debs)"
    for folder in FOLDERS:
        (workdir / "spool" / folder).mkdir(parents=True, exist_ok=True)
    config = workdir / "smsd.conf"
    config.write_text(smsd_config(workdir, device))
    argv = [str(SMSD), "-t", f"-c{config}"]
    with spool_daemon(argv, workdir, b"Used memory is", "smsd to initialise the modem") as proc:
        yield proc
