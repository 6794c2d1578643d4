"""One exception tree; every member knows its SMTP reply and its exit code.

The table is the one in ARCHITECTURE.md.  ``reply()`` gives the full reply
line a server sends, ``exit_code`` the sysexits value a CLI command returns.
"""

from __future__ import annotations

from typing import ClassVar

# sysexits.h
EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_CANTCREAT = 73
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78


class MailsmsError(Exception):
    """Base of every error mailsms reports; unexpected ones map to 451 4.3.0."""

    code: ClassVar[int] = 451
    enhanced: ClassVar[str] = "4.3.0"
    exit_code: ClassVar[int] = EX_SOFTWARE
    default_reason: ClassVar[str] = "internal error, try again later"
    # Seconds until trying again may work (a rate limit's), when known; the API's Retry-After.
    retry_after: float | None = None

    def __init__(self, reason: str = "") -> None:
        self.reason = reason or self.default_reason
        super().__init__(self.reason)

    @property
    def permanent(self) -> bool:
        """True for 5xx errors: retrying the same input cannot succeed."""
        return self.code >= 500

    def details(self) -> list[str]:
        """Lines for a person reading a terminal; one unless the error lists several problems."""
        return [f"mailsms: {self.reason}"]

    def reply(self) -> str:
        """The SMTP/LMTP reply line, without CRLF."""
        return f"{self.code} {self.enhanced} {self.reason}"


class BadNumber(MailsmsError):
    """The destination is not a number we can send to."""

    code = 550
    enhanced = "5.1.1"
    exit_code = EX_DATAERR
    default_reason = "bad destination number"


class UnknownDomain(MailsmsError):
    """The recipient domain is not one of the configured SMS domains."""

    code = 550
    enhanced = "5.1.1"
    exit_code = EX_DATAERR
    default_reason = "domain is not an SMS domain here"


class BadAddressSyntax(MailsmsError):
    """The address or one of its parameters cannot be parsed."""

    code = 553
    enhanced = "5.1.3"
    exit_code = EX_DATAERR
    default_reason = "bad address syntax"


class BadContent(MailsmsError):
    """The message body cannot be turned into what was asked (e.g. ``binary=1`` without hex)."""

    code = 554
    enhanced = "5.6.0"
    exit_code = EX_DATAERR
    default_reason = "message content not acceptable"


class BadRequest(MailsmsError):
    """A request's arguments are missing or malformed (an HTTP call to the API or a webhook)."""

    code = 501
    enhanced = "5.5.4"
    exit_code = EX_DATAERR
    default_reason = "invalid arguments"


class NotAuthorized(MailsmsError):
    """Policy forbids this sender, client or destination."""

    code = 550
    enhanced = "5.7.1"
    exit_code = EX_NOPERM
    default_reason = "not authorized"


class AuthFailed(MailsmsError):
    """Credentials were given and are wrong."""

    code = 535
    enhanced = "5.7.8"
    exit_code = EX_NOPERM
    default_reason = "authentication credentials invalid"


class AuthRequired(AuthFailed):
    """Policy requires credentials and none were given."""

    code = 530
    enhanced = "5.7.0"
    default_reason = "authentication required"


class MessageTooLong(MailsmsError):
    """The text needs more parts than allowed (``overlength = "reject"``)."""

    code = 552
    enhanced = "5.3.4"
    exit_code = EX_DATAERR
    default_reason = "message too long for the allowed number of SMS parts"


class MessageTooBig(MailsmsError):
    """The message exceeds ``server.message_size_limit``."""

    code = 552
    enhanced = "5.3.4"
    exit_code = EX_DATAERR
    default_reason = "message size exceeds fixed limit"


class QuotaExceeded(MailsmsError):
    """A monthly (or other long-period) quota is used up."""

    code = 452
    enhanced = "4.2.2"
    exit_code = EX_TEMPFAIL
    default_reason = "quota exceeded"


class MonthlyLimitReached(QuotaExceeded):
    """An account's monthly limit is used up and ``policy.monthly_limit_reply`` says permanent."""

    code = 552
    enhanced = "5.2.2"
    exit_code = EX_NOPERM
    default_reason = "monthly message limit reached"


class RateLimited(MailsmsError):
    """Too many messages in a short time; try again later."""

    code = 450
    enhanced = "4.7.1"
    exit_code = EX_TEMPFAIL
    default_reason = "rate limit exceeded, try again later"


class QueueFull(MailsmsError):
    """The queue or the disk under it has no room."""

    code = 452
    enhanced = "4.3.1"
    exit_code = EX_TEMPFAIL
    default_reason = "insufficient system storage"


class NotReady(MailsmsError):
    """The daemon is starting or stopping: the queue cannot take messages right now."""

    code = 451
    enhanced = "4.3.2"
    exit_code = EX_TEMPFAIL
    default_reason = "queue not ready, try again later"


class TransportDown(MailsmsError):
    """No gateway can take the message now."""

    code = 451
    enhanced = "4.4.1"
    exit_code = EX_UNAVAILABLE
    default_reason = "no SMS gateway available"


class ConfigError(MailsmsError):
    """The configuration is unusable (for a session: 451 4.3.5)."""

    code = 451
    enhanced = "4.3.5"
    exit_code = EX_CONFIG
    default_reason = "server configuration error"


class InternalError(MailsmsError):
    """Anything unexpected; the log holds the traceback."""


ALL_ERRORS: tuple[type[MailsmsError], ...] = (
    MailsmsError,
    BadNumber,
    UnknownDomain,
    BadAddressSyntax,
    BadContent,
    BadRequest,
    NotAuthorized,
    AuthFailed,
    AuthRequired,
    MessageTooLong,
    MessageTooBig,
    QuotaExceeded,
    MonthlyLimitReached,
    RateLimited,
    QueueFull,
    NotReady,
    TransportDown,
    ConfigError,
    InternalError,
)
