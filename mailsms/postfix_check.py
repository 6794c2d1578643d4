"""``mailsms check --postfix``: does Postfix hand SMS mail to this mailsms?

``read_postfix`` asks ``postconf`` (``-n``, ``-x`` for values as Postfix
uses them, ``-F`` for master.cf services) and answers map lookups with
``postmap -q``; ``findings`` is pure and compares that with our
configuration:

* the transport map sends ``sms:`` addresses (and each ``address.sms_domains``
  domain) to a service whose command is ``lmtp`` with our LMTP listener as
  next hop (``lmtp:inet:127.0.0.1:2424``, or ``mailsms:inet:...`` with a
  ``mailsms unix ... lmtp`` service), or ``smtp`` to our SMTP listener;
* that service's ``<service>_destination_recipient_limit`` is at most what
  mailsms accepts in one transaction (``server.max_recipients``,
  ``policy.max_recipients_per_message``): past it mailsms answers 452 and
  Postfix sends the rest again later;
* each SMS domain is one Postfix accepts mail for (``relay_domains``, ...);
* with ``[milter] listen``: ``smtpd_milters`` names it, ``milter_protocol = 6``,
  ``milter_default_action = tempfail``.

Each finding carries the exact line to add.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailsms.config import Config
from mailsms.errors import EX_CONFIG, EX_NOINPUT, EX_OK, EX_UNAVAILABLE
from mailsms.values import ListenAddress

TEST_NUMBER = "+15551234567"
_PATTERN_MAPS = ("regexp", "pcre")  # matched against the whole address only (transport(5))
_DOMAIN_LISTS = ("mydestination", "relay_domains", "virtual_alias_domains", "virtual_mailbox_domains")
_MILTER_PARAMS = ("smtpd_milters", "milter_protocol", "milter_default_action")
PARAMS = ("transport_maps", "default_destination_recipient_limit", *_DOMAIN_LISTS, *_MILTER_PARAMS)
_ANY_HOST = ("0.0.0.0", "::", "*", "")  # noqa: S104 (names, not a bind)
_LOOPBACK = {"127.0.0.1": ("localhost",), "::1": ("localhost",)}

Lookup = Callable[[str, str], "str | None"]  # (map spec, key) -> the value, None when not found


class PostfixUnavailable(Exception):
    """postconf cannot be run, or cannot read the configuration directory."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Finding:
    problem: str
    fix: str  # the exact line to add
    where: str  # main.cf, master.cf, or the map it goes into


@dataclass
class PostfixView:
    """What postconf says: values as Postfix uses them, master.cf services, and map lookups."""

    params: dict[str, str]
    explicit: dict[str, str]  # postconf -n
    services: dict[str, str]  # unix service name -> its command (master.cf)
    lookup: Lookup
    notes: list[str] = field(default_factory=list)  # what was found fine, for the report


# -- the pure part ----------------------------------------------------------------------------


def map_specs(value: str) -> list[str]:
    """``type:name`` tables of a list parameter such as transport_maps."""
    return [word for word in re.split(r"[\s,]+", value) if ":" in word]


def words(value: str) -> list[str]:
    return [w for w in re.split(r"[\s,{}]+", value) if w]


def test_addresses(config: Config) -> list[str]:
    """Addresses whose route is checked: an sms: local part, and a plain number at each SMS domain."""
    domains = config.address.sms_domains or ("example.com",)
    addresses = [f'"sms:{TEST_NUMBER}"@{domains[0]}']
    addresses += [f"{TEST_NUMBER}@{domain}" for domain in config.address.sms_domains]
    return addresses


def route(view: PostfixView, address: str) -> tuple[str, str] | None:
    """(map, value) of the first transport_maps entry for ``address``, as trivial-rewrite finds it."""
    domain = address.rpartition("@")[2]
    for spec in map_specs(view.params.get("transport_maps", "")):
        value = view.lookup(spec, address)
        if value is None and spec.split(":", 1)[0] not in _PATTERN_MAPS:
            value = view.lookup(spec, domain)
        if value is not None:
            return spec, value.strip()
    return None


def parse_nexthop(nexthop: str) -> tuple[str, int] | None:
    """(host, port) of ``inet:host:port``, ``host:port`` or ``[host]:port``; None for others."""
    text = nexthop.removeprefix("inet:")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = text.rpartition(":")
    return (host, int(port)) if host and port.isdigit() else None


def reaches(nexthop: str, listen: ListenAddress) -> bool:
    """True when Postfix connecting to ``nexthop`` reaches ``listen``."""
    target = parse_nexthop(nexthop)
    if target is None or target[1] != listen.port:
        return False
    host = target[0]
    return host == listen.host or listen.host in _ANY_HOST or host in _LOOPBACK.get(listen.host, ())


