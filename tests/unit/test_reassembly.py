"""Concatenated incoming SMS: parts in any order, duplicates ignored, missing parts marked, never dropped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailsms.reassembly import Part, assemble, complete, concat_of, group_key
from mailsms.segment.udh import Concatenation


def parts(*texts: tuple[int, str]) -> list[Part]:
    return [Part(f"id{i}", seq, text, float(i)) for i, (seq, text) in enumerate(texts)]


def test_parts_in_any_order_make_the_text_in_order() -> None:
    got = assemble(parts((3, " three"), (1, "one"), (2, " two")), 3, "[...]")
    assert (got.text, got.missing, got.received) == ("one two three", (), 0.0)


def test_a_duplicate_part_is_ignored_and_the_first_copy_wins() -> None:
    got = assemble(parts((1, "one"), (1, "ONE"), (2, " two")), 2, "[...]")
    assert got.text == "one two"


def test_missing_parts_are_marked_once_per_gap() -> None:
    assert assemble(parts((1, "one"), (4, "four")), 4, "[...]").text == "one [...] four"
    assert assemble(parts((2, "two")), 3, "[...]").text == "[...] two [...]"
    assert assemble(parts((2, "two")), 3, "[...]").missing == (1, 3)
    assert assemble(parts((1, "one ")), 2, "").text == "one "


def test_complete_needs_every_number() -> None:
    assert complete(parts((2, "b"), (1, "a")), 2)
    assert not complete(parts((2, "b"), (2, "b")), 2)


def test_eight_bit_payloads_join_only_when_complete() -> None:
    whole = [Part("a", 1, "", 0.0, b"\x01"), Part("b", 2, "", 1.0, b"\x02")]
    assert assemble(whole, 2, "").data == b"\x01\x02"
    assert assemble(whole[:1], 2, "").data is None


def test_concat_of_reads_8_and_16_bit_references() -> None:
    assert concat_of(bytes.fromhex("050003A70302")) == Concatenation(0xA7, 3, 2, 8)
    assert concat_of(bytes.fromhex("06080412340301")) == Concatenation(0x1234, 3, 1, 16)
    assert concat_of(b"") is None
    assert concat_of(bytes.fromhex("050003A70101")) is None  # one part of one: a whole SMS
    assert concat_of(bytes.fromhex("FF")) is None  # a UDH that cannot be read is no part


def test_an_8_bit_and_a_16_bit_reference_of_the_same_value_are_different_messages() -> None:
    eight = group_key("gw", "+1555", "", Concatenation(7, 2, 1, 8))
    sixteen = group_key("gw", "+1555", "", Concatenation(7, 2, 1, 16))
    assert eight != sixteen


@given(st.lists(st.tuples(st.integers(1, 255), st.text(max_size=5)), max_size=300), st.integers(1, 255))
def test_any_parts_assemble_without_losing_a_received_text(received: list[tuple[int, str]], total: int) -> None:
    given_parts = [p for p in parts(*received) if p.seq <= total]
    got = assemble(given_parts, total, "[...]")
    firsts: dict[int, str] = {}
    for part in given_parts:
        firsts.setdefault(part.seq, part.text)
    assert set(got.missing) == set(range(1, total + 1)) - set(firsts)
    position = 0
    for seq in sorted(firsts):
        found = got.text.find(firsts[seq], position)
        assert found >= 0
        position = found + len(firsts[seq])
