"""The status page as HTML, from values (pure: ``mailsms.web_status`` gathers them).

Plain HTML and CSS, no script: tables stack into labelled rows on a phone.
Every value is escaped; the page shows ids, numbers, senders, states and
times only, never a message's text or a ``pass=`` value.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mailsms.recent import RecentEvent
from mailsms.store.status import Found

STATE_ORDER = ("queued", "deferred", "hold", "submitted", "delivered", "failed", "expired")


@dataclass(frozen=True)
class GatewayView:
    id: str
    type: str
    problem: str | None  # None: usable
    breaker: str
    signal_dbm: float | None
    submitted: int
    delivered: int
    failed: int
    last_5_minutes: int
    last_hour: int


@dataclass(frozen=True)
class AccountView:
    user: str
    gateway: str
    sent_this_month: int
    maxsend: int  # 0: no limit
    status: str  # "active", "disabled", "expired"


@dataclass(frozen=True)
class LinkView:
    number: str
    mailbox: str
    gateway: str
    created: float
    queue_id: str
    live: bool


@dataclass(frozen=True)
class StatusView:
    version: str
    now: float
    counts: Mapping[str, int]
    oldest_age: float | None  # seconds; None: nothing waits
    query: str
    found: Sequence[Found] | None  # None: no search asked
    gateways: Sequence[GatewayView]
    number: str
    links: Sequence[LinkView] | None  # None: no lookup asked
    accounts: Sequence[AccountView]
    events: Sequence[RecentEvent]


_CSS = """
*{box-sizing:border-box}
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;padding:0 12px 24px;max-width:1100px;color:#222}
h1{font-size:1.4em;margin:12px 0 4px}h2{font-size:1.15em;margin:22px 0 6px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e4e4e4;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17662b}.bad{color:#a3141d;font-weight:600}.muted{color:#777}
form{display:flex;gap:6px;flex-wrap:wrap;margin:6px 0}
input[type=search]{flex:1;min-width:12em;padding:6px;font-size:1em}
button{padding:6px 14px;font-size:1em}
.ev td{font-family:ui-monospace,monospace;font-size:.85em;word-break:break-all}
@media (max-width:640px){
 table,thead,tbody,tr,th,td{display:block;width:100%}
 thead tr{position:absolute;left:-9999px;top:-9999px}
 tr{border:1px solid #ddd;margin:0 0 8px;border-radius:4px}
 td{border:none;border-bottom:1px solid #eee;position:relative;padding-left:45%;min-height:1.8em}
 td::before{content:attr(data-label);position:absolute;left:8px;width:40%;font-weight:600;color:#555}
 td.n{text-align:left}
}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def when(at: float) -> str:
    """A Unix time as UTC, to the second."""
    if not at:
        return "-"
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(seconds: float | None) -> str:
    """``3d 4h``, ``2h 5m``, ``5m 3s`` or ``12s``."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Sequence[int] = (), cls: str = "") -> str:
    """A table whose cells are already HTML; each cell carries its header for the phone layout."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td data-label="{_e(h)}"{" class=n" if i in numeric else ""}>{cell}</td>'
            for i, (h, cell) in enumerate(zip(headers, row, strict=True))
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td class="muted" colspan="{len(headers)}">none</td></tr>')
    class_attr = f' class="{_e(cls)}"' if cls else ""
    return f"<table{class_attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _queue(view: StatusView) -> str:
    states = [s for s in STATE_ORDER if s in view.counts] + sorted(set(view.counts) - set(STATE_ORDER))
    counts = table(["state", "messages"], ([_e(s), _e(view.counts[s])] for s in states), numeric=[1], cls="counts")
    form = (
        '<form method="get" action="/status" id="search">'
        f'<input type="search" name="q" value="{_e(view.query)}" placeholder="queue id, number or sender"'
        ' aria-label="queue id, number or sender"><button type="submit">Search</button></form>'
    )
    found = ""
    if view.found is not None:
        found = f"<p>{len(view.found)} message{'s' * (len(view.found) != 1)} for {_e(view.query)}</p>" + table(
            ["queue id", "queued", "from", "to", "gateway", "state", "parts", "attempts", "next attempt", "dsn"],
            (
                [_e(f.id), _e(when(f.created)), _e(f.sender or "<>"), _e(f.number), _e(f.gateway), _e(f.state),
                 _e(f"{f.sent_parts}/{f.parts}"), _e(f.attempts), _e(when(f.next_attempt)), _e(f.dsn_code or "-")]
                for f in view.found
            ),
            cls="found",
        )  # fmt: skip
    oldest = f"<p>Oldest message waiting for a gateway: <b>{_e(age(view.oldest_age))}</b></p>"
    return f'<section id="queue"><h2>Queue</h2>{counts}{oldest}{form}{found}</section>'


def _gateways(view: StatusView) -> str:
    rows = []
    for g in view.gateways:
        health = '<span class="ok">usable</span>' if g.problem is None else f'<span class="bad">{_e(g.problem)}</span>'
        signal = "-" if g.signal_dbm is None else f"{g.signal_dbm:.0f} dBm"
        rows.append([_e(g.id), _e(g.type), health, _e(g.breaker), _e(signal), _e(g.submitted), _e(g.delivered),
                     _e(g.failed), _e(g.last_5_minutes), _e(g.last_hour)])  # fmt: skip
    headers = ["gateway", "type", "health", "breaker", "signal", "submitted", "delivered", "failed", "last 5 min",
               "last hour"]  # fmt: skip
    note = '<p class="muted">Part counts since this daemon started.</p>'
    return f'<section id="gateways"><h2>Gateways</h2>{table(headers, rows, numeric=range(5, 10))}{note}</section>'


def _replylog(view: StatusView) -> str:
    form = (
        '<form method="get" action="/status#replylog" id="lookup">'
        f'<input type="search" name="number" value="{_e(view.number)}" placeholder="+15551234567"'
        ' aria-label="number"><button type="submit">Look up</button></form>'
    )
    found = ""
    if view.links is not None:
        found = table(
            ["number", "replies go to", "gateway", "last sent", "queue id", "live"],
            ([_e(k.number), _e(k.mailbox), _e(k.gateway), _e(when(k.created)), _e(k.queue_id or "-"),
              "yes" if k.live else '<span class="muted">expired</span>'] for k in view.links),
        )  # fmt: skip
    return f'<section id="replylog"><h2>Reply log</h2>{form}{found}</section>'


def _accounts(view: StatusView) -> str:
    rows = (
        [_e(a.user), _e(a.gateway or "(default)"), _e(a.sent_this_month), _e(a.maxsend or "no limit"), _e(a.status)]
        for a in view.accounts
    )
    headers = ["account", "gateway", "sent this month", "monthly limit", "status"]
    return f'<section id="accounts"><h2>Accounts</h2>{table(headers, rows, numeric=[2])}</section>'


def _events(view: StatusView) -> str:
    rows = ([_e(when(ev.at)), _e(ev.level), _e(ev.component), _e(ev.line)] for ev in view.events)
    events = table(["time", "level", "from", "event"], rows, cls="ev")
    return f'<section id="events"><h2>Recent events</h2>{events}</section>'


def render(view: StatusView) -> str:
    """The whole page."""
    body = "".join((_queue(view), _gateways(view), _replylog(view), _accounts(view), _events(view)))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>mailsms status</title><style>{_CSS}</style></head><body>"
        f"<h1>mailsms status</h1><p class=muted>version {_e(view.version)}, {_e(when(view.now))} UTC"
        ' &middot; <a href="/status">refresh</a></p>'
        f"{body}</body></html>"
    )
