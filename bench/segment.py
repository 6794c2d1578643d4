"""Segmenter benchmark: mailsms against maintained PyPI splitters, on one corpus, in one run.

    .venv/bin/python -m bench.segment [--json] [--count 2000] [--seed 4] [--repeat 5]

Every splitter gets the same deterministic corpus (GSM text, extension
characters, emoji, Cyrillic, mixtures).  Its output is reduced to the encoded
payload of each part and judged by ONE checker, written here from the
standard and shared by all: a part over its limit, an escape or surrogate
pair split across parts, a crash, or a text that does not decode back to the
input is a wrong split.  Times are the best of ``--repeat`` runs over the
whole corpus, in µs per text; the ratio is to ``smsutil`` (below 1 is faster).

What each one produces differs: smsutil gives text parts only; mailsms gives
text, UDH and encoded user data; smpplib gives encoded parts with UDH;
python-gsmmodem-new gives whole SMS-SUBMIT PDUs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.table import emit
from bench.table import row as table_row

# --- the independent reference: GSM 03.38 tables, limits, checker ------------

REF_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
REF_EXT = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}


@dataclass
class Output:
    """A splitter's result reduced to what goes on the air."""

    encoding: str  # "gsm7" (unpacked septets) or "ucs2" (UTF-16-BE)
    payloads: list[bytes]
    udhs: list[bytes] | None  # None when the splitter makes no UDH


def decode_gsm(septets: bytes) -> str | None:
    out: list[str] = []
    escaped = False
    for value in septets:
        if value > 0x7F:
            return None
        if escaped:
            if value not in REF_EXT:
                return None
            out.append(REF_EXT[value])
            escaped = False
        elif value == 0x1B:
            escaped = True
        else:
            out.append(REF_BASIC[value])
    return None if escaped else "".join(out)


