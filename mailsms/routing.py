"""Routing rules: which gateway (or group) a message goes to, with what number and sender.

Rules are ``[[route]]`` tables, data rather than code, evaluated in order
against the number (E.164), the envelope sender, the account and the text:

* ``number``, ``sender``, ``account`` are regexes that must match the whole
  value (``re.fullmatch``); ``text`` must match somewhere in the text
  (``re.search``, case-insensitive).  An absent or empty key matches all.
  ``hours`` ("HH:MM-HH:MM", server local time, may wrap midnight:
  "22:00-06:00") matches from the start minute up to, not including, the
  end; a request without a local time never matches a rule with hours.
* A matching rule, in this order: ``reject`` ends evaluation with that reply;
  ``rewrite`` replaces the number with the ``number`` regex's expansion
  (``\\1``, ``\\g<name>``; later rules see the rewritten number);
  ``set_sender`` sets the sender; the FIRST matching rule naming a
  ``gateway`` (a gateway id, a group id or ``"*"``) decides the target;
  ``stop = true`` ends evaluation after the rule.
* ``pinned`` (the ``id=`` parameter, else the account's gateway) wins over
  the rules' gateways; the rules still rewrite, set the sender and reject.
  Precedence: id= > account gateway > rules > ``"*"`` (every gateway with
  weight > 0, first available first).
* A rewrite must give an E.164 number (``+`` and 7 to 15 digits, not
  starting with 0).  What ``mailsms check`` can know from the template is a
  configuration problem; otherwise :class:`BadNumber` naming the rule is
  raised, which is 550 5.1.1 for that recipient.

Prefix filtering is separate: :meth:`Router.eligible` drops gateways whose
``prefixes`` do not take the number.  When a target has no eligible member
the caller holds the message (it waits, and expires after
``maximal_queue_lifetime`` like any message that cannot be sent).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from mailsms.errors import BadNumber, ConfigError, MailsmsError

if TYPE_CHECKING:
    from mailsms.config import AddressConfig, FallbackConfig, GatewayConfig, GroupConfig, RouteConfig

DEFAULT_TARGET = "*"

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_HOURS = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})")
_REJECT = re.compile(r"([45][0-9]{2})\s+([45]\.[0-9]{1,3}\.[0-9]{1,3})(?:\s+(.*))?", re.DOTALL)
_TEMPLATE_PIECE = re.compile(r"\\g<([^<>]*)>|\\([0-9]{1,2})|\\(.?)|([^\\]+)", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A number regex starting with a required digit (after ^ or opening groups), without
# alternatives, cannot match "+..."; this misses some such regexes but never flags a good one.
_DIGIT_FIRST = re.compile(r"\^?(?:\((?:\?:|\?P<\w+>)?)*[0-9](?![?*{])")


@dataclass(frozen=True)
class Reject:
    """A rule's ``reject``: the reply the recipient gets."""

    code: int
    enhanced: str
    text: str
    rule: str

    def reply(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"


@dataclass(frozen=True)
class RouteRequest:
    number: str  # E.164, "+..."
    sender: str = ""  # envelope sender (mail address)
    account: str = ""  # the account it counts against, "" none
    text: str = ""
    pinned: str = ""  # id= parameter (a gateway id) or the account's gateway/group: "" none
    local_time: datetime.time | None = None  # for hours=; None: rules with hours never match


@dataclass(frozen=True)
class RouteDecision:
    number: str  # after rewrites
    sender: str | None  # set_sender of a matching rule, None: unchanged
    target: str  # a gateway id or group id; DEFAULT_TARGET ("*") when nothing chose one
    matched: tuple[str, ...]  # names of the rules that matched, in order
    reject: Reject | None


def parse_reject(text: str, rule: str) -> Reject:
    """``"550 5.7.1 no SMS to this country"``; ValueError when the reply is malformed."""
    match = _REJECT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f'expected a reply like "550 5.7.1 no SMS to this country", got {text!r}')
    code, enhanced, reason = match.group(1), match.group(2), (match.group(3) or "").strip()
    if code[0] != enhanced[0]:
        raise ValueError(f"the reply code {code} and the enhanced code {enhanced} must start with the same digit")
    if _CONTROL.search(reason):
        raise ValueError("the reply text must be one line without control characters")
    return Reject(int(code), enhanced, reason or f"rejected by route {rule}", rule)


