"""Body cleaning: quoted replies, signatures, mobile footers, invisible characters, whitespace."""

from __future__ import annotations

import pytest

from mailsms.compose_clean import clean_body, collapse_whitespace


def clean(text: str, *, quotes: bool = True, signature: bool = True) -> str:
    return clean_body(text, strip_quotes=quotes, strip_signature=signature)


# -- quoted replies ------------------------------------------------------------------------------


def test_quoted_lines_are_dropped() -> None:
    assert clean("Yes.\n> Coming?\n>> Earlier\n") == "Yes."


def test_indented_quote_marks_are_quotes_too() -> None:
    assert clean("Yes.\n  > Coming?\n") == "Yes."


def test_answers_between_quoted_lines_are_kept() -> None:
    text = "On Mon, Jan 1, 2024 at 9:00 AM Bob <bob@example.com> wrote:\n> Coming?\nYes.\n> When?\nAt 8.\n"
    assert clean(text) == "Yes. At 8."


def test_on_date_name_wrote_drops_the_attribution_and_the_quote() -> None:
    text = "See you at 10.\n\nOn Mon, Jan 1, 2024 at 9:00 AM Bob <bob@example.com> wrote:\n> Meeting?\n"
    assert clean(text) == "See you at 10."


def test_attribution_wrapped_over_two_lines_is_recognised() -> None:
    text = "Fine.\n\nOn Mon, Jan 1, 2024 at 9:00 AM Robert Longname <robert.longname@\nexample.com> wrote:\n> Hi\n"
    assert clean(text) == "Fine."


def test_attribution_wrapped_over_three_lines_is_recognised() -> None:
    text = (
        "Fine.\n\nOn Monday, January 1, 2024 at 9:00:00 AM\n"
        "Central European Standard Time, Robert Longname\n<bob@example.com> wrote:\n\n> Hi\n"
    )
    assert clean(text) == "Fine."


def test_attribution_without_a_quote_below_drops_everything_after_it() -> None:
    text = "Fine.\n\nOn Mon, Jan 1, 2024 at 9:00 AM Bob <bob@example.com> wrote:\nHi, are you coming?\nBob\n"
    assert clean(text) == "Fine."


@pytest.mark.parametrize(
    "attribution",
    [
        "Am 01.01.2024 um 09:00 schrieb Max Mustermann <max@example.de>:",
        "Le lun. 1 janv. 2024 à 09:00, Jean Dupont <jean@example.fr> a écrit :",
        "El lun, 1 ene 2024 a las 9:00, Juan <juan@example.es> escribió:",
        "Il giorno lun 1 gen 2024 alle ore 09:00 Mario <mario@example.it> ha scritto:",
        "Op ma 1 jan. 2024 om 09:00 schreef Jan <jan@example.nl>:",
        "W dniu 01.01.2024 o 09:00, Jan <jan@example.pl> pisze:",
        "Em seg., 1 de jan. de 2024 às 09:00, João <joao@example.br> escreveu:",
    ],
)
def test_localized_attributions_are_recognised(attribution: str) -> None:
    assert clean(f"OK.\n\n{attribution}\nOriginal text\n") == "OK."


def test_name_wrote_line_followed_by_a_quote_is_an_attribution() -> None:
    assert clean("OK.\n\nBob Smith <bob@example.com> wrote:\n> Original\n") == "OK."


def test_a_line_ending_in_wrote_without_a_quote_below_is_text() -> None:
    assert clean("This is what she wrote:\nthe plan is fine.\n") == "This is what she wrote: the plan is fine."


def test_outlook_original_message_drops_everything_after_it() -> None:
    text = "Done.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Ann\nSubject: Task\n\nPlease do it.\n"
    assert clean(text) == "Done."


def test_localized_original_message_is_recognised() -> None:
    assert clean("Erledigt.\n\n-----Ursprüngliche Nachricht-----\nVon: Bob\nBitte machen.\n") == "Erledigt."


def test_outlook_header_block_drops_everything_after_it() -> None:
    text = (
        "Done.\n\n________________________________\n"
        "From: Bob <bob@example.com>\nSent: Monday, January 1, 2024 9:00 AM\nTo: Ann\nSubject: Task\n\nPlease do it.\n"
    )
    assert clean(text) == "Done."


def test_german_outlook_header_block_is_recognised() -> None:
    text = (
        "Erledigt.\n\nVon: Bob <bob@example.de>\nGesendet: Montag, 1. Januar 2024 09:00\n"
        "An: Ann\nBetreff: Aufgabe\n\nBitte.\n"
    )
    assert clean(text) == "Erledigt."


