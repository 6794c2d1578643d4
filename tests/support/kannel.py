"""A private Kannel on loopback: bearerbox, smsbox and fakesmsc playing the SMSC.

Every port is a free one on 127.0.0.1 (admin, smsbox, sendsms, fake SMSC);
the configuration, logs and fakesmsc's capture live in one temporary
directory that is removed afterwards.  The traps listed in INTEROP.md are
handled here, so a test says only where incoming SMS go::

    with KannelInstance(inbound_url="http://127.0.0.1:8025/inbound/kannel") as kannel:
        ...  # send to kannel.sendsms_url as kannel.username / kannel.password
        lines = kannel.wait_for_mt(3)  # what the "SMSC" received, UDH and all
        kannel.inject_mo("+15557654321", "12345", "Hello back")

A missing Kannel binary fails the test with a hint: integration tests never skip.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote_to_bytes

from tests.support.proc import free_port, port_open
from tests.support.wait import wait_until

BEARERBOX = Path("/usr/sbin/bearerbox")
SMSBOX = Path("/usr/sbin/smsbox")
FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
PACKAGES = {BEARERBOX: "kannel", SMSBOX: "kannel", FAKESMSC: "kannel-extras"}

# The sms-service escapes that work (INTEROP.md): %b is the body, recoded to UTF-8
# by mo-recode; %a would corrupt UCS-2; %I is Kannel's id of this MO.
GET_URL_QUERY = "from=%p&to=%P&text=%b&coding=%c&charset=%C&smsc_id=%I"

KANNEL_CONF = """\
group = core
admin-port = {admin_port}
admin-interface = 127.0.0.1
admin-password = {admin_password}
status-password = {admin_password}
admin-allow-ip = "127.0.0.1"
smsbox-port = {smsbox_port}
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
log-file = "{root}/bearerbox.log"
log-level = {log_level}
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = fake
port = {smsc_port}
our-host = 127.0.0.1
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox_port}
sendsms-port = {sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{root}/smsbox.log"
log-level = {log_level}
# A UCS-2 MO reaches the get-url as UTF-8 (without it: raw UTF-16BE).
mo-recode = true

group = sendsms-user
username = {username}
password = {password}
user-allow-ip = "127.0.0.1"
default-sender = {default_sender}
# The default of 1 silently truncates what Kannel itself would split.
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
# No reply SMS for what the get-url answers.
max-messages = 0
get-url = "{get_url}"
"""

# fakesmsc's log line for what bearerbox sent it: "Got message N: <line>".
_GOT = re.compile(r"Got message (\d+): <(.*)>\s*$")
_SENT = re.compile(r"fakesmsc: sent message (\d+)")
_ONLINE = re.compile(r"FAKE:\d+ \(online")
_SMSBOX = re.compile(r"smsbox:\S*, IP 127\.0\.0\.1")
_SMS_SENT = re.compile(r"SMS: received \d+ \(\d+ queued\), sent (\d+) ")


class KannelError(AssertionError):
    """Kannel is missing, refused its configuration, or did not come up."""


@dataclass(frozen=True)
class MtLine:
    """One SMS as fakesmsc received it from bearerbox.

    ``kind`` is fakesmsc's word: ``text`` (GSM text, printed as is), ``data`` (8-bit),
    ``ucs-2`` (UTF-16BE) or ``udh`` (a UDH and the payload, whatever the coding:
    UTF-8 for GSM text, UTF-16BE for UCS-2).
    """

    sender: str
    receiver: str
    kind: str
    udh: bytes
    data: bytes

    @classmethod
    def parse(cls, line: str) -> MtLine:
        sender, _, line = line.partition(" ")
        receiver, _, line = line.partition(" ")
        kind, _, rest = line.partition(" ")
        if kind == "udh":
            udh, _, marker_and_data = rest.partition(" ")
            _, _, data = marker_and_data.partition(" ")  # "data <url-encoded payload>"
            return cls(sender, receiver, kind, _url_decode(udh), _url_decode(data))
        if kind == "text":
            return cls(sender, receiver, kind, b"", rest.encode("utf-8"))
        return cls(sender, receiver, kind, b"", _url_decode(rest))

    def text(self, encoding: Literal["gsm7", "ucs2"]) -> str:
        """The payload as text; strict decoding, so a split surrogate pair fails here."""
        return self.data.decode("utf-16-be" if encoding == "ucs2" else "utf-8")


class KannelInstance:
    """bearerbox + smsbox + fakesmsc, configured for one test; a context manager."""

    username = "mailsms"
    password = "kannel-test-password"
    admin_password = "kannel-admin"
    default_sender = "12345"

    def __init__(
        self, inbound_url: str = "http://127.0.0.1:9/inbound/kannel", *, log_level: int = 1, interactive: bool = True
    ) -> None:
        """``inbound_url``: where the sms-service sends MOs (the get-url without its query).

        ``log_level`` is bearerbox's and smsbox's (0 debug .. 4 panic); fakesmsc always logs at
        debug, the level of its "Got message" lines.  ``interactive=False`` makes fakesmsc a pure
        sink that reads at once (for throughput), and ``inject_mo`` unavailable.
        """
        self.inbound_url = inbound_url
        self.log_level = log_level
        self.interactive = interactive
        self.admin_port = self.smsbox_port = self.sendsms_port = self.smsc_port = 0
        self.root = Path()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._mo_sent = 0

    # -- life cycle ---------------------------------------------------------

    def __enter__(self) -> KannelInstance:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 20.0) -> None:
        """Write kannel.conf, start the three processes, wait until each is up."""
        for binary, package in PACKAGES.items():
            if not binary.exists():
                raise KannelError(f"{binary} not found: install {package} (apt-get install kannel kannel-extras)")
        self.root = Path(tempfile.mkdtemp(prefix="mailsms-kannel-"))
        try:
            self._allocate_ports()
            conf = self.root / "kannel.conf"
            conf.write_text(self.config_text())
            self._spawn("bearerbox", [str(BEARERBOX), str(conf)])
            self._wait(lambda: self._status() != "", timeout, "bearerbox's admin /status")
            self._spawn("smsbox", [str(SMSBOX), str(conf)])
            self._wait(lambda: port_open("127.0.0.1", self.sendsms_port), timeout, "smsbox's sendsms port")
            self._wait(lambda: _SMSBOX.search(self._status()), timeout, "smsbox to connect to bearerbox")
            self.start_fakesmsc(interactive=self.interactive, timeout=timeout)
        except BaseException:
            self.stop()
            raise

    def start_fakesmsc(self, *, interactive: bool = True, timeout: float = 20.0) -> None:
        """Connect fakesmsc as the SMSC: interactive (MOs typed on stdin) or a pure sink."""
        # Interactive mode reads from bearerbox about once a second; "-m 0" with one
        # dummy message never sends and reads at once (for throughput).
        mode = ["-i", "0", "-m", "-1"] if interactive else ["-m", "0", "0 0 text unused"]
        argv = [str(FAKESMSC), "-H", "127.0.0.1", "-r", str(self.smsc_port), *mode]
        self._spawn("fakesmsc", argv, stdin=interactive)
        self._wait(lambda: _ONLINE.search(self._status()), timeout, "fakesmsc to connect to bearerbox")

    def stop(self) -> None:
        """Stop fakesmsc, smsbox and bearerbox (in that order), then remove the directory."""
        for name in ("fakesmsc", "smsbox", "bearerbox"):
            proc = self.processes.pop(name, None)
            if proc is not None:
                _terminate(proc)
        if self.root.parts and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def _allocate_ports(self) -> None:
        ports: set[int] = set()
        while len(ports) < 4:
            ports.add(free_port())
        self.admin_port, self.smsbox_port, self.sendsms_port, self.smsc_port = sorted(ports)

    def _spawn(self, name: str, argv: list[str], stdin: bool = False) -> None:
        # -v sets what reaches stderr, kept in <name>.out for assertions and failures.
        level = 0 if name == "fakesmsc" else self.log_level
        out = (self.root / f"{name}.out").open("wb")
        with out:
            self.processes[name] = subprocess.Popen(
                [argv[0], "-v", str(level), *argv[1:]],
                cwd=self.root,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        def ready() -> object:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise KannelError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            return predicate()

        try:
            wait_until(ready, timeout=timeout, interval=0.05, what=what)
        except AssertionError as exc:
            if isinstance(exc, KannelError):
                raise
            logs = "\n".join(f"--- {name} ---\n{self.log_tail(name)}" for name in self.processes)
            raise KannelError(f"{exc}\n{logs}") from None

    # -- configuration --------------------------------------------------------

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    def get_url(self) -> str:
        """The sms-service's get-url: ``inbound_url`` (which may carry a query, e.g. a secret) and the fields."""
        return f"{self.inbound_url}{'&' if '?' in self.inbound_url else '?'}{GET_URL_QUERY}"

    def config_text(self) -> str:
        return KANNEL_CONF.format(
            root=self.root,
            admin_port=self.admin_port,
            admin_password=self.admin_password,
            smsbox_port=self.smsbox_port,
            sendsms_port=self.sendsms_port,
            smsc_port=self.smsc_port,
            username=self.username,
            password=self.password,
            default_sender=self.default_sender,
            get_url=self.get_url(),
            log_level=self.log_level,
        )

    def gateway_toml(self, gateway_id: str = "kannel") -> str:
        """The ``[[gateway]]`` table that points mailsms at this Kannel."""
        return (
            f'[[gateway]]\nid = "{gateway_id}"\ntype = "kannel"\nurl = "{self.sendsms_url}"\n'
            f'username = "{self.username}"\npassword = "{self.password}"\n'
        )

    # -- what a test does with it ---------------------------------------------

    def _status(self) -> str:
        url = f"http://127.0.0.1:{self.admin_port}/status.txt?password={quote(self.admin_password)}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode("utf-8", "replace"))
        except (OSError, urllib.error.URLError):
            return ""

    def status(self) -> str:
        """bearerbox's /status.txt ("" while it does not answer)."""
        return self._status()

    def sms_sent(self) -> int:
        """How many SMS bearerbox has passed to the SMSC so far (its status counter)."""
        match = _SMS_SENT.search(self._status())
        if match is None:
            raise KannelError(f"no SMS counters in bearerbox's status:\n{self._status()}")
        return int(match.group(1))

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            text = (self.root / f"{name}.out").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _fakesmsc_log(self) -> str:
        try:
            return (self.root / "fakesmsc.out").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def mt(self) -> list[MtLine]:
        """Every SMS fakesmsc has received so far, oldest first."""
        found = [(int(m.group(1)), m.group(2)) for m in map(_GOT.search, self._fakesmsc_log().splitlines()) if m]
        return [MtLine.parse(line) for _, line in sorted(found)]

    def wait_for_mt(self, count: int, timeout: float = 15.0) -> list[MtLine]:
        """Wait until fakesmsc has received at least ``count`` SMS; return them all."""
        try:
            wait_until(lambda: len(self.mt()) >= count, timeout=timeout, interval=0.05, what=f"{count} SMS at fakesmsc")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- fakesmsc ---\n{self.log_tail('fakesmsc')}") from None
        return self.mt()

    def inject_mo(self, sender: str, receiver: str, text: str, timeout: float = 10.0) -> None:
        """Send an MO from fakesmsc: GSM-safe ASCII as ``text``, anything else as ``ucs2``.

        One line at a time: fakesmsc may keep a second line that arrives with the
        first in its buffer, so each waits until fakesmsc reports it sent.
        """
        proc = self.processes.get("fakesmsc")
        if proc is None or proc.stdin is None:
            raise KannelError("fakesmsc is not running in interactive mode")
        if text.isascii() and text.isprintable():
            line = f"{sender} {receiver} text {text}\n"
        else:
            line = f"{sender} {receiver} ucs2 {quote(text.encode('utf-16-be'), safe='')}\n"
        proc.stdin.write(line.encode("ascii"))
        proc.stdin.flush()
        self._mo_sent += 1
        wanted = self._mo_sent
        try:
            wait_until(
                lambda: any(int(m.group(1)) >= wanted for m in _SENT.finditer(self._fakesmsc_log())),
                timeout=timeout,
                interval=0.05,
                what=f"fakesmsc to send MO {wanted}",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- fakesmsc ---\n{self.log_tail('fakesmsc')}") from None


def _url_decode(value: str) -> bytes:
    """Kannel's URL encoding: "+" is a space, "%2B" a plus."""
    return unquote_to_bytes(value.replace("+", " "))


def _terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
