"""A real gammu-smsd for tests: the dummy phone (files in a directory), the files backend, the process."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.proc import spool_daemon

GAMMU_SMSD = Path("/usr/bin/gammu-smsd")
FOLDERS = ("inbox", "outbox", "sent", "error")


def smsdrc(workdir: Path) -> str:
    """gammu-smsdrc with the dummy phone in ``workdir/device`` and the spool under ``workdir/spool``."""
    spool = workdir / "spool"
    lines = [
        "[gammu]",
        "connection = none",
        "model = dummy",
        f"device = {workdir / 'device'}/",
        "",
        "[smsd]",
        "service = files",
        f"logfile = {workdir / 'smsd.log'}",
        "debuglevel = 1",
        *(f"{key} = {spool / folder}/" for key, folder in
          (("inboxpath", "inbox"), ("outboxpath", "outbox"), ("sentsmspath", "sent"), ("errorsmspath", "error"))),
        "inboxformat = unicode",
        "transmitformat = auto",
        "commtimeout = 1",
        "receivefrequency = 1",
        "statusfrequency = 0",
        "loopsleep = 1",
        "checksecurity = 0",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def place_mo(workdir: Path, sender: str, text: str, location: int = 1) -> Path:
    """An SMS for the dummy phone to find in its inbox (folder 1), as a gammu backup file."""
    hexed = text.encode("utf-16-be").hex().upper()
    lines = ["[SMSBackup000]", "PDU = Deliver", "DateTime = 20240102T030405Z", "State = UnRead",
             f'Number = "{sender}"', f"Text00 = {hexed}", "Coding = Unicode_No_Compression", "Folder = 1",
             f"Length = {len(hexed) // 4}", "Class = -1"]  # fmt: skip
    path = workdir / "device" / "sms" / "1" / str(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def running_gammu_smsd(workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """gammu-smsd in the foreground on the dummy phone; its spool folders made first; stopped at exit."""
    assert GAMMU_SMSD.exists(), f"{GAMMU_SMSD} is missing: install Debian's gammu-smsd (make debs)"
    for folder in FOLDERS:
        (workdir / "spool" / folder).mkdir(parents=True, exist_ok=True)
    (workdir / "device").mkdir(exist_ok=True)  # the dummy phone refuses a missing directory
    config = workdir / "smsdrc"
    config.write_text(smsdrc(workdir))
    # A UTF-8 locale: in "C" gammu cuts non-ASCII inbox text short instead of padding it.
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    argv = [str(GAMMU_SMSD), "-c", str(config)]
    with spool_daemon(argv, workdir, b"Starting phone", "gammu-smsd to start", env) as proc:
        yield proc
