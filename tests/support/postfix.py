"""A private Postfix instance on loopback, for tests against a real MTA.

The system Postfix is never touched: the instance has its own configuration,
queue, data directory, log file and ports, all under one directory in
/var/tmp that is removed afterwards.  Every trap listed in INTEROP.md is
handled here, so a test only says where sms mail goes.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.proc import free_port, port_open
from tests.support.wait import wait_until

POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"
SASLPASSWD2 = "/usr/sbin/saslpasswd2"
SYSTEM_CONFIG = Path("/etc/postfix")
COMPLAINT = re.compile(r"\b(warning|error|fatal|panic):")
MAIL_OWNER = "postfix"

# Every service runs unchrooted (chroot "n"): a chroot would need copies of
# /etc files inside our queue directory.  No tlsmgr, no pipe(8) services.
MASTER_CF = """\
{smtpd_listen} inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
local      unix  - n n -     - local
lmtp       unix  - - n -     - lmtp
virtual    unix  - n n -     - virtual
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
config_directory = {config}
queue_directory = {queue}
data_directory = {data}
mail_owner = {mail_owner}
maillog_file = {maillog}
maillog_file_prefixes = {root}
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = postfix.mailsms.test
mydomain = mailsms.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
relay_domains = {sms_domain}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
smtpd_banner = $myhostname ESMTP private test instance
transport_maps = regexp:{config}/transport_sms
# Nothing may leave the machine: whatever the transport map does not claim waits in the queue.
default_transport = retry:no default transport in tests
relay_transport = retry:no relay transport in tests
# Retry within a test's lifetime; never expire (a bounce would be a test failure).
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
lmtp_connect_timeout = 5s
biff = no
append_dot_mydomain = no
readme_directory = no
"""


# Local Maildirs for the test's own mailboxes (virtual(8): no system users needed).
MAILBOXES_CF = """\
virtual_mailbox_domains = {domains}
virtual_mailbox_base = {base}
virtual_mailbox_maps = texthash:{config}/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
"""


# SMTP AUTH by Cyrus SASL with a sasldb of the instance's own (sasl2-bin, libsasl2-modules):
# smtpd runs unchrooted as the mail owner, so the files only need to be readable by it.
# Cyrus rather than Dovecot: no daemon to run beside Postfix, the password file is made by one command.
SASL_CF = """\
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {sasl}
"""
SMTPD_CONF = "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {sasldb}\n"


def _sms_transport_map(lmtp_host: str, lmtp_port: int, sms_domain: str) -> str:
    nexthop = f"lmtp:inet:{lmtp_host}:{lmtp_port}"
    return f'/^"?sms:/ {nexthop}\n/@{re.escape(sms_domain)}$/ {nexthop}\n'


class PostfixError(AssertionError):
    """Postfix is missing, refused its configuration, or did not start."""


class PostfixInstance:
    """A private Postfix: smtpd on 127.0.0.1:``smtpd_port``, sms mail to LMTP ``lmtp_host:lmtp_port``.

    Use as a context manager; ``start()``/``stop()`` are there for fixtures that need them.
    ``mailboxes`` (addresses) get a Maildir each, delivered by virtual(8): ``mail(address)`` reads it.
    """

    def __init__(
        self,
        lmtp_port: int,
        lmtp_host: str = "127.0.0.1",
        sms_domain: str = "sms.example.test",
        mailboxes: Sequence[str] = (),
        extra_config: str = "",
        sasl_users: Mapping[str, str] | None = None,
    ) -> None:
        self.extra_config = extra_config  # main.cf lines appended as given (smtpd_milters, ...)
        self.sasl_users = dict(sasl_users or {})  # login -> password: smtpd offers AUTH PLAIN/LOGIN
        self.lmtp_host = lmtp_host
        self.lmtp_port = lmtp_port
        self.sms_domain = sms_domain
        self.mailboxes = tuple(mailboxes)
        self.mail_dir = Path()
        self.smtpd_port = free_port()
        self.root = Path()
        self.config_dir = Path()
        self.queue_dir = Path()
        self.maillog = Path()
        self.start_seconds = 0.0

    # -- life cycle ---------------------------------------------------------

    def __enter__(self) -> PostfixInstance:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Write the instance, check it, start it and wait until smtpd answers."""
        for tool in (POSTFIX, POSTQUEUE, *([SASLPASSWD2] if self.sasl_users else [])):
            if not os.access(tool, os.X_OK):
                raise PostfixError(f"{tool} not found: install postfix (apt-get install postfix) to run this test")
        started = time.monotonic()
        # Not under pytest's tmp_path: /tmp/pytest-of-root is 0700 and the postfix user must reach the queue.
        self.root = Path(tempfile.mkdtemp(prefix="mailsms-postfix-", dir="/var/tmp"))
        try:
            self._write()
            self._postfix("check")
            self._postfix("start")
            wait_until(lambda: port_open("127.0.0.1", self.smtpd_port), timeout=15, what="Postfix smtpd to listen")
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Stop the master and every child, then remove the instance directory."""
        if not self.root.parts or not self.root.exists():
            return
        try:
            master = self._master_pid()
            if master is not None:
                # "postfix stop" polls once a second; SIGTERM to the master and a deadline is faster.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(master, signal.SIGTERM)
                if not _wait_gone(master, timeout=10):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(master, signal.SIGKILL)
                    _wait_gone(master, timeout=5)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _write(self) -> None:
        os.chmod(self.root, 0o755)
        self.config_dir = self.root / "etc"
        self.queue_dir = self.root / "spool"
        data_dir = self.root / "lib"
        self.maillog = self.root / "log" / "postfix.log"
        # makedefs.out links into /usr/share: in a copy "postfix check" warns "symlink leaves directory".
        shutil.copytree(SYSTEM_CONFIG, self.config_dir, symlinks=True, ignore=shutil.ignore_patterns("makedefs.out"))
        for directory in (self.queue_dir, self.maillog.parent):
            directory.mkdir(mode=0o755)
        data_dir.mkdir(mode=0o700)
        shutil.chown(data_dir, MAIL_OWNER, MAIL_OWNER)
        (self.config_dir / "main.cf").write_text(
            MAIN_CF.format(
                root=self.root,
                config=self.config_dir,
                queue=self.queue_dir,
                data=data_dir,
                mail_owner=MAIL_OWNER,
                maillog=self.maillog,
                sms_domain=self.sms_domain,
            )
        )
        (self.config_dir / "master.cf").write_text(MASTER_CF.format(smtpd_listen=f"127.0.0.1:{self.smtpd_port}"))
        (self.config_dir / "transport_sms").write_text(
            _sms_transport_map(self.lmtp_host, self.lmtp_port, self.sms_domain)
        )
        if self.mailboxes:
            self._write_mailboxes()
        if self.sasl_users:
            self._write_sasl()
        if self.extra_config:
            with open(self.config_dir / "main.cf", "a") as main_cf:
                main_cf.write("\n" + self.extra_config.strip() + "\n")

    def _write_mailboxes(self) -> None:
        self.mail_dir = self.root / "mail"
        self.mail_dir.mkdir(mode=0o755)
        shutil.chown(self.mail_dir, MAIL_OWNER, MAIL_OWNER)
        owner = pwd.getpwnam(MAIL_OWNER)
        domains = sorted({address.rpartition("@")[2] for address in self.mailboxes})
        with open(self.config_dir / "main.cf", "a") as main_cf:
            main_cf.write(
                MAILBOXES_CF.format(
                    domains=", ".join(domains),
                    base=self.mail_dir,
                    config=self.config_dir,
                    uid=owner.pw_uid,
                    gid=owner.pw_gid,
                )
            )
        # A trailing slash makes virtual(8) deliver to a Maildir.
        entries = "".join(f"{address} {address}/\n" for address in self.mailboxes)
        (self.config_dir / "vmailbox").write_text(entries)

    def _write_sasl(self) -> None:
        # Debian's Postfix reads $config_directory/sasl/smtpd.conf whatever cyrus_sasl_config_path
        # says; other builds follow cyrus_sasl_config_path: both name the same directory.
        sasl = self.config_dir / "sasl"
        sasl.mkdir(mode=0o755, exist_ok=True)
        sasldb = sasl / "sasldb2"
        (sasl / "smtpd.conf").write_text(SMTPD_CONF.format(sasldb=sasldb))
        for login, password in self.sasl_users.items():
            subprocess.run(
                # the realm smtpd looks in: its myhostname, as smtpd_sasl_local_domain is empty
                [SASLPASSWD2, "-f", str(sasldb), "-p", "-c", "-u", "postfix.mailsms.test", login],
                input=password, text=True, capture_output=True, timeout=30, check=True,
            )  # fmt: skip
        # "postfix check" wants root to own what is under config_directory; smtpd reads it as its group
        shutil.chown(sasldb, "root", MAIL_OWNER)
        os.chmod(sasldb, 0o640)
        with open(self.config_dir / "main.cf", "a") as main_cf:
            main_cf.write(SASL_CF.format(sasl=sasl))

    def _postfix(self, command: str) -> None:
        """Run ``postfix <command>``; any warning fails, wherever Postfix wrote it."""
        logged_before = len(self.log_text())
        result = self._run(POSTFIX, command)
        # With maillog_file set, Postfix's complaints go to that file, not to stderr.
        output = (result.stdout + result.stderr + self.log_text()[logged_before:]).strip()
        if result.returncode == 0 and not COMPLAINT.search(output):
            return
        hint = ""
        if result.returncode != 0 and not output:
            hint = "no output at all: is maillog_file outside maillog_file_prefixes? (INTEROP.md)"
        raise PostfixError(f"postfix -c {self.config_dir} {command} exited {result.returncode}:\n{output}{hint}")

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool, "-c", str(self.config_dir), *args], capture_output=True, text=True, timeout=30, check=False
        )

    def _master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    # -- what a test does with it -------------------------------------------

    def submit(
        self,
        sender: str,
        recipients: Sequence[str],
        message: bytes,
        mail_options: Sequence[str] = (),
        rcpt_options: Sequence[str] = (),
    ) -> dict[str, tuple[int, bytes]]:
        """Send one mail to the instance's smtpd (DSN options such as ``NOTIFY=SUCCESS`` in ``rcpt_options``);
        returns the recipients smtpd refused (none, normally)."""
        with smtplib.SMTP("127.0.0.1", self.smtpd_port, local_hostname="client.mailsms.test", timeout=10) as smtp:
            return smtp.sendmail(sender, list(recipients), message, list(mail_options), list(rcpt_options))

    def mail(self, address: str) -> list[bytes]:
        """The mails delivered to the Maildir of ``address`` (one of ``mailboxes``), oldest first."""
        if address not in self.mailboxes:
            raise ValueError(f"{address} is not one of this instance's mailboxes")
        new = self.mail_dir / address / "new"
        if not new.is_dir():
            return []
        return [path.read_bytes() for path in sorted(new.iterdir(), key=lambda p: p.stat().st_mtime_ns)]

    def wait_for_mail(self, address: str, count: int = 1, timeout: float = 30.0) -> list[bytes]:
        """Poll the Maildir of ``address`` until it holds at least ``count`` mails; return them."""
        try:
            wait_until(
                lambda: len(self.mail(address)) >= count, timeout=timeout, interval=0.05, what=f"mail for {address}"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- maillog ---\n{self.log_text()}") from None
        return self.mail(address)

    def queue(self) -> list[dict[str, Any]]:
        """The queue as ``postqueue -j`` entries (``queue_name``, ``recipients[].delay_reason``, ...)."""
        result = self._run(POSTQUEUE, "-j")
        if result.returncode != 0:
            raise PostfixError(f"postqueue -j exited {result.returncode}: {result.stderr}")
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def wait_for_queue(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0, what: str = "a queue state"
    ) -> list[dict[str, Any]]:
        """Poll ``queue()`` until ``predicate`` holds for it; return those entries."""
        seen: list[list[dict[str, Any]]] = [[]]

        def holds() -> bool:
            seen[0] = self.queue()
            return predicate(seen[0])

        try:
            wait_until(holds, timeout=timeout, interval=0.05, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- last queue ---\n{seen[0]}\n--- maillog ---\n{self.log_text()}") from None
        return seen[0]

    def flush(self) -> None:
        """Ask for an immediate delivery attempt of every queued mail."""
        result = self._run(POSTQUEUE, "-f")
        if result.returncode != 0:
            raise PostfixError(f"postqueue -f exited {result.returncode}: {result.stderr}")

    def log_text(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Poll the maillog until ``pattern`` (a regular expression) matches; return the match."""
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def matched() -> bool:
            match = regex.search(self.log_text())
            if match:
                found.append(match)
            return match is not None

        try:
            wait_until(matched, timeout=timeout, interval=0.05, what=f"{pattern!r} in the Postfix log")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- maillog ---\n{self.log_text()}") from None
        return found[0]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie has exited already; it stays only until someone reaps it.
    return stat.rpartition(")")[2].split()[0] != "Z"


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _wait_gone(master: int, timeout: float) -> bool:
    """True once the master and its process group (every Postfix daemon it started) have exited."""
    try:
        wait_until(lambda: not _alive(master) and not _group_alive(master), timeout=timeout, what="Postfix to stop")
    except AssertionError:
        return False
    return True
