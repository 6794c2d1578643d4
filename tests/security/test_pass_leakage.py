"""A ``pass=`` value given in an ``sms:`` recipient (or to ``/sms/``) shows in no output mailsms makes.

``mailsms serve`` runs as a real process at debug level (its stderr is every
logger's output, through the real handlers); alice's password travels in the
recipient, its ORCPT, the mail's own headers and a RET=FULL copy.  One mail
fails, one is delayed, one is delivered with NOTIFY=SUCCESS, one goes to the
outbox, and the number that was written to answers by SMS: so there are
failure, delay and success reports, a reply mail, links, outbox files.
Then every output is collected and searched: the log, every mail the SMTP
sink received, ``mailsms queue list/show --json``, ``stats --json``,
``replylog list --json``, ``inbound list --json``, ``/metrics``, ``/status``
(with a search), and every file under the state directory.  The message
text must not be in the log either.
"""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.support.lmtp import LmtpClient
from tests.support.proc import MAILSMS, free_port, port_open, run_cli
from tests.support.smtpsink import Sink, smtp_sink
from tests.support.wait import async_wait_until

SECRET = "S3cr3t-Leak"
TEXT = "Body-Marker-Qz7 lunch moved to one"
ADMIN = ("ops", "admin-pw-77")
SENDER = "bob@mail.example.test"
DOMAIN = "sms.example.test"
FAILS, DEFERS, WORKS, OUTBOX, VIA_API = "+15550000001", "+15550000002", "+15550000003", "+15550000004", "+15550000005"
WAIT = 30.0
CONFIG = """\
[server]
lmtp_listen = "127.0.0.1:{lmtp}"
http_listen = "127.0.0.1:{http}"

[state]
dir = "{state}"

[queue]
minimal_backoff_time = "1s"
maximal_backoff_time = "1s"
delay_warning_time = "2s"

[mailout]
mode = "smtp"
relay = "{relay}"
hostname = "gw.example.test"

[inbound]
local_domains = ["mail.example.test"]
from_template = "sms:%s@sms.example.test"

[web]
admin_user = "{admin_user}"
admin_password = "{admin_password}"

[[gateway]]
id = "fake"
type = "fake"
permanent_fail = "0001$"
temporary_fail = "0002$"
report = "delivered"

[[gateway]]
id = "outbox"
type = "outbox"
"""


def recipient(number: str, extra: str = "", password: str = SECRET) -> str:
    return f'"sms:{number}?user=alice&pass={password}{extra}"@{DOMAIN}'


def xtext(value: str) -> str:
    """RFC 3461 xtext, as ORCPT carries an address."""
    return "".join(f"+{ord(c):02X}" if c in "+= " or not 33 <= ord(c) <= 126 else c for c in value)


def mail(to: str) -> bytes:
    return (f"From: Bob <{SENDER}>\r\nTo: {to}\r\nSubject: Lunch\r\nX-Note: pass={SECRET}\r\n"
            f"Message-ID: <{abs(hash(to))}@mail.example.test>\r\n\r\n{TEXT}\r\n").encode()  # fmt: skip


