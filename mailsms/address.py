"""``sms:`` recipients: what Postfix, Exim or a mail client delivers, parsed into one frozen value.

Accepted forms (the domain is compared case-insensitively)::

    "sms:+15551234567?maxmsgs=3&user=alice&pass=s3cret"@sms.example.com   (as Postfix passes it)
    sms:+15551234567?maxmsgs=3@sms.example.com                            (unquoted: split at the last @)
    <"sms:+15551234567"@sms.example.com>                                  (an SMTP RCPT TO argument)
    +15551234567@sms.example.com, 15551234567@sms.example.com             (needs address.sms_domains)

Numbers (RFC 3966 visual separators ``-.()`` and space are dropped):

* ``+`` and 7 to 15 digits is E.164 and kept as it is; phonenumbers is not
  even imported unless ``strict_numbers`` asks for ``is_valid_number``.
* Digits without ``+`` and a ``default_region``: phonenumbers reads them as a
  national number and they must be possible there (valid when strict).
* Digits without ``+`` and no region: 7 to 15 digits not starting with 0 are
  an international number written without its ``+`` (as transport maps
  commonly write them: ``15551234567`` is ``+15551234567``).  IceWarp hands
  the number to its gateway unchanged, which for most gateways means the
  same thing.  A leading 0 is a national number and needs a region.
* With ``short_codes``, 3 to 8 digits are a short code, kept as digits,
  unless phonenumbers knows them as a valid number of the default region.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from mailsms.address_params import (
    MAXMSGS_CAP,
    PARAM_NAMES,
    REDACTED,
    Secret,
    SmsParams,
    decode,
    parse_params,
    render_params,
    show,
)
from mailsms.errors import BadAddressSyntax, BadNumber, ConfigError, UnknownDomain

if TYPE_CHECKING:
    from mailsms.config import AddressConfig

__all__ = [
    "MAXMSGS_CAP",
    "Secret",
    "SmsAddress",
    "SmsParams",
    "number_address",
    "parse_address",
    "redact",
    "render_address",
]

MAX_ADDRESS_LENGTH = 4096

# control characters, and lone surrogates (bytes that were not UTF-8, decoded with surrogateescape)
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"(.*)', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_LABEL = r"\w(?:[\w-]*\w)?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*|\[[^\[\]\\\s]+\]")
_SEPARATORS = str.maketrans("", "", "-.() ")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass(frozen=True)
class SmsAddress:
    """One recipient: where to send, through which domain, with which parameters."""

    number: str
    """E.164 (``+15551234567``) or, when short codes are enabled, a short code (``12345``)."""
    domain: str
    """Lower case."""
    params: SmsParams = field(default_factory=SmsParams)
    maxmsgs: int = 1
    """The effective limit: ``params.maxmsgs`` if given, else the configured default."""
    trusted: bool = False
    """The message came from a trusted source (the milter, a trusted MTA address)."""

    @property
    def skip_authentication(self) -> bool:
        """``authenticated=1`` counts only from a trusted source; a user typing it gains nothing."""
        return self.trusted and self.params.authenticated is True

    def redacted(self) -> str:
        """The canonical form with ``pass=(set)``: the one to log."""
        return _render(self, redact=True)

    def __str__(self) -> str:
        return self.redacted()


def parse_address(
    text: str,
    config: AddressConfig,
    *,
    default_maxmsgs: int = 1,
    trusted: bool = False,
) -> SmsAddress:
    """Parse one recipient; raises BadAddressSyntax, BadNumber, UnknownDomain (or ConfigError)."""
    if not 1 <= default_maxmsgs <= MAXMSGS_CAP:
        raise ConfigError(f"segment.maxmsgs must be 1..{MAXMSGS_CAP}")
    text = text.strip()
    if len(text) > MAX_ADDRESS_LENGTH:
        raise BadAddressSyntax(f"address longer than {MAX_ADDRESS_LENGTH} characters")
    if _FORBIDDEN.search(text):
        raise BadAddressSyntax("control character or bytes that are not UTF-8 in the address")
    if text.startswith("<"):
        if not text.endswith(">"):
            raise BadAddressSyntax("'<' without a closing '>'")
        text = text[1:-1].strip()
    if not text:
        raise BadAddressSyntax("empty address")
    local, domain, quoted = _split(text)
    domain = _check_domain(domain, config, hide=not quoted and _may_hold_password(local))
    if local[:4].lower() == "sms:":
        number_text, _, query = local[4:].partition("?")
        return number_address(number_text, query, config, default_maxmsgs=default_maxmsgs, trusted=trusted,
                              domain=domain)  # fmt: skip
    if not local:
        raise BadAddressSyntax("empty local part")
    if not config.sms_domains:
        raise UnknownDomain(
            "a plain number as local part needs address.sms_domains: write sms:NUMBER or configure the domain"
        )
    if "?" in local:
        raise BadAddressSyntax("parameters need the sms: form: sms:NUMBER?name=value")
    number = _normalise(local, config)
    return SmsAddress(number=number, domain=domain, maxmsgs=default_maxmsgs, trusted=trusted)


def number_address(
    number: str,
    query: str,
    config: AddressConfig,
    *,
    default_maxmsgs: int = 1,
    trusted: bool = False,
    domain: str = "",
) -> SmsAddress:
    """A number and its parameters (percent-encoded, as after ``sms:NUMBER?``), with parse_address's checks.

    Without a domain (the HTTP send API) the address renders as the URI ``sms:NUMBER?...``.
    """
    if not 1 <= default_maxmsgs <= MAXMSGS_CAP:
        raise ConfigError(f"segment.maxmsgs must be 1..{MAXMSGS_CAP}")
    normalised = _normalise(number, config)
    params = parse_params(query) if query else SmsParams()
    maxmsgs = params.maxmsgs if params.maxmsgs is not None else default_maxmsgs
    return SmsAddress(number=normalised, domain=domain, params=params, maxmsgs=maxmsgs, trusted=trusted)


def render_address(address: SmsAddress) -> str:
    """The canonical form, quoted as Postfix quotes it, ``pass`` included (log ``address.redacted()``)."""
    return _render(address, redact=False)


def _render(address: SmsAddress, *, redact: bool) -> str:
    query = render_params(address.params, redact=redact)
    local = f"sms:{address.number}?{query}" if query else f"sms:{address.number}"
    # values are percent-encoded, so this only matters for a hand-made SmsAddress
    if not address.domain:
        return local
    local = local.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{local}"@{address.domain}'


def _split(text: str) -> tuple[str, str, bool]:
    """(local part, domain, was quoted); quoted pairs ``\\"`` and ``\\\\`` are undone."""
    if text.startswith('"'):
        match = _QUOTED.fullmatch(text)
        if match is None:
            raise BadAddressSyntax("unterminated quoted local part")
        rest = match.group(2)
        if not rest.startswith("@"):
            raise BadAddressSyntax("expected '@' right after the quoted local part")
        return _QUOTED_PAIR.sub(r"\1", match.group(1)), rest[1:], True
    local, at, domain = text.rpartition("@")
    if not at:
        raise BadAddressSyntax("missing '@domain'")
    return local, domain, False


