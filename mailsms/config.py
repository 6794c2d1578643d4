"""The configuration: one TOML file read once into frozen dataclasses.

Every key has a default, so no file at all is a valid configuration.  The
sections and their keys are a contract; ``conf/mailsms.toml`` documents each.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

from mailsms.errors import ConfigError
from mailsms.schema import Problem, bounded, build, credentials, duration, key_lines, listen, networks, size
from mailsms.values import ListenAddress, Network, parse_listen
from transports.registry import GATEWAY_TYPES, options_class

CONFIG_ENV = "MAILSMS_CONFIG"


@dataclass(frozen=True)
class ServerConfig:
    lmtp_listen: ListenAddress | None = listen("127.0.0.1:2424")
    smtp_listen: ListenAddress | None = listen("")
    http_listen: ListenAddress | None = listen("127.0.0.1:8025")
    message_size_limit: int = size(10_240_000)
    max_recipients: int = bounded(1000, 1, 100_000)
    # STARTTLS on the SMTP listener: PEM certificate (chain) and key files; "": no STARTTLS.
    tls_cert: str = ""
    tls_key: str = ""
    # MTAs whose X-Mailsms-Auth header (added by the milter: the SMTP AUTH login at the MTA)
    # names the account of the mail; from any other client the header is ignored. Empty: none.
    trusted_mta: tuple[Network, ...] = networks()
    # SIGTERM: stop taking mail, let messages in flight finish (their multipart parts too) for at
    # most this long, then exit 0; parts not yet started stay queued for the next start.
    shutdown_timeout: float = duration("30s")


@dataclass(frozen=True)
class StateConfig:
    dir: str = "./var"


@dataclass(frozen=True)
class StoreConfig:
    """Where the queue lives (see mailsms.store.engines)."""

    # "": SQLite in the state directory (one node); "sqlite:///path/queue.sqlite": SQLite there;
    # "postgresql://user:password@host/db": PostgreSQL, shared by several mailsms nodes.
    url: str = dataclasses.field(default="", repr=False)
    # PostgreSQL: a node renews its claim on the messages it is sending; a node that stops
    # renewing (it died) leaves them to another node once this long has passed.
    lease_seconds: int = bounded(60, 2, 3600)


@dataclass(frozen=True)
class AddressConfig:
    """How ``sms:`` recipients are understood (see mailsms.address)."""

    sms_domains: tuple[str, ...] = ()
    default_region: str = ""
    strict_numbers: bool = False
    short_codes: bool = False


@dataclass(frozen=True)
class SegmentConfig:
    """How a text becomes SMS parts (see mailsms.segment)."""

    encoding: Literal["auto", "gsm7", "ucs2"] = "auto"
    transliterate: Literal["off", "smart"] = "off"
    maxmsgs: int = bounded(1, 1, 128)
    overlength: Literal["truncate", "reject"] = "truncate"
    truncate_marker_gsm: str = "..."
    truncate_marker_ucs2: str = "\u2026"
    reference_bits: int = 8
    split_window: int = bounded(10, 0, 60)


@dataclass(frozen=True)
class QueueConfig:
    """Retries and expiry, with Postfix's names and meanings."""

    minimal_backoff_time: float = duration("300s")
    maximal_backoff_time: float = duration("4000s")
    maximal_queue_lifetime: float = duration("7200m")
    queue_run_delay: float = duration("1s")
    # Parallel submits per gateway.
    concurrency: int = bounded(4, 1, 1000)
    # How long a graceful stop waits for messages in flight.
    stop_grace_time: float = duration("30s")
    # A delay warning goes to the sender once a message waits this long (0: never).
    delay_warning_time: float = duration("4h")
    # RET=FULL reports return the whole mail up to this size, else its headers.
    bounce_size_limit: int = size(50000)
    # At most this many messages waiting (queued, deferred, held) per number; past it 452 4.2.2 (0: no cap).
    max_messages_per_number: int = bounded(0, 0, 1_000_000)