@dataclass
class Running:
    proc: subprocess.Popen[str]
    config: Path
    state: Path
    lmtp: int
    http: int
    sink: Sink

    def cli(self, *args: str) -> str:
        result = run_cli([*args[:2], "--config", str(self.config), *args[2:]] if args[0] in (
            "queue", "replylog", "inbound") else [args[0], "--config", str(self.config), *args[1:]])  # fmt: skip
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout + result.stderr

    async def http_get(self, path: str, auth: bool = True) -> tuple[int, str]:
        headers = {"Authorization": aiohttp.encode_basic_auth(*ADMIN)} if auth else {}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{self.http}{path}", headers=headers) as resp,
        ):
            return resp.status, await resp.text()

    def sink_data(self) -> list[bytes]:
        return [received.data for received in self.sink.handler.received]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    state = tmp_path / "var"
    lmtp, http = free_port(), free_port()
    async with smtp_sink() as sink:
        config = tmp_path / "mailsms.toml"
        config.write_text(CONFIG.format(lmtp=lmtp, http=http, state=state, relay=sink.relay,
                                        admin_user=ADMIN[0], admin_password=ADMIN[1]))  # fmt: skip
        added = run_cli(["accounts", "add", "alice", "--config", str(config), "--password-stdin"], stdin=SECRET + "\n")
        assert added.returncode == 0, added.stderr
        proc = subprocess.Popen([*MAILSMS, "serve", "--config", str(config), "--log-level", "debug"], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:

            def listening() -> bool:
                return proc.poll() is not None or (port_open("127.0.0.1", lmtp) and port_open("127.0.0.1", http))

            await async_wait_until(listening, timeout=WAIT, what="mailsms serve to listen")
            assert proc.poll() is None, proc.communicate()[1]
            yield Running(proc, config, state, lmtp, http, sink)
        finally:
            if proc.poll() is None:
                proc.terminate()
                await asyncio.to_thread(proc.wait, 10)


async def send(run: Running, to: str, *, notify: str = "SUCCESS,FAILURE,DELAY") -> tuple[int, str]:
    """One mail to one recipient over LMTP (each its own mail: reports are not gathered across them)."""
    client = await LmtpClient.connect("127.0.0.1", run.lmtp)
    try:
        await client.command("LHLO client.example.test")
        await client.command(f"MAIL FROM:<{SENDER}> RET=FULL ENVID=env-{abs(hash(to))}")
        rcpt = await client.command(f"RCPT TO:<{to}> NOTIFY={notify} ORCPT=rfc822;{xtext(to)}")
        if rcpt.code != 250:
            await client.command("RSET")
            return rcpt.code, rcpt.text
        assert (await client.command("DATA")).code == 354
        client.writer.write(mail(to).replace(b"\r\n.", b"\r\n..") + b".\r\n")
        await client.writer.drain()
        reply = await client.read_reply()
        return reply.code, reply.text
    finally:
        await client.close()


def around(value: str | bytes, needle: str) -> str:
    """The text around the first ``needle`` in ``value`` (to say where a leak is), or ""."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    at = text.find(needle)
    return "" if at < 0 else repr(text[max(0, at - 80) : at + 40])


def reports_with(run: Running, action: str) -> list[bytes]:
    return [data for data in run.sink_data() if f"Action: {action}".encode() in data]


async def test_no_output_shows_a_pass_value_or_the_log_the_text(running: Running) -> None:
    run = running
    queue_ids = []
    for number, extra in ((FAILS, "&id=fake"), (DEFERS, "&id=fake"), (WORKS, "&id=fake"), (OUTBOX, "&id=outbox")):
        code, text = await send(run, recipient(number, extra))
        assert code == 250, (number, text)
        queue_ids.append(text.split()[1])
    wrong = await send(run, recipient(WORKS, password=SECRET + "-wrong"))
    assert wrong[0] == 535, wrong
    status, body = await run.http_get(f"/sms/?number=%2B{VIA_API[1:]}&data=Body-Marker-Qz7&user=alice&pass={SECRET}")
    assert status == 200, body
    queue_ids.append(json.loads(body)["queue_id"])
    status, _ = await run.http_get(f"/sms/?number=%2B{VIA_API[1:]}&data=x&user=alice&pass={SECRET}-wrong")
    assert status == 401
    # A client writing the password unencoded with a non-ASCII byte: aiohttp refuses the request line itself.
    reader, writer = await asyncio.open_connection("127.0.0.1", run.http)
    writer.write(f"GET /sms/?user=alice&pass={SECRET}".encode() + b"\xff HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.1 400") or True  # refused: the log is what matters
    writer.close()

    # The reports: failed, delayed, delivered (NOTIFY=SUCCESS), and the reply by SMS to bob.
    for action in ("failed", "delayed", "delivered"):
        try:
            await async_wait_until(functools.partial(reports_with, run, action), timeout=WAIT, what=f"'{action}'")
        except AssertionError:
            seen = [line for d in run.sink_data() for line in d.decode(errors="replace").splitlines()
                    if line.startswith(("Action:", "Subject:"))]  # fmt: skip
            raise AssertionError(f"no report '{action}'; the sink has: {seen}") from None
    status, _ = await run.http_get(f"/inbound/fake?from=%2B{WORKS[1:]}&text=Yes+fine", auth=False)
    assert status == 200
    await async_wait_until(lambda: any(b"Yes fine" in d for d in run.sink_data()), timeout=WAIT, what="the reply")
    assert all(r == SENDER for mail_ in run.sink.handler.received for r in mail_.recipients)
    assert any(b"text/rfc822-headers" in d or b"message/rfc822" in d for d in reports_with(run, "failed"))

    # Every output, collected.
    outputs: dict[str, str | bytes] = {}
    for n, data in enumerate(run.sink_data()):
        outputs[f"mail {n} received by the SMTP sink"] = data
    outputs["queue list"] = await asyncio.to_thread(run.cli, "queue", "list", "--all", "--json")
    for qid in queue_ids:
        outputs[f"queue show {qid}"] = await asyncio.to_thread(run.cli, "queue", "show", qid, "--json")
        outputs[f"queue show {qid} (text)"] = await asyncio.to_thread(run.cli, "queue", "show", qid)
    outputs["stats"] = await asyncio.to_thread(run.cli, "stats", "--json")
    outputs["replylog list"] = await asyncio.to_thread(run.cli, "replylog", "list", "--all", "--json")
    outputs["inbound list"] = await asyncio.to_thread(run.cli, "inbound", "list", "--json")
    outputs["accounts list"] = await asyncio.to_thread(run.cli, "accounts", "list")
    for path in (
        "/metrics",
        "/status",
        f"/status?q=%2B{FAILS[1:]}",
        "/status?q=alice",
        f"/status?number=%2B{WORKS[1:]}",
    ):
        status, body = await run.http_get(path)
        assert status == 200, (path, body[:200])
        outputs[f"GET {path}"] = body
    run.proc.terminate()
    _, log = await asyncio.to_thread(run.proc.communicate, None, 15)
    outputs["the daemon log"] = log
    for file in sorted(p for p in run.state.rglob("*") if p.is_file()):
        outputs[f"file {file.relative_to(run.state)}"] = file.read_bytes()

    # The test sees what it searches: the log has the deliveries, the reports name the recipients.
    assert f"to=<sms:{FAILS}>" in log or FAILS in log
    assert "status=bounced" in log or "dsn=5" in log
    assert any("pass=(set)" in str(v) for k, v in outputs.items() if k.startswith("mail"))
    assert any(k.startswith("file outbox") for k in outputs) and any("sent.jsonl" in k for k in outputs)

    leaks = {name: around(value, SECRET) for name, value in outputs.items() if around(value, SECRET)}
    assert leaks == {}, "pass= value in:\n" + "\n".join(f"{name}: {where}" for name, where in leaks.items())
    assert "Body-Marker-Qz7" not in log, [line for line in log.splitlines() if "Body-Marker-Qz7" in line][:3]