def parse_hours(text: str) -> tuple[int, int]:
    """``"22:00-06:00"`` as (start, end) minutes of the day; end may be 24:00; ValueError when malformed."""
    match = _HOURS.fullmatch(text.strip())
    if match is None:
        raise ValueError(f'expected "HH:MM-HH:MM", got {text!r}')
    sh, sm, eh, em = (int(g) for g in match.groups())
    start, end = sh * 60 + sm, eh * 60 + em
    if sh > 23 or sm > 59 or em > 59 or end > 24 * 60:
        raise ValueError(f"not a time of day in {text!r}")
    if start == end:
        raise ValueError(f"start and end are the same in {text!r}")
    return start, end


def in_hours(hours: tuple[int, int], when: datetime.time) -> bool:
    """Whether ``when`` falls in the window; a window with start > end wraps midnight."""
    start, end = hours
    minute = when.hour * 60 + when.minute
    return start <= minute < end if start < end else minute >= start or minute < end


def template_problem(template: str, pattern: re.Pattern[str]) -> str | None:
    """Why ``template`` (a rewrite) cannot give an E.164 number with ``pattern``, or None if it may."""
    literal_only = True
    literal_digits = 0
    for index, match in enumerate(_TEMPLATE_PIECE.finditer(template)):
        name, number, escape, literal = match.groups()
        if literal is not None or escape == "\\":
            text = "\\" if literal is None else literal
            bad = re.sub(r"[0-9+]", "", text)
            if bad:
                return f"the result would hold {bad[0]!r}: a number has only '+' and digits"
            if "+" in text[1:] or ("+" in text and index > 0):
                return "'+' can only begin the result"
            if index == 0 and not text.startswith("+"):
                return "the result must begin with '+' (or with a group that holds it)"
            literal_digits += len(text.replace("+", ""))
            continue
        if escape is not None:
            return f"unsupported escape \\{escape} (use \\1 or \\g<name> for groups, \\\\ for a backslash)"
        literal_only = False
        ref = name if name is not None else number
        lowest = 0 if name is not None else 1  # \g<0> is the whole match; \0 would be a NUL
        if ref.isdigit() and not lowest <= int(ref) <= pattern.groups:
            return f"the number regex has no group {ref}"
        if not ref.isdigit() and ref not in pattern.groupindex:
            return f"the number regex has no group named {ref!r}"
    if literal_only and not _E164.fullmatch(template):
        return f"{template!r} is not an E.164 number ('+' and 7 to 15 digits)"
    if literal_digits > 15:
        return "the result would have more than 15 digits"
    return None


@dataclass(frozen=True)
class _Rule:
    config: RouteConfig
    number: re.Pattern[str] | None
    sender: re.Pattern[str] | None
    account: re.Pattern[str] | None
    text: re.Pattern[str] | None
    hours: tuple[int, int] | None
    reject: Reject | None

    def matches(self, number: str, request: RouteRequest) -> re.Match[str] | Literal[True] | None:
        """The number's match (True when the rule has no number regex), or None."""
        if self.hours is not None and (request.local_time is None or not in_hours(self.hours, request.local_time)):
            return None
        for pattern, value in ((self.sender, request.sender), (self.account, request.account)):
            if pattern is not None and pattern.fullmatch(value) is None:
                return None
        if self.text is not None and self.text.search(request.text) is None:
            return None
        if self.number is None:
            return True
        return self.number.fullmatch(number)


_REGEX_KEYS = ("number", "sender", "account", "text")


def _compile(key: str, source: str) -> re.Pattern[str] | None:
    if not source:
        return None
    return re.compile(source, re.IGNORECASE if key == "text" else 0)


