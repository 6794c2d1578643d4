"""Every logger's records go through mailsms's redaction, not only mailsms's own (regression: aiohttp's)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from mailsms import log
from mailsms.ingest import _redact_xtext

SECRET = "S3cr3t-Leak"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    top, ours = logging.getLogger(), logging.getLogger("mailsms")
    saved = (list(top.handlers), list(ours.handlers), ours.level, ours.propagate)
    log.setup("info", out)
    try:
        yield out
    finally:
        top.handlers[:], ours.handlers[:] = saved[0], saved[1]
        ours.setLevel(saved[2])
        ours.propagate = saved[3]


def test_a_library_logging_a_refused_request_line_is_redacted(stream: io.StringIO) -> None:
    line = f"b'GET /sms/?user=alice&pass={SECRET}\\xff HTTP/1.1'"
    try:
        raise ValueError(f"Invalid char in url query:\n\n    {line}")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request from 127.0.0.1 %s", line)
    logging.getLogger("asyncio").warning("Task exception: pass=%s", SECRET)
    written = stream.getvalue()
    assert "Error handling request" in written and "Task exception" in written
    assert SECRET not in written
    assert "pass=(set)" in written


def test_a_library_below_warning_stays_quiet(stream: io.StringIO) -> None:
    logging.getLogger("aiohttp.access").info("GET /sms/?pass=%s", SECRET)
    assert stream.getvalue() == ""


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ('rfc822;"sms:+2B1555?user+3Dalice&pass+3DS3cr3t"@x', 'rfc822;"sms:+2B1555?user+3Dalice&pass+3D(set)"@x'),
        ("rfc822;sms:+2B1555?pass+3DS3cr3t+26maxmsgs+3D2@x", "rfc822;sms:+2B1555?pass+3D(set)&maxmsgs+3D2@x"),
        ("rfc822;alice+2B1@example.com", "rfc822;alice+2B1@example.com"),
        ("env-42", "env-42"),
    ],
)
def test_dsn_parameters_are_stored_without_a_password(stored: str, shown: str) -> None:
    """ORCPT and ENVID are xtext: ``pass+3D`` is ``pass=`` to whoever decodes them."""
    assert _redact_xtext(stored) == shown
