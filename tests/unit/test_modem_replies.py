"""Modem answers read without a modem: lines, unsolicited results, listings, errors, the journal, options."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsms.segment import split_text
from mailsms.segment.pdu import decode_submit_pdu
from transports.base import OutgoingPart, OutgoingSms
from transports.modem import Options, build_pdu
from transports.modem_at import AtChannel, CommandFailed, clean, is_urc, response_prefix
from transports.modem_dialogue import describe_signal, parse_registration, parse_smsc, parse_storage, smsc_command
from transports.modem_journal import Journal, Sent, same_number
from transports.modem_replies import error_verdict, parse_index, parse_list, parse_read, parse_reference


def test_clean_cuts_line_noise_at_both_ends() -> None:
    assert clean(b"\xff\xfe\x00OK\x1a ") == "OK"
    assert clean(b"+CMGS: 7") == "+CMGS: 7"


@pytest.mark.parametrize(
    ("command", "prefix"),
    [("AT+CREG?", "+CREG:"), ("AT+CMGR=3", "+CMGR:"), ("at+csq", "+CSQ:"), ("ATZ", ""), ("AT^SYSINFO", "^SYSINFO:")],
)
def test_response_prefix_names_the_answer_lines(command: str, prefix: str) -> None:
    assert response_prefix(command) == prefix


def test_creg_is_unsolicited_unless_asked_for() -> None:
    assert is_urc("+CREG: 1", "")
    assert not is_urc("+CREG: 0,1", "+CREG:")
    assert is_urc('+CMTI: "SM",3', "+CMGL:")
    assert not is_urc("+CMGL: 1,0,,23", "+CMGL:")


def test_channel_routes_unsolicited_lines_and_joins_two_line_results() -> None:
    seen: list[tuple[str, str]] = []
    channel = AtChannel("/dev/null", 115200, lambda line, pdu: seen.append((line, pdu)), "test")
    channel.feed(b'\r\nRING\r\n\r\n+CMTI: "SM",4\r\n\r\n+CDS: 25\r\n0006FF0B915155214365F7\r\n')
    channel.feed(b"\r\n+CDS: 25\r\nnot hex\r\n")
    assert seen == [
        ("RING", ""),
        ('+CMTI: "SM",4', ""),
        ("+CDS: 25", "0006FF0B915155214365F7"),
        ("+CDS: 25", ""),
    ]


def test_channel_throws_away_endless_noise() -> None:
    channel = AtChannel("/dev/null", 115200, lambda line, pdu: None, "test")
    channel.feed(b"\xff" * 70_000)
    channel.feed(b'\r\n+CMTI: "SM",1\r\n')  # still works afterwards


def _urcs_seen(chunks: list[bytes]) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    channel = AtChannel("/dev/null", 115200, lambda line, pdu: seen.append((line, pdu)), "test")
    for chunk in chunks:
        channel.feed(chunk)
    return seen


@given(st.lists(st.sampled_from([b"\r\n", b"RING", b'+CMTI: "SM",3', b"+CDS: 5", b"00AB", b"\xff\x00", b"OK"])),
       st.data())  # fmt: skip
def test_any_chunking_of_the_line_gives_the_same_unsolicited_results(pieces: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert _urcs_seen(chunks) == _urcs_seen([stream])


@given(st.binary(max_size=300))
def test_any_bytes_are_taken_without_an_exception(noise: bytes) -> None:
    _urcs_seen([noise, b'\r\n+CMTI: "SM",1\r\n'])


def test_command_failed_reads_its_code() -> None:
    failed = CommandFailed("AT+CMGS=20", "+CMS ERROR: 304")
    assert (failed.kind, failed.code) == ("CMS", 304)
    assert (CommandFailed("AT", "ERROR").kind, CommandFailed("AT", "ERROR").code) == ("ERROR", None)


@pytest.mark.parametrize(
    ("line", "outcome", "status"),
    [
        ("+CMS ERROR: 304", "failed", "5.6.0"),  # invalid PDU: never works
        ("+CMS ERROR: 38", "pending", "4.4.0"),  # network out of order
        ("+CMS ERROR: 322", "pending", "4.3.1"),  # memory full
        ("+CME ERROR: 30", "pending", "4.4.0"),  # no network service
        ("+CME ERROR: 999", "pending", "4.3.0"),
        ("ERROR", "pending", "4.3.0"),
    ],
)
def test_error_table_says_permanent_or_temporary(line: str, outcome: str, status: str) -> None:
    verdict = error_verdict(CommandFailed("AT+CMGS=20", line))
    assert (verdict.outcome, verdict.status) == (outcome, status)


def test_listing_pairs_headers_with_pdus_and_marks_garbled_ones() -> None:
    lines = ["+CMGL: 1,0,,5", "0001000A00", "+CMGL: 2,1,,5", "+CMGL: 3,1,,5", "zz garbage", "+CMGL: 4,1,,5"]
    assert parse_list(lines) == [(1, "0001000A00"), (2, None), (3, None), (4, None)]


def test_read_answer_gives_the_pdu_or_none() -> None:
    assert parse_read(["+CMGR: 0,,5", "00abcd"]) == "00ABCD"
    assert parse_read(["+CMGR: 0,,5", "xyz"]) == ""
    assert parse_read([]) is None


def test_small_answers() -> None:
    assert parse_reference(["+CMGS: 255"]) == 255
    assert parse_reference(['+CMGS: 12,"23/11/14,22:13:20+00"']) == 12
    assert parse_reference([]) is None
    assert parse_index('+CMTI: "SM",12') == 12
    assert parse_registration("0,5") == 5
    assert parse_registration("1") == 1
    assert describe_signal("20,99") == "-73 dBm (CSQ 20)"
    assert describe_signal("99,99") == "unknown (CSQ 99)"
    assert parse_storage('"SM",3,20,"SM",3,20') == (3, 20)
    assert parse_smsc('"+491722270333",145') == "+491722270333"
    assert smsc_command("+4917") == 'AT+CSCA="+4917",145'


def test_numbers_are_the_same_when_their_last_digits_agree() -> None:
    assert same_number("+4917012345678", "017012345678")
    assert not same_number("+4917012345678", "+4917012345679")
    assert same_number("+4917012345678", "")


def test_report_goes_to_the_part_sent_closest_to_its_timestamp(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "sent.jsonl")
    journal.load(1000.0)
    old = Sent("Q1", "+15551234567", 1, "Q1.1.mr5", 5, 1000.0)
    new = Sent("Q2", "+15551234567", 1, "Q2.1.mr5", 5, 4600.0)  # the reference came round again
    journal.record(old)
    journal.record(new)
    assert journal.match(5, "+15551234567", 1002.0) is old
    assert journal.match(5, "+15551234567", 4601.0) is new
    assert journal.match(5, "+15550000000", 4601.0) is None
    assert journal.match(6, "+15551234567", 4601.0) is None
    assert journal.match(5, "+15551234567", None) is new


def test_a_part_with_its_final_report_takes_no_more(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "sent.jsonl")
    journal.load(1000.0)
    sent = Sent("Q1", "+1555", 1, "Q1.1.mr5", 5, 1000.0)
    journal.record(sent)
    journal.mark_final(sent)
    again = Journal(tmp_path / "sent.jsonl")
    again.load(1001.0)
    found = again.match(5, "+1555", 1000.0)
    assert found is not None and found.final
    assert again.submitted("Q1", "+1555") == {1: "Q1.1.mr5"}


def test_journal_skips_cut_lines_and_forgets_old_parts(tmp_path: Path) -> None:
    path = tmp_path / "sent.jsonl"
    journal = Journal(path, max_age=100.0)
    journal.load(0.0)
    journal.record(Sent("OLD", "+1", 1, "OLD.1.mr1", 1, 0.0))
    journal.record(Sent("NEW", "+1", 1, "NEW.1.mr2", 2, 150.0))
    with open(path, "a") as file:
        file.write('{"queue_id": "CUT", "to"')
    again = Journal(path, max_age=100.0)
    again.load(200.0)
    assert again.submitted("OLD", "+1") == {}
    assert again.submitted("NEW", "+1") == {1: "NEW.1.mr2"}
    assert "CUT" not in path.read_text()


def test_options_validate_names_each_bad_key() -> None:
    bad = Options(device="", pin="12ab", smsc="x", init=("ATZ", "rm -rf"), read_timeout=0, cnmi="a", storage="XX")
    keys = {key for key, _ in bad.validate()}
    assert keys == {"device", "pin", "smsc", "init[1]", "read_timeout", "cnmi", "storage"}
    assert Options(device="/dev/ttyUSB0", pin="1234", smsc="+4917", init=("AT+CFUN=1",)).validate() == []


def test_pin_is_kept_out_of_repr() -> None:
    assert "1234" not in repr(Options(device="/dev/x", pin="1234"))


def _sms(text: str, **changes: object) -> OutgoingSms:
    seg = split_text(text, reference=3)
    parts = tuple(OutgoingPart(n, p.text, p.udh) for n, p in enumerate(seg.parts, start=1))
    return OutgoingSms("Q", "+15551234567", parts, len(parts), seg.encoding, **changes)  # type: ignore[arg-type]


def test_build_pdu_sets_report_validity_and_flash() -> None:
    sms = _sms("hello", flash=True)
    pdu = build_pdu(sms, sms.parts[0], Options(device="/d", report=True, validity=86400))
    decoded = decode_submit_pdu(pdu)
    assert decoded.status_report
    assert decoded.dcs == 0x10
    assert pdu[1] & 0x18 == 0x10  # TP-VPF relative


def test_build_pdu_refuses_an_oversized_part_and_a_non_gsm_text() -> None:
    too_long = OutgoingSms("Q", "+1555", (OutgoingPart(1, "x" * 200),), 1, "gsm7")
    with pytest.raises(ValueError, match="140 octets"):
        build_pdu(too_long, too_long.parts[0], Options(device="/d"))
    not_gsm = OutgoingSms("Q", "+1555", (OutgoingPart(1, "жук"),), 1, "gsm7")
    with pytest.raises(ValueError, match="not GSM"):
        build_pdu(not_gsm, not_gsm.parts[0], Options(device="/d"))
