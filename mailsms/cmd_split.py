"""``mailsms split``: show how a text becomes SMS parts.

The output is a contract that scripts rely on: ``--json`` prints exactly one
object ``{"encoding", "count", "truncated", "parts": [{"text", "udh",
"units"}]}``; a text over 255 parts exits 65 with 5.3.4 in a one-line error.
Only the standard library is imported here; the segmenter is imported when
the command runs, so the answer comes quickly.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from mailsms.errors import EX_OK

if TYPE_CHECKING:
    from mailsms.segment import Segmentation

_MAX_PARTS = 255
_VISIBLE = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\f"): "\\f", ord("\t"): "\\t", ord("\\"): "\\\\"}


def _maxmsgs(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 1 <= number <= _MAX_PARTS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {_MAX_PARTS}")
    return number


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "split",
        parents=[parent],
        help="show how a text splits into SMS parts",
        description=(
            "Split TEXT (or standard input with -) into SMS parts as the gateway would: GSM 03.38 when every "
            "character fits, else UCS-2; concatenated parts carry an 8-bit reference UDH. "
            "Exits 65 (5.3.4) when the text needs more than 255 parts."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--maxmsgs",
        type=_maxmsgs,
        metavar="N",
        default=None,
        help="truncate to N parts, the last ending with a marker (default: no cap but 255)",
    )
    parser.add_argument(
        "--encoding",
        choices=("auto", "gsm7", "ucs2"),
        default="auto",
        help="force an encoding; gsm7 replaces what does not fit by '?' (default: auto)",
    )
    parser.add_argument(
        "--transliterate",
        action="store_true",
        help="replace curly quotes, dashes, odd spaces, ... by GSM equivalents when that saves parts",
    )
    parser.add_argument("text", metavar="TEXT", help="the text; - reads standard input (one final newline dropped)")
    parser.set_defaults(handler=run)


def _read_text(value: str) -> str:
    if value != "-":
        return value
    stream = getattr(sys.stdin, "buffer", None)
    text = stream.read().decode("utf-8", "replace") if stream is not None else sys.stdin.read()
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def run(args: argparse.Namespace) -> int:
    from mailsms.errors import MessageTooLong
    from mailsms.segment import count_parts, split_text

    text = _read_text(args.text)
    try:
        seg = split_text(text, encoding=args.encoding, maxmsgs=args.maxmsgs, transliterate=args.transliterate)
    except MessageTooLong as exc:
        print(f"mailsms: {exc.enhanced} {exc.reason}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        _print_json(seg)
        return EX_OK
    _print_table(seg)
    plain = count_parts(text, encoding=args.encoding)[1]
    smart = count_parts(text, encoding=args.encoding, transliterate=True)[1]
    if args.transliterate or smart < plain:
        print(_saving_line(plain, smart, applied=args.transliterate))
    return EX_OK


def _print_json(seg: Segmentation) -> None:
    import json

    document = {
        "encoding": seg.encoding,
        "count": seg.count,
        "truncated": seg.truncated,
        "parts": [{"text": p.text, "udh": p.udh.hex(), "units": p.units} for p in seg.parts],
    }
    print(json.dumps(document))


def _print_table(seg: Segmentation) -> None:
    unit = "septets" if seg.encoding == "gsm7" else "units"
    total = sum(p.units for p in seg.parts)
    plural = "part" if seg.count == 1 else "parts"
    print(f"encoding: {seg.encoding}, {seg.count} {plural}, {total} {unit}")
    if seg.truncated:
        print(f"truncated: the whole text needs {seg.needed} parts")
    width = max(len("udh"), *(len(p.udh.hex()) for p in seg.parts))
    print(f"{'part':>4}  {'units':>5}  {'udh':<{width}}  text")
    for number, part in enumerate(seg.parts, start=1):
        print(f"{number:>4}  {part.units:>5}  {part.udh.hex() or '-':<{width}}  {part.text.translate(_VISIBLE)}")


def _saving_line(plain: int, smart: int, *, applied: bool) -> str:
    saved = plain - smart
    if saved > 0:
        verb = "saved" if applied else "would save"
        return f"transliteration {verb} {saved} part{'s' if saved != 1 else ''} ({plain} -> {smart})"
    if saved == 0:
        return f"transliteration saves no part ({plain} either way)"
    return f"transliteration costs {-saved} more part{'s' if saved != -1 else ''} ({plain} -> {smart})"
