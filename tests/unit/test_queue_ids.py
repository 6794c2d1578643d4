"""Queue ids: unique, time-ordered, safe as file names."""

from __future__ import annotations

import re

from mailsms.ingest import QueueIds


def test_ids_are_16_upper_hex_digits_that_sort_by_time() -> None:
    now = [1_700_000_000_000_000_000]
    ids = QueueIds(lambda: now[0])
    first = ids()
    now[0] += 2_000_000  # 2 ms later
    second = ids()
    assert re.fullmatch(r"[0-9A-F]{16}", first)
    assert first < second


def test_ids_never_repeat_in_one_millisecond_or_when_the_clock_steps_back() -> None:
    now = [1_700_000_000_000_000_000]
    ids = QueueIds(lambda: now[0])
    seen = [ids() for _ in range(5000)]
    now[0] -= 60 * 1_000_000_000  # NTP steps the clock back a minute
    seen += [ids() for _ in range(5000)]
    assert len(set(seen)) == len(seen)
    assert seen == sorted(seen)


def test_a_million_ids_in_one_millisecond_borrow_the_next() -> None:
    ids = QueueIds(lambda: 5_000_000)  # the clock is stuck at 5 ms
    ids._seq = (1 << 20) - 2
    ids._last_ms = 5
    a, b = ids(), ids()
    assert int(b, 16) == (6 << 20)
    assert int(a, 16) == (5 << 20) | ((1 << 20) - 1)
