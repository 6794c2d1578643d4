from __future__ import annotations

import pytest

from mailsms import errors
from mailsms.errors import ALL_ERRORS, MailsmsError


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: e.__name__)
def test_reply_class_matches_enhanced_code_class(error: type[MailsmsError]) -> None:
    assert str(error.code)[0] == error.enhanced.split(".")[0]
    assert error.code // 100 in (4, 5)


@pytest.mark.parametrize(
    ("error", "reply"),
    [
        (errors.BadNumber, "550 5.1.1"),
        (errors.BadAddressSyntax, "553 5.1.3"),
        (errors.NotAuthorized, "550 5.7.1"),
        (errors.AuthFailed, "535 5.7.8"),
        (errors.MessageTooLong, "552 5.3.4"),
        (errors.QuotaExceeded, "452 4.2.2"),
        (errors.RateLimited, "450 4.7.1"),
        (errors.QueueFull, "452 4.3.1"),
        (errors.TransportDown, "451 4.4.1"),
        (errors.ConfigError, "451 4.3.5"),
        (errors.InternalError, "451 4.3.0"),
    ],
)
def test_architecture_table_replies(error: type[MailsmsError], reply: str) -> None:
    assert error("why").reply() == f"{reply} why"


def test_every_error_class_is_listed() -> None:
    def subclasses(cls: type) -> set[type]:
        found = set(cls.__subclasses__())
        for sub in list(found):
            found |= subclasses(sub)
        return found

    in_module = {c for c in subclasses(MailsmsError) if c.__module__ == "mailsms.errors"}
    assert in_module <= set(ALL_ERRORS)


def test_permanent_is_5xx() -> None:
    assert errors.BadNumber().permanent
    assert not errors.QueueFull().permanent


def test_default_reason_used_when_none_given() -> None:
    assert errors.QueueFull().reply() == "452 4.3.1 insufficient system storage"


def test_exit_codes_follow_sysexits() -> None:
    assert errors.BadAddressSyntax().exit_code == 65
    assert errors.ConfigError().exit_code == 78
    assert errors.TransportDown().exit_code == 69
    assert errors.QueueFull().exit_code == 75
