"""Who may send what, where and how much: the one decision used by LMTP/SMTP RCPT, SMTP AUTH and ``/sms/``.

``decide`` is pure: given the request, the configuration, the account the
request names (already looked up) and whether its password matched, it
returns a ``Verdict`` or raises the error whose reply the client gets:

* sender not allowed (``from_enabled``/``from_disabled``), destination
  refused (prefixes, regions, premium-rate and satellite ranges): 550 5.7.1;
* credentials required and missing: 530 5.7.0; wrong: 535 5.7.8;
* account disabled or expired: 550 5.7.1;
* monthly limit reached: 452 4.2.2 (or 552 5.2.2).

``PolicyEngine`` adds what needs state: reading the account, checking the
password (argon2, in a thread, successes cached by a keyed digest, never
the password), slowing down clients that keep failing, and the token
buckets (450 4.7.1).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from mailsms.accounts import Account, month_of, today_of, verify_password
from mailsms.config import PolicyConfig
from mailsms.errors import AuthFailed, AuthRequired, MonthlyLimitReached, NotAuthorized, QuotaExceeded, RateLimited
from mailsms.values import Network, in_networks

log = logging.getLogger("mailsms.policy")

# Satellite and international premium ranges that phonenumbers does not class as premium-rate:
# Inmarsat, Global Mobile Satellite Systems (Iridium, Thuraya, ...), International Networks,
# International Premium Rate Service.  Favourites of SMS pumping fraud.
PREMIUM_RANGES = ("+870", "+881", "+882", "+883", "+979")
_PREFIX = re.compile(r"^\+[0-9]{1,15}$")
FAILURES_BEFORE_DELAY = 3
FAILURE_MEMORY = 600.0  # seconds a client's failures are remembered after the last one
AUTH_CACHE_TTL = 300.0

Channel = Literal["lmtp", "smtp", "http"]


@dataclass(frozen=True)
class Request:
    """One recipient (or one API call) as policy sees it."""

    channel: Channel
    client: str | None  # the peer's IP address
    sender: str  # the envelope sender; "" for none
    number: str  # E.164 or a short code
    user: str = ""  # user= of the address or the API call
    password: str | None = None  # pass=, kept in memory only
    session_user: str = ""  # an account already authenticated for the session (SMTP AUTH)
    vouched: bool = False  # authenticated=1 from a trusted source, or an API user of web.api_users
    trusted: bool = False  # the client is in a trusted network

    def __repr__(self) -> str:
        return f"Request({self.channel}, client={self.client}, user={self.user!r}, number={self.number})"


@dataclass(frozen=True)
class Verdict:
    """What was decided: the account the message counts against ("" : none) and its gateway."""

    account: str = ""
    gateway: str = ""
    authenticated: bool = False


@dataclass(frozen=True)
class Rules:
    """The compiled policy: regexes compiled once."""

    config: PolicyConfig
    from_enabled: tuple[re.Pattern[str], ...]
    from_disabled: tuple[re.Pattern[str], ...]

    @classmethod
    def compile(cls, config: PolicyConfig) -> Rules:
        return cls(
            config,
            tuple(re.compile(p, re.IGNORECASE) for p in config.from_enabled),
            tuple(re.compile(p, re.IGNORECASE) for p in config.from_disabled),
        )


def check_policy(config: PolicyConfig, gateway_ids: set[str]) -> Iterator[tuple[str, str]]:
    """Problems of a [policy] section as (key, message)."""
    for name in ("from_enabled", "from_disabled"):
        for index, pattern in enumerate(getattr(config, name)):
            try:
                re.compile(pattern)
            except re.error as exc:
                yield f"policy.{name}", f"entry {index + 1} is not a regular expression: {exc}"
    for name in ("allowed_prefixes", "blocked_prefixes"):
        for prefix in getattr(config, name):
            if not _PREFIX.match(prefix):
                yield f"policy.{name}", f"{prefix!r} is not an E.164 prefix like '+44'"
    if config.allowed_regions:
        import phonenumbers

        for region in config.allowed_regions:
            if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
                yield "policy.allowed_regions", f"unknown region {region!r}: use an ISO 3166 code"


# -- the pure rules ------------------------------------------------------------------


def check_sender(sender: str, rules: Rules) -> None:
    """``from_disabled`` wins over ``from_enabled``; empty ``from_enabled`` allows any sender."""
    if any(p.search(sender) for p in rules.from_disabled):
        raise NotAuthorized(f"sender <{sender[:200]}> is not allowed to send SMS (policy.from_disabled)")
    if rules.from_enabled and not any(p.search(sender) for p in rules.from_enabled):
        raise NotAuthorized(f"sender <{sender[:200]}> is not allowed to send SMS (policy.from_enabled)")


def _parsed(number: str) -> Any:
    import phonenumbers

    try:
        return phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None


@functools.lru_cache(maxsize=8192)
def number_region(number: str) -> str:
    """The region of an E.164 number by phonenumbers' metadata; "" when unknown."""
    import phonenumbers

    parsed = _parsed(number)
    if parsed is None:
        return ""
    # a number outside the known ranges still belongs to its country code's main region
    region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(
        parsed.country_code or 0
    )
    return "" if region == "ZZ" else str(region)


