"""An HTTP gateway's ``[[gateway]]`` keys and its preset, resolved once into ``Settings``.

Presets are data: the defaults a common gateway needs, which every key the
user writes overrides (headers merge by name).  ``resolve`` compiles the
templates and regexes and returns every problem as ``(key, message)`` for
``mailsms check``; nothing here touches the network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from transports.template import Context, Fields, RenderError, Template, TemplateError, compile_template

if TYPE_CHECKING:
    from transports.http import Options

Split = Literal["mailsms", "provider"]


@dataclass(frozen=True)
class Preset:
    """Defaults for a common gateway; empty means "the built-in default"."""

    url: str = ""
    method: str = ""
    query: str = ""
    body: str = ""
    content_type: str = ""
    headers: tuple[str, ...] = ()
    split: str = ""
    success_regex: str = ""
    message_id_regex: str = ""
    temporary_regex: str = ""
    temporary_statuses: tuple[str, ...] = ()
    permanent_statuses: tuple[str, ...] = ()
    builder: str = ""  # a request built in code instead of from ``query`` ("kannel")
    required: tuple[str, ...] = ()  # keys the preset cannot do without


# Kannel's sendsms (built by transports.kannel, which knows its traps).  A wrong
# password is a configuration mistake there: defer, do not bounce everything.
KANNEL = Preset(
    url="http://127.0.0.1:13013/cgi-bin/sendsms",
    method="GET",
    split="mailsms",
    temporary_statuses=("401", "403"),
    builder="kannel",
    required=("username",),
)

# Clickatell's platform API and the many JSON APIs shaped like it: the API key
# in Authorization, the provider splits, one id per message comes back.
CLICKATELL = Preset(
    url="https://platform.clickatell.com/messages",
    method="POST",
    content_type="json",
    body=(
        '{"to": ["%number;interprefix=%"], '
        '"content": "%data;isascii%%data;isunicode%%data;isbinary;hex%", '
        '"binary": %condition;isbinary;value=true%%condition;isascii;value=false%%condition;isunicode;value=false%'
        '%sender;isset;value=, "from": "%%sender%%sender;isset;value="%, '
        '"clientMessageId": "%msgid%"}'
    ),
    headers=("Authorization: %password%", "Accept: application/json"),
    split="provider",
    success_regex=r'"accepted"\s*:\s*true',
    message_id_regex=r'"apiMessageId"\s*:\s*"(?P<id>[^"]+)"',
    required=("password",),
)

# IceWarp's own /sms/ API (and mailsms's, which speaks it): the far side splits,
# so it is told how many parts to allow.
ICEWARP = Preset(
    method="GET",
    query=(
        "number=%number%&data=%data%&binary=%binary%&dcs=%dcs%&maxmsgs=%parts%&msgid=%msgid%"
        "%udh;isset;value=&udh=%%udh%%pid;isset;value=&pid=%%pid%%sender;isset;value=&sender=%%sender%"
        "%username;isset;value=&user=%%username%%password;isset;value=&pass=%%password%"
    ),
    split="provider",
    message_id_regex=r'"queue_id"\s*:\s*"(?P<id>[^"]+)"',
    required=("url",),
)

PRESETS: Mapping[str, Preset] = {"kannel": KANNEL, "clickatell": CLICKATELL, "icewarp": ICEWARP}

_STATUS_ENTRY = re.compile(r"^([1-5])(?:([0-9]{2})|[xX]{2})$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_TEMPORARY_BY_DEFAULT = frozenset({408, 425, 429})
_CREDENTIALS = frozenset({"username", "password"})


@dataclass(frozen=True)
class StatusRule:
    """Which HTTP statuses mean what: exact codes first, then classes, then the defaults."""

    temporary_codes: frozenset[int] = frozenset()
    permanent_codes: frozenset[int] = frozenset()
    temporary_classes: frozenset[int] = frozenset()  # 4 for "4xx"
    permanent_classes: frozenset[int] = frozenset()

    def classify(self, status: int) -> Literal["success", "temporary", "permanent"]:
        """2xx is success, 5xx, 408, 425 and 429 temporary, the rest permanent, unless listed."""
        if status in self.temporary_codes:
            return "temporary"
        if status in self.permanent_codes:
            return "permanent"
        if status // 100 in self.temporary_classes:
            return "temporary"
        if status // 100 in self.permanent_classes:
            return "permanent"
        if 200 <= status < 300:
            return "success"
        if status >= 500 or status in _TEMPORARY_BY_DEFAULT:
            return "temporary"
        return "permanent"


@dataclass(frozen=True)
class Settings:
    """A gateway ready to send: templates compiled, regexes compiled, preset applied."""

    url: Template
    query: Template | None
    body: Template | None
    headers: tuple[tuple[str, Template], ...]
    method: str
    content_type: str
    builder: str
    split: Split
    basic_auth: bool
    username: str
    password: str = field(repr=False)
    sender: str
    timeout: float
    connections: int
    statuses: StatusRule
    success: re.Pattern[str] | None
    message_id: re.Pattern[str] | None
    temporary: re.Pattern[str] | None


Problems = list[tuple[str, str]]


def resolve(options: Options) -> tuple[Settings | None, Problems]:
    """Apply the preset and compile everything; problems name their key."""
    preset = PRESETS.get(options.preset, Preset())
    problems: Problems = []

    def pick(key: str) -> str:
        own: str = getattr(options, key)
        return own or getattr(preset, key)

    for key in preset.required:
        if not getattr(options, key) and not getattr(preset, key, ""):
            problems.append((key, f"required by preset {options.preset!r}"))
    if not pick("url") and "url" not in preset.required:
        problems.append(("url", "required: the provider's URL (a template), unless a preset gives one"))
    method = pick("method") or "GET"
    content_type = pick("content_type") or "form"
    split = pick("split") or "mailsms"
    if preset.builder == "kannel" and split != "mailsms":
        problems.append(("split", "the kannel preset sends each part itself: Kannel cuts UCS-2 inside emoji"))

    templates: dict[str, Template | None] = {}
    body_context: Context = "json" if content_type == "json" else "form"
    places: tuple[tuple[str, Context], ...] = (("url", "url"), ("query", "url"), ("body", body_context))
    for key, context in places:
        source = pick(key)
        templates[key] = _compile(key, source, context, problems) if source else None
    headers = _headers(_merge_headers(preset.headers, options.headers), problems)
    if templates["body"] is not None and method == "GET":
        problems.append(("body", 'a GET request has no body: set method = "POST"'))
    regexes = {
        key: _regex(key, pick(key), problems) for key in ("success_regex", "message_id_regex", "temporary_regex")
    }
    statuses = _statuses(
        options.temporary_statuses or preset.temporary_statuses,
        options.permanent_statuses or preset.permanent_statuses,
        problems,
    )
    if options.timeout <= 0:
        problems.append(("timeout", "must be more than 0"))
    url = templates["url"]
    if url is not None:
        _check_samples(url, templates["query"], templates["body"], content_type, problems)
    if problems or url is None:
        return None, problems
    used: set[str] = set()
    for template in (url, templates["query"], templates["body"], *(t for _, t in headers)):
        used |= template.variables if template is not None else set()
    builder = preset.builder if not options.query else ""
    return Settings(
        url=url,
        query=templates["query"],
        body=templates["body"],
        headers=headers,
        method=method,
        content_type=content_type,
        builder=builder,
        split="provider" if split == "provider" else "mailsms",
        # Credentials go as basic auth unless the request carries them itself.
        basic_auth=bool(options.username) and not builder and not used & _CREDENTIALS,
        username=options.username,
        password=options.password,
        sender=options.sender,
        timeout=options.timeout,
        connections=options.connections,
        statuses=statuses,
        success=regexes["success_regex"],
        message_id=regexes["message_id_regex"],
        temporary=regexes["temporary_regex"],
    ), problems


def _compile(key: str, source: str, context: Context, problems: Problems) -> Template | None:
    try:
        return compile_template(source, context)
    except TemplateError as exc:
        problems.append((key, exc.problem))
        return None


def _merge_headers(preset: tuple[str, ...], own: tuple[str, ...]) -> list[str]:
    """The preset's headers, each replaced by the user's header of the same name."""
    names = {line.partition(":")[0].strip().lower() for line in own}
    return [line for line in preset if line.partition(":")[0].strip().lower() not in names] + list(own)


def _headers(lines: list[str], problems: Problems) -> tuple[tuple[str, Template], ...]:
    result: list[tuple[str, Template]] = []
    for line in lines:
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _HEADER_NAME.match(name):
            problems.append(("headers", f'each header is "Name: value"; got {line[:40]!r}'))
            continue
        template = _compile("headers", value.strip(), "header", problems)
        if template is not None:
            result.append((name, template))
    return tuple(result)


def _regex(key: str, pattern: str, problems: Problems) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        problems.append((key, f"bad regular expression: {exc}"))
        return None


def _statuses(temporary: tuple[str, ...], permanent: tuple[str, ...], problems: Problems) -> StatusRule:
    parsed: dict[str, tuple[set[int], set[int]]] = {}
    for key, entries in (("temporary_statuses", temporary), ("permanent_statuses", permanent)):
        codes, classes = parsed.setdefault(key, (set(), set()))
        for entry in entries:
            match = _STATUS_ENTRY.match(entry.strip())
            if not match:
                problems.append((key, f'{entry!r} is not a status: write "429" or "4xx"'))
            elif match.group(2):
                codes.add(int(entry.strip()))
            else:
                classes.add(int(match.group(1)))
    (t_codes, t_classes), (p_codes, p_classes) = parsed["temporary_statuses"], parsed["permanent_statuses"]
    both = sorted(t_codes & p_codes) + [c * 100 for c in sorted(t_classes & p_classes)]
    if both:
        listed = ", ".join(str(c) if c % 100 else f"{c // 100}xx" for c in both)
        problems.append(("permanent_statuses", f"{listed} also listed in temporary_statuses"))
    return StatusRule(frozenset(t_codes), frozenset(p_codes), frozenset(t_classes), frozenset(p_classes))


# Messages the sample rendering uses: one of each encoding, with and without a sender.
SAMPLES: tuple[Fields, ...] = (
    Fields("+15551234567", "gsm7", text='Hi "you" & 100% {ok}', parts=1, msgid="SAMPLE.1"),
    Fields(
        "+15551234567",
        "ucs2",
        text="Grüße 😀",
        udh=bytes.fromhex("050003010201"),
        sender="+15557654321",
        pid=0,
        parts=2,
        msgid="SAMPLE.1",
        username="u",
        password="sample",  # noqa: S106 -- not a credential: exercises %password;isset%
        values=("&x=1",),
    ),
    Fields(
        "+15551234567",
        "binary",
        data=b"\x00\xff",
        udh=bytes.fromhex("0605040b8423f0"),
        sender="Alerts",
        flash=True,
        parts=1,
        msgid="SAMPLE.1",
        dlr_url="http://127.0.0.1:8025/dlr/g?id=SAMPLE.1",
    ),
)


def _check_samples(
    url: Template, query: Template | None, body: Template | None, content_type: str, problems: Problems
) -> None:
    """Render sample messages: the URL must be http(s) with a host, a JSON body must parse."""
    from yarl import URL

    for sample in SAMPLES:
        try:
            rendered = url.render(sample)
            parsed = URL(rendered, encoded=True)
            if parsed.scheme not in ("http", "https") or not parsed.host:
                problems.append(("url", "must be an http:// or https:// URL with a host"))
                return
            if query is not None:
                query.render(sample)
            if body is not None and content_type == "json":
                json.loads(body.render(sample))
        except json.JSONDecodeError as exc:
            problems.append(("body", f"not JSON once filled in ({sample.encoding} sample message): {exc}"))
            return
        except (RenderError, ValueError) as exc:
            problems.append(("url", f"cannot be filled in ({sample.encoding} sample message): {exc}"))
            return
