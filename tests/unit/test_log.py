from __future__ import annotations

import io
import logging

from hypothesis import given
from hypothesis import strategies as st

from mailsms import log
from mailsms.log import SmsText, redact


def capture(level: str = "debug") -> tuple[io.StringIO, logging.Logger]:
    stream = io.StringIO()
    log.setup(level, stream)
    return stream, logging.getLogger("mailsms.test")


def test_pass_values_are_redacted_in_messages_and_arguments() -> None:
    stream, logger = capture()
    logger.info("rcpt %s", '"sms:+15551234567?user=alice&pass=s3cret"@sms.example.com')
    logger.info("pass=hunter2 and password=xyzzy")
    out = stream.getvalue()
    assert "s3cret" not in out and "hunter2" not in out and "xyzzy" not in out
    assert "pass=(set)" in out


def test_pass_values_are_redacted_in_tracebacks() -> None:
    stream, logger = capture()
    try:
        raise ValueError("bad sms:+1?pass=topsecret")
    except ValueError:
        logger.exception("failed")
    assert "topsecret" not in stream.getvalue()
    assert "Traceback" in stream.getvalue()


def test_message_text_prints_as_its_length_only() -> None:
    stream, logger = capture()
    text = SmsText("meet me at the secret place")
    logger.info(f"text %s %r {text}", text, text)
    assert "secret" not in stream.getvalue()
    assert "<text: 27 chars>" in stream.getvalue()
    assert text.value == "meet me at the secret place"


def test_event_line_is_postfix_style() -> None:
    line = log.event(
        "4F2A1",
        to="sms:+15551234567",
        relay="kannel-1",
        parts="2/2",
        delay=0.412,
        dsn="2.0.0",
        status="sent",
        reason="smsc id 1a2b",
    )
    assert (
        line
        == "4F2A1: to=<sms:+15551234567>, relay=kannel-1, parts=2/2, delay=0.41, dsn=2.0.0, status=sent (smsc id 1a2b)"
    )


def test_warning_lines_carry_postfix_severity_prefix() -> None:
    stream, logger = capture()
    logger.warning("disk almost full")
    assert "mailsms/test[" in stream.getvalue()
    assert "]: warning: disk almost full" in stream.getvalue()


def test_log_level_filters() -> None:
    stream, logger = capture("warning")
    logger.info("hidden")
    assert stream.getvalue() == ""


@given(
    st.text(
        alphabet=st.characters(blacklist_characters="&\"'<>", blacklist_categories=("Zs", "Cc", "Zl", "Zp")),
        min_size=1,
        max_size=20,
    )
)
def test_no_pass_value_survives_redaction(secret: str) -> None:
    for template in ("sms:+1?pass={}", '"sms:+1?user=a&pass={}&maxmsgs=2"@x', "PASS={} rest", "password={}"):
        assert redact(template.format(secret)) == template.format("(set)")
