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


def test_nodes_sharing_a_queue_never_make_the_same_id_in_one_millisecond() -> None:
    """Two nodes on one PostgreSQL queue: their numbers keep their ids apart, however busy both are."""
    frozen = 1_700_000_000_000 * 1_000_000  # both clocks stuck in the same millisecond
    first, second = QueueIds(clock=lambda: frozen), QueueIds(clock=lambda: frozen)
    first.on_node(1)
    second.on_node(2)
    ids = [first() for _ in range(5000)] + [second() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 and i == i.upper() for i in ids)
    assert sorted(ids[:5000]) == ids[:5000]  # each node's ids still sort by arrival
