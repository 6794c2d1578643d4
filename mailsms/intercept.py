"""Interception scripts (seed 003): a user's Python function sees each message before it is routed.

``[intercept] mt = "/etc/mailsms/mt.py"`` names a file defining::

    def intercept(message):
        message.text = message.text.upper()      # rewrite number, sender, text
        message.route = "kannel-2"               # tag a route (MT: a [[gateway]] id)
        raise Reject(554, "5.7.9", "no credit")  # or refuse, with the reply (and HTTP status) chosen

``message`` is an ``MtMessage`` (at ingest, per recipient, before the queue
commit) or an ``MoMessage`` (in the inbound pipeline, before routing).  The
function may change it in place or return a replacement; ``Reject`` is in the
script's namespace.  Each call runs in its own daemon thread and gets
``[intercept] timeout``; a script that raises, hangs, or returns nonsense is
a temporary failure, ``451 4.3.5``, logged in full the first time after a
(re)load and counted after that: a broken script never crashes the daemon and
never floods the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from mailsms.errors import MailsmsError

log = logging.getLogger("mailsms.intercept")

MAX_STUCK = 16  # calls still running past their time limit before new ones fail at once
_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


@dataclass
class MtMessage:
    """An SMS to send, as a script sees it; ``mail_from`` is for reading only."""

    number: str  # E.164 or a short code
    sender: str  # the sender id the phone shows ("" : the gateway's default)
    text: str
    route: str = ""  # a [[gateway]] id ("" : the usual routing)
    mail_from: str = ""  # the envelope sender ("" for the API)


@dataclass
class MoMessage:
    """An SMS received, as a script sees it; ``gateway`` is for reading only."""

    sender: str  # the phone that sent it
    to: str  # the number it was sent to
    text: str
    gateway: str = ""


class Reject(Exception):
    """Raised by a script: refuse the message with this reply (and this HTTP status for ``/sms/``)."""

    def __init__(self, code: int, enhanced: str, text: str = "rejected by policy", http: int | None = None) -> None:
        super().__init__(code, enhanced, text, http)
        self.code, self.enhanced, self.text, self.http = code, enhanced, text, http


class Rejected(MailsmsError):
    """A message a script refused; the reply is the script's choice."""

    http: int | None = None

    def __init__(self, code: int, enhanced: str, reason: str, http: int | None = None) -> None:
        super().__init__(reason)
        # the class carries the tree's defaults; this instance carries the script's reply
        vars(self).update(code=code, enhanced=enhanced)
        self.http = http if http is not None else default_http(code, enhanced)


class ScriptFailed(MailsmsError):
    """The script raised, hung or broke its contract: try again later (451 4.3.5)."""

    code = 451
    enhanced = "4.3.5"
    default_reason = "message interception failed, try again later"


def default_http(code: int, enhanced: str) -> int:
    """403 for a refused access (x.7.x), 400 for other permanent refusals, 503 for temporary ones."""
    if code < 500:
        return 503
    return 403 if enhanced.split(".")[1:2] == ["7"] else 400


def rejection(reject: Reject) -> Rejected:
    """The error for a script's ``Reject``; ValueError when its reply is malformed."""
    code, enhanced, http = reject.code, reject.enhanced, reject.http
    if not isinstance(code, int) or not 400 <= code <= 599:
        raise ValueError(f"Reject code {code!r} is not a 4xx or 5xx reply code")
    if not isinstance(enhanced, str) or not _ENHANCED.match(enhanced) or enhanced[0] != str(code)[0]:
        raise ValueError(f"Reject enhanced code {enhanced!r} does not fit reply code {code}")
    if http is not None and (not isinstance(http, int) or not 400 <= http <= 599):
        raise ValueError(f"Reject http status {http!r} is not a 4xx or 5xx status")
    text = " ".join(str(reject.text).split())[:200] or "rejected"
    return Rejected(code, enhanced, text, http)


def load_script(path: str) -> Callable[[Any], Any]:
    """Run the file and return its ``intercept`` function (OSError, SyntaxError, TypeError, ...)."""
    source = Path(path).read_text(encoding="utf-8")
    namespace: dict[str, Any] = {"__name__": "mailsms_intercept", "__file__": path, "Reject": Reject}
    exec(compile(source, path, "exec"), namespace)  # noqa: S102 - running the admin's script is the point
    function = namespace.get("intercept")
    if not callable(function):
        raise TypeError(f"{path} defines no function intercept(message)")
    return function  # type: ignore[no-any-return]


