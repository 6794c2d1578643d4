"""The gateway pool: which members of a target are tried, in what order, as breakers open and close."""

from __future__ import annotations

from collections import Counter

from mailsms.config import GatewayConfig, GroupConfig
from mailsms.dispatch import GatewayPool, plain_pool
from mailsms.routing import Router

NUMBER = "+15551234567"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gateway(gateway_id: str, **keys: object) -> GatewayConfig:
    return GatewayConfig(id=gateway_id, type="fake", options=None, **keys)  # type: ignore[arg-type]


def make(clock: Clock, balance: str = "weighted", **a_keys: object) -> GatewayPool:
    gateways = (gateway("a", weight=3, breaker_threshold=2, breaker_reset=60.0, **a_keys), gateway("b"))
    group = GroupConfig(id="g", gateways=("a", "b"), balance=balance)  # type: ignore[arg-type]
    return GatewayPool(Router((), gateways, (group,)), clock=clock)


def test_a_weighted_group_leads_with_the_picked_member_in_proportion() -> None:
    pool = make(Clock())
    firsts = Counter(pool.candidates("g", NUMBER)[0] for _ in range(400))
    assert firsts == {"a": 300, "b": 100}
    assert sorted(pool.candidates("g", NUMBER)) == ["a", "b"]  # the other follows, for failover


def test_a_priority_group_and_star_keep_the_configured_order() -> None:
    pool = make(Clock(), balance="priority")
    assert {tuple(pool.candidates("g", NUMBER)) for _ in range(10)} == {("a", "b")}
    assert pool.candidates("*", NUMBER) == ["a", "b"]


def test_an_open_breaker_leaves_the_member_out_until_one_probe_succeeds() -> None:
    clock = Clock()
    pool = make(clock)
    for _ in range(2):
        pool.start("a")
        pool.finished("a", healthy=False)
    assert pool.states()["a"] == "open"
    assert pool.candidates("g", NUMBER) == ["b"]
    assert pool.claimable("a") == [] and pool.reopens_at(["a", "b"]) == 1060.0
    clock.now = 1060.0
    assert pool.claimable("a") == ["a"]
    pool.start("a")  # the probe is out: nobody else goes to a meanwhile
    assert pool.claimable("a") == [] and pool.candidates("g", NUMBER) == ["b"]
    pool.finished("a", healthy=True)
    assert pool.states()["a"] == "closed"
    assert "a" in pool.candidates("g", NUMBER)


def test_traffic_comes_back_in_proportion_after_a_probe_succeeds() -> None:
    clock = Clock()
    pool = make(clock)
    for _ in range(2):
        pool.finished("a", healthy=False)
    assert {pool.candidates("g", NUMBER)[0] for _ in range(20)} == {"b"}
    clock.now = 1060.0
    pool.start("a")
    pool.finished("a", healthy=True)
    firsts = Counter(pool.candidates("g", NUMBER)[0] for _ in range(400))
    assert firsts == {"a": 300, "b": 100}


def test_no_candidate_while_every_member_is_open() -> None:
    pool = make(Clock(), balance="priority")
    for gateway_id in ["a"] * 2 + ["b"] * 5:  # their breaker_thresholds
        pool.finished(gateway_id, healthy=False)
    assert pool.candidates("g", NUMBER) == []
    assert pool.reopens_at(["a", "b"]) == 1060.0


def test_prefixes_decide_which_members_take_a_number() -> None:
    pool = make(Clock(), prefixes=("+44",))
    assert pool.candidates("g", NUMBER) == ["b"]
    assert pool.candidates("g", "+447700900123")[0] in ("a", "b")
    assert pool.takes("a", "+447700900123") and not pool.takes("a", NUMBER)


def test_a_reload_keeps_the_breaker_of_an_unchanged_gateway() -> None:
    clock = Clock()
    pool = make(clock)
    for _ in range(2):
        pool.finished("a", healthy=False)
    same = pool.rebuilt(pool.router)
    assert same.states()["a"] == "open"
    changed = pool.rebuilt(Router((), (gateway("a", breaker_threshold=9), gateway("b")), ()))
    assert changed.states()["a"] == "closed"


def test_concurrency_and_a_plain_pool() -> None:
    pool = make(Clock(), concurrency=7)
    assert (pool.concurrency("a"), pool.concurrency("b"), pool.concurrency("nope")) == (7, 0, 0)
    plain = plain_pool(("x", "y"))
    assert set(plain.targets()) >= {"x", "y"}
    for _ in range(50):
        plain.finished("x", healthy=False)
    assert plain.states()["x"] == "closed"  # no breakers: tests and tools see every failure
