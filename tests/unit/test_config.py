from __future__ import annotations

from pathlib import Path

import pytest

from mailsms import config
from mailsms.config import ConfigInvalid
from mailsms.values import ListenAddress

ROOT = Path(__file__).resolve().parents[2]


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        config.parse(text, "f.toml")
    return [p.render("f.toml") for p in info.value.problems]


def test_no_file_is_a_valid_configuration() -> None:
    loaded = config.load(None)
    assert loaded.server.lmtp_listen == ListenAddress("127.0.0.1", 2424)
    assert loaded.server.http_listen == ListenAddress("127.0.0.1", 8025)
    assert loaded.server.smtp_listen is None
    assert loaded.state.dir == "./var"
    assert [g.type for g in loaded.gateways] == ["outbox"]


def test_empty_file_equals_defaults() -> None:
    assert config.parse("", "x") == config.Config(source="x")


def test_example_configuration_loads() -> None:
    loaded = config.load(ROOT / "conf" / "mailsms.toml")
    assert loaded.server.lmtp_listen is not None


def test_example_configuration_names_every_key() -> None:
    """conf/mailsms.toml documents every key that exists (commented or not)."""
    import dataclasses

    text = (ROOT / "conf" / "mailsms.toml").read_text()
    for section in dataclasses.fields(config.Config):
        if section.name in config.ARRAY_FIELDS:
            continue
        assert f"[{section.name}]" in text, section.name
        cls = config._section_types()[section.name]
        for key in dataclasses.fields(cls):
            assert f"{key.name} =" in text, f"{section.name}.{key.name}"


def test_unknown_key_is_named_with_its_line_and_a_suggestion() -> None:
    assert problems("[server]\n\nlmtp_listn = '127.0.0.1:1'\n") == [
        "f.toml:3: server.lmtp_listn: unknown key (did you mean 'lmtp_listen'?)"
    ]


def test_unknown_section_is_an_error() -> None:
    assert problems("[sever]\n") == ["f.toml:1: sever: unknown section or key"]


def test_every_problem_is_reported_not_only_the_first() -> None:
    found = problems(
        "[server]\nmax_recipients = 'many'\nlmtp_listen = 'nohost'\n[segment]\noverlength = 'cut'\n[queue]\nfoo = 1\n"
    )
    assert len(found) == 4
    assert any("server.max_recipients: expected an integer, got string" in p for p in found)
    assert any("f.toml:3: server.lmtp_listen: bad listen address" in p for p in found)
    assert any("f.toml:5: segment.overlength: expected one of 'truncate', 'reject'" in p for p in found)
    assert any("f.toml:7: queue.foo: unknown key" in p for p in found)


def test_wrong_types_are_named() -> None:
    found = problems("[server]\nmax_recipients = true\nmessage_size_limit = 'big'\n[address]\nsms_domains = 'x'\n")
    assert any("server.max_recipients: expected an integer, got boolean" in p for p in found)
    assert any("server.message_size_limit: bad size 'big'" in p for p in found)
    assert any("address.sms_domains: expected an array of strings" in p for p in found)


def test_bad_toml_names_the_line() -> None:
    (found,) = problems("[server\n")
    assert found.startswith("f.toml: (syntax): bad TOML") and "line 1" in found


def test_section_must_be_a_table() -> None:
    assert problems("server = 1\n") == ["f.toml:1: server: must be a table: write [server]"]


def test_empty_listen_turns_listener_off() -> None:
    assert config.parse("[server]\nhttp_listen = ''\n").server.http_listen is None


def test_sizes_and_ranges() -> None:
    loaded = config.parse("[server]\nmessage_size_limit = '1M'\n")
    assert loaded.server.message_size_limit == 1024 * 1024
    assert problems("[server]\nmax_recipients = 0\n") == [
        "f.toml:2: server.max_recipients: must be between 1 and 100000, got 0"
    ]


def test_gateways_are_an_array_of_tables_with_id_and_type() -> None:
    loaded = config.parse("[[gateway]]\nid = 'out'\ntype = 'outbox'\ndir = '/tmp/o'\n")
    (gateway,) = loaded.gateways
    assert (gateway.id, gateway.type) == ("out", "outbox")
    assert gateway.options.dir == "/tmp/o"  # type: ignore[attr-defined]


def test_gateway_problems_name_index_and_key() -> None:
    found = problems(
        "[[gateway]]\nid = 'a'\ntype = 'outbox'\ndri = 'x'\n"
        "[[gateway]]\nid = 'a'\ntype = 'outbox'\n"
        "[[gateway]]\ntype = 'carrier-pigeon'\n"
    )
    assert "f.toml:4: gateway[0].dri: unknown key (did you mean 'dir'?)" in found
    assert "f.toml:6: gateway[1].id: duplicate gateway id 'a'" in found
    assert any(p.startswith("f.toml:8: gateway[2].id: required") for p in found)
    assert any("gateway[2].type: required, one of outbox, http" in p for p in found)


def test_gateway_must_be_array_of_tables() -> None:
    assert problems("[gateway]\nid = 'a'\n") == ["f.toml:1: gateway: must be an array of tables: write [[gateway]]"]


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid) as info:
        config.load(tmp_path / "none.toml")
    assert info.value.details() == [
        f"{tmp_path / 'none.toml'}: (file): cannot read configuration file: No such file or directory",
        f"mailsms: 1 problem in {tmp_path / 'none.toml'}",
    ]
    assert info.value.exit_code == 78


