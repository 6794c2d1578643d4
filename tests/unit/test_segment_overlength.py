"""maxmsgs, the 255-part limit, truncation markers, transliteration, binary parts."""

from __future__ import annotations

import pytest

from mailsms.errors import MessageTooLong
from mailsms.segment import Segmentation, marker_problems, split_binary, split_text

EMOJI = "\U0001f600"


def texts(seg: Segmentation) -> list[str]:
    return [p.text for p in seg.parts]


def units(seg: Segmentation) -> list[int]:
    return [p.units for p in seg.parts]


# --- maxmsgs and truncation --------------------------------------------------


def test_maxmsgs_3_truncates_fourth_part() -> None:
    seg = split_text("x" * (153 * 4), maxmsgs=3)
    assert (seg.count, seg.needed, seg.truncated) == (3, 4, True)
    assert texts(seg)[-1] == "x" * 150 + "..."
    assert units(seg) == [153, 153, 153]
    assert [p.udh[-2:] for p in seg.parts] == [b"\x03\x01", b"\x03\x02", b"\x03\x03"]


def test_text_that_fits_maxmsgs_is_not_truncated() -> None:
    seg = split_text("x" * (153 * 3), maxmsgs=3)
    assert (seg.count, seg.truncated) == (3, False)


def test_maxmsgs_1_truncates_to_160_septets_without_udh() -> None:
    seg = split_text("x" * 200, maxmsgs=1)
    assert (seg.count, seg.parts[0].udh, seg.parts[0].units) == (1, b"", 160)
    assert seg.parts[0].text == "x" * 157 + "..."


def test_ucs2_truncation_ends_with_an_ellipsis_character() -> None:
    seg = split_text("ж" * 200, maxmsgs=2)
    assert (seg.encoding, units(seg)) == ("ucs2", [67, 67])
    assert texts(seg)[-1] == "ж" * 66 + "…"


def test_truncation_marker_never_changes_a_gsm_text_to_ucs2() -> None:
    seg = split_text("x" * 400, maxmsgs=2, marker_ucs2="…")
    assert seg.encoding == "gsm7"
    assert texts(seg)[-1].endswith("...")


def test_gsm_marker_outside_gsm_is_refused() -> None:
    with pytest.raises(ValueError, match="not GSM"):
        split_text("x" * 400, maxmsgs=2, marker_gsm="…")


def test_custom_marker_is_used() -> None:
    assert texts(split_text("x" * 400, maxmsgs=1, marker_gsm=" [more]"))[0].endswith("x [more]")


def test_truncation_keeps_an_escape_pair_whole_before_the_marker() -> None:
    seg = split_text("€" * 200, maxmsgs=1)
    assert seg.parts[0].text == "€" * 78 + "..."
    assert seg.parts[0].units == 159


def test_truncation_keeps_an_emoji_whole_before_the_marker() -> None:
    seg = split_text(EMOJI * 100, maxmsgs=1)
    assert seg.parts[0].text == EMOJI * 34 + "…"


def test_truncation_prefers_a_word_boundary_and_drops_the_space() -> None:
    seg = split_text("word " * 100, maxmsgs=1)
    assert seg.parts[0].text.endswith("word...")


def test_reject_mode_raises_552_5_3_4() -> None:
    with pytest.raises(MessageTooLong) as info:
        split_text("x" * (153 * 4), maxmsgs=3, overlength="reject")
    assert info.value.reply().startswith("552 5.3.4")
    assert "needs 4 parts, more than the 3 allowed" in info.value.reason


def test_over_255_parts_is_refused_without_maxmsgs() -> None:
    with pytest.raises(MessageTooLong) as info:
        split_text("x" * (153 * 255 + 1))
    assert info.value.reason == "text needs 256 parts, more than 255"
    assert info.value.exit_code == 65


def test_marker_problems_names_a_marker_outside_gsm() -> None:
    assert marker_problems("...", "…") == []
    assert "truncate_marker_gsm" in marker_problems("…", "…")[0]


# --- transliteration -------------------------------------------------------

PASTED = "It’s “quoted” – fine… " * 10


def test_transliteration_is_off_by_default() -> None:
    assert split_text(PASTED).encoding == "ucs2"


def test_smart_transliteration_makes_a_pasted_text_gsm() -> None:
    seg = split_text(PASTED, transliterate=True)
    assert (seg.encoding, seg.transliterated, seg.count) == ("gsm7", True, 2)
    assert texts(seg)[0].startswith('It\'s "quoted" - fine...')


def test_smart_transliteration_leaves_a_text_that_stays_ucs2_untouched() -> None:
    seg = split_text("Привет “друг”", transliterate=True)
    assert (seg.encoding, seg.transliterated, texts(seg)) == ("ucs2", False, ["Привет “друг”"])


def test_smart_transliteration_is_skipped_when_it_costs_parts() -> None:
    seg = split_text("…" * 130, transliterate=True)  # 2 UCS-2 parts, 390 septets = 3 GSM parts
    assert (seg.encoding, seg.transliterated, seg.count) == ("ucs2", False, 2)


def test_forced_gsm7_transliterates_before_replacing() -> None:
    seg = split_text("“a” ж", encoding="gsm7", transliterate=True)
    assert texts(seg) == ['"a" ?']


def test_forced_ucs2_is_never_transliterated() -> None:
    assert split_text("“a”", encoding="ucs2", transliterate=True).parts[0].text == "“a”"


# --- binary ----------------------------------------------------------------


def test_binary_data_passes_through_with_the_given_udh_dcs_and_pid() -> None:
    udh = bytes.fromhex("0605040b8423f0")
    seg = split_binary(b"\x01\x02", udh=udh, dcs=0xF5, pid=0x7F)
    assert (seg.encoding, seg.dcs, seg.pid) == ("binary", 0xF5, 0x7F)
    assert (seg.parts[0].udh, seg.parts[0].data, seg.parts[0].units) == (udh, b"\x01\x02", 2)


def test_binary_payload_limit_is_140_minus_the_udh() -> None:
    udh = bytes.fromhex("0605040b8423f0")
    assert split_binary(b"x" * 133, udh=udh).count == 1
    seg = split_binary(b"x" * 134, udh=udh, reference=3)
    assert seg.count == 2
    assert seg.parts[0].udh.hex() == "0b0003030201" + "05040b8423f0"
    assert [p.units for p in seg.parts] == [128, 6]


def test_binary_without_udh_uses_134_octet_parts() -> None:
    seg = split_binary(b"x" * 300)
    assert [p.units for p in seg.parts] == [134, 134, 32]
    assert b"".join(p.data for p in seg.parts) == b"x" * 300


def test_binary_malformed_udh_is_refused() -> None:
    with pytest.raises(ValueError, match="length"):
        split_binary(b"x", udh=b"\x05\x00\x03")


def test_binary_over_maxmsgs_is_truncated_or_rejected() -> None:
    seg = split_binary(b"x" * 300, maxmsgs=2)
    assert (seg.count, seg.needed, seg.truncated) == (2, 3, True)
    with pytest.raises(MessageTooLong):
        split_binary(b"x" * 300, maxmsgs=2, overlength="reject")


def test_marker_longer_than_a_part_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than a part"):
        split_text("x" * 400, maxmsgs=2, marker_gsm="." * 154)
