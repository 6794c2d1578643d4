"""``[[gateway]]`` routing keys, ``[[group]]``, ``[[route]]`` and ``[[fallback]]`` in the configuration."""

from __future__ import annotations

import pytest

from mailsms import config
from mailsms.config import ConfigInvalid, FallbackConfig, GatewayConfig, GroupConfig, RouteConfig

TWO = """\
[[gateway]]
id = "a"
type = "outbox"
[[gateway]]
id = "b"
type = "outbox"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        config.parse(text, "f.toml")
    return [p.render("f.toml") for p in info.value.problems]


def test_gateway_routing_keys_have_defaults_and_stay_out_of_the_transport_options() -> None:
    loaded = config.parse(TWO)
    a = loaded.gateways[0]
    assert (a.weight, a.concurrency, a.rate, a.breaker_threshold, a.breaker_reset, a.prefixes) == (
        1, 0, 0.0, 5, 60.0, ()
    )  # fmt: skip
    assert GatewayConfig(id="x", type="outbox", options=a.options).weight == 1
    assert (loaded.groups, loaded.routes, loaded.fallbacks) == ((), (), ())


def test_gateway_routing_keys_are_read() -> None:
    text = TWO.replace(
        'id = "a"',
        'id = "a"\nweight = 3\nconcurrency = 2\nrate = 2.5\nbreaker_threshold = 0\n'
        'breaker_reset = "2m"\nprefixes = ["+44", "+353"]',
    )
    a = config.parse(text).gateways[0]
    assert (a.weight, a.concurrency, a.rate, a.breaker_threshold, a.breaker_reset, a.prefixes) == (
        3, 2, 2.5, 0, 120.0, ("+44", "+353")
    )  # fmt: skip
    assert not hasattr(a.options, "weight")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("weight = 1001", "f.toml:4: gateway[0].weight: must be between 0 and 1000, got 1001"),
        ("rate = -1", "f.toml:4: gateway[0].rate: must be 0 or more, got -1.0"),
        ('prefixes = ["44"]', "f.toml:4: gateway[0].prefixes: expected E.164 prefixes such as \"+44\", got '44'"),
        ('breaker_reset = "soon"', "f.toml:4: gateway[0].breaker_reset:"),
    ],
)
def test_bad_gateway_routing_keys_are_problems_with_their_line(line: str, expected: str) -> None:
    found = problems(TWO.replace('type = "outbox"', f'type = "outbox"\n{line}', 1))
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_groups_are_read_in_order() -> None:
    loaded = config.parse(TWO + '[[group]]\nid = "main"\ngateways = ["b", "a"]\nbalance = "priority"\n')
    assert loaded.groups == (GroupConfig(id="main", gateways=("b", "a"), balance="priority"),)


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ('id = "a"\ngateways = ["b"]', "f.toml:8: group[0].id: 'a' is already the id of a gateway or group"),
        ('id = "g"\ngateways = ["a", "zz"]', "f.toml:9: group[0].gateways: unknown gateway 'zz'"),
        ('id = "g"\ngateways = []', "f.toml:9: group[0].gateways: a group needs at least one gateway"),
        ('id = "g"', "f.toml:7: group[0].gateways: a group needs at least one gateway"),
        ('gateways = ["a"]', "f.toml:7: group[0].id: required"),
        ('id = "g"\ngateways = ["a"]\nbalance = "random"', "f.toml:10: group[0].balance: expected one of"),
    ],
)
def test_bad_groups_are_problems(group: str, expected: str) -> None:
    found = problems(TWO + "[[group]]\n" + group + "\n")
    assert len(found) == 1, found
    assert found[0].startswith(expected)


def test_two_groups_with_one_id_clash() -> None:
    found = problems(TWO + '[[group]]\nid = "g"\ngateways = ["a"]\n[[group]]\nid = "g"\ngateways = ["b"]\n')
    assert found == ["f.toml:11: group[1].id: 'g' is already the id of a gateway or group"]


def test_routes_are_read_in_order_with_every_key() -> None:
    text = TWO + (
        "[[route]]\nname = \"uk\"\nnumber = '\\+440(\\d+)'\nrewrite = '+44\\1'\ngateway = \"a\"\n"
        'sender = ".*@example\\\\.com"\naccount = "alice"\ntext = "urgent"\nhours = "22:00-06:00"\n'
        'set_sender = "ACME"\nstop = true\n'
        '[[route]]\nname = "no-fr"\nnumber = "\\\\+33.*"\nreject = "550 5.7.1 no SMS to France"\n'
    )
    loaded = config.parse(text)
    assert loaded.routes == (
        RouteConfig(name="uk", number=r"\+440(\d+)", rewrite=r"+44\1", gateway="a", sender=r".*@example\.com",
                    account="alice", text="urgent", hours="22:00-06:00", set_sender="ACME", stop=True),
        RouteConfig(name="no-fr", number=r"\+33.*", reject="550 5.7.1 no SMS to France"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ('number = "(+44"', "route[0].number: bad regex:"),
        ('sender = "["', "route[0].sender: bad regex:"),
        ('text = "a{2"', None),  # a valid regex (a literal brace): no problem
        ('hours = "25:00-06:00"', "route[0].hours: not a time of day"),
        ('hours = "9-17"', 'route[0].hours: expected "HH:MM-HH:MM"'),
        ('hours = "08:00-08:00"', "route[0].hours: start and end are the same"),
        ("rewrite = '+44\\1'", "route[0].rewrite: needs a number regex"),
        ("number = '\\+440(\\d+)'\nrewrite = '44\\1'", "route[0].rewrite: the result must begin with '+'"),
        ("number = '\\+440(\\d+)'\nrewrite = '+44\\2'", "route[0].rewrite: the number regex has no group 2"),
        ("number = '\\+440(\\d+)'\nrewrite = '+44-\\1'", "route[0].rewrite: the result would hold '-'"),
        ("number = '\\+440(\\d+)'\nrewrite = '+4412'", "route[0].rewrite: '+4412' is not an E.164 number"),
        ("number = '\\+440(\\d+)'\nrewrite = '\\1+44'", "route[0].rewrite: '+' can only begin the result"),
        (
            "number = '\\+440(?P<n>\\d+)'\nrewrite = '+44\\g<m>'",
            "route[0].rewrite: the number regex has no group named",
        ),
        ("number = '\\+440(\\d+)'\nrewrite = '+44\\n\\1'", "route[0].rewrite: unsupported escape \\n"),
        ('gateway = "nowhere"', "route[0].gateway: unknown gateway or group 'nowhere'"),
        ('reject = "250 2.0.0 fine"', "route[0].reject: expected a reply like"),
        ('reject = "550 4.7.1 mixed"', "route[0].reject: the reply code 550 and the enhanced code 4.7.1"),
        ('reject = "550"', "route[0].reject: expected a reply like"),
        ("stop = 1", "route[0].stop: expected true or false"),
        ('gatway = "a"', "route[0].gatway: unknown key (did you mean 'gateway'?)"),
    ],
)
def test_bad_routes_are_problems_with_their_key(keys: str, expected: str | None) -> None:
    text = TWO + '[[route]]\nname = "r"\n' + keys + "\n"
    if expected is None:
        config.parse(text)
        return
    found = problems(text)
    assert len(found) == 1, found
    assert found[0].split(": ", 1)[1].startswith(expected), found


def test_route_problem_carries_the_line_of_its_key() -> None:
    found = problems(TWO + '[[route]]\nname = "r"\n\ngateway = "x"\n')
    assert found == ["f.toml:10: route[0].gateway: unknown gateway or group 'x'"]


def test_route_names_are_required_and_unique() -> None:
    found = problems(TWO + '[[route]]\nname = "r"\n[[route]]\nname = "r"\n[[route]]\ngateway = "a"\n')
    assert [f.split(": ")[1] for f in found] == ["route[1].name", "route[2].name"]
    assert "duplicate route name 'r'" in found[0]


def test_route_may_name_a_group_or_the_default() -> None:
    text = TWO + '[[group]]\nid = "g"\ngateways = ["a"]\n[[route]]\nname = "r"\ngateway = "g"\n'
    assert config.parse(text).routes[0].gateway == "g"
    assert config.parse(TWO + '[[route]]\nname = "r"\ngateway = "*"\n').routes[0].gateway == "*"


def test_route_must_be_an_array_of_tables() -> None:
    assert problems('[route]\nname = "r"\n') == ["f.toml:1: route: must be an array of tables: write [[route]]"]


def test_fallbacks_are_read_and_numbers_normalised() -> None:
    loaded = config.parse(
        '[[fallback]]\nnumber = "+44 7700 900123"\nalternate = "447700900999"\nafter = "10m"\n'
        '[[fallback]]\naccount = "alice"\nalternate = "+15551234567"\n'
    )
    assert loaded.fallbacks == (
        FallbackConfig(number="+447700900123", alternate="+447700900999", after=600.0),
        FallbackConfig(account="alice", alternate="+15551234567", after=1800.0),
    )


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ('alternate = "+15551234567"', "fallback[0]: give exactly one of number and account"),
        ('number = "+15551234567"\naccount = "a"\nalternate = "+15551234568"', "fallback[0]: give exactly one"),
        ('number = "+15551234567"', "fallback[0].alternate: required"),
        ('number = "+15551234567"\nalternate = "abc"', "fallback[0].alternate: bad number 'abc'"),
        ('number = "0123"\nalternate = "+15551234568"', "fallback[0].number: bad number '0123'"),
        ('account = "a"\nalternate = "+15551234568"\nafter = "0s"', "fallback[0].after: must be longer than 0s"),
    ],
)
def test_bad_fallbacks_are_problems(keys: str, expected: str) -> None:
    found = problems("[[fallback]]\n" + keys + "\n")
    assert len(found) == 1, found
    assert found[0].split(": ", 1)[1].startswith(expected), found


def test_two_fallbacks_for_one_number_are_a_problem() -> None:
    one = '[[fallback]]\nnumber = "+15551234567"\nalternate = "+15551234568"\n'
    found = problems(one + one.replace("+15551234567", "1 555 123 4567"))
    assert found == ["f.toml:5: fallback[1].number: a second fallback for number '+15551234567'"]


def test_every_problem_is_reported_at_once() -> None:
    text = TWO + (
        '[[group]]\nid = "g"\ngateways = ["x"]\n'
        '[[route]]\nname = "r"\nnumber = "("\ngateway = "y"\n'
        '[[fallback]]\nalternate = "+15551234567"\n'
    )
    keys = [f.split(": ")[1] for f in problems(text)]
    assert keys == ["group[0].gateways", "route[0].number", "route[0].gateway", "fallback[0]"]


def test_a_number_regex_for_a_national_form_never_matches_and_is_a_problem() -> None:
    found = problems(TWO + "[[route]]\nname = \"uk\"\nnumber = '0044(\\d+)'\nrewrite = '+44\\1'\ngateway = \"a\"\n")
    assert found == [
        "f.toml:9: route[0].number: never matches: numbers reach the rules in E.164 form, write \\+44... not 0044..."
    ]


@pytest.mark.parametrize("regex", [r"\+44.*", r"(\+?)(\d+)", r"0044\d+|\+44\d+", r"0?\+44\d+", r"\d+", r"[0+]\d+"])
def test_number_regexes_that_may_match_are_not_flagged(regex: str) -> None:
    config.parse(TWO + f"[[route]]\nname = \"r\"\nnumber = '{regex}'\n")


def test_with_short_codes_a_digit_regex_may_match() -> None:
    loaded = config.parse("[address]\nshort_codes = true\n[[route]]\nname = \"r\"\nnumber = '1234\\d'\n")
    assert loaded.routes[0].number == r"1234\d"


def test_rules_after_one_that_always_ends_evaluation_are_a_problem() -> None:
    found = problems(
        TWO + '[[route]]\nname = "all"\ngateway = "a"\nstop = true\n[[route]]\nname = "later"\ngateway = "b"\n'
    )
    assert found == [
        "f.toml:11: route[1]: never evaluated: route 'all' before it matches everything and ends evaluation"
    ]
    config.parse(TWO + '[[route]]\nname = "all"\ngateway = "a"\n[[route]]\nname = "later"\ngateway = "b"\n')
