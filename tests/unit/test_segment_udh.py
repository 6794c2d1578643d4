"""Concatenation headers and per-destination references."""

from __future__ import annotations

import pytest

from mailsms.segment import ReferenceCounter, concat_udh, concatenation, parse_hex, parse_udh
from mailsms.segment.udh import Concatenation, fill_bits, udh_septets, without_concatenation


def test_8_bit_reference_udh_is_05_00_03_ref_total_seq() -> None:
    assert concat_udh(0x2A, 3, 1).hex() == "0500032a0301"


def test_16_bit_reference_udh_is_06_08_04_ref_ref_total_seq() -> None:
    assert concat_udh(0x1234, 3, 2, bits=16).hex() == "060804123403 02".replace(" ", "")


@pytest.mark.parametrize(("reference", "bits"), [(256, 8), (-1, 8), (65536, 16)])
def test_reference_out_of_range_is_refused(reference: int, bits: int) -> None:
    with pytest.raises(ValueError, match="reference"):
        concat_udh(reference, 2, 1, bits)


@pytest.mark.parametrize(("total", "seq"), [(256, 1), (2, 0), (2, 3)])
def test_part_numbers_outside_1_to_255_are_refused(total: int, seq: int) -> None:
    with pytest.raises(ValueError, match="part"):
        concat_udh(1, total, seq)


def test_concatenation_reads_both_reference_sizes() -> None:
    assert concatenation(concat_udh(7, 4, 2)) == Concatenation(7, 4, 2, 8)
    assert concatenation(concat_udh(0xBEEF, 4, 3, bits=16)) == Concatenation(0xBEEF, 4, 3, 16)


def test_concatenation_is_none_for_a_port_only_udh() -> None:
    assert concatenation(bytes.fromhex("0605040b8423f0")) is None


def test_parse_udh_refuses_a_wrong_length_byte() -> None:
    with pytest.raises(ValueError, match="length"):
        parse_udh(bytes.fromhex("0600030a0201"))


def test_parse_udh_refuses_a_truncated_element() -> None:
    with pytest.raises(ValueError, match="truncated"):
        parse_udh(bytes.fromhex("03000301"))


def test_without_concatenation_keeps_other_elements() -> None:
    udh = bytes.fromhex("0b000307020105040b8423f0")
    assert without_concatenation(udh).hex() == "05040b8423f0"


def test_fill_bits_align_a_6_octet_udh_to_7_septets() -> None:
    assert (fill_bits(6), udh_septets(6)) == (1, 7)
    assert (fill_bits(7), udh_septets(7)) == (0, 8)


def test_parse_hex_accepts_spaces_and_either_case() -> None:
    assert parse_hex("0A ff") == b"\x0a\xff"


@pytest.mark.parametrize("value", ["abc", "zz"])
def test_parse_hex_refuses_what_is_not_hex(value: str) -> None:
    with pytest.raises(ValueError):
        parse_hex(value)


def test_references_count_per_destination() -> None:
    counter = ReferenceCounter(start=lambda _dest: 10)
    assert [counter.next("+1"), counter.next("+1"), counter.next("+2"), counter.next("+1")] == [10, 11, 10, 12]


def test_8_bit_references_wrap_from_255_to_0() -> None:
    counter = ReferenceCounter(start=lambda _dest: 254)
    assert [counter.next("+1") for _ in range(4)] == [254, 255, 0, 1]


def test_16_bit_references_wrap_from_65535_to_0() -> None:
    counter = ReferenceCounter(16, start=lambda _dest: 65535)
    assert [counter.next("+1") for _ in range(2)] == [65535, 0]


def test_reference_start_is_taken_modulo_the_range() -> None:
    assert ReferenceCounter(start=lambda _dest: 300).next("+1") == 44


def test_default_reference_start_is_within_range() -> None:
    counter = ReferenceCounter(16)
    assert all(0 <= counter.next(f"+{i}") <= 65535 for i in range(50))


def test_reference_counter_forgets_the_destination_unused_longest() -> None:
    starts = iter(range(0, 200, 10))
    counter = ReferenceCounter(start=lambda _dest: next(starts), max_destinations=2)
    counter.next("+1")
    counter.next("+2")
    counter.next("+1")
    counter.next("+3")  # evicts +2
    assert counter.next("+1") == 2
    assert counter.next("+2") == 30


def test_reference_counter_refuses_other_sizes() -> None:
    with pytest.raises(ValueError, match="8 or 16"):
        ReferenceCounter(12)


def test_for_destination_gives_a_callable_for_split_text() -> None:
    counter = ReferenceCounter(start=lambda _dest: 5)
    next_ref = counter.for_destination("+1")
    assert (next_ref(), next_ref()) == (5, 6)