@dataclass(frozen=True)
class ComposeConfig:
    """How the SMS text is made from a mail (see mailsms.compose)."""

    template: str = "{subject}: {body}"
    text_bounces: bool = False
    strip_quotes: bool = True
    strip_signature: bool = True


@dataclass(frozen=True)
class WebConfig:
    """The HTTP API and the gateways' webhooks (see mailsms.web)."""

    # How gateways reach this mailsms from outside, for delivery-report and
    # inbound URLs they are given (Kannel's dlr-url); empty: http://<server.http_listen>.
    public_url: str = ""
    # user -> password for the send API (/sms/?user=&pass=), until accounts replace it.
    api_users: tuple[tuple[str, str], ...] = credentials()
    # Clients in these networks may send through /sms/ without user and pass, and
    # are not rate limited.
    trusted_networks: tuple[Network, ...] = networks("127.0.0.0/8", "::1/128")
    # Requests a second per client address on /sms/, /inbound/ and /dlr/ (0: no limit),
    # and how many may come at once before the limit applies.
    rate_limit: int = bounded(20, 0, 1_000_000)
    rate_burst: int = bounded(100, 1, 1_000_000)
    # HTTP Basic credentials for /status and /metrics (mailsms.web_status); no user: /status is off.
    admin_user: str = ""
    admin_password: str = dataclasses.field(default="", repr=False)

    def api_password(self, user: str) -> str | None:
        """The configured password of ``user`` for the send API, or None."""
        return next((password for name, password in self.api_users if name == user), None)


@dataclass(frozen=True)
class MailoutConfig:
    """How mailsms sends mail itself: reports to senders, replies (see mailsms.mailout)."""

    # "maildir": files in <maildir>/<recipient>/new; "smtp" or "lmtp": to relay.
    mode: Literal["maildir", "smtp", "lmtp"] = "maildir"
    # "host:port", "[::1]:port" or the path of a unix socket; required for smtp and lmtp.
    relay: str = ""
    # true: STARTTLS is required before any mail is sent; tls_verify checks the certificate.
    starttls: bool = False
    tls_verify: bool = True
    # SMTP AUTH, when username is set.
    username: str = ""
    password: str = dataclasses.field(default="", repr=False)
    # The name mailsms reports as (Reporting-MTA, Message-IDs, EHLO); "": this host's name.
    hostname: str = ""
    # Root of the Maildirs for mode "maildir"; "": <state.dir>/mail.
    maildir: str = ""
    # Seconds one delivery may take; mails delivered at once.
    timeout: float = duration("60s")
    concurrency: int = bounded(4, 1, 100)
    # DKIM signature on the mail mailsms makes (replies by SMS): selector, domain and key file
    # together, or none of them (no signature).  ``mailsms dkim-keygen`` writes a key.
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_key_file: str = ""
    dkim_algorithm: Literal["rsa", "ed25519"] = "rsa"

    def relay_target(self) -> tuple[str, int] | str:
        """(host, port), or a unix socket path; ValueError naming what is wrong."""
        text = self.relay.strip()
        if text.startswith("/"):
            return text
        try:
            address = parse_listen(text)
        except ValueError as exc:
            raise ValueError(str(exc).replace("listen address", "relay")) from None
        if address is None:
            raise ValueError('required for this mode: "host:port" or a unix socket path')
        if address.port == 0:
            raise ValueError("the port cannot be 0")
        return address.host, address.port


@dataclass(frozen=True)
class ReplylogConfig:
    """The reply log: links sender mailbox <-> number, so that an SMS reply finds its mailbox (see replylog)."""

    # "all": every submitted message with a sender makes a link; "authenticated": only
    # mail whose sender was authenticated (replylog.origin); "off": no links.
    record: Literal["all", "authenticated", "off"] = "all"
    # How long a link stays live after the last message from that sender to that number.
    keep_minutes: int = bounded(10080, 1, 5_256_000)
    # Sent back to a replier whose number has live links from several senders.
    conflict_message: str = (
        "Your reply could not be delivered: several people wrote to you from this number."
        " Send it again with the address between # signs: #name@example.com# your text"
    )
    # At most one conflict message per number in this time, so a phone that answers every SMS
    # automatically cannot start an endless exchange (0: no limit).
    conflict_interval: float = duration("1h")
    # How often expired links are deleted in the background.
    purge_interval: float = duration("10m")


