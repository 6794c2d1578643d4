"""Accounts in the state database (table ``account``), shared by the daemon and ``mailsms accounts``.

The daemon reads an account at each decision, so a change made with the
CLI applies to the next recipient without a reload.  Counters are written
by the daemon's writer after the messages they count are committed.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Mapping

from mailsms.accounts import Account, counted
from mailsms.store.conn import Conn, for_update, has_table

# "user" is quoted: a reserved word in PostgreSQL.
_COLUMNS = ('"user"', "password_hash", "gateway", "description", "maxsend", "sent", "prevsent", "lastsent", "month",
            "expire", "inactive")  # fmt: skip


def create_accounts_schema(conn: sqlite3.Connection) -> None:
    """Schema version 5: the accounts table."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS account (user TEXT PRIMARY KEY, password_hash TEXT NOT NULL DEFAULT '',"
        " gateway TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '', maxsend INTEGER NOT NULL DEFAULT 0,"
        " sent INTEGER NOT NULL DEFAULT 0, prevsent INTEGER NOT NULL DEFAULT 0, lastsent REAL NOT NULL DEFAULT 0,"
        " month TEXT NOT NULL DEFAULT '', expire TEXT NOT NULL DEFAULT '', inactive INTEGER NOT NULL DEFAULT 0)"
    )


def has_accounts_table(conn: Conn) -> bool:
    return has_table(conn, "account")


def _account(row: tuple[object, ...]) -> Account:
    user, password_hash, gateway, description, maxsend, sent, prevsent, lastsent, month, expire, inactive = row
    return Account(
        user=str(user),
        password_hash=str(password_hash),
        gateway=str(gateway),
        description=str(description),
        maxsend=int(maxsend),  # type: ignore[call-overload]
        sent=int(sent),  # type: ignore[call-overload]
        prevsent=int(prevsent),  # type: ignore[call-overload]
        lastsent=float(lastsent),  # type: ignore[arg-type]
        month=str(month),
        expire=dt.date.fromisoformat(str(expire)) if expire else None,
        inactive=bool(inactive),
    )


def get_account(conn: Conn, user: str, *, lock: bool = False) -> Account | None:
    """The account named ``user`` (exact, case-sensitive), or None; ``lock``: inside a transaction
    that goes on to change it (several nodes count against one account one at a time)."""
    if not has_accounts_table(conn):
        return None
    sql = f'SELECT {", ".join(_COLUMNS)} FROM account WHERE "user" = ?{for_update(conn) if lock else ""}'
    row = conn.execute(sql, (user,)).fetchone()
    return _account(row) if row else None


def list_accounts(conn: Conn) -> list[Account]:
    if not has_accounts_table(conn):
        return []
    return [_account(r) for r in conn.execute(f'SELECT {", ".join(_COLUMNS)} FROM account ORDER BY "user"')]


def put_account(conn: Conn, account: Account) -> None:
    """Insert or replace ``account`` (the caller holds the transaction)."""
    values = (
        account.user, account.password_hash, account.gateway, account.description, account.maxsend, account.sent,
        account.prevsent, account.lastsent, account.month, account.expire.isoformat() if account.expire else "",
        int(account.inactive),
    )  # fmt: skip
    updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
    conn.execute(
        f"INSERT INTO account ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * 11)})"
        f' ON CONFLICT ("user") DO UPDATE SET {updates}',
        values,
    )


def delete_account(conn: Conn, user: str) -> bool:
    return conn.execute('DELETE FROM account WHERE "user" = ?', (user,)).rowcount > 0


def record_sent(
    conn: Conn,
    counts: Mapping[str, int],
    now: float,
    check: Callable[[Account, int], None] | None = None,
) -> None:
    """Count accepted messages against their accounts, in the writer's transaction that queues
    them; ``check(account, messages)`` raises to refuse them (a monthly limit used up meanwhile)."""
    for user, messages in sorted(counts.items()):
        account = get_account(conn, user, lock=True)
        if account is None:
            continue
        if check is not None:
            check(account, messages)
        put_account(conn, counted(account, messages, now))
