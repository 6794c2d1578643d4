"""SMS accounts (seed 002's ``smsusers.dat``): who may send, through which gateway, how much.

The values and the pure rules live here: the month rollover of the
counters, expiry, the colon-separated file format of ``import``/``export``
(``user:password:gateway:description:maxsend:sent:lastsent:prevsent:expire:inactive``)
and password hashing.  ``mailsms.store.accounts`` keeps them in the state
database; ``mailsms.policy`` decides with them.

Passwords are kept only as argon2 hashes.  ``verify_password`` takes the
same time whether or not the account exists (a dummy hash is checked for
an unknown user), so timing does not tell which users exist.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, replace

from mailsms.errors import BadRequest

# Delphi's TDateTime counts days since this date (a float; the fraction is the time of day).
DELPHI_EPOCH = dt.date(1899, 12, 30)
FIELDS = ("user", "password", "gateway", "description", "maxsend", "sent", "lastsent", "prevsent", "expire",
          "inactive")  # fmt: skip
MAX_USER = 64


@dataclass(frozen=True)
class Account:
    """One account; ``month`` ("YYYY-MM") is the month ``sent`` counts."""

    user: str
    password_hash: str = ""  # "" : no password set, the account cannot log in with one
    gateway: str = ""  # a [[gateway]] id; "" : the default routing
    description: str = ""
    maxsend: int = 0  # messages a month; 0 : no limit
    sent: int = 0
    prevsent: int = 0
    lastsent: float = 0.0  # Unix time; 0 : never
    month: str = ""
    expire: dt.date | None = None  # the last day the account may send; None : never expires
    inactive: bool = False

    def __repr__(self) -> str:  # the hash is not a secret, but it has no business in a log line
        return f"Account(user={self.user!r}, gateway={self.gateway!r}, inactive={self.inactive})"

    def expired(self, today: dt.date) -> bool:
        return self.expire is not None and today > self.expire

    def usable(self, today: dt.date) -> str | None:
        """Why the account may not send today, or None."""
        if self.inactive:
            return f"account {self.user!r} is disabled"
        if self.expired(today):
            return f"account {self.user!r} expired on {self.expire}"
        return None

    def left_this_month(self, month: str) -> int | None:
        """Messages still allowed in ``month``; None : no limit."""
        if self.maxsend <= 0:
            return None
        return max(0, self.maxsend - rolled(self, month).sent)


def month_of(timestamp: float) -> str:
    """The counting month ("YYYY-MM", UTC) of a Unix time."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m")


def today_of(timestamp: float) -> dt.date:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date()


def _previous(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def rolled(account: Account, month: str) -> Account:
    """The account's counters as seen in ``month``: at a month's end ``sent`` becomes ``prevsent``."""
    if not account.month or account.month == month:
        return replace(account, month=month)
    if account.month == _previous(month):
        return replace(account, month=month, prevsent=account.sent, sent=0)
    if account.month > month:  # the clock stepped back over a month's end: keep what was counted
        return account
    return replace(account, month=month, prevsent=0, sent=0)  # no activity last month


def counted(account: Account, messages: int, now: float) -> Account:
    """The account after ``messages`` more were accepted at ``now``."""
    current = rolled(account, month_of(now))
    return replace(current, sent=current.sent + messages, lastsent=now)


# -- passwords -----------------------------------------------------------------------


@functools.cache
def _hasher() -> object:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (with its own salt and parameters)."""
    from argon2 import PasswordHasher

    hasher = _hasher()
    assert isinstance(hasher, PasswordHasher)
    return hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    return hash_password("\0 no such account \0")


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; an empty hash (unknown user, no password) checks a dummy
    hash first, so the answer takes as long as for a real account."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    assert isinstance(hasher, PasswordHasher)
    try:
        ok = hasher.verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and bool(password_hash)


# -- the colon-separated file ------------------------------------------------------------


def delphi_to_date(text: str) -> dt.date | None:
    """A Delphi date (days since 1899-12-30, maybe with a time fraction); "" or 0 : never."""
    text = text.strip().replace(",", ".")
    if not text:
        return None
    days = float(text)
    if days <= 0:
        return None
    return DELPHI_EPOCH + dt.timedelta(days=int(days))


def date_to_delphi(day: dt.date | None) -> str:
    return "" if day is None else str((day - DELPHI_EPOCH).days)


@dataclass(frozen=True)
class ImportedAccount:
    """One line of an accounts file: the account, and the plain password to hash ("" : none)."""

    account: Account
    password: str

    def __repr__(self) -> str:
        return f"ImportedAccount({self.account!r})"


def _count(value: str, name: str) -> int:
    value = value.strip()
    if not value:
        return 0
    if not value.isdigit():
        raise ValueError(f"{name} must be a whole number, got {value[:20]!r}")
    return int(value)


def parse_line(line: str, now: float) -> ImportedAccount | None:
    """One line of the seed's format; None for a blank or ``#`` line; ValueError names the bad field.

    The password field may hold ``:`` (the nine other fields are split off
    around it); whatever it holds never appears in an error.
    """
    text = line.rstrip("\r\n")
    if not text.strip() or text.lstrip().startswith("#"):
        return None
    head, _, rest = text.partition(":")
    tail = rest.rsplit(":", 8)
    if not rest or len(tail) != 9:
        raise ValueError("expected 10 colon-separated fields: " + ":".join(FIELDS))
    password, gateway, description, maxsend, sent, lastsent, prevsent, expire, inactive = tail
    user = head.strip()
    if not user or len(user) > MAX_USER or any(c.isspace() or c == ":" for c in user):
        raise ValueError("user must be 1 to 64 characters without spaces")
    try:
        expire_date = delphi_to_date(expire)
    except (ValueError, OverflowError):
        raise ValueError(f"expire must be a Delphi date (days since 1899-12-30), got {expire[:20]!r}") from None
    last = float(_count(lastsent.split(".")[0], "lastsent"))
    if inactive.strip() not in ("", "0", "1"):
        raise ValueError(f"inactive must be 1 or empty, got {inactive[:20]!r}")
    account = Account(
        user=user,
        gateway=gateway.strip(),
        description=description.strip(),
        maxsend=_count(maxsend, "maxsend"),
        sent=_count(sent, "sent"),
        prevsent=_count(prevsent, "prevsent"),
        lastsent=last,
        month=month_of(last) if last else month_of(now),
        expire=expire_date,
        inactive=inactive.strip() == "1",
    )
    return ImportedAccount(account, password)


def format_line(account: Account, now: float) -> str:
    """The export line: the ten fields, the password field empty, the counters as of ``now``."""
    current = rolled(account, month_of(now))
    fields = (
        current.user,
        "",
        current.gateway,
        current.description.replace(":", " ").replace("\n", " "),
        str(current.maxsend),
        str(current.sent),
        str(int(current.lastsent)) if current.lastsent else "",
        str(current.prevsent),
        date_to_delphi(current.expire),
        "1" if current.inactive else "",
    )
    return ":".join(fields)


def check_user(user: str) -> str:
    """A user name for the CLI; BadRequest when unusable."""
    if not user or len(user) > MAX_USER or any(c.isspace() or c in ":&=?" for c in user):
        raise BadRequest("a user name is 1 to 64 characters without spaces, ':', '&', '=' or '?'")
    return user