@dataclass(frozen=True)
class InboundConfig:
    """Incoming SMS into mailboxes: reassembly, routing, the mail made (see mailsms.inbound)."""

    # Domains a #user@domain# tag may name; others are ignored (mailsms never relays outside).
    local_domains: tuple[str, ...] = ()
    # Mailbox for SMS that no tag or link routes (and for conflicts); "": such SMS are dropped.
    unmatched_recipient: str = ""
    # From: of the mail; %s is the sender's number.  The local part is quoted as needed.
    from_template: str = "sms:%s@sms.example.com"
    # Subject: {from}, {to}, {gateway}, {text} (its first line), {subject} (of the mail replied to).
    subject_template: str = "SMS from {from}"
    # Subject when the reply log found the mail this SMS answers and it had a subject.
    reply_subject_template: str = "Re: {subject}"
    # Envelope sender of the mail; "" is the null sender (a bounce of it goes nowhere).
    envelope_sender: str = ""
    # Parts of a concatenated SMS still missing after this long: the rest goes out with the marker.
    reassembly_timeout: float = duration("5m")
    incomplete_marker: str = "[...]"


@dataclass(frozen=True)
class PolicyConfig:
    """Who may send what, where and how much (see mailsms.policy)."""

    # true: a recipient needs credentials (user=/pass=, SMTP AUTH, the API's) or a trusted client.
    require_auth: bool = False
    # Clients that count as authenticated; empty: none (loopback is not trusted unless listed).
    trusted_networks: tuple[Network, ...] = networks()
    # Regexes on the envelope sender: it must match one of from_enabled (empty: any) and none of from_disabled.
    from_enabled: tuple[str, ...] = ()
    from_disabled: tuple[str, ...] = ()
    # sms: recipients one mail may have (0: only server.max_recipients applies).
    max_recipients_per_message: int = bounded(0, 0, 100_000)
    # E.164 prefixes ("+44", "+1555"): numbers must start with one of allowed_prefixes (empty: any)
    # and none of blocked_prefixes; allowed_regions are ISO 3166 codes (empty: any).
    allowed_prefixes: tuple[str, ...] = ()
    blocked_prefixes: tuple[str, ...] = ()
    allowed_regions: tuple[str, ...] = ()
    # Refuse premium-rate, satellite and international premium numbers (550 5.7.1).
    refuse_premium: bool = True
    # Token buckets, per hour (0: no limit): per envelope sender, per account, and for everything.
    sender_messages_per_hour: int = bounded(0, 0, 100_000_000)
    sender_parts_per_hour: int = bounded(0, 0, 100_000_000)
    account_messages_per_hour: int = bounded(0, 0, 100_000_000)
    account_parts_per_hour: int = bounded(0, 0, 100_000_000)
    global_parts_per_hour: int = bounded(0, 0, 1_000_000_000)
    # An account's monthly limit (maxsend) reached: "temporary" 452 4.2.2 or "permanent" 552 5.2.2.
    monthly_limit_reply: Literal["temporary", "permanent"] = "temporary"
    # Wrong credentials from one client: after 3 failures each answer waits this long, doubling to 8 times.
    auth_failure_delay: float = duration("1s")


@dataclass(frozen=True)
class InterceptConfig:
    """Interception scripts (see mailsms.intercept): Python files defining intercept(message)."""

    # Called per recipient at ingest, before the queue commit ("": none).
    mt: str = ""
    # Called per received SMS in the inbound pipeline, before routing ("": none).
    mo: str = ""
    # Time one call may take; longer is a temporary failure (451 4.3.5).
    timeout: float = duration("2s")


@dataclass(frozen=True)
class MilterConfig:
    """The milter (see milter/): the MTA asks mailsms about sms: recipients at RCPT time."""

    # Postfix notation: "inet:127.0.0.1:8891" or "unix:/path"; "": no milter.
    listen: str = ""


