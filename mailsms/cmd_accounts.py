"""``mailsms accounts``: add, list, change and remove SMS accounts, import and export the seed's file.

Works on the state database the daemon uses (``<state.dir>/queue.sqlite``),
so a change applies to the next recipient without a reload.  Passwords are
read from the terminal without echo (asked twice), or with
``--password-stdin`` as the first line of standard input; they are stored
only as argon2 hashes and never printed.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from mailsms.errors import EX_DATAERR, EX_NOINPUT, EX_OK
from mailsms.store.conn import Conn

if TYPE_CHECKING:
    from mailsms.accounts import Account


def _count(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}")
    return int(value)


def _date(value: str) -> str:
    import datetime as dt

    if value in ("", "never"):
        return ""
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD or 'never', got {value!r}") from None
    return value


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "accounts",
        parents=[parent],
        help="manage SMS accounts (who may send, through which gateway, how much)",
        description="Manage SMS accounts in the state database; changes apply to a running daemon at once.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def settings(p: argparse.ArgumentParser) -> None:
        p.add_argument("--gateway", metavar="ID", help="the [[gateway]] id its messages use")
        p.add_argument("--description", metavar="TEXT")
        p.add_argument("--maxsend", type=_count, metavar="N", help="messages a month (0: no limit)")
        p.add_argument("--expire", type=_date, metavar="YYYY-MM-DD", help="last day it may send ('never')")
        p.add_argument("--sent", type=_count, metavar="N", help="set this month's counter (e.g. 0 to reset)")

    add = actions.add_parser("add", parents=[parent], help="add an account (asks for its password)")
    add.add_argument("user")
    settings(add)
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--no-password", action="store_true", help="no password: only trusted clients may use it")
    add.add_argument("--inactive", action="store_true", help="create it disabled")
    change = actions.add_parser("set", parents=[parent], help="change an account's settings")
    change.add_argument("user")
    settings(change)
    actions.add_parser("list", parents=[parent], help="all accounts")
    for name, what in (("show", "one account"), ("disable", "stop an account from sending"),
                       ("enable", "let a disabled account send again"), ("delete", "remove an account")):  # fmt: skip
        actions.add_parser(name, parents=[parent], help=what).add_argument("user")
    passwd = actions.add_parser("passwd", parents=[parent], help="set an account's password")
    passwd.add_argument("user")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    imp = actions.add_parser("import", parents=[parent], help="add or replace accounts from a file ('-': stdin)")
    imp.add_argument("file", metavar="FILE")
    actions.add_parser("export", parents=[parent], help="all accounts in the import format, passwords empty")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mailsms import config
    from mailsms.store.engines import connect_existing, engine_of, open_store, sqlite_path

    loaded = config.load(config.config_path(getattr(args, "config", None)))
    url = loaded.store.url
    if args.action not in ("list", "show", "export") and (
        engine_of(url) == "postgresql" or not sqlite_path(url, loaded.state_dir).exists()
    ):
        from mailsms.daemon import prepare_state_dir

        if engine_of(url) == "sqlite":
            prepare_state_dir(loaded.state_dir)
        open_store(url, loaded.state_dir, node="tool").close()  # creates or migrates the schema
    with connect_existing(url, loaded.state_dir) as conn:
        return _ACTIONS[args.action](conn, args)


def _read_password(args: argparse.Namespace) -> str:
    from mailsms.errors import BadRequest

    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise BadRequest("the passwords differ")
    if not password:
        raise BadRequest("empty password (use --no-password for an account without one)")
    return password


def _now() -> float:
    import time

    return time.time()


def _write(conn: Conn, account: Account) -> None:
    from mailsms.store.accounts import put_account

    conn.execute("BEGIN IMMEDIATE")
    try:
        put_account(conn, account)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _existing(conn: Conn | None, user: str) -> Account:
    from mailsms.errors import BadRequest
    from mailsms.store.accounts import get_account

    found = get_account(conn, user) if conn is not None else None
    if found is None:
        raise BadRequest(f"no account {user!r}")
    return found


def _changed(account: Account, args: argparse.Namespace) -> Account:
    import dataclasses
    import datetime as dt

    from mailsms.accounts import month_of, rolled

    changes: dict[str, object] = {}
    for name in ("gateway", "description", "maxsend"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name)
    if getattr(args, "expire", None) is not None:
        changes["expire"] = dt.date.fromisoformat(args.expire) if args.expire else None
    current = rolled(account, month_of(_now()))
    if getattr(args, "sent", None) is not None:
        changes["sent"] = args.sent
    return dataclasses.replace(current, **changes)  # type: ignore[arg-type]


def _add(conn: Conn | None, args: argparse.Namespace) -> int:
    from mailsms.accounts import Account, check_user, hash_password, month_of
    from mailsms.errors import BadRequest
    from mailsms.store.accounts import get_account

    assert conn is not None
    user = check_user(args.user)
    if get_account(conn, user) is not None:
        raise BadRequest(f"account {user!r} exists (use passwd or set)")
    password_hash = "" if args.no_password else hash_password(_read_password(args))
    account = _changed(Account(user, password_hash, month=month_of(_now()), inactive=args.inactive), args)
    _write(conn, account)
    print(f"mailsms: account {user!r} added")
    return EX_OK


def _set(conn: Conn | None, args: argparse.Namespace) -> int:
    assert conn is not None
    _write(conn, _changed(_existing(conn, args.user), args))
    print(f"mailsms: account {args.user!r} changed")
    return EX_OK


def _passwd(conn: Conn | None, args: argparse.Namespace) -> int:
    import dataclasses

    from mailsms.accounts import hash_password

    assert conn is not None
    account = _existing(conn, args.user)
    _write(conn, dataclasses.replace(account, password_hash=hash_password(_read_password(args))))
    print(f"mailsms: password of {args.user!r} changed")
    return EX_OK


def _enable(conn: Conn | None, args: argparse.Namespace) -> int:
    import dataclasses

    assert conn is not None
    inactive = args.action == "disable"
    _write(conn, dataclasses.replace(_existing(conn, args.user), inactive=inactive))
    print(f"mailsms: account {args.user!r} {'disabled' if inactive else 'enabled'}")
    return EX_OK


def _delete(conn: Conn | None, args: argparse.Namespace) -> int:
    from mailsms.store.accounts import delete_account

    assert conn is not None
    _existing(conn, args.user)
    conn.execute("BEGIN IMMEDIATE")
    delete_account(conn, args.user)
    conn.execute("COMMIT")
    print(f"mailsms: account {args.user!r} deleted")
    return EX_OK


def describe(account: Account, now: float) -> list[str]:
    """``show``: one account, counters as of ``now``; the hash is never shown."""
    from mailsms.accounts import month_of, rolled
    from mailsms.queue_admin import stamp

    current = rolled(account, month_of(now))
    return [
        f"user:        {current.user}",
        f"password:    {'set' if current.password_hash else 'none (trusted clients only)'}",
        f"gateway:     {current.gateway or '(default)'}",
        f"description: {current.description}",
        f"maxsend:     {current.maxsend or 'no limit'}",
        f"sent:        {current.sent} this month, {current.prevsent} last month",
        f"last sent:   {stamp(current.lastsent) if current.lastsent else 'never'}",
        f"expire:      {current.expire or 'never'}",
        f"state:       {'disabled' if current.inactive else 'active'}",
    ]


def _show(conn: Conn | None, args: argparse.Namespace) -> int:
    print("\n".join(describe(_existing(conn, args.user), _now())))
    return EX_OK


def _list(conn: Conn | None, args: argparse.Namespace) -> int:
    from mailsms.accounts import month_of, rolled
    from mailsms.store.accounts import list_accounts

    accounts = list_accounts(conn) if conn is not None else []
    if not accounts:
        print("mailsms: no accounts")
        return EX_OK
    month = month_of(_now())
    print(f"{'USER':<20} {'GATEWAY':<12} {'SENT':>6} {'MAXSEND':>8} {'EXPIRE':<10} STATE")
    for account in accounts:
        current = rolled(account, month)
        state = "disabled" if current.inactive else "active"
        print(f"{current.user:<20} {current.gateway or '-':<12} {current.sent:>6} {current.maxsend:>8} "
              f"{current.expire or '-'!s:<10} {state}")  # fmt: skip
    print(f"-- {len(accounts)} account{'s' * (len(accounts) != 1)}")
    return EX_OK


def _export(conn: Conn | None, args: argparse.Namespace) -> int:
    from mailsms.accounts import format_line
    from mailsms.store.accounts import list_accounts

    now = _now()
    for account in list_accounts(conn) if conn is not None else []:
        print(format_line(account, now))
    return EX_OK


def _import(conn: Conn | None, args: argparse.Namespace) -> int:
    import dataclasses

    from mailsms.accounts import hash_password, parse_line
    from mailsms.store.accounts import put_account

    assert conn is not None
    try:
        text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()  # noqa: SIM115
    except OSError as exc:
        print(f"mailsms: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EX_NOINPUT
    now = _now()
    accounts = []
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            parsed = parse_line(line, now)
        except ValueError as exc:
            problems.append(f"mailsms: {args.file}:{number}: {exc}")
            continue
        if parsed is not None:
            hashed = hash_password(parsed.password) if parsed.password else ""
            accounts.append(dataclasses.replace(parsed.account, password_hash=hashed))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"mailsms: nothing imported: {len(problems)} bad line{'s' * (len(problems) != 1)}", file=sys.stderr)
        return EX_DATAERR
    conn.execute("BEGIN IMMEDIATE")
    try:
        for account in accounts:
            put_account(conn, account)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    print(f"mailsms: {len(accounts)} account{'s' * (len(accounts) != 1)} imported")
    return EX_OK


_ACTIONS = {
    "add": _add, "set": _set, "passwd": _passwd, "disable": _enable, "enable": _enable, "delete": _delete,
    "show": _show, "list": _list, "export": _export, "import": _import,
}  # fmt: skip