def route_problems(route: RouteConfig, targets: frozenset[str]) -> Iterator[tuple[str, str]]:
    """(key, message) for everything wrong with one rule; keys are the rule's own (``number``)."""
    patterns: dict[str, re.Pattern[str] | None] = {}
    for key in _REGEX_KEYS:
        try:
            patterns[key] = _compile(key, getattr(route, key))
        except re.error as exc:
            yield key, f"bad regex: {exc}"
    if route.hours:
        try:
            parse_hours(route.hours)
        except ValueError as exc:
            yield "hours", str(exc)
    if route.rewrite:
        pattern = patterns.get("number")
        if not route.number:
            yield "rewrite", "needs a number regex to rewrite with"
        elif pattern is not None:
            problem = template_problem(route.rewrite, pattern)
            if problem:
                yield "rewrite", problem
    if route.gateway and route.gateway not in targets:
        yield "gateway", f"unknown gateway or group {route.gateway!r}"
    if route.reject:
        try:
            parse_reject(route.reject, route.name)
        except ValueError as exc:
            yield "reject", str(exc)
    if _CONTROL.search(route.set_sender):
        yield "set_sender", "control characters are not allowed"


def check_routing(
    gateways: Sequence[GatewayConfig],
    groups: Sequence[GroupConfig],
    routes: Sequence[RouteConfig],
    *,
    short_codes: bool = False,
) -> Iterator[tuple[str, str]]:
    """(dotted key, message) for every problem in ``[[group]]`` and ``[[route]]``, rules known never to match too.

    ``short_codes``: numbers may also be bare digits (``address.short_codes``).
    """
    gateway_ids = {g.id for g in gateways}
    yield from _group_problems(groups, gateway_ids)
    targets = frozenset(gateway_ids | {g.id for g in groups} | {DEFAULT_TARGET})
    names: set[str] = set()
    ender = ""
    for index, route in enumerate(routes):
        key = f"route[{index}]"
        if ender:
            yield key, f"never evaluated: route {ender!r} before it matches everything and ends evaluation"
        if not (route.number or route.sender or route.account or route.text or route.hours) and (
            route.stop or route.reject
        ):
            ender = ender or route.name
        if route.number and not short_codes and "|" not in route.number and _DIGIT_FIRST.match(route.number):
            yield f"{key}.number", r"never matches: numbers reach the rules in E.164 form, write \+44... not 0044..."
        if not route.name.strip():
            yield f"{key}.name", "required: a name for logs and `mailsms route test`"
        elif route.name in names:
            yield f"{key}.name", f"duplicate route name {route.name!r}"
        names.add(route.name)
        for sub, message in route_problems(route, targets):
            yield f"{key}.{sub}", message


def _group_problems(groups: Sequence[GroupConfig], gateway_ids: set[str]) -> Iterator[tuple[str, str]]:
    group_ids: set[str] = set()
    for index, group in enumerate(groups):
        key = f"group[{index}]"
        if not _ID.fullmatch(group.id):
            yield f"{key}.id", "required: letters, digits, '.', '_' or '-'"
        elif group.id in gateway_ids or group.id in group_ids:
            yield f"{key}.id", f"{group.id!r} is already the id of a gateway or group"
        group_ids.add(group.id)
        if not group.gateways:
            yield f"{key}.gateways", "a group needs at least one gateway"
        for member in group.gateways:
            if member not in gateway_ids:
                yield f"{key}.gateways", f"unknown gateway {member!r}"
        if len(set(group.gateways)) != len(group.gateways):
            yield f"{key}.gateways", "a gateway is listed twice"


def normalise_fallbacks(
    fallbacks: Sequence[FallbackConfig], address: AddressConfig
) -> tuple[tuple[FallbackConfig, ...], list[tuple[str, str]]]:
    """Fallbacks with numbers in E.164, and (dotted key, message) for each problem."""
    from mailsms.address import number_address

    result: list[FallbackConfig] = []
    found: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()

    def normalised(key: str, text: str) -> str:
        try:
            return number_address(text, "", address).number
        except MailsmsError as exc:
            found.append((key, exc.reason))
            return text

    for index, fallback in enumerate(fallbacks):
        key = f"fallback[{index}]"
        if bool(fallback.number) == bool(fallback.account):
            found.append((key, "give exactly one of number and account"))
        number = normalised(f"{key}.number", fallback.number) if fallback.number else ""
        if not fallback.alternate:
            found.append((f"{key}.alternate", "required: the number that gets the text when no report arrives"))
        alternate = normalised(f"{key}.alternate", fallback.alternate) if fallback.alternate else ""
        if fallback.after <= 0:
            found.append((f"{key}.after", "must be longer than 0s"))
        which = ("number", number) if number else ("account", fallback.account)
        if which in seen and which[1]:
            found.append((f"{key}.{which[0]}", f"a second fallback for {which[0]} {which[1]!r}"))
        seen.add(which)
        result.append(replace(fallback, number=number, alternate=alternate))
    return tuple(result), found


