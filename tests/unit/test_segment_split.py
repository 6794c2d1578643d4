"""split_text: encodings, part limits, boundaries, word cuts."""

from __future__ import annotations

import pytest

from mailsms.config import SegmentConfig
from mailsms.segment import Segmentation, count_parts, split_text, split_with_config

EMOJI = "\U0001f600"


def texts(seg: Segmentation) -> list[str]:
    return [p.text for p in seg.parts]


def units(seg: Segmentation) -> list[int]:
    return [p.units for p in seg.parts]


# --- choosing the encoding -------------------------------------------------


def test_gsm_text_is_sent_as_gsm7() -> None:
    seg = split_text("Hello @home, 5$ ok_")
    assert (seg.encoding, seg.dcs) == ("gsm7", 0x00)


def test_one_character_outside_gsm_makes_the_text_ucs2() -> None:
    seg = split_text("Hello ç")
    assert (seg.encoding, seg.dcs) == ("ucs2", 0x08)


def test_forced_ucs2_keeps_a_gsm_text_in_ucs2() -> None:
    assert split_text("Hello", encoding="ucs2").encoding == "ucs2"


def test_forced_gsm7_replaces_what_does_not_fit_by_question_marks() -> None:
    seg = split_text(f"Привет {EMOJI}!", encoding="gsm7")
    assert (seg.encoding, texts(seg)) == ("gsm7", ["?????? ?!"])


def test_empty_text_is_one_empty_part() -> None:
    seg = split_text("")
    assert (seg.count, texts(seg), units(seg)) == (1, [""], [0])


def test_lone_surrogate_becomes_the_replacement_character() -> None:
    assert texts(split_text("a\udcffb")) == ["a\ufffdb"]


# --- single part limits ----------------------------------------------------


def test_160_septets_are_one_part_without_udh() -> None:
    seg = split_text("x" * 160)
    assert (seg.count, seg.parts[0].udh, seg.parts[0].units) == (1, b"", 160)


def test_161_septets_are_two_parts_of_153_and_8() -> None:
    seg = split_text("x" * 161)
    assert units(seg) == [153, 8]


def test_extension_characters_count_two_toward_160() -> None:
    assert split_text("€" * 80).count == 1
    assert units(split_text("€" * 81)) == [152, 10]


def test_70_ucs2_units_are_one_part() -> None:
    assert units(split_text("ж" * 70)) == [70]


def test_71_ucs2_units_are_two_parts_of_67_and_4() -> None:
    assert units(split_text("ж" * 71)) == [67, 4]


def test_an_emoji_counts_two_units() -> None:
    assert units(split_text(EMOJI * 35)) == [70]
    assert units(split_text(EMOJI * 36)) == [66, 6]


# --- concatenated limits ---------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 10])
def test_153_times_n_septets_fill_n_parts_exactly(n: int) -> None:
    seg = split_text("x" * (153 * n))
    assert units(seg) == [153] * n


@pytest.mark.parametrize("n", [2, 3, 10])
def test_one_septet_more_than_153_times_n_needs_another_part(n: int) -> None:
    assert split_text("x" * (153 * n + 1)).count == n + 1


@pytest.mark.parametrize("n", [2, 5])
def test_67_times_n_units_fill_n_ucs2_parts_exactly(n: int) -> None:
    assert units(split_text("ж" * (67 * n))) == [67] * n
    assert split_text("ж" * (67 * n + 1)).count == n + 1


def test_16_bit_references_leave_152_septets_and_66_units() -> None:
    assert units(split_text("x" * 161, reference_bits=16)) == [152, 9]
    assert units(split_text("ж" * 71, reference_bits=16)) == [66, 5]


def test_255_parts_are_allowed() -> None:
    seg = split_text("x" * (153 * 255))
    assert seg.count == 255
    assert seg.parts[-1].udh.hex() == "050003" + "00" + "ff" + "ff"


def test_concatenated_parts_carry_8_bit_reference_udh_by_default() -> None:
    seg = split_text("x" * 200, reference=0x42)
    assert [p.udh.hex() for p in seg.parts] == ["050003420201", "050003420202"]
    assert seg.reference == 0x42


def test_16_bit_reference_udh_when_configured() -> None:
    seg = split_text("x" * 200, reference=0x1234, reference_bits=16)
    assert [p.udh.hex() for p in seg.parts] == ["06080412340201", "06080412340202"]


