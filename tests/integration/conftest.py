"""Fixtures for tests against real peers: a private Postfix, ``mailsms serve`` as a process."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailsms.store.engines import connect_existing
from tests.support.postfix import PostfixInstance
from tests.support.proc import free_port, serve_process

PostfixFactory = Callable[..., PostfixInstance]


@pytest.fixture
def postfix_instance() -> Iterator[PostfixFactory]:
    """``postfix_instance(lmtp_port, sms_domain="sms.example.test", mailboxes=(), sasl_users=None)``: a private
    Postfix, started (``sasl_users``, login -> password: smtpd offers SMTP AUTH).

    ``mailboxes`` are addresses that get a local Maildir (``postfix.mail(address)``).  Use the result
    directly or in a ``with`` block; every instance is stopped and removed at teardown.
    """
    with ExitStack() as stack:

        def start(
            lmtp_port: int,
            sms_domain: str = "sms.example.test",
            lmtp_host: str = "127.0.0.1",
            mailboxes: Sequence[str] = (),
            extra_config: str = "",
            sasl_users: dict[str, str] | None = None,
        ) -> PostfixInstance:
            instance = PostfixInstance(
                lmtp_port, lmtp_host=lmtp_host, sms_domain=sms_domain, mailboxes=mailboxes, extra_config=extra_config,
                sasl_users=sasl_users,
            )  # fmt: skip
            return stack.enter_context(instance)

        yield start


@dataclass
class MailsmsProcess:
    """``mailsms serve`` with LMTP on 127.0.0.1:``lmtp_port`` and HTTP on ``http_port`` (0: none)."""

    lmtp_port: int
    proc: subprocess.Popen[str]
    state: Path
    http_port: int = 0
    store_url: str = ""  # its store.url: "" is SQLite in ``state``

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of its queue, read beside it as another process would."""
        with connect_existing(self.store_url, self.state) as conn:
            return [] if conn is None else [tuple(row) for row in conn.execute(sql, params).fetchall()]

    @property
    def http_url(self) -> str:
        """The HTTP listener's base URL, without a trailing slash."""
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self) -> str:
        """Stop it (SIGTERM) and return everything it logged to stderr."""
        if self.proc.poll() is None:
            self.proc.terminate()
        _, err = self.proc.communicate(timeout=10)
        return err


MailsmsStarter = Callable[..., MailsmsProcess]


@pytest.fixture
def start_mailsms(tmp_path: Path, store_url: str) -> Iterator[MailsmsStarter]:
    """``start_mailsms(lmtp_port=None, config="", http_port=0)``: ``mailsms serve``, started and waited for.

    LMTP only unless ``http_port`` is given (``start_mailsms(http_port=free_port())``).  ``config`` is TOML
    for ``--config``; state goes to a fresh directory under tmp_path; the store is the test's
    (``store_url``: every test runs on SQLite and on PostgreSQL).  Stopped at teardown.
    """
    with ExitStack() as stack:

        def start(lmtp_port: int | None = None, config: str = "", http_port: int = 0) -> MailsmsProcess:
            port = lmtp_port or free_port()
            state = Path(tempfile.mkdtemp(prefix="state-", dir=tmp_path))
            http = f"127.0.0.1:{http_port}" if http_port else ""
            args = ["--lmtp-listen", f"127.0.0.1:{port}", "--http-listen", http, "--state-dir", str(state)]
            if store_url:
                config += f'\n[store]\nurl = "{store_url}"\n'
            if config:
                config_file = state.with_suffix(".toml")
                config_file.write_text(config)
                args += ["--config", str(config_file)]
            wait_ports = [port, http_port] if http_port else [port]
            proc = stack.enter_context(serve_process(args, cwd=tmp_path, wait_ports=wait_ports))
            return MailsmsProcess(port, proc, state, http_port, store_url)

        yield start


@pytest.fixture
def mailsms_lmtp(start_mailsms: MailsmsStarter) -> MailsmsProcess:
    """``mailsms serve`` with its built-in defaults, LMTP on a free loopback port."""
    return start_mailsms()