@functools.lru_cache(maxsize=256)
def _premium_descs(country_code: int) -> tuple[tuple[re.Pattern[str], re.Pattern[str]], ...]:
    """(general, premium-rate) national number patterns of each region sharing ``country_code``."""
    import phonenumbers

    descs = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
        if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
            metadata = phonenumbers.PhoneMetadata.metadata_for_nongeo_region(country_code)
        else:
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if metadata is None or metadata.general_desc is None or metadata.premium_rate is None:
            continue
        general, premium = metadata.general_desc.national_number_pattern, metadata.premium_rate.national_number_pattern
        if general and premium:
            descs.append((re.compile(general), re.compile(premium)))
    return tuple(descs)


@functools.lru_cache(maxsize=8192)
def is_premium_rate(number: str) -> bool:
    """True when phonenumbers' metadata classes the E.164 number as premium-rate in its region.

    The same answer as ``number_type(parse(number)) == PREMIUM_RATE``, without parsing:
    the number matches some region of its country code in general and as premium rate.
    """
    import phonenumbers

    digits = number[1:] if number.startswith("+") else number
    for size in (1, 2, 3):  # country codes are prefix-free
        if int(digits[:size] or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = digits[size:]
            return any(
                general.fullmatch(national) and premium.fullmatch(national)
                for general, premium in _premium_descs(int(digits[:size]))
            )
    return False


def check_destination(number: str, config: PolicyConfig) -> None:
    """Prefix lists, regions and the premium-rate refusal (550 5.7.1)."""
    if any(number.startswith(p) for p in config.blocked_prefixes):
        raise NotAuthorized(f"destination {number} is blocked (policy.blocked_prefixes)")
    if config.allowed_prefixes and not any(number.startswith(p) for p in config.allowed_prefixes):
        raise NotAuthorized(f"destination {number} is not in policy.allowed_prefixes")
    if not number.startswith("+"):  # a short code: no region, no metadata
        if config.allowed_regions:
            raise NotAuthorized(f"short code {number} is outside policy.allowed_regions")
        return
    if config.refuse_premium and number.startswith(PREMIUM_RANGES):
        raise NotAuthorized(f"destination {number} is a satellite or international premium number")
    if not (config.refuse_premium or config.allowed_regions):
        return
    if config.refuse_premium and is_premium_rate(number):
        raise NotAuthorized(f"destination {number} is a premium-rate number")
    if not config.allowed_regions:
        return
    region = number_region(number)
    if region.upper() not in {r.upper() for r in config.allowed_regions}:
        raise NotAuthorized(f"destination {number} ({region or 'no region'}) is outside policy.allowed_regions")


def authenticate(request: Request, config: PolicyConfig, account: Account | None, password_ok: bool | None) -> Verdict:
    """Who is sending: an account, a trusted or anonymous client; AuthRequired/AuthFailed otherwise.

    ``account`` is the one named by ``session_user`` or ``user`` (None when
    no such account); ``password_ok`` whether ``password`` matched it.
    """
    if request.session_user:
        if account is None:  # deleted since the session authenticated
            raise AuthFailed(f"account {request.session_user!r} no longer exists")
        return Verdict(account.user, account.gateway, authenticated=True)
    if request.user and account is not None:
        # Naming an existing account binds the message to it: its password must match,
        # even without require_auth (seed 002: a blank password needs none, but only
        # a trusted client may use such an account).
        if account.password_hash:
            if not password_ok:
                raise AuthFailed(f"authentication failed for user {request.user[:64]!r}")
        elif not request.trusted:
            raise AuthFailed(f"account {request.user[:64]!r} has no password: only trusted clients may use it")
        return Verdict(account.user, account.gateway, authenticated=True)
    if request.vouched or request.trusted:
        return Verdict(authenticated=True)
    if request.channel == "http":  # the API always needs credentials (401), as before accounts
        if request.user or request.password:
            raise AuthFailed(f"authentication failed for user {request.user[:64]!r}: wrong user or pass")
        raise AuthFailed("authentication required: give user and pass")
    if config.require_auth:
        if request.user:
            raise AuthFailed(f"authentication failed for user {request.user[:64]!r}")
        raise AuthRequired("authentication required: give user= and pass=, or use SMTP AUTH")
    return Verdict()  # credentials for no known account and a bare pass= are ignored (seed 002)


def check_account(account: Account, now: float, config: PolicyConfig, already: int = 0) -> None:
    """A disabled or expired account (550 5.7.1); a used-up monthly limit (452 4.2.2 / 552 5.2.2)."""
    why = account.usable(today_of(now))
    if why:
        raise NotAuthorized(why)
    left = account.left_this_month(month_of(now))
    if left is not None and left <= already:
        reason = f"account {account.user!r} reached its monthly limit of {account.maxsend} messages"
        if config.monthly_limit_reply == "permanent":
            raise MonthlyLimitReached(reason)
        error = QuotaExceeded(reason)
        error.retry_after = 3600.0
        raise error


def decide(
    request: Request,
    rules: Rules,
    account: Account | None,
    password_ok: bool | None,
    now: float,
    *,
    already: int = 0,
) -> Verdict:
    """The whole decision for one recipient, without rate limits (``already``: messages for the
    same account accepted earlier in this mail)."""
    verdict = authenticate(request, rules.config, account, password_ok)
    admit(request, rules, verdict, account, now, already=already)
    return verdict


def admit(
    request: Request, rules: Rules, verdict: Verdict, account: Account | None, now: float, *, already: int = 0
) -> None:
    """The rules after authentication: sender (mail only), destination, the account's state and limit."""
    if request.channel != "http":  # the API has no envelope sender
        check_sender(request.sender, rules)
    check_destination(request.number, rules.config)
    if verdict.account and account is not None:
        check_account(account, now, rules.config, already)


# -- state: buckets, failures, the password cache ----------------------------------------


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class Buckets:
    """Token buckets holding ``per_hour`` tokens, refilled at ``per_hour`` an hour; 0 : no limit."""

    per_hour: int
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 100_000
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def wait(self, key: str, cost: int) -> float:
        """0.0 when ``cost`` tokens are there, else the seconds until they are (taking nothing)."""
        if self.per_hour <= 0 or cost <= 0:
            return 0.0
        bucket = self._refill(key)
        if bucket.tokens >= min(cost, self.per_hour):
            return 0.0
        return (min(cost, self.per_hour) - bucket.tokens) * 3600.0 / self.per_hour

    def take(self, key: str, cost: int) -> None:
        if self.per_hour <= 0 or cost <= 0:
            return
        bucket = self._refill(key)
        bucket.tokens -= cost  # may go below 0 for one large message; it then waits longer

    def _refill(self, key: str) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget(now)
            bucket = self._buckets[key] = _Bucket(float(self.per_hour), now)
        else:
            bucket.tokens = min(float(self.per_hour), bucket.tokens + (now - bucket.updated) * self.per_hour / 3600.0)
            bucket.updated = now
        return bucket

    def _forget(self, now: float) -> None:
        full = 3600.0
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            for key in sorted(self._buckets, key=lambda k: self._buckets[k].updated)[: self.max_keys // 2]:
                del self._buckets[key]


class Bucket(Protocol):
    """Token buckets by key: this process's (:class:`Buckets`) or shared by several nodes
    (``mailsms.store.buckets.SharedBuckets``)."""

    per_hour: int

    def wait(self, key: str, cost: int) -> float: ...

    def take(self, key: str, cost: int) -> None: ...


def charge(pairs: Iterable[tuple[Bucket, str, int]], what: str) -> None:
    """Take from every bucket, or from none and raise RateLimited with the longest wait."""
    pairs = list(pairs)
    wait = max((b.wait(key, cost) for b, key, cost in pairs), default=0.0)
    if wait > 0:
        error = RateLimited(f"{what} rate limit exceeded, try again later")
        error.retry_after = wait
        raise error
    for buckets, key, cost in pairs:
        buckets.take(key, cost)


AccountLookup = Callable[[str], "Account | None"]


def _no_accounts(user: str) -> Account | None:
    return None


class PolicyEngine:
    """The decision with its state; one per daemon, used from the event loop only."""

    def __init__(
        self,
        config: PolicyConfig,
        lookup: AccountLookup = _no_accounts,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.rules = Rules.compile(config)
        self.lookup = lookup
        self.clock = clock
        self.sender_messages: Bucket = Buckets(config.sender_messages_per_hour, monotonic)
        self.sender_parts: Bucket = Buckets(config.sender_parts_per_hour, monotonic)
        self.account_messages: Bucket = Buckets(config.account_messages_per_hour, monotonic)
        self.account_parts: Bucket = Buckets(config.account_parts_per_hour, monotonic)
        self.global_parts: Bucket = Buckets(config.global_parts_per_hour, monotonic)
        self._monotonic = monotonic
        self._failures: dict[str, tuple[int, float]] = {}
        self._cache_key = os.urandom(32)
        self._verified: dict[bytes, float] = {}

    def share(self, make: Callable[[str, int], Bucket]) -> None:
        """Several nodes: the hourly limits count what every node took (``make(name, per_hour)``)."""
        config = self.config
        self.sender_messages = make("sender_messages", config.sender_messages_per_hour)
        self.sender_parts = make("sender_parts", config.sender_parts_per_hour)
        self.account_messages = make("account_messages", config.account_messages_per_hour)
        self.account_parts = make("account_parts", config.account_parts_per_hour)
        self.global_parts = make("global_parts", config.global_parts_per_hour)

    def trusted(self, client: str | None, also: tuple[Network, ...] = ()) -> bool:
        return in_networks(client, self.config.trusted_networks) or in_networks(client, also)

    async def check(self, request: Request, *, already: int = 0, take: bool = True) -> Verdict:
        """The decision for one recipient, with its message token taken (unless ``take`` is False:
        a look ahead, as the milter's, that the LMTP delivery will make again); raises the error to answer."""
        verdict, account = await self.identify(request)
        return self.admit(request, verdict, account, already=already, take=take)

    async def identify(self, request: Request) -> tuple[Verdict, Account | None]:
        """Authentication alone (the API answers 401 before it judges the request)."""
        name = request.session_user or request.user
        account = self.lookup(name) if name else None
        password_ok: bool | None = None
        if request.user and account is not None and account.password_hash and not request.session_user:
            password_ok = await self.verify(account, request.password or "")
        try:
            return authenticate(request, self.config, account, password_ok), account
        except AuthFailed as exc:
            if type(exc) is AuthFailed and (request.user or request.password):
                await self.failed(request.client)
            raise

    def admit(
        self, request: Request, verdict: Verdict, account: Account | None, *, already: int = 0, take: bool = True
    ) -> Verdict:
        """The rest of the decision, then the message token; raises the error to answer."""
        admit(request, self.rules, verdict, account, self.clock(), already=already)
        if take:
            charge(self._message_buckets(request, verdict), "message")
        return verdict

    def charge_parts(self, request_sender: str, verdict: Verdict, parts: int) -> None:
        """Take ``parts`` from the parts buckets (sender, account, global); RateLimited otherwise."""
        pairs = [(self.sender_parts, _sender_key(request_sender), parts), (self.global_parts, "", parts)]
        if verdict.account:
            pairs.append((self.account_parts, verdict.account, parts))
        charge(pairs, "parts")

    def _message_buckets(self, request: Request, verdict: Verdict) -> list[tuple[Bucket, str, int]]:
        pairs = [(self.sender_messages, _sender_key(request.sender or f"[{request.client}]"), 1)]
        if verdict.account:
            pairs.append((self.account_messages, verdict.account, 1))
        return pairs

    async def verify(self, account: Account, password: str) -> bool:
        """argon2 in a thread; a success is remembered a while by an HMAC of the pair (not the password)."""
        digest = hmac.new(
            self._cache_key, b"\0".join((account.user.encode(), password.encode(), account.password_hash.encode())),
            hashlib.sha256,
        ).digest()  # fmt: skip
        now = self._monotonic()
        seen = self._verified.get(digest)
        if seen is not None and now - seen < AUTH_CACHE_TTL:
            return True
        ok = await asyncio.to_thread(verify_password, account.password_hash, password)
        if ok:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[digest] = now
        return ok

    def verify_now(self, account: Account, password: str) -> bool:
        """The same check, synchronously (aiosmtpd's authenticator cannot await)."""
        return verify_password(account.password_hash, password)

    async def failed(self, client: str | None) -> None:
        """Note a failure; past a few, the answer waits longer and longer (up to 8 times the delay)."""
        key = _client_key(client)
        now = self._monotonic()
        count, last = self._failures.get(key, (0, now))
        count = 1 if now - last > FAILURE_MEMORY else count + 1
        if len(self._failures) > 100_000:
            self._failures.clear()
        self._failures[key] = (count, now)
        log.info("authentication failure from %s (%d recent)", client or "-", count)
        if count > FAILURES_BEFORE_DELAY and self.config.auth_failure_delay > 0:
            await asyncio.sleep(self.config.auth_failure_delay * min(2 ** (count - FAILURES_BEFORE_DELAY - 1), 8))


def _sender_key(sender: str) -> str:
    return sender.lower()


def _client_key(client: str | None) -> str:
    """Failures count per address; per /64 for IPv6, where one client has many addresses."""
    if not client:
        return "-"
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if address.version == 6:
        return str(ipaddress.ip_network(f"{client}/64", strict=False))
    return client