def _wanted(config: Config) -> tuple[str, str]:
    """(transport, nexthop) that reach mailsms: LMTP when it listens, else SMTP."""
    server = config.server
    if server.lmtp_listen is not None:
        return "lmtp", f"inet:{_host(server.lmtp_listen)}:{server.lmtp_listen.port}"
    if server.smtp_listen is not None:
        return "smtp", f"[{_host(server.smtp_listen)}]:{server.smtp_listen.port}"
    return "", ""


def _host(listen: ListenAddress) -> str:
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "*": "127.0.0.1", "": "127.0.0.1"}.get(listen.host, listen.host)  # noqa: S104
    return f"[{host}]" if ":" in host else host


def _map_line(spec: str, address: str, target: str) -> str:
    """The entry routing ``address`` (its domain, or sms: local parts) in a map of ``spec``'s type."""
    kind = spec.split(":", 1)[0]
    local, _, domain = address.rpartition("@")
    if local.startswith('"sms:'):
        return f'/^"?sms:/i {target}' if kind in _PATTERN_MAPS else f'(a regexp map: /^"?sms:/i {target})'
    if kind in _PATTERN_MAPS:
        return f"/@{re.escape(domain)}$/i {target}"
    return f"{domain} {target}"


def route_findings(config: Config, view: PostfixView) -> Iterator[Finding]:
    """The transport map entries, and the recipient limit of the service they name."""
    kind, nexthop = _wanted(config)
    if not kind:
        yield Finding("mailsms has no LMTP or SMTP listener, so Postfix cannot hand it mail",
                      'lmtp_listen = "127.0.0.1:2424"', "mailsms.toml [server]")  # fmt: skip
        return
    target = f"{kind}:{nexthop}"
    specs = map_specs(view.params.get("transport_maps", ""))
    services: set[str] = set()
    for address in test_addresses(config):
        found = route(view, address)
        if found is None:
            if not specs:
                yield Finding(f"no transport_maps: {address} does not go to mailsms",
                              "transport_maps = regexp:/etc/postfix/transport_sms", "main.cf")  # fmt: skip
                specs = ["regexp:/etc/postfix/transport_sms"]
            yield Finding(f"no transport_maps entry sends {address} to mailsms",
                          _map_line(specs[0], address, target), specs[0])  # fmt: skip
            continue
        spec, value = found
        service, _, hop = value.partition(":")
        command = view.services.get(service or "", "")
        listen = config.server.lmtp_listen if command == "lmtp" else config.server.smtp_listen
        if command not in ("lmtp", "smtp") or listen is None or not reaches(hop, listen):
            yield Finding(f"{spec} sends {address} to {value!r}, which is not mailsms ({target})",
                          _map_line(spec, address, target), f"{spec}, instead of the entry that matched")  # fmt: skip
            continue
        view.notes.append(f"{address} -> {value} ({spec})")
        services.add(service)
    for service in sorted(services):
        yield from _recipient_limit(config, view, service)


def _recipient_limit(config: Config, view: PostfixView, service: str) -> Iterator[Finding]:
    accepted = config.server.max_recipients
    if config.policy.max_recipients_per_message:
        accepted = min(accepted, config.policy.max_recipients_per_message)
    name = f"{service}_destination_recipient_limit"
    value = view.params.get(name) or view.params.get("default_destination_recipient_limit", "50")
    limit = int(value) if value.isdigit() else 0
    if limit == 0 or limit > accepted:
        yield Finding(f"Postfix may give mailsms {limit or 'any number of'} recipients in one transaction "
                      f"({name} = {value}), mailsms takes {accepted}: the rest are deferred and sent again later",
                      f"{name} = {accepted}", "main.cf")  # fmt: skip
    else:
        view.notes.append(f"{name} = {limit} (mailsms takes up to {accepted} recipients per transaction)")


def domain_findings(config: Config, view: PostfixView) -> Iterator[Finding]:
    """Each SMS domain must be one Postfix takes mail for, or it answers "Relay access denied"."""
    for domain in config.address.sms_domains:
        if any(_lists(view, name, domain) for name in _DOMAIN_LISTS):
            continue
        current = view.explicit.get("relay_domains", "")
        line = f"relay_domains = {current}, {domain}" if current else f"relay_domains = {domain}"
        yield Finding(f"Postfix does not take mail for {domain} (not in relay_domains, mydestination or the "
                      "virtual domains): senders get 'Relay access denied'", line, "main.cf")  # fmt: skip


def _lists(view: PostfixView, name: str, domain: str) -> bool:
    for word in words(view.params.get(name, "")):
        if ":" in word:
            if view.lookup(word, domain) is not None:
                return True
        elif word.lower() == domain.lower():
            return True
    return False