@dataclass(frozen=True)
class WebhookKeys:
    """Keys every ``[[gateway]]`` takes, whatever its type: who may call its webhooks."""

    # Source addresses allowed to call /inbound/<id> and /dlr/<id>; empty: any.
    webhook_allow: tuple[Network, ...] = networks()
    # A shared secret the calls must carry as secret=...; empty: none.
    webhook_secret: str = dataclasses.field(default="", repr=False)


WEBHOOK_KEYS = frozenset(f.name for f in dataclasses.fields(WebhookKeys))


@dataclass(frozen=True)
class RoutingKeys:
    """Keys every ``[[gateway]]`` takes for routing and balancing (see mailsms.routing, mailsms.balance)."""

    # Share within a weighted group and for "*"; 0: only used when named by a route, id= or a group.
    weight: int = bounded(1, 0, 1000)
    # Parts submitted at once; 0: the transport's own figure, else queue.concurrency.
    concurrency: int = bounded(0, 0, 1000)
    # Parts a second (token bucket); 0: unlimited.
    rate: float = 0.0
    # Consecutive temporary failures that open the circuit (0: never), and how long it stays open.
    breaker_threshold: int = bounded(5, 0, 1000)
    breaker_reset: float = duration("60s")
    # Numbers this gateway takes ("+44", "+353"); empty: all.
    prefixes: tuple[str, ...] = ()
    # Nodes sharing a PostgreSQL queue that talk to this gateway (a modem, an SMPP bind), each named
    # by its node id (``<state dir>/node-id``) or host name; empty: every node.
    nodes: tuple[str, ...] = ()

    def validate(self) -> list[tuple[str, str]]:
        """(key, message) for values the types alone do not rule out."""
        found = [("rate", f"must be 0 or more, got {self.rate}")] if self.rate < 0 else []
        bad = [p for p in self.prefixes if not re.fullmatch(r"\+[0-9]{1,15}", p)]
        if bad:
            found.append(("prefixes", f'expected E.164 prefixes such as "+44", got {bad[0]!r}'))
        return found


ROUTING_KEYS = frozenset(f.name for f in dataclasses.fields(RoutingKeys))


@dataclass(frozen=True)
class GatewayConfig:
    """One ``[[gateway]]``: an id, a type, that type's own options and the webhook keys."""

    id: str
    type: str
    options: object
    webhook_allow: tuple[Network, ...] = ()
    webhook_secret: str = dataclasses.field(default="", repr=False)
    weight: int = 1
    concurrency: int = 0
    rate: float = 0.0
    breaker_threshold: int = 5
    breaker_reset: float = 60.0
    prefixes: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupConfig:
    """One ``[[group]]``: gateways used together; ids share one namespace with gateway ids."""

    id: str = ""
    gateways: tuple[str, ...] = ()
    balance: Literal["weighted", "priority"] = "weighted"


@dataclass(frozen=True)
class RouteConfig:
    """One ``[[route]]`` rule, evaluated in order (see mailsms.routing)."""

    name: str = ""
    number: str = ""
    sender: str = ""
    account: str = ""
    text: str = ""
    hours: str = ""
    rewrite: str = ""
    set_sender: str = ""
    gateway: str = ""
    reject: str = ""
    stop: bool = False


@dataclass(frozen=True)
class FallbackConfig:
    """One ``[[fallback]]``: no delivery report within ``after`` for a number or account: text the alternate."""

    number: str = ""
    account: str = ""
    alternate: str = ""
    after: float = duration("30m")