def _may_hold_password(local: str) -> bool:
    # Unquoted, a password holding a raw '@' leaks its tail into what looks like the domain.
    return "pass" in local.lower() or "%" in local


def _check_domain(domain: str, config: AddressConfig, *, hide: bool) -> str:
    name = domain.lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise BadAddressSyntax("missing domain after '@'")
    shown = "the domain" if hide else f"domain {show(name)}"
    if len(name) > 255 or not _DOMAIN.fullmatch(name):
        raise BadAddressSyntax(f"bad {shown}: expected labels of letters, digits and '-'")
    if config.sms_domains and name not in {d.lower().rstrip(".") for d in config.sms_domains}:
        raise UnknownDomain(f"{shown} is not an SMS domain here (address.sms_domains)")
    return name


def _normalise(text: str, config: AddressConfig) -> str:
    """E.164, or a short code; raises BadNumber naming the number."""
    try:
        decoded = decode(text)
    except ValueError as exc:
        raise BadAddressSyntax(f"bad number {show(text)}: {exc}") from None
    if "," in decoded:
        raise BadNumber("one number per address: give each number its own recipient")
    raw = decoded.translate(_SEPARATORS)
    if not raw:
        raise BadNumber("missing number after 'sms:'" if not decoded else f"no digits in number {show(decoded)}")
    plus = raw.startswith("+")
    digits = raw[1:] if plus else raw
    if not (digits.isascii() and digits.isdigit()):
        raise BadNumber(f"bad number {show(decoded)}: only digits, a leading '+' and - . ( ) or space are allowed")
    if plus:
        if not _E164.fullmatch(raw):
            raise BadNumber(f"bad number {show(decoded)}: '+' must be followed by 7 to 15 digits, not starting with 0")
        if config.strict_numbers:
            _check_valid("+" + digits, decoded)
        return "+" + digits
    if config.default_region:
        return _national(digits, decoded, config)
    if config.short_codes and 3 <= len(digits) <= 8:
        return digits
    if digits.startswith("0"):
        raise BadNumber(f"bad number {show(decoded)}: a national number needs address.default_region, or write +")
    if not 7 <= len(digits) <= 15:
        hint = "3 to 8 for a short code (address.short_codes), " if not config.short_codes else ""
        raise BadNumber(f"bad number {show(decoded)}: expected {hint}7 to 15 digits for an international number")
    if config.strict_numbers:
        _check_valid("+" + digits, decoded)
    return "+" + digits