def test_config_path_prefers_flag_then_environment() -> None:
    assert config.config_path("a.toml", {"MAILSMS_CONFIG": "b.toml"}) == Path("a.toml")
    assert config.config_path(None, {"MAILSMS_CONFIG": "b.toml"}) == Path("b.toml")
    assert config.config_path(None, {}) is None


def test_overrides_replace_only_what_is_given() -> None:
    base = config.Config()
    changed = config.with_overrides(base, state_dir="/s", http_listen=None)
    assert changed.state.dir == "/s"
    assert changed.server.http_listen is None
    assert changed.server.lmtp_listen == base.server.lmtp_listen


def test_configuration_is_frozen() -> None:
    loaded = config.Config()
    with pytest.raises(AttributeError):
        loaded.server.max_recipients = 5  # type: ignore[misc]


def test_truncation_marker_must_be_gsm() -> None:
    (found,) = problems("[segment]\ntruncate_marker_gsm = '…'\n")
    assert found.startswith("f.toml:2: segment.truncate_marker_gsm:")


def test_unknown_default_region_is_named() -> None:
    assert problems("[address]\ndefault_region = 'XX'\n") == [
        "f.toml:2: address.default_region: unknown region 'XX': use an ISO 3166 code"
    ]
    assert config.parse("[address]\ndefault_region = 'de'\n").address.default_region == "de"


def test_fake_gateway_regex_is_checked() -> None:
    (found,) = problems("[[gateway]]\nid = 'f'\ntype = 'fake'\nhang = '('\n")
    assert found.startswith("f.toml:4: gateway[0].hang: bad regular expression")


def test_bad_compose_template_is_named() -> None:
    (found,) = problems("[compose]\ntemplate = '{subject'\n")
    assert found.startswith("f.toml:2: compose.template:")


def test_webhook_keys_are_taken_by_every_gateway_type_and_kept_beside_its_options() -> None:
    loaded = config.parse(
        "[[gateway]]\nid = 'o'\ntype = 'outbox'\nwebhook_allow = ['192.0.2.0/24', '::1']\nwebhook_secret = 'hush'\n"
        "[[gateway]]\nid = 'f'\ntype = 'fake'\nwebhook_secret = 'quiet'\n"
    )
    outbox, fake = loaded.gateways
    assert [str(n) for n in outbox.webhook_allow] == ["192.0.2.0/24", "::1/128"]
    assert (outbox.webhook_secret, fake.webhook_secret, fake.webhook_allow) == ("hush", "quiet", ())
    assert not hasattr(outbox.options, "webhook_secret")


def test_bad_webhook_keys_are_named_with_their_line() -> None:
    found = problems("[[gateway]]\nid = 'o'\ntype = 'outbox'\nwebhook_allow = ['10.0.0.0/33']\nwebhook_secret = 1\n")
    assert found == [
        "f.toml:4: gateway[0].webhook_allow: bad network '10.0.0.0/33': write an address or address/prefix",
        "f.toml:5: gateway[0].webhook_secret: expected a string, got integer",
    ]


def test_web_defaults_trust_loopback_only_and_know_no_api_user() -> None:
    web = config.Config().web
    assert [str(n) for n in web.trusted_networks] == ["127.0.0.0/8", "::1/128"]
    assert web.api_users == () and web.api_password("john") is None
    assert web.rate_limit > 0 and web.rate_burst >= web.rate_limit


def test_api_users_and_trusted_networks() -> None:
    web = config.parse("[web]\napi_users = {john = 's3cret', ann = 'pw'}\ntrusted_networks = []\n").web
    assert (web.api_password("john"), web.api_password("ann"), web.api_password("bob")) == ("s3cret", "pw", None)
    assert web.trusted_networks == ()
    assert problems("[web]\napi_users = {john = ''}\ntrusted_networks = ['nonsense']\n") == [
        "f.toml:2: web.api_users: user 'john': the password must be a non-empty string",
        "f.toml:3: web.trusted_networks: bad network 'nonsense': write an address or address/prefix",
    ]


def test_passwords_and_secrets_never_show_in_the_configuration_repr() -> None:
    loaded = config.parse(
        "[web]\napi_users = {john = 'pw-s3cret'}\n"
        "[[gateway]]\nid = 'o'\ntype = 'outbox'\nwebhook_secret = 'hook-s3cret'\n"
    )
    assert "s3cret" not in repr(loaded)


def test_store_url_names_sqlite_or_postgresql_and_lease_seconds_is_bounded() -> None:
    loaded = config.parse('[store]\nurl = "postgresql://mailsms@db/mailsms"\nlease_seconds = 5\n')
    assert (loaded.store.url, loaded.store.lease_seconds) == ("postgresql://mailsms@db/mailsms", 5)
    assert config.parse("").store.url == ""
    with pytest.raises(ConfigInvalid) as info:
        config.parse('[store]\nurl = "mysql://db/mailsms"\nlease_seconds = 1\n')
    assert {p.key for p in info.value.problems} == {"store.url", "store.lease_seconds"}
    assert "secret" not in repr(config.parse('[store]\nurl = "postgresql://u:secret@db/m"\n'))
