"""GSM 03.38 alphabet facts (checked against Encode::GSM0338, smspdudecoder and the gsm0338 codec)."""

from __future__ import annotations

import pytest
from smspdudecoder.codecs import GSM as ReferenceGSM

from mailsms.segment import gsm, is_gsm, non_gsm_characters, septet_count, transliterate


def test_default_alphabet_matches_the_independent_table() -> None:
    assert gsm.GSM_BASIC == ReferenceGSM.ALPHABET


def test_extension_table_matches_the_independent_table() -> None:
    assert {c: v for v, c in ReferenceGSM.ALPHABET_EXT.items()} == gsm.GSM_EXTENSION


@pytest.mark.parametrize("char", list("^{}\\[~]|€\f"))
def test_extension_character_costs_two_septets(char: str) -> None:
    assert septet_count(char) == 2
    assert gsm.to_septets(char) == "\x1b" + chr(gsm.GSM_EXTENSION[char])


def test_capital_c_cedilla_is_gsm_but_small_is_not() -> None:
    assert is_gsm("Ç")
    assert not is_gsm("ç")


@pytest.mark.parametrize("char", ["â", "ó", "È", "¢", "`", "\t", "\u00a0", "\x1b", "\x7f", "\x00"])
def test_characters_outside_the_default_alphabet(char: str) -> None:
    assert not is_gsm(char)
    assert gsm.to_septets(char) is None


def test_greek_capitals_in_the_alphabet_are_gsm() -> None:
    assert is_gsm("ΔΦΓΛΩΠΨΣΘΞ")


@pytest.mark.parametrize("char", ["Α", "Η", "Ν", "Β"])
def test_greek_look_alikes_of_latin_capitals_are_not_gsm(char: str) -> None:
    assert not is_gsm(char)


def test_to_septets_maps_at_dollar_and_underscore_to_their_septet_values() -> None:
    assert gsm.to_septets("@$_") == "\x00\x02\x11"


def test_to_septets_and_is_gsm_agree_on_every_code_point_below_0x3000() -> None:
    for code in range(0x3000):
        char = chr(code)
        assert (gsm.to_septets(char) is not None) == is_gsm(char) == (char in gsm.GSM_CHARACTERS), hex(code)


def test_septet_count_counts_plain_characters_once() -> None:
    assert septet_count("Hello") == 5
    assert septet_count("10€ [x]") == 10


def test_replace_non_gsm_turns_an_emoji_into_one_question_mark() -> None:
    assert gsm.replace_non_gsm("a😀b") == "a?b"


def test_non_gsm_characters_lists_each_once_in_order() -> None:
    assert non_gsm_characters("“hi” “there”") == ["“", "”"]


def test_decode_septets_reads_escapes_and_unknown_escapes_as_space() -> None:
    assert gsm.decode_septets(b"\x1b\x65A\x1b\x41\x00") == "€A @"


def test_decode_septets_inverts_to_septets() -> None:
    text = "Hello {world} €5 @home_ÄÖÜ"
    septets = gsm.to_septets(text)
    assert septets is not None
    assert gsm.decode_septets(septets.encode("ascii")) == text


def test_transliterate_replaces_typographic_characters() -> None:
    assert transliterate("‘a’ “b” c–d—e… f\u00a0g") == "'a' \"b\" c-d-e... f g"


def test_transliterate_drops_invisible_characters() -> None:
    assert transliterate("soft\u00adhyphen\u200b\ufeff") == "softhyphen"


def test_transliterate_keeps_letters_with_diacritics() -> None:
    assert transliterate("ça â ó") == "ça â ó"


def test_transliterated_characters_are_all_gsm() -> None:
    from mailsms.segment.transliterate import TRANSLITERATION_TABLE

    for code, replacement in TRANSLITERATION_TABLE.items():
        assert not is_gsm(chr(code)), f"{chr(code)!r} is GSM already"
        assert replacement is None or is_gsm(replacement)
