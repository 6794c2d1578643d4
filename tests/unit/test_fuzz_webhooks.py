"""Properties of the webhook parameter parsers on arbitrary requests: ``/inbound`` (MO) and ``/dlr`` (reports).

Whatever a gateway (or anyone who can reach the listener) sends, the parsers
answer with a stored-faithfully value or one of the documented 400 errors
(BadRequest, BadContent), and what they accept obeys the store's rules.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsms.dlr import DlrUpdate, parse_dlr
from mailsms.errors import BadContent, BadRequest
from mailsms.form import FormFields, json_pairs, parse_urlencoded
from mailsms.mo import MAX_ADDRESS, MAX_TEXT, parse_mo
from mailsms.segment.udh import USER_DATA_OCTETS, concatenation, parse_udh
from mailsms.store.inbound import NewInbound

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MO_NAMES = ["from", "to", "text", "udh", "coding", "charset", "smsc_id", "secret", "From", "TEXT"]
DLR_NAMES = ["id", "msgid", "messageId", "apimessageid", "status", "reason", "ID"]
FEW = settings(max_examples=200, deadline=None)

SAMPLES = "+15551234567 0 1 2 -1 3 utf-8 UCS-2 latin-1 bogus 050003a70201 0500030002ff 06080400010201 zz"
SAMPLES += " delivered failed 31 32 0001"
# Values as gateways write them, and as an attacker might: numbers, codings, charsets, hex, control characters.
values = st.one_of(
    st.binary(max_size=80),
    st.sampled_from([*SAMPLES.encode().split(), b"", b"\r\nBcc: x@y", b"\x00"]),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def encode_form(pairs: list[tuple[str, bytes]], plus: bool) -> str:
    """A query string of ``pairs``, percent-encoded, with some spaces written as ``+``."""
    items = [f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs]
    query = "&".join(items)
    return query.replace("%20", "+") if plus else query


texts = st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass"))
lines = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=40).map(str.encode)


def mostly(good: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """``good`` three times in four, anything the rest: most examples get past the first check."""
    return st.one_of(good, good, good, values)


# The fields a gateway sends, then junk pairs besides.
mo_fields = st.fixed_dictionaries(
    {"from": mostly(st.sampled_from([b"+15551234567", b" 0049151 ", b"MyBank"]) | lines), "text": mostly(texts)},
    optional={
        "to": mostly(lines),
        "udh": mostly(st.sampled_from([b"050003a70201", b"0500030002ff", b"06080400010201", b"0a0003010201050400"])),
        "coding": mostly(st.sampled_from([b"0", b"1", b"2", b"-1"])),
        "charset": mostly(st.sampled_from([b"utf-8", b"UCS-2", b"iso-8859-1", b"utf-16"])),
        "smsc_id": mostly(lines),
    },
)
statuses = st.sampled_from([b"delivered", b"FAILED", b"expired", b"buffered", b"1", b"2", b"9", b"16", b"31"])
dlr_fields = st.sampled_from(["id", "msgid", "messageid", "apimessageid"]).flatmap(
    lambda id_name: st.fixed_dictionaries(
        {id_name: mostly(lines), "status": mostly(statuses)}, optional={"reason": mostly(texts)}
    )
)
junk: st.SearchStrategy[list[tuple[str, bytes]]] = st.lists(
    st.tuples(st.sampled_from(MO_NAMES + DLR_NAMES), values), max_size=2
) | st.just([])
field_pairs = st.builds(lambda fields, extra: [*fields.items(), *extra], mo_fields | dlr_fields, junk)
forms = st.builds(encode_form, field_pairs, st.booleans())
# Raw query strings, not necessarily well-formed: stray %, +, &, = and any character.  No lone surrogates:
# aiohttp refuses a request line with non-ASCII bytes (400) and a form body is decoded strictly as UTF-8.
raw_queries = st.text(alphabet=st.sampled_from(list("%&=+#;0123456789abcdefABXZ \r\n\x00é€😀"))
                      | st.characters(exclude_categories=["Cs"]), max_size=120)  # fmt: skip


def fields_of(query: str) -> FormFields | None:
    """The fields of ``query``, or None when the form itself is refused (BadRequest only)."""
    try:
        return FormFields(parse_urlencoded(query))
    except BadRequest:
        return None


def check_mo(mo: NewInbound) -> None:
    """What every accepted MO looks like."""
    assert mo.sender and mo.sender == mo.sender.strip()
    assert len(mo.sender) <= MAX_ADDRESS and not CONTROL.search(mo.sender)
    assert len(mo.to) <= MAX_ADDRESS and not CONTROL.search(mo.to) and mo.to == mo.to.strip()
    assert mo.coding in (0, 1, 2)
    assert len(mo.text) <= MAX_TEXT
    if mo.coding == 1:
        assert mo.data is not None
    else:
        assert "\x00" not in mo.text and mo.data is None
    assert len(mo.smsc_id) <= 128 and not CONTROL.search(mo.smsc_id)
    if mo.udh:
        assert len(mo.udh) <= USER_DATA_OCTETS
        parse_udh(mo.udh)  # raises if a malformed UDH got through
        concat = concatenation(mo.udh)
        assert concat is None or 1 <= concat.seq <= concat.total


def check_dlr(update: DlrUpdate) -> None:
    assert update.message_id and update.message_id == update.message_id.strip()
    assert not CONTROL.search(update.message_id)
    assert update.state in ("delivered", "failed", "intermediate")
    assert update.final == (update.state != "intermediate")
    assert len(update.reason) <= 200 and not CONTROL.search(update.reason)
    assert update.dsn in ("", "4.4.7")


def mo_or_refusal(fields: FormFields) -> None:
    try:
        mo = parse_mo(fields, "gw", id="ID", received=0.0)
    except (BadRequest, BadContent):
        return
    check_mo(mo)


def dlr_or_refusal(fields: FormFields) -> None:
    try:
        update = parse_dlr(fields)
    except BadRequest:
        return
    check_dlr(update)


@FEW
@given(forms)
def test_any_encoded_form_gives_a_clean_mo_or_a_400(query: str) -> None:
    fields = fields_of(query)
    if fields is not None:
        mo_or_refusal(fields)


@FEW
@given(raw_queries)
def test_any_raw_query_gives_a_clean_mo_or_a_400(query: str) -> None:
    fields = fields_of(query)
    if fields is not None:
        mo_or_refusal(fields)


@FEW
@given(st.lists(st.tuples(st.sampled_from(["from", "to", "text", "udh", "coding", "charset", "smsc_id"]), values),
                max_size=8))  # fmt: skip
def test_any_field_bytes_give_a_clean_mo_or_a_400(pairs: list[tuple[str, bytes]]) -> None:
    mo_or_refusal(FormFields(pairs))


@FEW
@given(forms)
def test_any_encoded_form_gives_a_clean_report_or_a_400(query: str) -> None:
    fields = fields_of(query)
    if fields is not None:
        dlr_or_refusal(fields)


@FEW
@given(st.lists(st.tuples(st.sampled_from([n.lower() for n in DLR_NAMES]), values), max_size=6))
def test_any_field_bytes_give_a_clean_report_or_a_400(pairs: list[tuple[str, bytes]]) -> None:
    dlr_or_refusal(FormFields(pairs))


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8), inner, max_size=3), max_leaves=10)  # fmt: skip


@FEW
@given(st.one_of(json_values, st.dictionaries(st.sampled_from(MO_NAMES + DLR_NAMES) | st.text(max_size=8),
                                              json_values, max_size=6)))  # fmt: skip
def test_any_json_body_gives_fields_or_a_400_and_then_a_clean_mo(document: object) -> None:
    try:
        pairs = json_pairs(document)
    except BadRequest:
        return
    assert all(name == name.strip().lower() for name, _ in pairs)
    fields = FormFields(pairs)
    mo_or_refusal(fields)
    dlr_or_refusal(fields)


numbers = st.from_regex(r"\A\+?[0-9]{3,15}\Z|\A[A-Za-z][A-Za-z0-9 ]{0,10}\Z")
sms_texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=300)


@FEW
@given(numbers, sms_texts, st.sampled_from(["utf-8", "UCS-2", "utf-16-le"]), st.booleans())
def test_a_well_formed_mo_is_accepted_and_keeps_its_text(sender: str, text: str, charset: str, plus: bool) -> None:
    """The other half of "a clean MO or a 400": what a gateway sends right is taken, exactly."""
    encoded = text.encode({"UCS-2": "utf-16-be"}.get(charset, charset))
    query = encode_form([("from", sender.encode()), ("text", encoded), ("charset", charset.encode())], plus)
    fields = fields_of(query)
    assert fields is not None
    mo = parse_mo(fields, "gw", id="ID", received=0.0)
    check_mo(mo)
    assert (mo.sender, mo.text) == (sender.strip(), text)
