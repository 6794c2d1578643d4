"""The queue's tables on PostgreSQL: the same columns as the SQLite schema (``mailsms.store.schema``),
plus each message's lease (``lease_node``, ``lease_until``: the node sending it, and until when).

``mailsms_schema`` holds the version.  Creation and migration run under a
transaction-level advisory lock, so nodes that start together on an empty
database wait for each other and all come up.
"""

from __future__ import annotations

from mailsms.store.conn import Conn

PG_SCHEMA_VERSION = 1
_LOCK = 0x6D61696C736D73  # pg_advisory_xact_lock key: "mailsms"

_TABLES = (
    """CREATE TABLE message (
        id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL,
        number TEXT NOT NULL, gateway TEXT NOT NULL, encoding TEXT, text TEXT, params TEXT, dsn TEXT, headers TEXT,
        truncated BIGINT, state TEXT NOT NULL, attempts BIGINT, next_attempt DOUBLE PRECISION NOT NULL,
        reason TEXT, dsn_code TEXT, possible_duplicate BIGINT, updated DOUBLE PRECISION,
        mail_id TEXT NOT NULL DEFAULT '', notify BIGINT NOT NULL DEFAULT 0, reported BIGINT NOT NULL DEFAULT 0,
        report_due BIGINT NOT NULL DEFAULT 0, warn_at DOUBLE PRECISION, authenticated BIGINT NOT NULL DEFAULT 0,
        via TEXT NOT NULL DEFAULT '', alternate TEXT NOT NULL DEFAULT '',
        fallback_after DOUBLE PRECISION NOT NULL DEFAULT 0, fallback_at DOUBLE PRECISION,
        not_before DOUBLE PRECISION, lease_node TEXT NOT NULL DEFAULT '', lease_until DOUBLE PRECISION)""",
    """CREATE TABLE part (
        message_id TEXT NOT NULL REFERENCES message(id), seq BIGINT NOT NULL, text TEXT, udh BYTEA, data BYTEA,
        state TEXT NOT NULL, gateway_msgid TEXT, updated DOUBLE PRECISION, PRIMARY KEY (message_id, seq))""",
    """CREATE TABLE early_report (gateway TEXT NOT NULL, gateway_msgid TEXT NOT NULL, delivered BIGINT NOT NULL,
        reason TEXT NOT NULL, dsn_code TEXT NOT NULL, received DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (gateway, gateway_msgid))""",
    """CREATE TABLE inbound (
        id TEXT PRIMARY KEY, gateway TEXT NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL,
        text TEXT NOT NULL, udh BYTEA NOT NULL, data BYTEA, coding BIGINT NOT NULL, smsc_id TEXT NOT NULL,
        received DOUBLE PRECISION NOT NULL, state TEXT NOT NULL, routed_to TEXT, mail_id TEXT NOT NULL DEFAULT '')""",
    "CREATE TABLE original (key TEXT PRIMARY KEY NOT NULL, content BYTEA, created DOUBLE PRECISION)",
    """CREATE TABLE mailout (
        id TEXT PRIMARY KEY NOT NULL, created DOUBLE PRECISION NOT NULL, sender TEXT NOT NULL,
        recipients TEXT NOT NULL, message BYTEA NOT NULL, state TEXT NOT NULL, attempts BIGINT,
        next_attempt DOUBLE PRECISION NOT NULL, reason TEXT, origin TEXT, updated DOUBLE PRECISION,
        lease_node TEXT NOT NULL DEFAULT '', lease_until DOUBLE PRECISION)""",
    """CREATE TABLE reply_link (number TEXT NOT NULL, mailbox TEXT NOT NULL, gateway TEXT NOT NULL DEFAULT '',
        message_id TEXT NOT NULL DEFAULT '', subject TEXT NOT NULL DEFAULT '', created DOUBLE PRECISION NOT NULL,
        queue_id TEXT NOT NULL DEFAULT '', PRIMARY KEY (number, mailbox))""",
    """CREATE TABLE account ("user" TEXT PRIMARY KEY, password_hash TEXT NOT NULL DEFAULT '',
        gateway TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '', maxsend BIGINT NOT NULL DEFAULT 0,
        sent BIGINT NOT NULL DEFAULT 0, prevsent BIGINT NOT NULL DEFAULT 0,
        lastsent DOUBLE PRECISION NOT NULL DEFAULT 0, month TEXT NOT NULL DEFAULT '',
        expire TEXT NOT NULL DEFAULT '', inactive BIGINT NOT NULL DEFAULT 0)""",
    # shared rate limits: one token bucket per key, taken in the transaction that needs it
    """CREATE TABLE rate_bucket (key TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL,
        updated DOUBLE PRECISION NOT NULL)""",
    # the nodes sharing this queue: each has a small number of its own, in its queue ids; ``seen`` is
    # the database's clock at the node's last start or claim renewal
    "CREATE TABLE node (id TEXT PRIMARY KEY, number BIGINT NOT NULL UNIQUE, host TEXT NOT NULL,"
    " started DOUBLE PRECISION NOT NULL, seen DOUBLE PRECISION NOT NULL DEFAULT 0)",
)
_INDEXES = (
    "CREATE INDEX message_due_at ON message(next_attempt) WHERE state IN ('queued','deferred')",
    "CREATE INDEX message_due_gateway ON message(gateway, next_attempt) WHERE state IN ('queued','deferred')",
    "CREATE INDEX message_waiting_number ON message(number) WHERE state IN ('queued','deferred','hold')",
    "CREATE INDEX message_warn ON message(warn_at) WHERE warn_at IS NOT NULL",
    "CREATE INDEX message_report_due ON message(updated) WHERE report_due != 0",
    "CREATE INDEX message_mail ON message(mail_id) WHERE mail_id != ''",
    "CREATE INDEX message_fallback ON message(fallback_at) WHERE fallback_at IS NOT NULL",
    "CREATE INDEX part_sending ON part(state) WHERE state = 'sending'",
    "CREATE INDEX part_gateway_msgid ON part(gateway_msgid) WHERE gateway_msgid != ''",
    "CREATE UNIQUE INDEX inbound_smsc_id ON inbound(gateway, smsc_id) WHERE smsc_id != ''",
    "CREATE INDEX inbound_received ON inbound(received)",
    "CREATE INDEX inbound_todo ON inbound(received) WHERE state = 'received'",
    "CREATE INDEX inbound_waiting ON inbound(gateway, sender) WHERE state = 'part'",
    "CREATE INDEX inbound_waiting_since ON inbound(received) WHERE state = 'part'",
    "CREATE INDEX inbound_mail_id ON inbound(mail_id) WHERE mail_id != ''",
    "CREATE INDEX mailout_due ON mailout(next_attempt) WHERE state = 'queued'",
    "CREATE INDEX reply_link_created ON reply_link(created)",
    "CREATE INDEX reply_link_mailbox ON reply_link(mailbox)",
)
TABLES = ("message", "part", "early_report", "inbound", "original", "mailout", "reply_link", "account")


def create_pg_schema(conn: Conn) -> None:
    """Create the schema if the database has none; a newer one than this version knows is refused."""
    if _version(conn) == PG_SCHEMA_VERSION:
        return
    conn.execute("BEGIN")
    try:
        conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK})")
        conn.execute("CREATE TABLE IF NOT EXISTS mailsms_schema (version BIGINT NOT NULL)")
        version = _version(conn)
        if version > PG_SCHEMA_VERSION:
            raise RuntimeError(
                f"the queue's schema is version {version}, newer than this mailsms knows ({PG_SCHEMA_VERSION})"
            )
        if version < 1:
            for sql in (*_TABLES, *_INDEXES):
                conn.execute(sql)
            conn.execute("DELETE FROM mailsms_schema")
            conn.execute("INSERT INTO mailsms_schema (version) VALUES (?)", (PG_SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _version(conn: Conn) -> int:
    row = conn.execute("SELECT to_regclass('mailsms_schema') IS NOT NULL").fetchone()
    if not row[0]:
        return 0
    found = conn.execute("SELECT MAX(version) FROM mailsms_schema").fetchone()
    return int(found[0] or 0)
