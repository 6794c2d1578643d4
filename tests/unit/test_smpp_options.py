"""The submit_sm of a part, the keys of an SMPP gateway, and what a submit_sm_resp status means."""

from __future__ import annotations

import pytest

from mailsms.schema import Problem, build
from transports import smpp_pdu as p
from transports.base import Outcome, OutgoingPart, OutgoingSms
from transports.smpp_options import Options, build_submit, judge

OPTIONS = Options(host="127.0.0.1", system_id="mailsms", password="pw")


def sms(text: str = "", encoding: str = "gsm7", udh: bytes = b"", **changes: object) -> OutgoingSms:
    part = OutgoingPart(1, text, udh, data=b"\x01\x02" if encoding == "binary" else None)
    return OutgoingSms("Q1", "+15551234567", (part,), 1, encoding, **changes)  # type: ignore[arg-type]


def submit(message: OutgoingSms, options: Options = OPTIONS) -> p.ShortMessage:
    return p.decode_sm(build_submit(message, message.parts[0], options))


def test_gsm7_goes_as_unpacked_septets_with_escapes() -> None:
    sm = submit(sms("5€ [ok] @"))
    assert sm.data_coding == 0
    assert sm.short_message == b"5\x1be \x1b<ok\x1b> \x00"


def test_ucs2_goes_big_endian_after_the_udh_with_esm_class_0x40() -> None:
    udh = bytes.fromhex("0500030a0301")
    sm = submit(sms("Привет 👋", "ucs2", udh))
    assert (sm.data_coding, sm.esm_class) == (8, 0x40)
    assert sm.short_message == udh + "Привет 👋".encode("utf-16-be")


def test_binary_goes_as_its_data_with_coding_4() -> None:
    sm = submit(sms("", "binary"))
    assert (sm.data_coding, sm.short_message) == (4, b"\x01\x02")


def test_numbers_get_ton_and_npi_from_their_form() -> None:
    sm = submit(sms("hi", sender="MailSMS"))
    assert (sm.destination_addr, sm.dest_addr_ton, sm.dest_addr_npi) == ("15551234567", 1, 1)
    assert (sm.source_addr, sm.source_addr_ton, sm.source_addr_npi) == ("MailSMS", 5, 0)
    short = submit(sms("hi", sender="4711"), Options(host="h", system_id="s", dest_addr_ton=2, dest_addr_npi=9))
    assert (short.source_addr_ton, short.source_addr_npi, short.dest_addr_ton, short.dest_addr_npi) == (0, 1, 2, 9)


def test_pid_dcs_flash_and_receipts() -> None:
    assert submit(sms("hi", pid=0x41, dcs=0xF1)).protocol_id == 0x41
    assert submit(sms("hi", dcs=0xF1)).data_coding == 0xF1
    assert submit(sms("hi", flash=True)).data_coding == 0x10
    assert submit(sms("hi")).registered_delivery == 1
    quiet = Options(host="h", system_id="s", registered_delivery=False)
    assert submit(sms("hi"), quiet).registered_delivery == 0
    assert submit(sms("hi", report=True), quiet).registered_delivery == 1


def test_a_part_that_cannot_be_encoded_raises_value_error() -> None:
    with pytest.raises(ValueError, match="GSM"):
        submit(sms("Привет"))


@pytest.mark.parametrize(
    ("status", "outcome", "dsn"),
    [(0x58, Outcome.TEMPORARY, "4.4.5"), (0x14, Outcome.TEMPORARY, "4.3.1"), (0x0B, Outcome.PERMANENT, "5.1.1"),
     (0x08, Outcome.TEMPORARY, "4.3.0"), (0x45, Outcome.TEMPORARY, "4.0.0"), (0x400, Outcome.PERMANENT, "5.0.0")],
)  # fmt: skip
def test_command_status_maps_to_temporary_or_permanent(status: int, outcome: Outcome, dsn: str) -> None:
    result = judge(status, 2, "")
    assert (result.seq, result.outcome, result.dsn) == (2, outcome, dsn)
    assert result.reason.startswith(f"smpp: 0x{status:08X}")


def test_success_carries_the_smsc_message_id() -> None:
    assert judge(0, 1, "1C2E").message_id == "1C2E"


def test_keys_are_read_and_checked_from_a_gateway_table() -> None:
    problems: list[Problem] = []
    table = {"host": "smsc", "system_id": "x" * 16, "bind": "pair", "window": 0, "enquire_link_interval": "1m"}
    options = build(Options, table, "gateway", problems, lambda key: None)
    assert [problem.key for problem in problems] == ["gateway.window"]
    assert (options.bind, options.enquire_link_interval) == ("pair", 60.0)
    assert [key for key, _ in options.validate()] == ["system_id"]


def test_validate_names_every_problem() -> None:
    problems = dict(Options(system_id="a" * 16, password="p" * 9, response_timeout=0).validate())
    assert set(problems) >= {"host", "system_id", "password", "response_timeout"}
    assert Options(host="h", system_id="s").validate() == []


def test_the_password_stays_out_of_repr() -> None:
    assert "pw" not in repr(OPTIONS).replace("port", "")
