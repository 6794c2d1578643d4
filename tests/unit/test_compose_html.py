"""HTML bodies become readable lines: text and link text only, client quoting and signatures dropped."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsms import compose_html
from mailsms.compose_clean import clean_body
from mailsms.compose_html import html_to_text


def text(markup: str, *, quotes: bool = True, signature: bool = True) -> str:
    """The SMS text of an HTML body: converted, then cleaned like any body."""
    lines = html_to_text(markup, strip_quotes=quotes, strip_signature=signature)
    return clean_body(lines, strip_quotes=quotes, strip_signature=signature)


def test_block_elements_become_lines() -> None:
    assert html_to_text("<p>one</p><div>two<br>three</div><li>four</li>", strip_quotes=True, strip_signature=True) == (
        "\none\n\ntwo\n\nthree\n\nfour\n"
    )


def test_inline_elements_and_source_line_breaks_do_not_break_lines() -> None:
    assert html_to_text("<p>one <b>bold</b>\n  <i>word</i></p>", strip_quotes=True, strip_signature=True).strip() == (
        "one bold word"
    )


def test_link_text_is_kept_and_the_address_dropped() -> None:
    assert text('<p>See <a href="https://example.com/x">the report</a>.</p>') == "See the report."


def test_head_script_style_and_comments_are_dropped() -> None:
    markup = (
        "<html><head><title>T</title><style>p {color: red}</style></head>"
        "<body><script>alert(1)</script><!-- hidden --><p>Visible</p><noscript>no</noscript></body></html>"
    )
    assert text(markup) == "Visible"


def test_entities_are_decoded() -> None:
    assert text("<p>Fish &amp; chips &euro;5&nbsp;now &#x1F642;</p>") == "Fish & chips €5 now \U0001f642"


def test_markup_before_body_is_skipped() -> None:
    assert text("<html><head><style>" + "x{}" * 50_000 + "</style></head><body><p>Hi</p></body></html>") == "Hi"


def test_blockquote_is_dropped_when_stripping_quotes() -> None:
    markup = "<div>Yes.</div><blockquote type='cite'>Coming?</blockquote>"
    assert text(markup) == "Yes."
    assert text(markup, quotes=False) == "Yes. Coming?"


def test_gmail_quote_and_attribution_are_dropped() -> None:
    markup = (
        '<div dir="ltr">Yes.</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        "On Mon, Jan 1, 2024 at 9:00 AM Bob &lt;bob@example.com&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote">Coming?</blockquote></div>'
    )
    assert text(markup) == "Yes."


def test_thunderbird_cite_prefix_is_dropped() -> None:
    markup = '<p>Yes.</p><div class="moz-cite-prefix">On 01.01.24 09:00, Bob wrote:<br></div><blockquote>x</blockquote>'
    assert text(markup) == "Yes."


def test_outlook_reply_header_ends_the_text() -> None:
    markup = (
        "<div>Done.</div><div id='appendonsend'></div><hr>"
        "<div id='divRplyFwdMsg'><b>From:</b> Bob<br><b>Sent:</b> Monday</div><div>Please do it.</div>"
    )
    assert text(markup) == "Done."


def test_outlook_desktop_header_block_is_cut_by_the_text_rules() -> None:
    markup = (
        "<p class=MsoNormal>Done.</p>"
        "<div style='border:none;border-top:solid #E1E1E1 1.0pt'><p class=MsoNormal><b>From:</b> Bob<br>"
        "<b>Sent:</b> Monday, January 1, 2024 9:00 AM<br><b>To:</b> Ann<br><b>Subject:</b> Task</p></div>"
        "<p class=MsoNormal>Please do it.</p>"
    )
    assert text(markup) == "Done."


def test_signature_blocks_are_dropped_when_stripping_signatures() -> None:
    markup = '<div>See you.</div><div class="gmail_signature">Bob<br>ACME</div><div class="moz-signature">Bob</div>'
    assert text(markup) == "See you."
    assert text(markup, signature=False) == "See you. Bob ACME Bob"


def test_html_signature_separator_line_is_recognised() -> None:
    assert text("<p>See you.</p><p>-- <br>Bob</p>") == "See you."


def test_broken_markup_is_converted() -> None:
    assert text("<p>unclosed <b>bold <div>and </p>stray</i> text <") == "unclosed bold and stray text <"


def test_deeply_nested_markup_is_converted() -> None:
    assert text("<div>" * 5000 + "deep" + "</div>" * 5000) == "deep"


def test_markup_is_cut_to_its_limit() -> None:
    words = text("<body>" + "<p>word</p>" * 50_000).split()
    assert len(words) == 32 * 1024 // len("<p>word</p>") + 1


@pytest.mark.parametrize("construct", ["<a", "<!--", "</", "<?", "<!", "<![", "<", "&", "<div>"])
def test_runs_of_unclosed_constructs_are_parsed_in_linear_time(construct: str) -> None:
    # html.parser alone is quadratic on these (CVE-2025-6069): minutes instead of milliseconds.
    assert isinstance(text(construct * 30_000), str)


def test_comments_are_removed_before_parsing() -> None:
    assert text("<p>a<!-- <b>hidden</b> -->b</p><!--[if mso]><p>mso</p><![endif]-->") == "ab"


def test_an_unclosed_comment_hides_the_rest() -> None:
    assert text("<p>shown</p><!-- <p>hidden</p>") == "shown"


def test_a_less_than_sign_that_opens_no_tag_is_text() -> None:
    assert text("<p>1 < 2 and 3 <4</p>") == "1 < 2 and 3 <4"


def test_parser_failure_falls_back_to_stripping_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise RecursionError

    monkeypatch.setattr(compose_html, "_convert", broken)
    assert text("<p>Fish &amp; chips</p>") == "Fish & chips"


@given(st.text(alphabet="<>/!-?&#;=\"' abpdivbrscriptyle[]CDATA", max_size=300))
def test_html_to_text_never_raises_on_tag_soup(markup: str) -> None:
    assert isinstance(text(markup), str)


def test_a_plain_text_mail_does_not_import_the_html_library() -> None:
    code = (
        "import sys; from mailsms.compose import compose; from mailsms.config import ComposeConfig; "
        "compose(b'Subject: s\\r\\n\\r\\nhello', ComposeConfig()); print('bs4' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