def default_gateways() -> tuple[GatewayConfig, ...]:
    """With no ``[[gateway]]`` the embedded ``outbox`` transport is used."""
    outbox_options = options_class("outbox")
    assert outbox_options is not None
    return (GatewayConfig(id="outbox", type="outbox", options=outbox_options()),)


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    state: StateConfig = field(default_factory=StateConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    address: AddressConfig = field(default_factory=AddressConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    compose: ComposeConfig = field(default_factory=ComposeConfig)
    replylog: ReplylogConfig = field(default_factory=ReplylogConfig)
    inbound: InboundConfig = field(default_factory=InboundConfig)
    mailout: MailoutConfig = field(default_factory=MailoutConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    intercept: InterceptConfig = field(default_factory=InterceptConfig)
    milter: MilterConfig = field(default_factory=MilterConfig)
    web: WebConfig = field(default_factory=WebConfig)
    gateways: tuple[GatewayConfig, ...] = field(default_factory=default_gateways)
    groups: tuple[GroupConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    fallbacks: tuple[FallbackConfig, ...] = ()
    source: str = "(built-in defaults)"

    @property
    def state_dir(self) -> Path:
        return Path(self.state.dir)


# Config fields filled from arrays of tables ([[gateway]], ...) rather than from a [section].
ARRAY_FIELDS = ("gateways", "groups", "routes", "fallbacks", "source")
_ARRAYS: dict[str, tuple[str, type]] = {"group": ("groups", GroupConfig), "route": ("routes", RouteConfig),
                                        "fallback": ("fallbacks", FallbackConfig)}  # fmt: skip

_GATEWAY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class ConfigInvalid(ConfigError):
    """The configuration file has problems; each names its key."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("; ".join(p.render(source) for p in problems))

    def details(self) -> list[str]:
        count = len(self.problems)
        summary = f"mailsms: {count} problem{'s' if count != 1 else ''} in {self.source}"
        return [*(p.render(self.source) for p in self.problems), summary]


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {name: hint for name, hint in hints.items() if name not in ARRAY_FIELDS}


def _validate_segment(seg: SegmentConfig, problems: list[Problem], lines: Mapping[str, int]) -> None:
    from mailsms.segment import marker_problems

    if seg.reference_bits not in (8, 16):
        problems.append(Problem("segment.reference_bits", "must be 8 or 16", lines.get("segment.reference_bits")))
    for message in marker_problems(seg.truncate_marker_gsm, seg.truncate_marker_ucs2):
        key = "segment." + (message.split()[0] if message.startswith("truncate_marker") else "truncate_marker_gsm")
        problems.append(Problem(key, message, lines.get(key)))


def _validate_compose(compose: ComposeConfig, problems: list[Problem], lines: Mapping[str, int]) -> None:
    from mailsms.compose import check_template

    error = check_template(compose.template)
    if error:
        problems.append(Problem("compose.template", error, lines.get("compose.template")))


def _validate_address(address: AddressConfig, problems: list[Problem], lines: Mapping[str, int]) -> None:
    if not address.default_region:
        return
    import phonenumbers

    if address.default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        key = "address.default_region"
        problems.append(
            Problem(key, f"unknown region {address.default_region!r}: use an ISO 3166 code", lines.get(key))
        )


def _validate_mailout(mailout: MailoutConfig, problems: list[Problem], lines: Mapping[str, int]) -> None:
    if mailout.mode == "maildir":
        return
    try:
        mailout.relay_target()
    except ValueError as exc:
        problems.append(Problem("mailout.relay", str(exc), lines.get("mailout.relay", lines.get("mailout"))))


def _validate_inbound(config: Config, problems: list[Problem], lines: Mapping[str, int]) -> None:
    from mailsms.inbound_check import check_inbound

    for key, message in check_inbound(config.inbound, config.replylog, config.mailout):
        section = key.split(".", 1)[0]
        problems.append(Problem(key, message, lines.get(key, lines.get(section))))


def _validate_policy(config: Config, problems: list[Problem], lines: Mapping[str, int]) -> None:
    from mailsms.policy import check_policy

    for key, message in check_policy(config.policy, {g.id for g in config.gateways}):
        problems.append(Problem(key, message, lines.get(key, lines.get("policy"))))


def _validate_files(config: Config, problems: list[Problem], lines: Mapping[str, int]) -> None:
    from mailsms.intercept import check_script
    from mailsms.tls import check_tls

    found = [*check_tls(config.server), *check_script("intercept.mt", config.intercept.mt),
             *check_script("intercept.mo", config.intercept.mo)]  # fmt: skip
    for key, message in found:
        problems.append(Problem(key, message, lines.get(key, lines.get(key.split(".", 1)[0]))))


def _gateways(raw: object, problems: list[Problem], lines: Mapping[str, int]) -> tuple[GatewayConfig, ...]:
    if not isinstance(raw, list) or not all(isinstance(g, dict) for g in raw):
        problems.append(Problem("gateway", "must be an array of tables: write [[gateway]]", lines.get("gateway")))
        return default_gateways()
    result: list[GatewayConfig] = []
    seen: set[str] = set()
    for index, table in enumerate(raw):
        prefix = f"gateway[{index}]"
        where = lines.get(prefix)
        gw_id, gw_type = table.get("id"), table.get("type")
        if not isinstance(gw_id, str) or not _GATEWAY_ID.match(gw_id):
            problems.append(Problem(f"{prefix}.id", "required: letters, digits, '.', '_' or '-'", where))
            gw_id = f"#{index}"
        elif gw_id in seen:
            problems.append(Problem(f"{prefix}.id", f"duplicate gateway id {gw_id!r}", lines.get(f"{prefix}.id")))
        seen.add(gw_id)
        if gw_type not in GATEWAY_TYPES:
            listed = ", ".join(GATEWAY_TYPES)
            problems.append(Problem(f"{prefix}.type", f"required, one of {listed}; got {gw_type!r}", where))
            continue
        hooks = build(
            WebhookKeys,
            {k: v for k, v in table.items() if k in WEBHOOK_KEYS},
            prefix,
            problems,
            partial(_line_or, lines, where),
        )
        opts_cls = options_class(str(gw_type))
        if opts_cls is None:
            problems.append(
                Problem(
                    f"{prefix}.type",
                    f"gateway type {gw_type!r} is not available in this version of mailsms",
                    lines.get(f"{prefix}.type", where),
                )
            )
            continue
        options: object = build(
            opts_cls,
            table,
            prefix,
            problems,
            partial(_line_or, lines, where),
            skip=frozenset({"id", "type"}) | WEBHOOK_KEYS | ROUTING_KEYS,
        )
        routing = build(RoutingKeys, {k: v for k, v in table.items() if k in ROUTING_KEYS}, prefix, problems,
                        partial(_line_or, lines, where))  # fmt: skip
        validate = getattr(options, "validate", None)
        for key, message in [*(validate() if callable(validate) else ()), *routing.validate()]:
            problems.append(Problem(f"{prefix}.{key}", message, lines.get(f"{prefix}.{key}", where)))
        result.append(
            GatewayConfig(
                id=gw_id,
                type=str(gw_type),
                options=options,
                webhook_allow=hooks.webhook_allow,
                webhook_secret=hooks.webhook_secret,
                **dataclasses.asdict(routing),
            )
        )
    return tuple(result) if result else default_gateways()


def _tables(name: str, raw: object, problems: list[Problem], lines: Mapping[str, int]) -> tuple[object, ...]:
    """``[[group]]``, ``[[route]]`` or ``[[fallback]]`` entries, in order; their checks come later."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        problems.append(Problem(name, f"must be an array of tables: write [[{name}]]", lines.get(name)))
        return ()
    cls = _ARRAYS[name][1]
    return tuple(
        build(cls, table, f"{name}[{i}]", problems, partial(_line_or, lines, lines.get(f"{name}[{i}]")))
        for i, table in enumerate(raw)
    )


def _validate_routing(config: Config, problems: list[Problem], lines: Mapping[str, int]) -> Config:
    """Check groups, routes and fallbacks; fallback numbers come back normalised."""
    from mailsms.routing import check_routing, normalise_fallbacks

    found_routing = check_routing(config.gateways, config.groups, config.routes, short_codes=config.address.short_codes)
    for key, message in found_routing:
        problems.append(Problem(key, message, lines.get(key, lines.get(key.split(".", 1)[0]))))
    fallbacks, found = normalise_fallbacks(config.fallbacks, config.address)
    for key, message in found:
        problems.append(Problem(key, message, lines.get(key, lines.get(key.split(".", 1)[0]))))
    return dataclasses.replace(config, fallbacks=fallbacks)


def _line_or(lines: Mapping[str, int], fallback: int | None, key: str) -> int | None:
    return lines.get(key, fallback)


def _validate_milter(milter: MilterConfig, problems: list[Problem], lines: Mapping[str, int]) -> None:
    from milter.protocol import parse_socket

    if not milter.listen:
        return
    try:
        parse_socket(milter.listen)
    except ValueError as exc:
        problems.append(Problem("milter.listen", str(exc), lines.get("milter.listen")))


def _validate_store(store: StoreConfig, problems: list[Problem], lines: Mapping[str, int]) -> None:
    scheme = store.url.split(":", 1)[0].lower() if ":" in store.url else ""
    if store.url and scheme not in ("sqlite", "postgresql", "postgres"):
        problems.append(Problem("store.url", 'expected "" (SQLite in state.dir), sqlite:///path or postgresql://...',
                                lines.get("store.url")))  # fmt: skip


def parse(text: str, source: str = "<string>") -> Config:
    """Parse TOML text into a Config; raises ConfigInvalid listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigInvalid(source, [Problem("(syntax)", f"bad TOML: {exc}")]) from None
    lines = key_lines(text)
    problems: list[Problem] = []
    sections: dict[str, object] = {}
    types = _section_types()
    for name, value in data.items():
        if name == "gateway":
            sections["gateways"] = _gateways(value, problems, lines)
            continue
        if name in _ARRAYS:
            sections[_ARRAYS[name][0]] = _tables(name, value, problems, lines)
            continue
        if name not in types:
            problems.append(Problem(name, "unknown section or key", lines.get(name)))
            continue
        if not isinstance(value, dict):
            problems.append(Problem(name, f"must be a table: write [{name}]", lines.get(name)))
            continue
        sections[name] = build(types[name], value, name, problems, lines.get)
    config = Config(source=source, **sections)  # type: ignore[arg-type]
    _validate_segment(config.segment, problems, lines)
    _validate_address(config.address, problems, lines)
    _validate_compose(config.compose, problems, lines)
    _validate_mailout(config.mailout, problems, lines)
    _validate_inbound(config, problems, lines)
    _validate_policy(config, problems, lines)
    _validate_files(config, problems, lines)
    _validate_milter(config.milter, problems, lines)
    _validate_store(config.store, problems, lines)
    config = _validate_routing(config, problems, lines)
    if problems:
        raise ConfigInvalid(source, problems)
    return config


def config_path(explicit: str | None, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The file to read: ``--config`` first, then ``$MAILSMS_CONFIG``; None means defaults."""
    chosen = explicit if explicit else environ.get(CONFIG_ENV, "")
    return Path(chosen) if chosen else None


def load(path: Path | None) -> Config:
    """Read the configuration from ``path`` (None: built-in defaults)."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigInvalid(str(path), [Problem("(file)", f"cannot read configuration file: {reason}")]) from None
    except UnicodeDecodeError:
        raise ConfigInvalid(str(path), [Problem("(file)", "configuration file is not UTF-8")]) from None
    return parse(text, str(path))


def with_overrides(
    config: Config,
    *,
    state_dir: str | None = None,
    lmtp_listen: ListenAddress | Literal[False] | None = False,
    smtp_listen: ListenAddress | Literal[False] | None = False,
    http_listen: ListenAddress | Literal[False] | None = False,
) -> Config:
    """Apply command-line flags; ``False`` means "not given"."""
    server = config.server
    changes = {
        name: value
        for name, value in (("lmtp_listen", lmtp_listen), ("smtp_listen", smtp_listen), ("http_listen", http_listen))
        if value is not False
    }
    if changes:
        server = dataclasses.replace(server, **changes)  # type: ignore[arg-type]
    state = dataclasses.replace(config.state, dir=state_dir) if state_dir is not None else config.state
    return dataclasses.replace(config, server=server, state=state)
