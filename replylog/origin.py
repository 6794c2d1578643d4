"""Whether a mail's sender was authenticated, from what the MTA tells mailsms (pure).

mailsms does not authenticate mail senders itself: the MTA in front of it
does.  Three signs count, each one the MTA's word, never the sender's:

* the topmost ``Received:`` header, which the MTA that handed the mail to
  mailsms wrote itself, names an authenticated protocol (RFC 3848 and
  RFC 6531: ``with ESMTPA``, ``ESMTPSA``, ``LMTPA``, ``UTF8SMTPSA``, ...),
  as Postfix, Exim and Sendmail write for SASL-authenticated sessions;
* ``MAIL FROM:<...> AUTH=<address>`` (RFC 4954) with an address, not ``<>``;
* an ``authenticated=1`` address parameter from a trusted source
  (``SmsAddress.skip_authentication``), checked by the caller.

A ``Received:`` header further down may be forged by anyone; only the first
one is read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_AUTH_PROTOCOL = re.compile(rb"\bwith\s+(?:UTF8)?(?:E?SMTP|LMTP)S?A\b", re.IGNORECASE)
_HEADER_LIMIT = 65_536  # the header block is read no further than this


def authenticated_sender(content: bytes, mail_params: Mapping[str, str]) -> bool:
    """True when the MTA says the sender of ``content`` authenticated (see the module text)."""
    auth = mail_params.get("AUTH", "").strip()
    if auth and auth != "<>":
        return True
    received = first_received(content)
    return received is not None and _AUTH_PROTOCOL.search(received) is not None


def first_received(content: bytes) -> bytes | None:
    """The unfolded value of the first ``Received:`` header, or None when the header block has none."""
    position = 0
    limit = min(len(content), _HEADER_LIMIT)
    while position < limit:
        end = content.find(b"\n", position, limit)
        line = content[position : end if end >= 0 else limit]
        if line in (b"", b"\r"):
            return None  # the end of the header block
        if line[:9].lower() == b"received:":
            value = [line[9:].strip()]
            while end >= 0 and end + 1 < limit and content[end + 1 : end + 2] in (b" ", b"\t"):
                position = end + 1
                end = content.find(b"\n", position, limit)
                value.append(content[position : end if end >= 0 else limit].strip())
            return b" ".join(value)
        if end < 0:
            return None
        position = end + 1
    return None