def check(text: str, result: Output) -> str | None:
    """Why a split is wrong, or None.  The same function judges every splitter."""
    parts = result.payloads
    if not parts:
        return "text changed"
    multi = len(parts) > 1
    for index, payload in enumerate(parts):
        header = 6 if result.udhs is None else len(result.udhs[index])
        if multi and result.udhs is not None and not header:
            return "no UDH"
        if result.encoding == "gsm7":
            limit = 160 - ((header * 8 + 6) // 7 if multi else 0)
            if len(payload) > limit:
                return "part too long"
            if payload.endswith(b"\x1b") or (index and parts[index - 1].endswith(b"\x1b")):
                return "split pair"
        else:
            limit = 140 - (header if multi else 0)
            if len(payload) > limit:
                return "part too long"
            if len(payload) % 2:
                return "split pair"
            first, last = int.from_bytes(payload[:2], "big"), int.from_bytes(payload[-2:], "big")
            if payload and (0xDC00 <= first <= 0xDFFF or 0xD800 <= last <= 0xDBFF):
                return "split pair"
    if multi and result.udhs is not None and not udhs_agree(result.udhs):
        return "bad UDH"
    if result.encoding == "gsm7":
        decoded = [decode_gsm(p) for p in parts]
        joined = None if None in decoded else "".join(d or "" for d in decoded)
    else:
        try:
            joined = b"".join(parts).decode("utf-16-be")
        except UnicodeDecodeError:
            joined = None
    return None if joined == text else "text changed"


def udhs_agree(udhs: list[bytes]) -> bool:
    """Every UDH holds one concatenation element: one reference, the right total and sequence."""
    seen = set()
    for seq, header in enumerate(udhs, start=1):
        if header[1:3] == b"\x00\x03":
            reference, total, number = header[3], header[4], header[5]
        elif header[1:3] == b"\x08\x04":
            reference, total, number = int.from_bytes(header[3:5], "big"), header[5], header[6]
        else:
            return False
        if header[0] != len(header) - 1 or (total, number) != (len(udhs), seq):
            return False
        seen.add(reference)
    return len(seen) == 1


def encode_reference(text: str, encoding: str) -> bytes:
    """Text to payload with the reference tables (for splitters that return text)."""
    if encoding == "ucs2":
        return text.encode("utf-16-be")
    inverse_ext = {c: v for v, c in REF_EXT.items()}
    out = bytearray()
    for char in text:
        if char in inverse_ext:
            out += bytes((0x1B, inverse_ext[char]))
        else:
            index = REF_BASIC.find(char)
            if index < 0 or char == "\x1b":
                raise ValueError(f"{char!r} is not GSM")
            out.append(index)
    return bytes(out)


# --- the corpus --------------------------------------------------------------

WORDS_GSM = [
    *("the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "meeting", "at", "10:30", "room"),
    *("B-12", "call", "me", "ASAP", "ok", "thanks"),
]
WORDS_LATIN = ["Grüße", "Straße", "café", "naïve", "Ærø", "São", "Öl", "Ñandú", "façade", "§3", "Δ", "ΣΩ", "Ç"]
EXTENSION = list("€[]{}^~|\\")
EMOJI = ["😀", "🎉", "👍", "👍🏽", "❤️", "🇩🇪", "👩‍💻", "🙂", "🚀", "✅"]
WORDS_CYRILLIC = ["привет", "как", "дела", "встреча", "завтра", "в", "офисе", "спасибо", "хорошо", "Москва", "Київ"]


def make_text(rng: random.Random) -> str:
    kind = rng.choices(["gsm", "latin", "extension", "emoji", "cyrillic", "mixed"], [30, 10, 15, 20, 15, 10])[0]
    length = rng.choice([rng.randint(1, 160), rng.randint(100, 400), rng.randint(300, 1600)])
    pieces: list[str] = []
    size = 0
    while size < length:
        roll = rng.random()
        if kind == "gsm" or roll < 0.5:
            word = rng.choice(WORDS_GSM)
        elif kind == "latin":
            word = rng.choice(WORDS_LATIN)
        elif kind == "extension":
            word = rng.choice(EXTENSION) * rng.randint(1, 3) + rng.choice(WORDS_GSM)
        elif kind == "emoji":
            word = rng.choice(EMOJI) * rng.randint(1, 3)
        elif kind == "cyrillic":
            word = rng.choice(WORDS_CYRILLIC)
        else:
            word = rng.choice(WORDS_CYRILLIC + EMOJI + EXTENSION + WORDS_LATIN)
        pieces.append(word)
        size += len(word) + 1
    separator = rng.choice([" ", " ", "\n", ""])
    return separator.join(pieces)[:length] or "x"


def corpus(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [make_text(rng) for _ in range(count)]


# --- the splitters, each reduced to an Output --------------------------------


def run_mailsms(text: str) -> Output:
    from mailsms.segment import split_text

    seg = split_text(text)
    return Output(seg.encoding, [p.data for p in seg.parts], [p.udh for p in seg.parts])


def run_smsutil(text: str) -> Output:
    import smsutil

    result = smsutil.split(text)
    encoding = "gsm7" if result.encoding == "gsm0338" else "ucs2"
    return Output(encoding, [encode_reference(p.content, encoding) for p in result.parts], None)


def run_smpplib(text: str) -> Output:
    from smpplib import consts
    from smpplib.gsm import make_parts

    parts, coding, esm_class = make_parts(text)
    encoding = "ucs2" if coding == consts.SMPP_ENCODING_ISO10646 else "gsm7"
    if esm_class & consts.SMPP_GSMFEAT_UDHI:
        return Output(encoding, [p[p[0] + 1 :] for p in parts], [p[: p[0] + 1] for p in parts])
    return Output(encoding, list(parts), [b""] * len(parts))


def run_gsmmodem(text: str) -> Output:
    from gsmmodem.pdu import encodeSmsSubmitPdu

    pdus = encodeSmsSubmitPdu("+15551234567", text, reference=7, requestStatusReport=False)
    parsed = [parse_submit(bytes(p.data)) for p in pdus]
    encoding = parsed[0][0]
    return Output(encoding, [payload for _, _, payload in parsed], [udh for _, udh, _ in parsed])


def parse_submit(pdu: bytes) -> tuple[str, bytes, bytes]:
    """(encoding, UDH, payload) of an SMS-SUBMIT with no validity period; a parser of its own."""
    pos = 1 + pdu[0]
    first = pdu[pos]
    digits = pdu[pos + 2]
    pos += 4 + (digits + 1) // 2  # first octet, MR, address length, TOA, digits
    dcs = pdu[pos + 1]
    pos += 2
    udl, ud = pdu[pos], pdu[pos + 1 :]
    udh = ud[: ud[0] + 1] if first & 0x40 else b""
    if dcs & 0x0C == 0x08:
        return "ucs2", udh, ud[len(udh) : udl]
    value = int.from_bytes(ud, "little")
    septets = bytes((value >> (7 * i)) & 0x7F for i in range(udl))
    return "gsm7", udh, septets[(len(udh) * 8 + 6) // 7 :]


SPLITTERS: list[tuple[str, Callable[[str], Output]]] = [
    ("smsutil", run_smsutil),
    ("mailsms", run_mailsms),
    ("smpplib.gsm.make_parts", run_smpplib),
    ("gsmmodem.pdu.encodeSmsSubmitPdu", run_gsmmodem),
]


def timed_calls() -> dict[str, Callable[[str], object]]:
    """What is timed: the library call alone, not the reduction to an Output."""
    import smsutil
    from gsmmodem.pdu import encodeSmsSubmitPdu
    from smpplib.gsm import make_parts

    from mailsms.segment import split_text

    return {
        "smsutil": smsutil.split,
        "mailsms": split_text,
        "smpplib.gsm.make_parts": make_parts,
        "gsmmodem.pdu.encodeSmsSubmitPdu": lambda t: encodeSmsSubmitPdu("+15551234567", t, requestStatusReport=False),
    }


def time_once(call: Callable[[str], object], texts: list[str]) -> float:
    """Seconds for one pass over the corpus; a crash is counted by the checker, timed like the rest."""
    started = time.perf_counter()
    for text in texts:
        try:
            call(text)
        except Exception:
            continue
    return time.perf_counter() - started


def time_all(calls: dict[str, Callable[[str], object]], texts: list[str], repeat: int) -> dict[str, float]:
    """Best µs per text of each splitter; the runs take turns so that noise hits all alike."""
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeat):
        for name, call in calls.items():
            best[name] = min(best[name], time_once(call, texts))
    return {name: seconds / len(texts) * 1e6 for name, seconds in best.items()}


def judge(run: Callable[[str], Output], texts: list[str]) -> tuple[Counter[str], int]:
    wrong: Counter[str] = Counter()
    parts = 0
    for text in texts:
        try:
            result = run(text)
        except Exception:
            wrong["crash"] += 1
            continue
        parts += len(result.payloads)
        reason = check(text, result)
        if reason:
            wrong[reason] += 1
    return wrong, parts


@dataclass
class Row:
    name: str
    us_per_text: float
    ratio: float  # to smsutil's µs per text; below 1 is faster
    wrong: int
    kinds: dict[str, int]
    parts: int


def result_rows(rows: list[Row], texts: int, repeat: int) -> list[dict[str, Any]]:
    """The rows of ``python -m bench``'s table: speed against smsutil, and wrong splits (target: none)."""
    by_name = {r.name: r for r in rows}
    ours, base = by_name["mailsms"], by_name["smsutil"]
    others = ", ".join(f"{r.name} {r.wrong}" for r in rows if r.name not in ("mailsms", "smsutil"))
    path = "mailsms.segment.split_text (text, UDH and encoded user data) vs smsutil.split (text parts only)"
    return [
        table_row("segmentation time", "µs/text", ours.us_per_text, base.us_per_text, baseline_name="smsutil",
                  ratio=ours.ratio, target=("ratio", "<=", 1.0), path=path,
                  notes=f"{texts} mixed texts, best of {repeat} runs; below 1 is faster"),
        table_row("wrong splits", "texts", ours.wrong, base.wrong, baseline_name="smsutil", ratio=None,
                  target=("mailsms", "<=", 0), path="one checker written from GSM 03.38 judges every splitter",
                  notes=f"wrong splits of the others: {others}"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.segment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--count", type=int, default=2000, help="texts in the corpus (default 2000)")
    parser.add_argument("--seed", type=int, default=4, help="corpus seed (default 4)")
    parser.add_argument("--repeat", type=int, default=7, help="timing runs, best counts (default 7)")
    args = parser.parse_args(argv)

    texts = corpus(args.count, args.seed)
    times = time_all(timed_calls(), texts, args.repeat)
    baseline = times[SPLITTERS[0][0]]
    rows: list[Row] = []
    for name, run in SPLITTERS:
        wrong, parts = judge(run, texts)
        rows.append(Row(name, times[name], times[name] / baseline, sum(wrong.values()), dict(wrong), parts))
    if args.json:
        splitters = [dataclasses.asdict(row) for row in rows]
        print(json.dumps({"corpus": len(texts), "seed": args.seed, "baseline": "smsutil", "splitters": splitters}))
        emit("segment", result_rows(rows, len(texts), args.repeat))
        return 0
    print(f"corpus: {len(texts)} texts (seed {args.seed}), best of {args.repeat} runs, ratio to smsutil")
    print(f"{'splitter':<34} {'µs/text':>8} {'ratio':>6} {'wrong':>6} {'parts':>6}  kinds of wrong split")
    for row in rows:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(row.kinds.items())) or "-"
        figures = f"{row.us_per_text:>8.2f} {row.ratio:>6.2f} {row.wrong:>6} {row.parts:>6}"
        print(f"{row.name:<34} {figures}  {kinds}")
    emit("segment", result_rows(rows, len(texts), args.repeat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
