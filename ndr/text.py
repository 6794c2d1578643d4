"""The words of a delivery status notification, for the person who sent the mail (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ndr.fields import date, redact

if TYPE_CHECKING:
    from ndr.report import Action, OriginalMail, RecipientStatus

SUBJECTS: dict[str, str] = {
    "failed": "Undelivered SMS Returned to Sender",
    "delayed": "Delayed SMS (still being retried)",
    "delivered": "Successful SMS Delivery Report",
    "relayed": "SMS Relayed to Gateway",
}

_INTRO: dict[str, str] = {
    "failed": (
        "Your message could not be sent as SMS to the number below, and will not be\n"
        "tried again. The text of the SMS is quoted at the end of this report."
    ),
    "delayed": (
        "Your message has not been sent as SMS to the number below yet.\n"
        "This is a warning only: there is no need to send it again. The gateway keeps\n"
        "trying, and you will be told if it gives up."
    ),
    "delivered": "Your message was delivered as SMS: the phone confirmed that it received it.",
    "relayed": (
        "Your message was handed to the SMS gateway. That gateway gives no delivery\n"
        "reports, so no confirmation from the phone will follow."
    ),
}


def subject(action: Action) -> str:
    return SUBJECTS[action]


def human_text(action: Action, original: OriginalMail, recipients: Sequence[RecipientStatus], hostname: str) -> str:
    """The ``text/plain`` part: what happened to which number, when, and the text that was sent."""
    intro = _INTRO[action]
    if len(recipients) > 1:
        intro = intro.replace("the number below", "the numbers below")
    lines = [f"This is the SMS gateway at host {hostname}.", "", intro, ""]
    for rcpt in recipients:
        lines += _recipient_lines(rcpt)
    lines.append("")
    lines.append(f"Your message arrived on {date(original.arrival)}.")
    if original.subject:
        lines.append(f"Its subject was: {redact(original.subject)}")
    lines.append("")
    lines += _quoted_texts(recipients)
    return "\n".join(lines) + "\n"


def _recipient_lines(rcpt: RecipientStatus) -> list[str]:
    lines = [f"<{rcpt.number}>: {redact(rcpt.recipient)}"]
    what = {"failed": "failed", "delayed": "not sent yet", "delivered": "delivered", "relayed": "sent to the gateway"}
    detail = f"    {what[rcpt.action]} ({rcpt.status})"
    if rcpt.diagnostic:
        detail += f": {redact(rcpt.diagnostic)}"
    lines.append(detail)
    if rcpt.failed_parts and rcpt.parts > 1:
        lines.append(f"    {_parts_phrase(rcpt.failed_parts, rcpt.parts)} failed; the other parts were sent")
    if rcpt.last_attempt is not None:
        lines.append(f"    last attempt: {date(rcpt.last_attempt)}")
    if rcpt.action == "delayed" and rcpt.will_retry_until is not None:
        lines.append(f"    will be tried until: {date(rcpt.will_retry_until)}")
    return lines


def _parts_phrase(failed: Sequence[int], total: int) -> str:
    listed = [str(seq) for seq in failed]
    if len(listed) == 1:
        return f"part {listed[0]} of {total}"
    return f"parts {', '.join(listed[:-1])} and {listed[-1]} of {total}"


def _quoted_texts(recipients: Sequence[RecipientStatus]) -> list[str]:
    texts: dict[str, list[str]] = {}
    for rcpt in recipients:
        texts.setdefault(rcpt.text, []).append(rcpt.number)
    lines: list[str] = []
    for text, numbers in texts.items():
        if len(texts) == 1:
            lines.append("The text of the SMS was:")
        else:
            lines.append(f"The text of the SMS to {', '.join(numbers)} was:")
        lines.append("")
        lines += [f"> {line}".rstrip() for line in redact(text).splitlines() or [""]]
        lines.append("")
    return lines