def _phonenumbers() -> Any:
    import phonenumbers  # only for national numbers and strict checks: the E.164 path stays light

    return phonenumbers


def _check_valid(e164: str, shown: str) -> None:
    pn = _phonenumbers()
    try:
        parsed = pn.parse(e164, None)
    except pn.NumberParseException:
        parsed = None
    if parsed is None or not pn.is_valid_number(parsed):
        raise BadNumber(f"bad number {show(shown)}: not a valid number (address.strict_numbers)")


def _national(digits: str, shown: str, config: AddressConfig) -> str:
    pn = _phonenumbers()
    region = config.default_region.upper()
    if region not in pn.SUPPORTED_REGIONS:
        raise ConfigError(f"address.default_region {show(config.default_region)} is not a known region")
    try:
        parsed = pn.parse(digits, region)
    except pn.NumberParseException:
        parsed = None
    short = config.short_codes and 3 <= len(digits) <= 8
    if parsed is not None:
        if short or config.strict_numbers:
            usable = pn.is_valid_number(parsed)
        else:  # IS_POSSIBLE_LOCAL_ONLY cannot be written in E.164
            usable = pn.is_possible_number_with_reason(parsed) == pn.ValidationResult.IS_POSSIBLE
        e164 = str(pn.format_number(parsed, pn.PhoneNumberFormat.E164))
        if usable and _E164.fullmatch(e164):  # phonenumbers allows up to 17 digits; E.164 has 15
            return e164
    if short:
        return digits
    kind = "valid" if config.strict_numbers else "possible"
    raise BadNumber(f"bad number {show(shown)}: not a {kind} number in region {region} (address.default_region)")


# A name before '=' starts after one of these (or at the start of the text).
_NAME_EQUALS = re.compile(r"(?:(?<=[?&;\"<\s])|^)([^?&;\"<>\s=]*)\s*=")


def redact(address_text: str) -> str:
    """``address_text`` with every ``pass`` value replaced by ``(set)``; for logging raw, unparsed input.

    Over-redacting is safe, leaking is not: inside quotes a value ends at ``&``
    or the closing quote; outside at ``&``, ``>``, a quote or white space, and
    before the last ``@`` (the domain) when there is one.  After a ``pass``
    value every item that is not a known ``name=`` is hidden as well: it may
    be the rest of a password that held an unencoded ``&``.  (Unquoted, a
    password holding a raw ``@`` cannot be told from the domain; IceWarp asks
    for ``%40``.)
    """
    if "=" not in address_text:
        return address_text
    text = address_text
    pieces: list[str] = []
    done = 0
    for match in _NAME_EQUALS.finditer(text):
        # unquote: p%61ss is still pass to whoever reads it later
        if match.start() < done or unquote(match.group(1)).lower() != "pass":
            continue
        pieces += [text[done : match.end()], REDACTED]
        done = _value_end(text, match.end())
        while done < len(text) and text[done] == "&":
            item_end = _value_end(text, done + 1)
            name, equals, _ = text[done + 1 : item_end].partition("=")
            key = unquote(name).strip().lower()
            if equals and key == "pass":
                pieces.append(f"&{name}={REDACTED}")
            elif equals and key in PARAM_NAMES:
                pieces.append(text[done:item_end])
            else:
                pieces.append(f"&{REDACTED}")
            done = item_end
    pieces.append(text[done:])
    return "".join(pieces)


def _value_end(text: str, start: int) -> int:
    if _inside_quotes(text, start):
        index = start
        while index < len(text):
            char = text[index]
            if char == "\\":
                index += 2
                continue
            if char in '&"':
                return index
            index += 1
        return len(text)
    end = start
    while end < len(text) and text[end] not in '&>"' and not text[end].isspace():
        end += 1
    at = text.rfind("@", start, end)
    return at if at >= 0 else end


def _inside_quotes(text: str, position: int) -> bool:
    inside = False
    index = 0
    while index < position:
        char = text[index]
        if char == "\\" and inside:
            index += 2
            continue
        if char == '"':
            inside = not inside
        index += 1
    return inside