class Router:
    """Evaluates ``[[route]]`` rules and knows targets: gateways, groups and ``"*"``."""

    def __init__(
        self, routes: Sequence[RouteConfig], gateways: Sequence[GatewayConfig], groups: Sequence[GroupConfig]
    ) -> None:
        self._gateways = {g.id: g for g in gateways}
        self._groups = {g.id: g for g in groups}
        targets = frozenset({*self._gateways, *self._groups, DEFAULT_TARGET})
        problems = [f"route {r.name!r}: {k}: {m}" for r in routes for k, m in route_problems(r, targets)]
        if problems:
            raise ConfigError("; ".join(problems))
        self._rules = tuple(self._rule(route) for route in routes)

    @staticmethod
    def _rule(route: RouteConfig) -> _Rule:
        return _Rule(
            config=route,
            number=_compile("number", route.number),
            sender=_compile("sender", route.sender),
            account=_compile("account", route.account),
            text=_compile("text", route.text),
            hours=parse_hours(route.hours) if route.hours else None,
            reject=parse_reject(route.reject, route.name) if route.reject else None,
        )

    def route(self, request: RouteRequest) -> RouteDecision:
        """Apply the rules in order; raises BadNumber when a rewrite does not give a number."""
        number, sender, chosen = request.number, None, ""
        matched: list[str] = []
        for rule in self._rules:
            match = rule.matches(number, request)
            if match is None:
                continue
            matched.append(rule.config.name)
            if rule.reject is not None:
                target = request.pinned or chosen or DEFAULT_TARGET
                return RouteDecision(number, sender, target, tuple(matched), rule.reject)
            if rule.config.rewrite and isinstance(match, re.Match):
                number = _rewritten(match, rule.config)
            sender = rule.config.set_sender or sender
            chosen = chosen or rule.config.gateway
            if rule.config.stop:
                break
        return RouteDecision(number, sender, request.pinned or chosen or DEFAULT_TARGET, tuple(matched), None)

    def members(self, target: str) -> tuple[GatewayConfig, ...]:
        """A gateway: itself; a group: its members in order; ``"*"``: gateways with weight > 0; unknown: ()."""
        if target == DEFAULT_TARGET:
            return tuple(g for g in self._gateways.values() if g.weight > 0)
        if target in self._groups:
            return tuple(self._gateways[m] for m in self._groups[target].gateways if m in self._gateways)
        gateway = self._gateways.get(target)
        return (gateway,) if gateway is not None else ()

    def eligible(self, target: str, number: str) -> tuple[GatewayConfig, ...]:
        """``members(target)`` whose ``prefixes`` take ``number``; empty: the caller holds the message."""
        return tuple(g for g in self.members(target) if takes(g, number))

    def balance(self, target: str) -> Literal["weighted", "priority"]:
        """How a target's members share traffic; a single gateway and ``"*"`` are "priority"."""
        group = self._groups.get(target)
        return group.balance if group is not None else "priority"

    def is_target(self, name: str) -> bool:
        return name == DEFAULT_TARGET or name in self._gateways or name in self._groups

    def targets(self) -> tuple[str, ...]:
        """Every gateway id, every group id, and ``"*"``."""
        return (*self._gateways, *self._groups, DEFAULT_TARGET)

    def gateway(self, gateway_id: str) -> GatewayConfig | None:
        return self._gateways.get(gateway_id)


def takes(gateway: GatewayConfig, number: str) -> bool:
    """Whether ``gateway``'s prefixes allow ``number`` (no prefixes: every number)."""
    return not gateway.prefixes or number.startswith(gateway.prefixes)


def _rewritten(match: re.Match[str], route: RouteConfig) -> str:
    result = match.expand(route.rewrite)
    if not _E164.fullmatch(result):
        raise BadNumber(f"route {route.name!r} rewrote the number to {result!r}, which is not an E.164 number")
    return result