def check_script(key: str, path: str) -> Iterator[tuple[str, str]]:
    """Problems ``mailsms check`` reports for a script: unreadable, or not Python (not run)."""
    if not path:
        return
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield key, f"cannot read interception script {path}: {getattr(exc, 'strerror', None) or exc}"
        return
    try:
        compile(source, path, "exec")
    except SyntaxError as exc:
        yield key, f"interception script {path} is not valid Python: line {exc.lineno}: {exc.msg}"


M = TypeVar("M", MtMessage, MoMessage)


class Interceptor(Generic[M]):
    """One script, loaded on first use (in a worker thread, under the time limit), called per message."""

    def __init__(self, path: str, kind: str, timeout: float) -> None:
        self.path = path
        self.kind = kind
        self.timeout = timeout
        self._function: Callable[[Any], Any] | None = None
        self._load_lock = threading.Lock()
        self._stuck_lock = threading.Lock()
        self._running = 0
        self._failures = 0

    async def apply(self, message: M) -> M:
        """The message as the script left it; Rejected when it refused, ScriptFailed when it failed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[M] = loop.create_future()
        with self._stuck_lock:
            if self._running >= MAX_STUCK:
                raise self._failed(f"{self._running} earlier calls are still running")
            self._running += 1
        work = copy.copy(message)  # a call that outlives its limit changes nothing we use
        thread = threading.Thread(target=self._work, args=(work, loop, done), daemon=True,
                                  name=f"intercept-{self.kind}")  # fmt: skip
        thread.start()
        try:
            result = await asyncio.wait_for(asyncio.shield(done), self.timeout)
        except TimeoutError:
            raise self._failed(f"no answer within {self.timeout:g}s") from None
        except Reject as reject:
            try:
                raise rejection(reject) from None
            except ValueError as exc:
                raise self._failed(str(exc)) from None
        except Exception as exc:
            raise self._failed(f"{type(exc).__name__}: {exc}", exc) from None
        problem = _invalid(result, type(message))
        if problem:
            raise self._failed(problem)
        return result

    def _work(self, message: M, loop: asyncio.AbstractEventLoop, done: asyncio.Future[M]) -> None:
        try:
            returned = self._load()(message)
            outcome: tuple[bool, Any] = (True, message if returned is None else returned)
        except BaseException as exc:  # everything a script does wrong is reported, never raised here
            outcome = (False, exc)
        finally:
            with self._stuck_lock:
                self._running -= 1
        with contextlib.suppress(RuntimeError):  # the loop closed while the script ran
            loop.call_soon_threadsafe(_settle, done, outcome)

    def _load(self) -> Callable[[Any], Any]:
        with self._load_lock:
            if self._function is None:
                self._function = load_script(self.path)
            return self._function

    def _failed(self, why: str, exc: BaseException | None = None) -> ScriptFailed:
        self._failures += 1
        if self._failures == 1:
            log.error("intercept.%s: script %s failed: %s; every such message gets 451 4.3.5 (logged once "
                      "until the next load)", self.kind, self.path, why, exc_info=exc)  # fmt: skip
        else:
            log.debug("intercept.%s: script %s failed again (%d): %s", self.kind, self.path, self._failures, why)
        return ScriptFailed()


def _settle(done: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if done.done():
        return
    ok, value = outcome
    if ok:
        done.set_result(value)
    else:
        done.set_exception(value if isinstance(value, Exception) else RuntimeError(repr(value)))


def _invalid(result: object, expected: type) -> str:
    """What is wrong with a script's answer; "" when nothing."""
    if not isinstance(result, expected):
        return f"intercept() returned {type(result).__name__}, not None or the message"
    for name, value in vars(result).items():
        if not isinstance(value, str):
            return f"message.{name} must be a string, not {type(value).__name__}"
    return ""


def interceptor(path: str, kind: str, timeout: float) -> Interceptor[Any] | None:
    """The interceptor for a configured script; None when none is configured."""
    return Interceptor(path, kind, timeout) if path else None
