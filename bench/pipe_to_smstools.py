#!/usr/bin/python3
"""Mail to an smstools spool file, one process per message: the baseline of ``bench.postfix_ingest``.

This is the way many sites connect Postfix to smsd today: a ``pipe(8)``
service in master.cf runs a small script for every mail::

    smstools unix - n n - - pipe
      flags=R user=nobody argv=/usr/bin/python3 /path/pipe_to_smstools.py /var/spool/sms ${recipient}

It reads the mail on stdin, takes the number from the recipient's local part
(``"sms:+15551234567"@sms.example.com`` or ``+15551234567@...``), makes the
text from the Subject and the first text/plain part, and writes an smsd
outgoing file (``To:`` header, a blank line, the text) under a temporary name
that it renames into ``<spool>/outgoing/``, as smsd's documentation asks.
Exit 0 means delivered; 75 (EX_TEMPFAIL) makes Postfix retry, 65 bounces.

Standard library only: it runs as ``nobody`` under the system Python.
"""

import email
import email.policy
import os
import re
import sys
import tempfile

EX_DATAERR = 65
EX_TEMPFAIL = 75
MAX_TEXT = 480  # three concatenated GSM parts, like smsd's autosplit = 3


def number_of(recipient: str) -> str:
    local = recipient.rpartition("@")[0] or recipient
    local = local.strip('"')
    if local.lower().startswith("sms:"):
        local = local[4:]
    local = local.split("?", 1)[0]
    digits = re.sub(r"[^0-9+]", "", local)
    if not re.fullmatch(r"\+?[0-9]{3,20}", digits):
        raise ValueError(f"no number in {recipient!r}")
    return digits.lstrip("+")


def text_of(message: email.message.EmailMessage) -> str:
    subject = str(message.get("Subject", "")).strip()
    body = message.get_body(preferencelist=("plain",))
    content = body.get_content() if body is not None else ""
    text = " ".join(content.split())
    joined = f"{subject}: {text}" if subject and text else subject or text
    return joined[:MAX_TEXT]


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: pipe_to_smstools.py SPOOL RECIPIENT", file=sys.stderr)
        return EX_DATAERR
    spool, recipient = argv[1], argv[2]
    try:
        number = number_of(recipient)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return EX_DATAERR
    message = email.message_from_binary_file(sys.stdin.buffer, policy=email.policy.default)
    text = text_of(message)
    outgoing = os.path.join(spool, "outgoing")
    try:
        fd, temp = tempfile.mkstemp(prefix="send_", dir=os.path.join(spool, "tmp"))
        with os.fdopen(fd, "w", encoding="utf-8") as spoolfile:
            spoolfile.write(f"To: {number}\n\n{text}\n")
        os.rename(temp, os.path.join(outgoing, os.path.basename(temp)))
    except OSError as exc:
        print(f"spool write failed: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