def milter_findings(config: Config, view: PostfixView) -> Iterator[Finding]:
    """The main.cf lines of conf/postfix/main.cf's milter part, when mailsms runs a milter."""
    spec = config.milter.listen
    if not spec:
        return
    current = view.params.get("smtpd_milters", "")
    if spec not in words(current):
        line = f"smtpd_milters = {current}, {spec}" if view.explicit.get("smtpd_milters") else f"smtpd_milters = {spec}"
        yield Finding(f"smtpd_milters does not name the mailsms milter ({spec}, milter.listen)", line, "main.cf")
    if view.params.get("milter_protocol", "") != "6":
        yield Finding(f"milter_protocol is {view.params.get('milter_protocol') or 'unset'}; mailsms speaks 6",
                      "milter_protocol = 6", "main.cf")  # fmt: skip
    if view.params.get("milter_default_action", "") != "tempfail":
        action = view.params.get("milter_default_action") or "unset"
        yield Finding(f"milter_default_action is {action}: when mailsms is down, mail with unchecked sms: "
                      "recipients would be accepted or lost instead of deferred",
                      "milter_default_action = tempfail", "main.cf")  # fmt: skip


def findings(config: Config, view: PostfixView) -> list[Finding]:
    return [*route_findings(config, view), *domain_findings(config, view), *milter_findings(config, view)]


def parse_assignments(output: str) -> dict[str, str]:
    """``name = value`` lines of postconf."""
    result: dict[str, str] = {}
    for line in output.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            result[name.strip()] = value.strip()
        elif line.endswith(" ="):
            result[line[:-2].strip()] = ""
    return result


def render(view: PostfixView, found: list[Finding], where: str) -> list[str]:
    lines = [f"mailsms: Postfix configuration in {where}"]
    lines += [f"ok: {note}" for note in view.notes]
    for finding in found:
        lines += [f"missing: {finding.problem}", f"  add to {finding.where}: {finding.fix}"]
    count = len(found)
    lines.append(f"mailsms: {count} problem{'s' * (count != 1)} in the Postfix configuration" if count
                 else "mailsms: Postfix hands SMS mail to mailsms")  # fmt: skip
    return lines


# -- the I/O edge ---------------------------------------------------------------------------


def _tool(name: str) -> str | None:
    """Postfix's tools live in /usr/sbin, often not on a user's PATH."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


def _postconf(postconf: str, directory: str | None, *args: str) -> str:
    argv = [postconf, *(("-c", directory) if directory else ()), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise PostfixUnavailable(f"postconf failed: {message}", EX_CONFIG)
    return done.stdout


def read_postfix(directory: str | None, config: Config) -> PostfixView:
    """Ask postconf and postmap; PostfixUnavailable when they cannot be run."""
    postconf, postmap = _tool("postconf"), _tool("postmap")
    if postconf is None or postmap is None:
        raise PostfixUnavailable("postconf not found: is Postfix installed? (Debian: apt install postfix)",
                                 EX_UNAVAILABLE)  # fmt: skip
    if directory is not None and not (Path(directory) / "main.cf").is_file():
        raise PostfixUnavailable(f"no main.cf in {directory} (--postconf-dir)", EX_NOINPUT)
    services = {
        key.split("/", 1)[0]: value
        for key, value in parse_assignments(_postconf(postconf, directory, "-F")).items()
        if key.endswith("/unix/command")
    }
    names = [*PARAMS, *(f"{s}_destination_recipient_limit" for s, c in services.items() if c in ("lmtp", "smtp"))]
    params = parse_assignments(_postconf(postconf, directory, "-x", *names))
    explicit = parse_assignments(_postconf(postconf, directory, "-n"))

    def lookup(spec: str, key: str) -> str | None:
        argv = [postmap, *(("-c", directory) if directory else ()), "-q", key, spec]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
        if done.returncode == 0:
            return done.stdout.strip()
        if done.returncode != 1:
            message = (done.stderr.strip().splitlines() or ["?"])[-1]
            raise PostfixUnavailable(f"postmap cannot read {spec}: {message}", EX_CONFIG)
        return None

    return PostfixView(params, explicit, services, lookup)


def run_postfix_check(config: Config, directory: str | None) -> int:
    """Print what is missing, with the lines to add; 0, 78 (something missing), 69 (no Postfix)."""
    try:
        view = read_postfix(directory, config)
        found = findings(config, view)
    except PostfixUnavailable as exc:
        print(f"mailsms: {exc}", file=sys.stderr)
        return exc.exit_code
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"mailsms: cannot run postconf: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    where = directory or view.explicit.get("config_directory", "/etc/postfix")
    print("\n".join(render(view, found, where)))
    return EX_CONFIG if found else EX_OK