def test_french_outlook_header_block_is_recognised() -> None:
    text = "Fait.\n\nDe : Bob <bob@example.fr>\nEnvoyé : lundi 1 janvier 2024 09:00\nÀ : Ann\nObjet : Tâche\n\nMerci.\n"
    assert clean(text) == "Fait."


def test_bold_outlook_header_block_is_recognised() -> None:
    text = "Done.\n\n*From:* Bob <bob@example.com>\n*Sent:* Monday\n*To:* Ann\n*Subject:* Task\n\nPlease.\n"
    assert clean(text) == "Done."


def test_a_from_line_alone_is_text() -> None:
    assert clean("From: the boiler room\nAll fine.\n") == "From: the boiler room All fine."


def test_forwarded_message_is_kept() -> None:
    text = (
        "FYI\n\n---------- Forwarded message ---------\n"
        "From: Alarm <alarm@example.com>\nDate: Mon, Jan 1, 2024\nSubject: Fire alarm\nTo: Ops <ops@example.com>\n\n"
        "Fire alarm in building 3.\n"
    )
    assert clean(text).endswith("Fire alarm in building 3.")


def test_quotes_are_kept_when_not_stripped() -> None:
    assert clean("Yes.\n> Coming?\n", quotes=False) == "Yes. > Coming?"


# -- signatures and footers -------------------------------------------------------------------------


def test_signature_separator_drops_everything_below() -> None:
    assert clean("See you.\n-- \nBob\nACME Inc.\n") == "See you."


def test_signature_separator_without_trailing_space_is_recognised() -> None:
    assert clean("See you.\n--\nBob\n") == "See you."


def test_dashes_inside_a_line_are_text() -> None:
    assert clean("Price -- 10 EUR\n") == "Price -- 10 EUR"


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone",
        "Sent from my iPad",
        "Sent from my Android",
        "Sent from my Samsung Galaxy smartphone.",
        "Get Outlook for iOS",
        "Get Outlook for Android<https://aka.ms/ghei36>",
        "Sent from Mail for Windows",
        "Sent from Yahoo Mail on Android",
        "Sent with Proton Mail secure email.",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPhone",
        "Enviado desde mi iPhone",
        "Inviato da iPhone",
        "Verzonden met mijn iPhone",
    ],
)
def test_mobile_footer_at_the_end_is_dropped(footer: str) -> None:
    assert clean(f"On my way.\n\n{footer}\n\n") == "On my way."


def test_footer_like_line_in_the_middle_is_text() -> None:
    assert clean("Sent from my iPhone\nbecause the laptop is broken.\n") == (
        "Sent from my iPhone because the laptop is broken."
    )


def test_footer_above_a_quote_is_dropped() -> None:
    assert clean("On my way.\n\nSent from my iPhone\n\n> On 1 Jan 2024, at 10:00, Sarah wrote:\n> Where?\n") == (
        "On my way."
    )


def test_signature_is_kept_when_not_stripped() -> None:
    assert clean("See you.\n-- \nBob\n", signature=False) == "See you. -- Bob"


# -- characters and whitespace --------------------------------------------------------------------


def test_all_whitespace_collapses_to_single_spaces() -> None:
    assert clean("a\r\n\r\n b\t\tc\u00a0\u2003d\r") == "a b c d"


def test_control_characters_become_spaces() -> None:
    assert clean("a\x00b\x07c\x1bd\x85e") == "a b c d e"


def test_invisible_characters_are_removed() -> None:
    assert clean("in\u200bvisible\ufeff soft\u00adhyphen") == "invisible softhyphen"


def test_standalone_joiners_are_dropped_but_kept_inside_words() -> None:
    assert collapse_whitespace("Preview \u200c \u200c \u200c text") == "Preview text"
    assert collapse_whitespace("\U0001f468\u200d\U0001f469") == "\U0001f468\u200d\U0001f469"


def test_text_is_capped_to_64k_characters() -> None:
    assert len(clean("x" * 200_000)) == 64 * 1024


# -- bounded work ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    ["On a b c wrote", "> quoted", "From: x", "-----Original", "wrote:", "Sent from my iPhone", " " * 500 + ":"],
)
def test_pathological_bodies_are_cleaned_in_linear_time(line: str) -> None:
    # 20,000 candidate lines: a quadratic rule would take minutes here, a linear one milliseconds.
    assert isinstance(clean((line + "\n") * 20_000), str)