def test_reference_function_is_called_only_for_concatenated_text() -> None:
    calls: list[int] = []

    def next_reference() -> int:
        calls.append(1)
        return 9

    assert split_text("short", reference=next_reference).reference is None
    assert split_text("x" * 200, reference=next_reference).reference == 9
    assert len(calls) == 1


def test_reference_that_does_not_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="8 bits"):
        split_text("x" * 200, reference=256)


# --- pairs at boundaries ---------------------------------------------------


def test_escape_pair_at_the_boundary_moves_to_the_next_part() -> None:
    seg = split_text("x" * 152 + "€" + "y" * 10)
    assert texts(seg) == ["x" * 152, "€" + "y" * 10]
    assert units(seg) == [152, 12]


def test_escape_pair_ending_exactly_at_153_stays() -> None:
    seg = split_text("x" * 151 + "€" + "y" * 10)
    assert units(seg) == [153, 10]


def test_escape_pair_ending_at_160_stays_single() -> None:
    assert units(split_text("x" * 158 + "€")) == [160]
    assert split_text("x" * 159 + "€").count == 2


def test_surrogate_pair_at_the_boundary_moves_to_the_next_part() -> None:
    seg = split_text("ж" * 66 + EMOJI + "ж" * 10)
    assert texts(seg) == ["ж" * 66, EMOJI + "ж" * 10]
    assert units(seg) == [66, 12]


def test_emoji_ending_at_70_units_stays_single() -> None:
    assert units(split_text("ж" * 68 + EMOJI)) == [70]


# --- word boundaries -------------------------------------------------------


def test_split_moves_back_to_a_space_in_the_last_10_units() -> None:
    text = "x" * 145 + " " + "y" * 20
    assert texts(split_text(text)) == ["x" * 145 + " ", "y" * 20]


def test_split_ignores_a_space_further_back_than_the_window() -> None:
    text = "x" * 140 + " " + "y" * 30
    assert units(split_text(text)) == [153, 18]


def test_split_window_is_configurable() -> None:
    text = "x" * 140 + " " + "y" * 30
    assert texts(split_text(text, split_window=20))[0] == "x" * 140 + " "
    assert units(split_text("x" * 150 + " " + "y" * 20, split_window=0)) == [153, 18]


def test_split_at_a_newline_too() -> None:
    assert texts(split_text("x" * 148 + "\n" + "y" * 20))[0] == "x" * 148 + "\n"


def test_split_right_before_a_space_is_kept() -> None:
    assert units(split_text("x" * 153 + " " + "y" * 20)) == [153, 21]


def test_word_split_never_adds_a_part() -> None:
    text = "x" * 150 + " " + "y" * 155  # 306 septets: exactly two full parts
    seg = split_text(text)
    assert units(seg) == [153, 153]


def test_word_split_is_used_in_later_parts_when_there_is_room() -> None:
    words = ("word " * 100).strip()
    seg = split_text(words)
    assert all(t.endswith(" ") for t in texts(seg)[:-1])
    assert seg.count == count_parts(words)[1]


def test_word_split_in_ucs2_counts_units() -> None:
    text = "ж" * 60 + " " + "ж" * 20
    assert texts(split_text(text))[0] == "ж" * 60 + " "


# --- data ------------------------------------------------------------------


def test_gsm_part_data_is_unpacked_septets() -> None:
    assert split_text("@€a").parts[0].data == b"\x00\x1b\x65a"


def test_ucs2_part_data_is_utf_16_be() -> None:
    assert split_text(f"ж{EMOJI}").parts[0].data == f"ж{EMOJI}".encode("utf-16-be")


def test_count_parts_matches_split_text() -> None:
    assert count_parts("x" * 400) == ("gsm7", 3)
    assert count_parts("ж" * 400) == ("ucs2", 6)


def test_split_with_config_uses_the_segment_section() -> None:
    config = SegmentConfig(maxmsgs=2, reference_bits=16, split_window=0)
    seg = split_with_config("x" * 1000, config, reference=1)
    assert (seg.count, seg.truncated, seg.parts[0].udh[:3]) == (2, True, b"\x06\x08\x04")
    assert split_with_config("x" * 1000, config, maxmsgs=10).count == 7


@pytest.mark.parametrize(
    ("option", "value"),
    [("maxmsgs", 0), ("maxmsgs", 256), ("overlength", "drop"), ("reference_bits", 12), ("split_window", 61)],
)
def test_invalid_options_are_refused(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        split_text("x", **{option: value})  # type: ignore[arg-type]
