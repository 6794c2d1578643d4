"""The private PostgreSQL of ``postgres_cluster`` / ``pg_url``: reachable, writable, one database per test.

Fails (never skips) when Debian's ``postgresql`` is missing.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.integration


def test_pg_url_answers_select_1(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_pg_url_database_is_fresh_and_writable(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
        conn.execute("CREATE TABLE message (id bigint PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO message VALUES (1, 'ünïcode ✓')")
        conn.commit()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT body FROM message").fetchall() == [("ünïcode ✓",)]


def test_two_databases_are_independent(postgres_cluster: PostgresCluster) -> None:
    first, second = postgres_cluster.create_database(), postgres_cluster.create_database()
    try:
        assert first != second
        with psycopg.connect(first, autocommit=True) as conn:
            conn.execute("CREATE TABLE message (id bigint)")
        with psycopg.connect(second, autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass('message')").fetchone() == (None,)
    finally:
        postgres_cluster.drop_database(first)
        postgres_cluster.drop_database(second)


def test_drop_database_ends_open_sessions(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.create_database()
    name = url.rsplit("/", 1)[1]
    idle = psycopg.connect(url)
    try:
        postgres_cluster.drop_database(url)
        with pytest.raises(psycopg.OperationalError):
            idle.execute("SELECT 1")
    finally:
        idle.close()
    with psycopg.connect(postgres_cluster.url(), autocommit=True) as admin:
        assert admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None


def test_server_runs_with_the_settings_tests_rely_on(postgres_cluster: PostgresCluster) -> None:
    with psycopg.connect(postgres_cluster.url(), autocommit=True) as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'max_connections', 'server_encoding')"
            ).fetchall()
        )
    assert settings == {"fsync": "on", "max_connections": "200", "server_encoding": "UTF8"}
    assert postgres_cluster.host == "127.0.0.1"
    assert postgres_cluster.user == "mailsms"
