"""[mailout] and the report keys of [queue]: defaults, and a relay required where one is needed."""

from __future__ import annotations

import pytest

from mailsms import config
from mailsms.config import ConfigInvalid


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        config.parse(text, "f.toml")
    return [p.render("f.toml") for p in info.value.problems]


def test_defaults_deliver_reports_to_local_maildirs_and_warn_after_four_hours() -> None:
    loaded = config.parse("", "x")
    assert loaded.mailout.mode == "maildir"
    assert loaded.mailout.maildir == ""
    assert loaded.queue.delay_warning_time == 4 * 3600
    assert loaded.queue.bounce_size_limit == 50000


def test_smtp_relay_host_port_or_socket_path() -> None:
    assert config.parse('[mailout]\nmode = "smtp"\nrelay = "127.0.0.1:25"\n').mailout.relay_target() == (
        "127.0.0.1",
        25,
    )
    assert config.parse('[mailout]\nmode = "lmtp"\nrelay = "[::1]:24"\n').mailout.relay_target() == ("::1", 24)
    lmtp = config.parse('[mailout]\nmode = "lmtp"\nrelay = "/run/dovecot/lmtp"\n').mailout
    assert lmtp.relay_target() == "/run/dovecot/lmtp"


@pytest.mark.parametrize(
    ("relay", "message"),
    [
        ("", 'mailout.relay: required for this mode: "host:port" or a unix socket path'),
        ("nohost", "mailout.relay: bad relay 'nohost': expected host:port"),
        ("127.0.0.1:0", "mailout.relay: the port cannot be 0"),
    ],
)
def test_smtp_mode_needs_a_usable_relay(relay: str, message: str) -> None:
    found = problems(f'[mailout]\nmode = "smtp"\nrelay = "{relay}"\n')
    assert found == [f"f.toml:3: {message}"]


def test_the_password_is_kept_out_of_repr() -> None:
    loaded = config.parse('[mailout]\nusername = "gw"\npassword = "hunter2"\n')
    assert loaded.mailout.password == "hunter2"
    assert "hunter2" not in repr(loaded)


def test_delay_warning_time_zero_is_allowed() -> None:
    assert config.parse("[queue]\ndelay_warning_time = 0\n").queue.delay_warning_time == 0.0
